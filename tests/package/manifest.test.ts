// The three manifests must agree: deno.json and jsr.json publish the package, package.json
// serves npm, Bun and Node. CI fails when they drift.

import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const read = (f: string) => JSON.parse(readFileSync(join(ROOT, f), "utf8"));
const deno = read("deno.json");
const jsr = read("jsr.json");
const pkg = read("package.json");

test("name, version and license agree", () => {
  for (const m of [deno, jsr, pkg]) {
    expect(m.name).toBe("@echostream/core");
    expect(m.version).toBe(jsr.version);
    expect(m.license).toBe("MIT");
  }
});

test("exports are the same in deno.json, jsr.json and package.json, and every target exists", () => {
  expect(deno.exports).toEqual(jsr.exports);
  expect(pkg.exports).toEqual(jsr.exports);
  for (const target of Object.values(jsr.exports as Record<string, string>)) {
    expect(existsSync(join(ROOT, target))).toBe(true);
  }
});

test("deno.json and jsr.json publish the same files", () => {
  expect(deno.publish).toEqual(jsr.publish);
});

test("tasks and scripts: demo, test, bench", () => {
  for (const t of ["demo", "test", "bench"]) {
    expect(typeof deno.tasks[t]).toBe("string");
    expect(typeof pkg.scripts[t]).toBe("string");
  }
});

test("npm install brings both runtimes", () => {
  expect(Object.keys(pkg.devDependencies)).toEqual(expect.arrayContaining(["bun", "deno"]));
});

test("every bare import in src/ and mod.ts is in the import maps", () => {
  const { readdirSync, statSync } = require("node:fs") as typeof import("node:fs");
  const files: string[] = [join(ROOT, "mod.ts")];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith(".ts")) files.push(p);
    }
  };
  walk(join(ROOT, "src"));
  const bare = new Set<string>();
  for (const f of files) {
    // Real import/export statements only (JSDoc examples import the published package name).
    for (const m of readFileSync(f, "utf8").matchAll(/^(?:import|export)\b[^;]*?from\s+"([^".][^"]*)"/gm)) {
      if (!m[1].startsWith("node:")) bare.add(m[1].split("/").slice(0, m[1].startsWith("@") ? 2 : 1).join("/"));
    }
    // No inline npm:/jsr: specifiers in source (dependencies go through the import maps).
    expect(readFileSync(f, "utf8")).not.toMatch(/from\s+"(npm|jsr):/);
  }
  for (const b of bare) {
    expect(Object.keys(deno.imports)).toContain(b);
    expect({ ...pkg.dependencies, ...pkg.devDependencies }).toHaveProperty(b);
  }
});

test("the required top-level layout is present", () => {
  for (const f of ["mod.ts", "src", "wasm", "tests", "examples", "deno.json", "jsr.json", "bunfig.toml", "README.md", "LICENSE", "package.json", "bench", "docs", ".ci/run"]) {
    expect(existsSync(join(ROOT, f))).toBe(true);
  }
  expect(readFileSync(join(ROOT, "LICENSE"), "utf8")).toStartWith("MIT License");
});
