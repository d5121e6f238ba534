// The package as a user installs it: `npm pack`, then `npm install <tarball>` into an empty
// project (dependencies from the npm registry, as any install), then the `echostream` bin run
// the ways docs/CLI.md gives: `npx echostream` (Node, from the packed dist/node bundle) and
// `bunx --bun echostream` (Bun, from the packed TypeScript source), each calling a real server.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, tool } from "../support/process.ts";
import { handler } from "../../src/rpc/definitions.ts";
import { RpcServer } from "../../src/rpc/server.ts";

const dir = mkdtempSync(join(tmpdir(), "echostream-package-"));
const project = join(dir, "project");
const npm = Bun.which("npm");
const npx = Bun.which("npx");
const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).handler(handler("echo", (_ctx, x: unknown) => x)).build();
const caFile = join(dir, "ca.pem");

beforeAll(async () => {
  if (!npm || !npx) throw new Error("npm and npx (from Node) must be on PATH for the package test");
  // npm pack runs the "prepare" script first: the bundle it packs is built from the current source.
  const packed = await run([npm, "pack", "--pack-destination", dir], { timeoutMs: 60_000 });
  expect(packed.code).toBe(0);
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error(`npm pack wrote no tarball: ${packed.stderr}`);
  await Bun.write(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }));
  const installed = await run([npm, "install", "--no-audit", "--no-fund", join(dir, tarball)], { cwd: project, timeoutMs: 240_000 });
  if (installed.code !== 0) throw new Error(`npm install of the tarball failed: ${installed.stderr}`);
  await server.start();
  writeFileSync(caFile, server.trust.ca!);
}, 300_000);

afterAll(async () => {
  await server.close({ graceMs: 0 });
  rmSync(dir, { recursive: true, force: true });
});

test("the tarball carries the bin and the Node bundle, and npm links the bin", () => {
  const pkg = join(project, "node_modules", "@echostream", "core");
  for (const f of ["bin/echostream.mjs", "dist/node/cli.mjs", "src/cli/main.ts", "mod.ts", "wasm/generated.ts", "LICENSE"]) {
    expect({ f, there: existsSync(join(pkg, f)) }).toEqual({ f, there: true });
  }
  expect(existsSync(join(project, "node_modules", ".bin", "echostream"))).toBe(true);
  // Nothing of the repository's own tooling.
  for (const f of ["tests", "bench", "wasm/target", ".ci"]) expect({ f, there: existsSync(join(pkg, f)) }).toEqual({ f, there: false });
});

test("npx echostream (Node) calls a server", async () => {
  const r = await run([npx!, "--no-install", "echostream", "call", server.address, "echo", '{"via":"npx"}', "--ca", caFile, "--json"], { cwd: project, timeoutMs: 30_000 });
  expect({ code: r.code, out: r.stdout.trim(), err: r.stderr }).toEqual({ code: 0, out: '{"via":"npx"}', err: "" });
}, 40_000);

test("bunx --bun echostream (Bun, from the TypeScript source) calls a server", async () => {
  const r = await run([tool("bun"), "x", "--bun", "echostream", "call", server.address, "echo", '{"via":"bunx"}', "--ca", caFile, "--json"], { cwd: project, timeoutMs: 30_000 });
  expect({ code: r.code, out: r.stdout.trim() }).toEqual({ code: 0, out: '{"via":"bunx"}' });
}, 40_000);
