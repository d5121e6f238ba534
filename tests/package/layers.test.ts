// The layer rules (.ci/layers.ts, docs/ARCHITECTURE.md "Layers") hold for this repository, and
// the checker catches each kind of violation when one is planted in a small synthetic graph.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  checkLayers,
  formatViolations,
  type ImportEdge,
  type ImportGraph,
  importsOf,
  layerOf,
  LAYERS,
  readGraph,
  ROOT,
} from "../../.ci/layers.ts";

describe("this repository", () => {
  test(
    "keeps the layer rules: no cycle, no upward import, no other folder's private module, rpc free of adapters",
    () => {
      const graph = readGraph();
      expect(graph.files).toContain("mod.ts");
      expect(graph.files).toContain("wasm/generated.ts");
      expect(graph.entries).toContain("src/transport/mod.ts");
      // As text, so a failure lists every violation with its file and line.
      expect(formatViolations(checkLayers(graph))).toBe("");
    },
    30_000,
  );

  test("docs/ARCHITECTURE.md states the same layer order as the table", () => {
    const doc = readFileSync(join(ROOT, "docs", "ARCHITECTURE.md"), "utf8");
    const stated = /^Layer order, lowest first: `([^`]*)`/m.exec(doc)?.[1];
    expect(stated).toBe(LAYERS.map((l) => l.name).join(" < "));
  });
});

/** A synthetic graph: `[from, to, kind?]` triples; every file named is in it. */
function graph(edges: [string, string, ImportEdge["kind"]?][], entries: string[] = []): ImportGraph {
  const files = new Set<string>();
  const out: ImportEdge[] = edges.map(([from, to, kind = "value"], i) => {
    const external = !to.includes("/") || to.startsWith("node:") || to.startsWith("@");
    files.add(from);
    if (!external) files.add(to);
    return { from, to, external, kind, line: i + 1 };
  });
  return { files: [...files], edges: out, entries };
}

const rules = (g: ImportGraph) => checkLayers(g).map((v) => v.rule);

describe("the checker", () => {
  test("passes a graph that keeps the rules", () => {
    const g = graph([
      ["src/rpc/peer.ts", "src/stream/echo_stream.ts"],
      ["src/stream/echo_stream.ts", "src/transport/types.ts", "type"],
      ["src/rpc/peer.ts", "src/rpc/_guard.ts"],
      ["src/transport/select.ts", "src/transport/node.ts", "dynamic"],
      ["src/transport/mod.ts", "src/transport/select.ts"],
    ], ["src/transport/mod.ts"]);
    expect(checkLayers(g)).toEqual([]);
  });

  test("catches a planted cycle and names its files in order", () => {
    const g = graph([
      ["src/rpc/a.ts", "src/rpc/b.ts"],
      ["src/rpc/b.ts", "src/rpc/c.ts"],
      ["src/rpc/c.ts", "src/rpc/a.ts"],
    ]);
    const v = checkLayers(g);
    expect(v.map((x) => x.rule)).toEqual(["cycle"]);
    expect(v[0].message).toContain(
      "src/rpc/a.ts → src/rpc/b.ts (line 1 of a.ts) → src/rpc/c.ts (line 2 of b.ts) → src/rpc/a.ts (line 3 of c.ts)",
    );
  });

  test("catches a module importing itself, and a cycle closed by a dynamic import", () => {
    expect(rules(graph([["src/rpc/a.ts", "src/rpc/a.ts"]]))).toEqual(["cycle"]);
    expect(rules(graph([["src/rpc/a.ts", "src/rpc/b.ts"], ["src/rpc/b.ts", "src/rpc/a.ts", "dynamic"]]))).toEqual([
      "cycle",
    ]);
  });

  test("lets a cycle through a type-only import pass (erased before run time)", () => {
    expect(rules(graph([["src/rpc/peer.ts", "src/rpc/context.ts"], ["src/rpc/context.ts", "src/rpc/peer.ts", "type"]])))
      .toEqual([]);
  });

  test("catches an upward import, type-only ones too", () => {
    const v = checkLayers(
      graph([["src/transport/bun.ts", "src/rpc/peer.ts"], [
        "src/protocol/frame.ts",
        "src/stream/echo_stream.ts",
        "type",
      ]]),
    );
    expect(v.map((x) => [x.rule, x.file])).toEqual([["upward", "src/protocol/frame.ts"], [
      "upward",
      "src/transport/bun.ts",
    ]]);
    expect(v[1].message).toBe("transport imports src/rpc/peer.ts from rpc, a higher layer");
    expect(v[0].message).toContain("(type-only)");
  });

  test("places files by their longest path: dev certificates sit below transport, policies above", () => {
    expect(layerOf("src/security/dev_cert.ts")?.layer.name).toBe("certs");
    expect(layerOf("src/security/access.ts")?.layer.name).toBe("security");
    expect(rules(graph([["src/transport/_server_tls.ts", "src/security/dev_cert.ts"]]))).toEqual([]);
    expect(rules(graph([["src/transport/_server_tls.ts", "src/security/access.ts"]]))).toEqual(["upward"]);
  });

  test("catches another folder's private module; the same folder's is fine", () => {
    expect(rules(graph([["src/rpc/peer.ts", "src/stream/_playout.ts"]]))).toEqual(["private"]);
    expect(rules(graph([["src/stream/echo_stream.ts", "src/stream/_playout.ts"]]))).toEqual([]);
    expect(rules(graph([["mod.ts", "src/rpc/_handshake.ts", "type"]]))).toEqual(["private"]);
  });

  test("catches src/rpc importing a concrete adapter or a QUIC stack", () => {
    expect(rules(graph([["src/rpc/client.ts", "src/transport/node.ts", "dynamic"]]))).toEqual(["adapter"]);
    expect(rules(graph([["src/rpc/client.ts", "@matrixai/quic"]]))).toEqual(["adapter"]);
    expect(rules(graph([["src/rpc/client.ts", "src/transport/select.ts"]]))).toEqual([]);
  });

  test("catches an entry point loading an adapter eagerly, however deep", () => {
    const v = checkLayers(graph([
      ["src/transport/mod.ts", "src/transport/select.ts"],
      ["src/transport/select.ts", "src/transport/deno.ts"],
      ["src/transport/deno.ts", "src/transport/_web_stream.ts"],
    ], ["src/transport/mod.ts"]));
    expect(v.map((x) => x.rule)).toEqual(["lazy"]);
    expect(v[0].message).toContain("src/transport/mod.ts → src/transport/select.ts → src/transport/deno.ts");
    // The adapter's own subpath export may load its stack.
    expect(rules(graph([["src/transport/node.ts", "@matrixai/quic"]], ["src/transport/node.ts"]))).toEqual([]);
    expect(rules(graph([["src/transport/mod.ts", "@matrixai/quic"]], ["src/transport/mod.ts"]))).toEqual(["lazy"]);
  });

  test("reports a file no layer holds and an import of a missing file", () => {
    expect(rules(graph([["src/elsewhere/thing.ts", "src/rpc/peer.ts"]]))).toEqual(["unassigned"]);
    const g = graph([["src/rpc/peer.ts", "src/stream/echo_stream.ts"]]);
    g.files = g.files.filter((f) => f !== "src/stream/echo_stream.ts");
    expect(rules(g)).toEqual(["unresolved"]);
  });
});

describe("reading imports", () => {
  test("finds static, type-only, re-export and dynamic imports, over several lines; skips comments and strings", () => {
    const source = [
      '/** @example import { no } from "./in_jsdoc.ts"; */',
      "// import { no } from './in_comment.ts';",
      "const s = \"import { no } from './in_string.ts'\";",
      "import {",
      "  a,",
      "  type B,",
      '} from "./multi_line.ts";',
      'import type { C } from "./types.ts";',
      'export type * from "./all_types.ts";',
      'export { d } from "../other/d.ts";',
      'const m = await import("./lazy.ts");',
      'const n = "node:quic"; await import(n);',
      'type T = typeof import("./type_query.ts");',
    ].join("\n");
    expect(importsOf("src/x/y.ts", source)).toEqual([
      { specifier: "./multi_line.ts", kind: "value", line: 4 },
      { specifier: "./types.ts", kind: "type", line: 8 },
      { specifier: "./all_types.ts", kind: "type", line: 9 },
      { specifier: "../other/d.ts", kind: "value", line: 10 },
      { specifier: "./lazy.ts", kind: "dynamic", line: 11 },
      { specifier: "./type_query.ts", kind: "type", line: 13 },
    ]);
  });
});
