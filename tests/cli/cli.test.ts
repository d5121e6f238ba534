// The `echostream` command line, run as a user runs it: the real CLI in its own process (Bun and
// Deno) against `echostream serve --echo` in another process (the other runtime), over real QUIC.
// Every command of src/cli/main.ts: serve, list, call (argument and stdin lines), emit, listen,
// clock, cert; and its failures: exit codes from RpcError codes, usage errors, missing trust.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, runtimeCommand, spawnServer, tool } from "../support/process.ts";
import { inTerminal } from "../support/terminal.ts";

const CLI = join(import.meta.dir, "../../src/cli/main.ts");
/** package.json's `bin`: on Node it runs dist/node/cli.mjs, the bundle `npm run build:node` makes. */
const BIN = join(import.meta.dir, "../../bin/echostream.mjs");
const dir = mkdtempSync(join(tmpdir(), "echostream-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Rt = "bun" | "deno" | "node";

/** The CLI on `rt` as a user starts it: Bun and Deno run the source, Node the package's bin. */
function cliCommand(rt: Rt, args: string[]): string[] {
  return rt === "node" ? [Bun.which("node") ?? "node", BIN, ...args] : runtimeCommand(rt, CLI, args);
}

// The Node bundle is rebuilt from the current source (`npm install` built it once, at "prepare";
// the source may have changed since), so the Node tests never run stale code.
beforeAll(async () => {
  const built = await run([tool("bun"), "run", "build:node"], { timeoutMs: 60_000 });
  if (built.code !== 0) throw new Error(`npm run build:node failed: ${built.stderr}`);
}, 60_000);

interface Served {
  address: string;
  fingerprint: string;
  ca: string;
  proc: ReturnType<typeof Bun.spawn>;
}

/** `echostream serve --echo --json` in its own process; its first stdout line describes it. */
async function serveEcho(rt: Rt, out: string): Promise<Served> {
  const { info, proc } = await spawnServer<Omit<Served, "proc">>(cliCommand(rt, ["serve", "--echo", "--json", "--out", out]));
  return { ...info, proc };
}

// Every command on Bun and Deno, each against the other; Node's CLI (through the bin) against
// Deno, and a Node `serve --echo` under Bun's CLI.
const PAIRS = [["bun", "deno"], ["deno", "bun"], ["node", "deno"], ["bun", "node"]] as const;

for (const [client, server] of PAIRS) {
  describe(`${client} CLI → ${server} "serve --echo"`, () => {
    let s: Served;
    const cli = (args: string[], opts: { stdin?: string; timeoutMs?: number } = {}) =>
      run(cliCommand(client, args), { timeoutMs: opts.timeoutMs ?? 20_000, stdin: opts.stdin });
    const trust = () => ["--ca", s.ca];

    beforeAll(async () => {
      s = await serveEcho(server, join(dir, `${client}-${server}`));
    }, 30_000);
    afterAll(async () => {
      // SIGTERM is how a user stops it (Ctrl-C is SIGINT): it closes gracefully and exits 0.
      s.proc.kill("SIGTERM");
      expect(await s.proc.exited).toBe(0);
    });

    test("serve --echo wrote its CA and printed address and fingerprint", () => {
      expect(s.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(s.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      expect(readFileSync(s.ca, "utf8")).toContain("BEGIN CERTIFICATE");
    });

    test("list: reflection, as text and as JSON", async () => {
      const text = await cli(["list", s.address, ...trust()]);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain("echostream-echo (protocol 1)");
      expect(text.stdout).toContain("  echo [idempotent]  Answers its input");
      expect(text.stdout).toMatch(/listeners:\n {2}echo {2}Re-broadcast/);
      expect(text.stderr).not.toContain("ExperimentalWarning");
      const json = await cli(["list", s.address, ...trust(), "--json"]);
      expect(json.code).toBe(0);
      const d = JSON.parse(json.stdout);
      expect(d.handlers.map((h: { name: string }) => h.name)).toEqual(["echo", "fail", "time"]);
      expect(d.streams).toEqual([
        { name: "echo", description: "Sends back every frame" },
        { name: "ticks", description: "50 JSON frames {tick, at}, 100 ms apart" },
      ]);
    }, 30_000);

    test("call: a JSON argument, pinned by fingerprint instead of the CA", async () => {
      const r = await cli(["call", s.address, "echo", '{"a":[1,"two",null]}', "--fingerprint", s.fingerprint, "--json"]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ a: [1, "two", null] });
    }, 30_000);

    test("call -: one call per stdin line, in order; a failed line reports and the run goes on", async () => {
      const r = await cli(["call", s.address, "fail", "-", ...trust()], { stdin: '"NOT_FOUND"\n\n"x"\n' });
      expect(r.stdout.trim().split("\n").map((l) => JSON.parse(l).error.code)).toEqual(["NOT_FOUND", "FAILED_PRECONDITION"]);
      expect(r.code).toBe(105); // the first failure's code: 100 + NOT_FOUND (5)
      const ok = await cli(["call", s.address, "echo", "-", ...trust()], { stdin: '1\n"two"\n{"three":3}\n' });
      expect(ok.code).toBe(0);
      expect(ok.stdout.trim().split("\n").map((l) => JSON.parse(l))).toEqual([1, "two", { three: 3 }]);
    }, 30_000);

    test("emit and listen: an event through the server's re-broadcast, metadata included", async () => {
      const listenProc = Bun.spawn(cliCommand(client, ["listen", s.address, "echoed", "--count", "2", ...trust()]), { stdout: "pipe", stderr: "pipe" });
      // Wait until it listens (it says so on stderr) before emitting.
      const errReader = listenProc.stderr.getReader();
      let err = "";
      while (!err.includes("listening to echoed")) {
        const { value, done } = await errReader.read();
        if (done) break;
        err += new TextDecoder().decode(value);
      }
      errReader.releaseLock();
      expect(err).toContain("listening to echoed");
      expect((await cli(["emit", s.address, "echo", '{"n":1}', ...trust()])).code).toBe(0);
      expect((await cli(["emit", s.address, "echo", '"two"', "-H", "k=v", ...trust()])).code).toBe(0);
      const t = setTimeout(() => listenProc.kill(), 15_000);
      const [code, out] = await Promise.all([listenProc.exited, new Response(listenProc.stdout).text()]);
      clearTimeout(t);
      expect(code).toBe(0);
      const lines = out.trim().split("\n").map((l) => JSON.parse(l));
      expect(lines.map((l) => l.topic)).toEqual(["echoed", "echoed"]);
      expect(lines.map((l) => l.payload.payload)).toEqual([{ n: 1 }, "two"]);
      expect(lines[0].payload.from).toBe("echostream-cli");
    }, 45_000);

    test("clock: offset, uncertainty, RTT and skew samples", async () => {
      const r = await cli(["clock", s.address, "--count", "3", "--interval", "100", "--json", ...trust()]);
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      expect(lines.length).toBe(3);
      for (const l of lines) {
        expect(Math.abs(l.offsetMs)).toBeLessThan(50); // same machine, same clock
        expect(l.uncertaintyMs).toBeGreaterThan(0);
        expect(l.rttMs).toBeGreaterThan(0);
        expect(l.samples).toBeGreaterThanOrEqual(1);
      }
    }, 30_000);

    test("stream send: stdin lines out as frames, the echoes back on stdout; stream recv: what the handler sends", async () => {
      const send = await cli(["stream", "send", s.address, "echo", ...trust()], { stdin: "hello\nwörld\n\n" });
      expect(send.code).toBe(0);
      expect(send.stdout).toBe("hello\nwörld\n\n"); // the empty line is an empty frame, echoed
      const recv = await cli(["stream", "recv", s.address, "ticks", "--count", "3", "--json", ...trust()]);
      expect(recv.code).toBe(0);
      expect(recv.stdout.trim().split("\n").map((l) => JSON.parse(JSON.parse(l).text).tick)).toEqual([1, 2, 3]);
      const none = await cli(["stream", "recv", s.address, "no.such.stream", ...trust()]);
      expect(none.code).toBe(105);
      expect((await cli(["stream", "sideways", s.address, "echo", ...trust()])).code).toBe(2);
    }, 30_000);

    test("bench: calls, req/s and latency percentiles; a failing method exits with its code", async () => {
      const r = await cli(["bench", s.address, "echo", '{"x":1}', "--count", "500", "--concurrency", "4", "--json", ...trust()]);
      expect(r.code).toBe(0);
      const b = JSON.parse(r.stdout);
      expect(b).toMatchObject({ method: "echo", calls: 500, failed: 0, concurrency: 4 });
      expect(b.reqPerSec).toBeGreaterThan(0);
      expect(b.latencyUs.p50).toBeGreaterThan(0);
      expect(b.latencyUs.p50).toBeLessThanOrEqual(b.latencyUs.p99);
      expect(b.latencyUs.p99).toBeLessThanOrEqual(b.latencyUs.max);
      const text = await cli(["bench", s.address, "echo", "--count", "50", ...trust()]);
      expect(text.stdout).toMatch(/^50 calls of echo \(1 in flight\) in [\d.]+ s: \d+ req\/s\nlatency p50 /);
      expect(text.stderr).not.toContain("["); // no progress bar when stderr is not a terminal
      expect((await cli(["bench", s.address, "fail", '"PERMISSION_DENIED"', "--count", "5", ...trust()])).code).toBe(107);
    }, 30_000);

    test("--insecure-skip-verify: no CA, no pin; on Deno only with --unsafely-ignore-certificate-errors; never with --ca", async () => {
      const r = await cli(["call", s.address, "echo", '"unverified"', "--insecure-skip-verify", "--json"]);
      if (client === "deno") {
        expect(r.code).toBe(116); // UNAUTHENTICATED: Deno's QUIC client verified anyway
        expect(r.stderr).toContain("--unsafely-ignore-certificate-errors");
        const flagged = await run([tool("deno"), "run", "--unstable-net", "-A", "--unsafely-ignore-certificate-errors", CLI, "call", s.address, "echo", '"unverified"', "--insecure-skip-verify", "--json"], { timeoutMs: 20_000 });
        expect({ code: flagged.code, out: flagged.stdout.trim() }).toEqual({ code: 0, out: '"unverified"' });
      } else {
        expect({ code: r.code, out: r.stdout.trim() }).toEqual({ code: 0, out: '"unverified"' });
      }
      expect((await cli(["call", s.address, "echo", "--insecure-skip-verify", ...trust()])).code).toBe(2);
    }, 30_000);

    test("exit codes: NOT_FOUND 105, UNAUTHENTICATED 116 (wrong pin), UNAVAILABLE 114 (nobody there), usage 2", async () => {
      const nf = await cli(["call", s.address, "no.such.method", ...trust(), "--json"]);
      expect(nf.code).toBe(105);
      expect(JSON.parse(nf.stdout).error.code).toBe("NOT_FOUND");
      expect(nf.stderr).toContain('NOT_FOUND: no handler for "no.such.method"');
      const pin = await cli(["call", s.address, "echo", "1", "--fingerprint", "00".repeat(32)]);
      expect(pin.code).toBe(116);
      const gone = await cli(["call", "127.0.0.1:9", "echo", "1", ...trust(), "--timeout", "1500"]);
      expect(gone.code).toBe(114);
      // A name, not host:port: looked up by mDNS (loopback only here: nobody answers).
      const byName = await cli(["call", "NobodyAdvertisesThis", "echo", "1", "--trust-advertised", "--timeout", "1000"]);
      expect(byName.code).toBe(114);
      expect(byName.stderr).toContain("NobodyAdvertisesThis");
      for (const args of [["call", s.address, "echo"], ["call", s.address, "echo", "{bad", ...trust()], ["frobnicate"], ["call", "host:port:x", "echo", ...trust()], ["call", "SomeService", "echo"], ["list", s.address, ...trust(), "--bogus"]]) {
        const r = await cli(args);
        expect({ args, code: r.code }).toEqual({ args, code: 2 });
        expect(r.stderr).toContain("echostream");
      }
    }, 45_000);
  });
}

test("cert writes a CA and a leaf a server can use", async () => {
  const out = join(dir, "certs");
  const r = await run(runtimeCommand("deno", CLI, ["cert", "--out", out, "--hosts", "localhost,127.0.0.1", "--json"]), { timeoutMs: 20_000 });
  expect(r.code).toBe(0);
  const info = JSON.parse(r.stdout);
  expect(info.hosts).toEqual(["localhost", "127.0.0.1"]);
  for (const f of [info.ca, info.cert]) expect(readFileSync(f, "utf8")).toContain("BEGIN CERTIFICATE");
  expect(readFileSync(info.key, "utf8")).toContain("PRIVATE KEY");
  // A server with those files, and the CLI trusting that CA.
  const { RpcServer } = await import("../../src/rpc/server.ts");
  const { handler } = await import("../../src/rpc/definitions.ts");
  const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).tls({ cert: readFileSync(info.cert, "utf8"), key: readFileSync(info.key, "utf8") })
    .handler(handler("hi", () => "hello")).build();
  await server.start();
  try {
    const call = await run(runtimeCommand("bun", CLI, ["call", server.address, "hi", "--ca", info.ca, "--json"]), { timeoutMs: 20_000 });
    expect({ code: call.code, out: call.stdout.trim() }).toEqual({ code: 0, out: '"hello"' });
    // Its own certificate: reflection is off unless asked for.
    const list = await run(runtimeCommand("bun", CLI, ["list", server.address, "--ca", info.ca]), { timeoutMs: 20_000 });
    expect(list.code).toBe(105);
    expect(list.stderr).toContain("does not answer reflection");
  } finally {
    await server.close({ graceMs: 0 });
  }
}, 60_000);

test("live output in a terminal (tmux): bench draws a progress bar, listen prints events as they come", async () => {
  const s = await serveEcho("bun", join(dir, "tty"));
  const b = await inTerminal("bench", runtimeCommand("deno", CLI, ["bench", s.address, "echo", "--count", "3000", "--ca", s.ca]));
  const l = await inTerminal("listen", runtimeCommand("bun", CLI, ["listen", s.address, "echoed", "--ca", s.ca]));
  try {
    const { waitFor } = await import("../support/wait.ts");
    await waitFor(async () => (await b.screen()).includes("[exit 0]"), "bench to finish", { timeoutMs: 20_000, everyMs: 100 });
    const bench = await b.screen();
    // The bar was redrawn in place ("\r"): one line, ending full.
    expect(bench).toMatch(/\[#{30}\] 3000\/3000\n3000 calls of echo \(1 in flight\)/);
    expect(bench.match(/\] \d+\/3000/g)?.length).toBe(1);
    await waitFor(async () => (await l.screen()).includes("listening to echoed"), "listen to start", { timeoutMs: 15_000, everyMs: 100 });
    for (const n of [1, 2]) {
      expect((await run(runtimeCommand("bun", CLI, ["emit", s.address, "echo", String(n), "--ca", s.ca]))).code).toBe(0);
      // Seen on the terminal while listen is still running (it has no --count).
      await waitFor(async () => (await l.screen()).includes(`"payload":${n}}`), `event ${n} on the terminal`, { timeoutMs: 10_000, everyMs: 100 });
    }
    expect(await l.screen()).not.toContain("[exit");
  } finally {
    await b.close();
    await l.close();
    s.proc.kill("SIGTERM");
    await s.proc.exited;
  }
}, 60_000);

test("--help prints the usage and exits 0; no command is a usage error", async () => {
  const help = await run(runtimeCommand("bun", CLI, ["--help"]), { timeoutMs: 20_000 });
  expect(help.code).toBe(0);
  for (const c of ["serve --echo", "list <target>", "call <target> <method>", "emit", "listen", "clock", "stream send", "stream recv", "bench", "cert"]) {
    expect(help.stdout).toContain(c);
  }
  const none = await run(runtimeCommand("bun", CLI, []), { timeoutMs: 20_000 });
  expect(none.code).toBe(2);
  expect(none.stderr).toContain("Usage: echostream");
}, 30_000);

test("the package's bin: `npx echostream` runs it on Node; without the Node build it says how to make one", async () => {
  const npx = Bun.which("npx");
  if (!npx) throw new Error("npx (from Node's npm) is not on PATH: the bin test needs it");
  const viaNpx = await run([npx, "--no-install", "echostream", "--help"], { timeoutMs: 30_000 });
  expect(viaNpx.code).toBe(0);
  expect(viaNpx.stdout).toContain("Usage: echostream");
  // Bun runs the same bin from the TypeScript source.
  const viaBun = await run([tool("bun"), BIN, "--help"], { timeoutMs: 20_000 });
  expect({ code: viaBun.code, usage: viaBun.stdout.includes("Usage: echostream") }).toEqual({ code: 0, usage: true });
  // A copy of the bin with no dist/ beside it: a clear error, not a stack trace.
  const bare = join(dir, "bare", "bin");
  mkdirSync(bare, { recursive: true });
  copyFileSync(BIN, join(bare, "echostream.mjs"));
  const missing = await run([Bun.which("node") ?? "node", join(bare, "echostream.mjs"), "--help"], { timeoutMs: 20_000 });
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain("npm run build:node");
  expect(missing.stderr).not.toContain("    at ");
}, 60_000);
