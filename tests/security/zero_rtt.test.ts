// 0-RTT replay, over real QUIC on Deno (quinn) and Bun (ngtcp2): capture a client's 0-RTT flight
// and replay it. The non-replay-safe handler (counter.inc) must run 0 times before the handshake
// is confirmed, and never for the attacker; the replay-safe one (counter.get, idempotent: true)
// may run. The server (_zero_rtt_server.ts) and the client with its capturing relay and attacker
// (_zero_rtt_client.ts) each run in their own process on the runtime under test.
//
// Timing is made deterministic by the relay: it holds every server→client datagram of the 0-RTT
// connection back for 300 ms, so the client cannot send its Finished before it first hears the
// server (`clientFirstHeardAt`). A handler that ran before that instant ran on unconfirmed early
// data, whatever the stack reports; both processes stamp with the same epoch clock.
//
// Two attacks:
// - replay:   the original completes; the attacker then replays the captured flight from new
//             UDP sockets (every 500 ms, until the server answers one as a new connection).
// - withhold: the relay never delivers the original; the attacker delivers the captured flight
//             from its own socket, so the session ticket is fresh to the server, and never
//             completes the handshake. The server gives the connection up at its idle timeout.
//
// ZERO_RTT_MUTATION=bypass runs the server with a transport that reports every handshake done at
// once (the RPC layer's hold cannot work): the replay test on Deno must then fail.
// ZERO_RTT_DEBUG=/some/prefix writes each runtime's raw results to /some/prefix.<runtime>.json.

import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { run, runtimeCommand } from "../support/process.ts";
import type { Call } from "./_zero_rtt_server.ts";

const SERVER = join(import.meta.dir, "_zero_rtt_server.ts");
const CLIENT = join(import.meta.dir, "_zero_rtt_client.ts");
const MUTATION = process.env.ZERO_RTT_MUTATION;
const SERVER_ARGS = MUTATION === "bypass" ? ["--bypass"] : [];

type Runtime = "deno" | "bun";
type Mode = "replay" | "withhold";

interface Result {
  runtime: string;
  mode: Mode;
  welcome?: boolean;
  get?: unknown;
  inc?: unknown;
  /** The ports the server saw the relayed 0-RTT connection come from (replay mode; one, normally). */
  zeroRttPorts?: number[];
  /** Epoch ms the relay first passed a server datagram to the 0-RTT client (replay mode). */
  clientFirstHeardAt?: number;
  handshake?: { resumed: boolean; earlyDataAccepted?: boolean };
  flight: { datagrams: number; bytes: number };
  replays: { port: number; at: number; gotBack: { datagrams: number; bytes: number } }[];
  server: {
    counter: number;
    calls: Call[];
    conns: { port: number; at: number; handshakeAt?: number; closedAt?: number }[];
    earlyDataHeld: number;
  };
}

/** Starts a server, runs one client scenario against it, stops the server. */
async function scenario(rt: Runtime, mode: Mode): Promise<Result> {
  const server = Bun.spawn(runtimeCommand(rt, SERVER, SERVER_ARGS), {
    cwd: join(import.meta.dir, "..", ".."),
    env: { ...process.env, NO_COLOR: "1" },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    timeout: 40_000,
  });
  try {
    const reader = server.stdout.getReader();
    let text = "";
    const deadline = performance.now() + 15_000;
    while (!text.includes("\n")) {
      const chunk = await Promise.race([
        reader.read(),
        Bun.sleep(Math.max(0, deadline - performance.now())).then(() => undefined),
      ]);
      if (!chunk || chunk.done) {
        throw new Error(`the ${rt} server did not start: ${text}${await new Response(server.stderr).text()}`);
      }
      text += new TextDecoder().decode(chunk.value);
    }
    reader.releaseLock();
    const r = await run(runtimeCommand(rt, CLIENT, [`--mode=${mode}`, text.split("\n")[0]]), { timeoutMs: 25_000 });
    const line = r.stdout.trim().split("\n").pop() ?? "";
    if (!line.startsWith("{")) {
      throw new Error(`the ${rt} ${mode} client produced no result (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
    }
    return JSON.parse(line) as Result;
  } finally {
    server.stdin.end();
    await Promise.race([server.exited, Bun.sleep(2000)]);
    server.kill();
  }
}

const ORIGINAL = "the original 0-RTT connection";
const ATTACKER = "the attacker's replay";

/** Who a call came from, for readable failures. */
function from(r: Result, c: Call): string {
  if (r.zeroRttPorts?.includes(c.port)) return ORIGINAL;
  if (r.replays.some((x) => x.port === c.port)) return ATTACKER;
  return `port ${c.port}`;
}

/**
 * The calls of `method`, each with whether it ran before its connection's handshake was
 * confirmed: on the original, before the client could have sent its Finished; the attacker's
 * connections are never confirmed. `asTheConnectionClosed` marks a call run within 50 ms of the
 * server giving its connection up.
 */
function callsOf(r: Result, method: string) {
  const heard = r.clientFirstHeardAt ?? Infinity;
  return r.server.calls.filter((c) => c.method === method).map((c) => {
    const who = from(r, c);
    const closedAt = r.server.conns.find((x) => x.port === c.port)?.closedAt;
    const closing = closedAt !== undefined && Math.abs(closedAt - c.at) < 50;
    return {
      from: who,
      beforeConfirmation: who !== ORIGINAL || c.at < heard,
      ...(closing ? { asTheConnectionClosed: true } : {}),
    };
  });
}

/** Whether the server took the flight's 0-RTT data: counter.get ran on it before any confirmation. */
function earlyAccepted(r: Result): boolean {
  return callsOf(r, "counter.get").some((c) => c.beforeConfirmation);
}

/**
 * Runs a scenario; on Deno again (up to 3 runs) when the server did not take the 0-RTT data at
 * all, so the hold path is always exercised there (it declined it in 2 of about 25 runs; the
 * cause was not pinned down).
 */
async function attempt(rt: Runtime, mode: Mode): Promise<Result & { runs: number }> {
  let r!: Result;
  for (let runs = 1; runs <= 3; runs++) {
    r = await scenario(rt, mode);
    if (rt !== "deno" || earlyAccepted(r)) return { ...r, runs };
  }
  return { ...r, runs: 3 };
}

// The two runtimes run side by side (each its two scenarios in turn): most of the time is spent
// waiting for idle timeouts, not computing.
const results = new Map<string, Promise<Result & { runs: number }>>();
beforeAll(() => {
  for (const rt of ["deno", "bun"] as const) {
    const replay = attempt(rt, "replay");
    const withhold = replay.catch(() => {}).then(() => attempt(rt, "withhold"));
    results.set(`${rt}/replay`, replay);
    results.set(`${rt}/withhold`, withhold);
    replay.catch(() => {});
    withhold.catch(() => {});
  }
});

for (const rt of ["deno", "bun"] as const) {
  describe(`0-RTT replay on ${rt}`, () => {
    let r: Result & { runs: number };
    let w: Result & { runs: number };
    beforeAll(async () => {
      r = await results.get(`${rt}/replay`)!;
      w = await results.get(`${rt}/withhold`)!;
      if (process.env.ZERO_RTT_DEBUG) {
        await Bun.write(`${process.env.ZERO_RTT_DEBUG}.${rt}.json`, JSON.stringify({ r, w }, null, 1));
      }
      const getByAttacker = (x: Result) => callsOf(x, "counter.get").filter((c) => c.from === ATTACKER).length;
      const originalGet = callsOf(r, "counter.get").filter((c) => c.from === ORIGINAL);
      const answered = r.replays.filter((x) => x.gotBack.datagrams > 0).length;
      const replayGets = getByAttacker(r);
      const facts = [
        `runs ${r.runs}+${w.runs}; flight ${r.flight.datagrams} datagrams; 0-RTT connection from relay port ${r.zeroRttPorts}`,
        `original: counter.get ran ${originalGet.map((c) => (c.beforeConfirmation ? "early" : "after the handshake"))}`,
        `earlyDataHeld ${r.server.earlyDataHeld}`,
        `replay after the original: server answered ${answered}/${r.replays.length}, counter.get ran ${replayGets}x`,
        `withheld flight replayed: counter.get ran ${getByAttacker(w)}x, earlyDataHeld ${w.server.earlyDataHeld}`,
      ];
      console.log(`[zero_rtt ${rt}${MUTATION ? ` ${MUTATION}` : ""}] ${facts.join("; ")}`);
    }, 40_000);

    test("the 0-RTT connection resumed and was answered", () => {
      expect(r.welcome).toBe(true);
      expect(r.inc).toBe(1);
      expect(typeof r.get).toBe("number");
      expect(r.handshake?.resumed).toBe(true);
      // The server saw the relayed connection, so its calls can be told from the attacker's.
      expect(r.server.conns.some((x) => r.zeroRttPorts?.includes(x.port))).toBe(true);
      // The Initial and at least one 0-RTT packet were captured (Bun without early data: Initial only).
      expect(r.flight.datagrams).toBeGreaterThanOrEqual(1);
    });

    test("counter.inc waits for the handshake on the original 0-RTT connection; counter.get may run early", () => {
      // Ran once, and only once the client could have sent its Finished.
      expect(callsOf(r, "counter.inc")).toEqual([{ from: ORIGINAL, beforeConfirmation: false }]);
      // Did the requests reach the server as early data? counter.get running before the client
      // heard anything proves it; Bun also reports whether the server accepted early data.
      const early = earlyAccepted(r) || r.handshake?.earlyDataAccepted === true;
      // Measured on Deno: quinn accepts the resumed client's 0-RTT data and the RPC layer gets
      // it ~300 ms before the handshake can complete, so the hold path is always exercised.
      if (rt === "deno") expect(early).toBe(true);
      // Early counter.inc must have been held (and counted).
      if (early) expect(r.server.earlyDataHeld).toBeGreaterThanOrEqual(1);
    });

    test("a flight replayed after the original never runs counter.inc", () => {
      // The attacker's copies reached the stack: the server answered one as a new connection.
      expect(r.replays.some((x) => x.gotBack.datagrams > 0)).toBe(true);
      expect(callsOf(r, "counter.inc").filter((c) => c.from !== ORIGINAL)).toEqual([]);
      expect(r.server.counter).toBe(1);
    });

    test("a flight withheld from the server and replayed by the attacker never runs counter.inc", () => {
      expect(w.replays.length).toBe(1);
      expect(w.replays[0].gotBack.datagrams).toBeGreaterThan(0);
      // On Deno the server takes the attacker's 0-RTT data (the ticket is fresh to it): counter.get
      // runs and counter.inc is held, so the hold path is exercised.
      if (rt === "deno") {
        expect({ getRan: earlyAccepted(w), held: w.server.earlyDataHeld >= 1 }).toEqual({ getRan: true, held: true });
      }
      // Nothing confirms this connection's handshake, ever: counter.inc must not run at all
      // (not while the connection lives, and not when the server gives it up).
      expect(callsOf(w, "counter.inc")).toEqual([]);
      expect(w.server.counter).toBe(0);
    });
  });
}
