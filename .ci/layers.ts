/**
 * Layer rules: checks the import graph of `src/`, `mod.ts` and `wasm/mod.ts` against the rules in
 * docs/ARCHITECTURE.md ("Layers") and ../shared/DESIGN.md §2 ("nothing below imports from
 * above; src/transport/ knows nothing of RPC; src/rpc/ knows no concrete QUIC stack"):
 *
 * 1. `cycle`: no import cycle between files. Type-only imports (`import type`, `export type`)
 *    do not count: they are erased before the code runs, so they cannot make a module run
 *    before one it needs (the harm a cycle does: a binding read before it is initialised), and
 *    types that refer to each other across files are how TypeScript describes mutually
 *    referring objects. `import { type X }` counts as a value import, since a stack using
 *    `verbatimModuleSyntax` still loads the module for it.
 * 2. `upward`: no import from a higher layer of {@link LAYERS} (type-only ones included: a type
 *    from above still ties the lower layer to the higher one's design). Same layer: free.
 * 3. `private`: no import of a `_`-prefixed module from another folder, except the pairs in
 *    {@link PRIVATE_ALLOWED}, each with its reason.
 * 4. `adapter`: nothing in `src/rpc/` imports a concrete transport adapter ({@link ADAPTERS}) or a
 *    QUIC stack package ({@link QUIC_PACKAGES}); it gets its transport through the interface.
 * 5. `lazy`: the modules a public entry point (deno.json `exports`, other than the adapters'
 *    own) loads with static imports include no adapter and no QUIC stack package, so importing
 *    `@echostream/core` on Deno never loads `node:quic` or `@matrixai/quic`; `select.ts` loads
 *    the adapter with `import()`.
 *
 * Also reported: a file no layer claims (`unassigned`: add it to the table) and a relative
 * import that names no file (`unresolved`).
 *
 * Imports are read with the TypeScript compiler's parser (node_modules/typescript, a dev
 * dependency), so comments, strings and JSDoc examples are never mistaken for imports. Runs on
 * Bun and Deno:
 *
 *     bun .ci/layers.ts
 *     deno run --allow-read --allow-env .ci/layers.ts
 *
 * Exits 1 and lists the violations, one per line (`rule file:line message`), when there are any.
 * {@link checkLayers} is pure, for tests/package/layers.test.ts.
 *
 * @module
 */

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { posix } from "node:path";

/** One layer: the files it holds, by path prefix (a folder ending in `/`, or one file). */
export interface Layer {
  name: string;
  paths: string[];
  /** What it is, and what it may use. */
  what: string;
}

/**
 * The layers, lowest first: a file may import from its own layer and the layers before it,
 * never from a later one. A file belongs to the layer with its longest matching path.
 * Derived from the imports as they are (a later layer uses earlier ones; independent layers are
 * ordered as data flows on send, rpc → protocol → transport) and written into
 * docs/ARCHITECTURE.md "Layers"; keep the two in step.
 */
export const LAYERS: readonly Layer[] = [
  { name: "wasm", paths: ["wasm/"], what: "the Rust/WASM core and its only binding (wasm/mod.ts); nothing of src/" },
  { name: "observe", paths: ["src/observe/"], what: "logs (LogTape loggers per layer); every layer above may log" },
  {
    name: "certs",
    paths: ["src/security/dev_cert.ts", "src/security/_der.ts"],
    what: "TLS material: development certificates and fingerprints (WebCrypto and a DER encoder)",
  },
  {
    name: "transport",
    paths: ["src/transport/"],
    what: "the Transport interface and one adapter per QUIC stack; knows no frame, codec or RPC",
  },
  { name: "protocol", paths: ["src/protocol/"], what: "frames, codec facade, limits, error codes; knows no transport" },
  {
    name: "wire",
    paths: ["src/wire/"],
    what: "frames over a transport stream: reading, writing, payloads, error mapping",
  },
  { name: "clock", paths: ["src/clock/"], what: "clock synchronisation (PING/PONG) and the synced clock" },
  {
    name: "stream",
    paths: ["src/stream/"],
    what: "EchoStream: DATA frames with credit flow control, time-synced receiving",
  },
  {
    name: "security",
    paths: ["src/security/"],
    what: "access policies, rate limits, connection limits (certs excepted: see above)",
  },
  { name: "discovery", paths: ["src/discovery/"], what: "DNS-SD over mDNS: advertise, discover, browse" },
  {
    name: "cluster",
    paths: ["src/cluster/"],
    what: "the cross-instance protocol (presence, broadcast, groups, peer calls) over a bus adapter, and the NATS and Redis adapters; knows no Peer",
  },
  {
    name: "rpc",
    paths: ["src/rpc/"],
    what: "RpcServer, RpcClient, Peer, definitions; the transport only through its interface",
  },
  {
    name: "testing",
    paths: ["src/testing/"],
    what: "impairment relay and seeded PRNG for tests; nothing in the library uses it",
  },
  { name: "api", paths: ["mod.ts"], what: "the package's public exports" },
  { name: "cli", paths: ["src/cli/"], what: "the `echostream` command line: a client of the RPC layer" },
];

/** The `_`-prefixed modules another folder may import, with why. */
export const PRIVATE_ALLOWED: readonly { from: string; to: string; why: string }[] = [];

/** The concrete transport adapters: loaded only through `select.ts` or their own subpath export. */
export const ADAPTERS: readonly string[] = ["src/transport/bun.ts", "src/transport/deno.ts", "src/transport/node.ts"];

/** The QUIC stacks' own modules, which only the adapters load. */
export const QUIC_PACKAGES: readonly string[] = ["node:quic", "@matrixai/quic"];

/** How an import loads its module. */
export type ImportKind = "value" | "type" | "dynamic";

/** One import or re-export. */
export interface ImportEdge {
  /** The importing file, relative to the repository root. */
  from: string;
  /** The imported file, relative to the root; for a package, its specifier as written. */
  to: string;
  /** A package (`node:…`, npm name), not a file of this repository. */
  external: boolean;
  kind: ImportKind;
  /** 1-based line of the import. */
  line: number;
}

/** The files checked and their imports. */
export interface ImportGraph {
  files: string[];
  edges: ImportEdge[];
  /** Public entry points (deno.json `exports`). */
  entries: string[];
}

/** What the rules are checked against; {@link DEFAULT_RULES} is this repository's. */
export interface Rules {
  layers: readonly Layer[];
  privateAllowed: readonly { from: string; to: string; why: string }[];
  adapters: readonly string[];
  quicPackages: readonly string[];
  /** The folder that must not import adapters (rule 4). */
  rpc: string;
}

/** This repository's rules. */
export const DEFAULT_RULES: Rules = {
  layers: LAYERS,
  privateAllowed: PRIVATE_ALLOWED,
  adapters: ADAPTERS,
  quicPackages: QUIC_PACKAGES,
  rpc: "src/rpc/",
};

/** One broken rule. */
export interface Violation {
  rule: "cycle" | "upward" | "private" | "adapter" | "lazy" | "unassigned" | "unresolved";
  file: string;
  line: number;
  message: string;
}

/** The layer holding `file` (longest matching path), or undefined. */
export function layerOf(file: string, layers: readonly Layer[] = LAYERS): { index: number; layer: Layer } | undefined {
  let best: { index: number; layer: Layer; len: number } | undefined;
  layers.forEach((layer, index) => {
    for (const p of layer.paths) {
      const hit = p.endsWith("/") ? file.startsWith(p) : file === p;
      if (hit && (!best || p.length > best.len)) best = { index, layer, len: p.length };
    }
  });
  return best && { index: best.index, layer: best.layer };
}

const isPrivate = (file: string) => posix.basename(file).startsWith("_");

/**
 * Checks `graph` against `rules`.
 * @returns Every violation, sorted by rule, file and line; empty when the rules hold.
 */
export function checkLayers(graph: ImportGraph, rules: Rules = DEFAULT_RULES): Violation[] {
  const out: Violation[] = [];
  const known = new Set(graph.files);
  for (const f of graph.files) {
    if (!layerOf(f, rules.layers)) {
      out.push({ rule: "unassigned", file: f, line: 1, message: "no layer in LAYERS holds this file" });
    }
  }
  for (const e of graph.edges) {
    if (e.external) {
      if (e.from.startsWith(rules.rpc) && rules.quicPackages.includes(e.to)) {
        out.push({
          rule: "adapter",
          file: e.from,
          line: e.line,
          message: `imports the QUIC stack ${e.to}; use the Transport interface`,
        });
      }
      continue;
    }
    if (!known.has(e.to)) {
      out.push({ rule: "unresolved", file: e.from, line: e.line, message: `imports ${e.to}, which does not exist` });
      continue;
    }
    const a = layerOf(e.from, rules.layers);
    const b = layerOf(e.to, rules.layers);
    if (a && b && b.index > a.index) {
      out.push({
        rule: "upward",
        file: e.from,
        line: e.line,
        message: `${a.layer.name} imports ${e.to} from ${b.layer.name}, a higher layer${
          e.kind === "type" ? " (type-only)" : ""
        }`,
      });
    }
    if (isPrivate(e.to) && posix.dirname(e.to) !== posix.dirname(e.from)) {
      if (!rules.privateAllowed.some((x) => x.from === e.from && x.to === e.to)) {
        out.push({
          rule: "private",
          file: e.from,
          line: e.line,
          message: `imports ${e.to}, private to ${posix.dirname(e.to)}/`,
        });
      }
    }
    if (e.from.startsWith(rules.rpc) && rules.adapters.includes(e.to)) {
      out.push({
        rule: "adapter",
        file: e.from,
        line: e.line,
        message: `imports the concrete adapter ${e.to}; use the Transport interface`,
      });
    }
  }
  out.push(...cycles(graph));
  out.push(...eagerAdapters(graph, rules));
  const order = ["unresolved", "unassigned", "cycle", "upward", "private", "adapter", "lazy"];
  return out.sort((x, y) =>
    order.indexOf(x.rule) - order.indexOf(y.rule) || x.file.localeCompare(y.file) || x.line - y.line
  );
}

/** Rule 1: one violation per strongly connected group of files (value and dynamic imports). */
function cycles(graph: ImportGraph): Violation[] {
  const next = new Map<string, ImportEdge[]>();
  for (const e of graph.edges) {
    if (e.external || e.kind === "type") continue;
    if (!next.has(e.from)) next.set(e.from, []);
    next.get(e.from)!.push(e);
  }
  // Tarjan's strongly connected components, iteratively (no recursion depth limit).
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const groups: string[][] = [];
  for (const root of [...graph.files].sort()) {
    if (index.has(root)) continue;
    const work: { v: string; i: number }[] = [{ v: root, i: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const edges = next.get(top.v) ?? [];
      if (top.i < edges.length) {
        const w = edges[top.i++].to;
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].v;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.v)!));
      }
      if (low.get(top.v) === index.get(top.v)) {
        const group: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          group.push(w);
        } while (w !== top.v);
        const selfLoop = (next.get(top.v) ?? []).some((e) => e.to === top.v);
        if (group.length > 1 || selfLoop) groups.push(group);
      }
    }
  }
  return groups.map((group) => {
    const members = new Set(group);
    const start = [...group].sort()[0];
    const path = shortestCycle(start, members, next);
    const first = path[0];
    return {
      rule: "cycle" as const,
      file: first.from,
      line: first.line,
      message: `import cycle: ${
        [
          first.from,
          ...path.map((e) => `${e.to} (line ${e.line} of ${posix.basename(e.from)})`),
        ].join(" → ")
      }` +
        (group.length > path.length ? `; ${group.length} files are in this knot: ${[...group].sort().join(", ")}` : ""),
    };
  });
}

/** The shortest path of edges from `start` back to itself within `members` (breadth first). */
function shortestCycle(start: string, members: Set<string>, next: Map<string, ImportEdge[]>): ImportEdge[] {
  const via = new Map<string, ImportEdge>();
  const queue = [start];
  for (let q = 0; q < queue.length; q++) {
    for (const e of next.get(queue[q]) ?? []) {
      if (!members.has(e.to)) continue;
      if (e.to === start) {
        const path = [e];
        for (let at = e.from; at !== start; at = via.get(at)!.from) path.unshift(via.get(at)!);
        return path;
      }
      if (!via.has(e.to)) {
        via.set(e.to, e);
        queue.push(e.to);
      }
    }
  }
  return [];
}

/** Rule 5: what each entry point loads with static imports, searched for adapters and QUIC stacks. */
function eagerAdapters(graph: ImportGraph, rules: Rules): Violation[] {
  const out: Violation[] = [];
  const next = new Map<string, ImportEdge[]>();
  for (const e of graph.edges) {
    if (e.kind !== "value") continue;
    if (!next.has(e.from)) next.set(e.from, []);
    next.get(e.from)!.push(e);
  }
  for (const entry of graph.entries) {
    if (rules.adapters.includes(entry)) continue;
    const via = new Map<string, ImportEdge | undefined>([[entry, undefined]]);
    const queue = [entry];
    for (let q = 0; q < queue.length; q++) {
      for (const e of next.get(queue[q]) ?? []) {
        if (via.has(e.to)) continue;
        via.set(e.to, e);
        if (rules.adapters.includes(e.to) || (e.external && rules.quicPackages.includes(e.to))) {
          const chain: ImportEdge[] = [];
          for (let at: ImportEdge | undefined = e; at; at = via.get(at.from)) chain.unshift(at);
          out.push({
            rule: "lazy",
            file: entry,
            line: 1,
            message: `loads ${e.to} on import: ${
              [entry, ...chain.map((c) => c.to)].join(" → ")
            }; load adapters with import() (select.ts)`,
          });
        } else if (!e.external) {
          queue.push(e.to);
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading the repository.

/** The repository root (this file's parent folder's parent). */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

// deno-lint-ignore no-explicit-any
type Ts = any;
let tsModule: Ts;
function typescript(root: string): Ts {
  return (tsModule ??= createRequire(posix.join(root, "package.json"))("typescript"));
}

/** The imports of one file's source, with `from` and unresolved specifiers. */
export function importsOf(
  file: string,
  source: string,
  root: string = ROOT,
): { specifier: string; kind: ImportKind; line: number }[] {
  const ts = typescript(root);
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: { specifier: string; kind: ImportKind; line: number }[] = [];
  const lineOf = (node: Ts) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
  const visit = (node: Ts): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push({
        specifier: node.moduleSpecifier.text,
        kind: node.importClause?.isTypeOnly ? "type" : "value",
        line: lineOf(node),
      });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push({ specifier: node.moduleSpecifier.text, kind: node.isTypeOnly ? "type" : "value", line: lineOf(node) });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expr = node.moduleReference.expression;
      if (ts.isStringLiteral(expr)) {
        out.push({ specifier: expr.text, kind: node.isTypeOnly ? "type" : "value", line: lineOf(node) });
      }
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      // import("./x.ts"); a computed specifier (bun.ts hides node:quic that way) is not followed.
      const arg = node.arguments[0];
      if (arg && (ts.isStringLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg))) {
        out.push({ specifier: arg.text, kind: "dynamic", line: lineOf(node) });
      }
    } else if (ts.isImportTypeNode(node)) {
      // typeof import("./x.ts") in a type position.
      const lit = node.argument?.literal;
      if (lit && ts.isStringLiteral(lit)) out.push({ specifier: lit.text, kind: "type", line: lineOf(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function tsFilesUnder(root: string, dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(posix.join(root, dir)).sort()) {
    const rel = posix.join(dir, name);
    if (statSync(posix.join(root, rel)).isDirectory()) out.push(...tsFilesUnder(root, rel));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(rel);
  }
  return out;
}

/**
 * Reads `src/**`, `mod.ts` and `wasm/mod.ts` (and the repository files they import) under `root`.
 * @returns Their import graph; entry points from deno.json `exports`.
 */
export function readGraph(root: string = ROOT): ImportGraph {
  const files = new Set<string>(["mod.ts", "wasm/mod.ts", ...tsFilesUnder(root, "src")]);
  const edges: ImportEdge[] = [];
  const queue = [...files];
  for (let q = 0; q < queue.length; q++) {
    const from = queue[q];
    for (const imp of importsOf(from, readFileSync(posix.join(root, from), "utf8"), root)) {
      const relative = imp.specifier.startsWith("./") || imp.specifier.startsWith("../");
      if (!relative) {
        edges.push({ from, to: imp.specifier, external: true, kind: imp.kind, line: imp.line });
        continue;
      }
      const to = posix.normalize(posix.join(posix.dirname(from), imp.specifier));
      edges.push({ from, to, external: false, kind: imp.kind, line: imp.line });
      // Follow imports out of the listed folders (wasm/generated.ts), so they are checked too.
      if (!files.has(to) && existsSync(posix.join(root, to)) && to.endsWith(".ts")) {
        files.add(to);
        queue.push(to);
      }
    }
  }
  const exports = JSON.parse(readFileSync(posix.join(root, "deno.json"), "utf8")).exports as Record<string, string>;
  const entries = Object.values(exports).map((p) => posix.normalize(p));
  return { files: [...files].sort(), edges, entries };
}

/** Formats violations one per line: `rule file:line message`. */
export function formatViolations(violations: Violation[]): string {
  return violations.map((v) => `${v.rule.padEnd(10)} ${v.file}:${v.line} ${v.message}`).join("\n");
}

if (import.meta.main) {
  const graph = readGraph();
  const violations = checkLayers(graph);
  if (violations.length === 0) {
    console.log(
      `layer rules hold: ${graph.files.length} files, ${graph.edges.length} imports, ${LAYERS.length} layers`,
    );
  } else {
    console.error(formatViolations(violations));
    console.error(
      `\n${violations.length} layer-rule violation(s); the rules are in .ci/layers.ts and docs/ARCHITECTURE.md "Layer rules"`,
    );
    (globalThis as { process?: { exit(code: number): never } }).process!.exit(1);
  }
}
