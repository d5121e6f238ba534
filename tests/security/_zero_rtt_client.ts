// The 0-RTT replay test's client and attacker (zero_rtt.test.ts), run in its own process on Bun
// or Deno (`--unstable-net -A`), against _zero_rtt_server.ts. Last argument: the server's JSON
// line ({"port","ca"}); `--mode=replay` (the default) or `--mode=withhold`. Prints one JSON line.
//
// 1. Through a capturing UDP relay, a first connection (full handshake) gets a session ticket.
// 2. A second connection resumes with 0-RTT. In its very first flight it sends HELLO on a control
//    stream, then REQUEST counter.inc and REQUEST counter.get on two more bidi streams. The relay
//    holds everything server→client back for DELAY_MS, so the client cannot send its Finished
//    before then: what the server runs before the relay's first server→client forward ran on
//    early data, whatever the stack says (both processes use the same epoch clock).
// 3. The attacker sends that flight (the client→server datagrams sent before the client heard
//    anything: its Initial and 0-RTT packets) again from a new UDP socket straight to the server,
//    and acknowledges nothing, so its handshake never completes.
//    - replay:   the original went through and completed; the attacker replays afterwards (every
//                REPLAY_EVERY_MS from a fresh socket until the server answers one: while the
//                server still holds the original connection, its copies are routed there).
//    - withhold: the relay drops the original (the client never reaches the server); only the
//                attacker's copy arrives, so the ticket is fresh to the server.
// 4. An honest connection reads the server's stats once the server has given up every
//    connection the attacker started (its idle timeout).

import dgram from "node:dgram";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { type Frame, FrameFlag, FrameType } from "../../src/protocol/frame.ts";
import { defaultPayloadCodec } from "../../src/protocol/payload_codec.ts";
import { ALPN, PROTOCOL_VERSION } from "../../src/protocol/version.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { defaultTransport } from "../../src/transport/select.ts";
import type { BidiStream, Connection } from "../../src/transport/types.ts";

type Proc = { argv: string[]; exit(c: number): never };
const proc = (globalThis as unknown as { process: Proc }).process;
const { port: serverPort, ca } = JSON.parse(proc.argv[proc.argv.length - 1]) as { port: number; ca: string };
/** How long the relay holds server→client datagrams of the 0-RTT connection back. */
const DELAY_MS = 300;
/** The first flight: what the client sent in this long (well before any loss-recovery resend). */
const FLIGHT_MS = 150;
const REPLAY_EVERY_MS = 500;
const MODE = proc.argv.find((a) => a.startsWith("--mode="))?.slice(7) ?? "replay";
if (MODE !== "replay" && MODE !== "withhold") throw new Error(`unknown --mode=${MODE}`);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what}: no answer within ${ms} ms`)))]);

// ---- The capturing relay ----------------------------------------------------------------------

interface Datagram {
  phase: string;
  dir: "toServer" | "toClient";
  /** Epoch ms: when the relay received it. */
  at: number;
  bytes: Uint8Array;
}

class CapturingRelay {
  readonly log: Datagram[] = [];
  /** Labels what arrives now; each phase gets its own upstream socket (its own port at the server). */
  phase = "ticket";
  toClientDelayMs = 0;
  /** A phase whose client→server datagrams are recorded but not passed on. */
  withhold = "";
  dropped = 0;
  /** Per phase: when the first server→client datagram was passed on to the client. */
  readonly firstToClient = new Map<string, number>();
  /** Per phase: the ports the server sees (one per client port the relay carried in that phase). */
  readonly upstreamPorts = new Map<string, number[]>();
  readonly #up = new Map<string, dgram.Socket>();
  readonly #sock = dgram.createSocket("udp4");
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((r) => this.#sock.bind(0, "127.0.0.1", () => r()));
    this.port = this.#sock.address().port;
    this.#sock.on("message", (msg: Uint8Array, from: { address: string; port: number }) => {
      const phase = this.phase;
      this.log.push({ phase, dir: "toServer", at: now(), bytes: new Uint8Array(msg) });
      if (this.withhold === phase) return void this.dropped++;
      this.#upstream(phase, from).then((u) => u.send(msg, serverPort, "127.0.0.1"));
    });
  }

  #upstream(phase: string, client: { address: string; port: number }): Promise<dgram.Socket> {
    const key = `${phase}/${client.address}:${client.port}`;
    const have = this.#up.get(key);
    if (have) return Promise.resolve(have);
    const u = dgram.createSocket("udp4");
    this.#up.set(key, u);
    u.on("message", (msg: Uint8Array) => {
      this.log.push({ phase, dir: "toClient", at: now(), bytes: new Uint8Array(msg) });
      const forward = () => {
        if (!this.firstToClient.has(phase)) this.firstToClient.set(phase, now());
        this.#sock.send(msg, client.port, client.address);
      };
      if (this.toClientDelayMs <= 0) return forward();
      const t = setTimeout(() => (this.#timers.delete(t), forward()), this.toClientDelayMs);
      this.#timers.add(t);
    });
    return new Promise((r) =>
      u.bind(0, "127.0.0.1", () => {
        const ports = this.upstreamPorts.get(phase) ?? [];
        ports.push(u.address().port);
        this.upstreamPorts.set(phase, ports);
        r(u);
      })
    );
  }

  /** The client→server datagrams of `phase` sent in its first FLIGHT_MS, before the client heard anything. */
  flight(phase: string): Datagram[] {
    const sent = this.log.filter((d) => d.phase === phase && d.dir === "toServer");
    const end = Math.min(this.firstToClient.get(phase) ?? Infinity, (sent[0]?.at ?? 0) + FLIGHT_MS);
    return sent.filter((d) => d.at < end);
  }

  close(): void {
    for (const t of this.#timers) clearTimeout(t);
    for (const u of this.#up.values()) u.close();
    this.#sock.close();
  }
}

// ---- A raw RPC client on a transport connection -----------------------------------------------

const codec = createFrameCodec();
const payloads = defaultPayloadCodec();

/** Opens a bidi stream, writes `frames` (ending our half if `end`), collects what comes back. */
async function stream(
  conn: Connection,
  frames: Frame[],
  end: boolean,
): Promise<{ s: BidiStream; first: Promise<Frame | undefined> }> {
  const s = await conn.openBidi();
  for (const f of frames) await s.write(codec.encode(f));
  if (end) await s.end();
  const first = (async () => {
    const splitter = codec.splitter();
    for await (const chunk of s) {
      const got = splitter.push(chunk);
      if (got.length > 0) return got[0];
    }
    return undefined;
  })();
  first.catch(() => {});
  return { s, first };
}

const hello = (): Frame => ({
  type: FrameType.HELLO,
  flags: 0,
  version: PROTOCOL_VERSION,
  name: "zero-rtt-client",
  payload: payloads.encode({ caps: {} }),
});
const request = (method: string, flags = 0): Frame => ({
  type: FrameType.REQUEST,
  flags,
  method,
  deadlineMs: 0,
  metadata: {},
  payload: payloads.encode(null),
});
const value = (f: Frame | undefined): unknown =>
  f?.type === FrameType.RESPONSE ? payloads.decode(f.payload) : f ? `frame type ${f.type}` : "nothing";

// ---- The run ----------------------------------------------------------------------------------

type Stats = {
  counter: number;
  calls: { method: string; at: number; port: number; guardEarly: boolean; value: number }[];
  conns: { port: number; at: number; handshakeAt?: number; handshakeFailed?: boolean; closedAt?: number }[];
  earlyDataHeld: number;
};

const t = await defaultTransport();
const relay = new CapturingRelay();
await relay.start();
const out: Record<string, unknown> = { runtime: t.name, mode: MODE, delayMs: DELAY_MS };
const target = { host: "127.0.0.1", port: relay.port, alpn: ALPN, tls: { ca }, zeroRtt: true };
/** An honest connection (a full handshake, straight to the server) for the server's stats. */
const honest = await RpcClient.connect(`127.0.0.1:${serverPort}`, { ca, clockSync: false, timeoutMs: 3000 });
const serverStats = async () => await honest.request("stats", null, { timeoutMs: 2000 }) as Stats;

// 1. A full handshake through the relay, for a ticket.
{
  const c = await t.connect(target);
  const control = await stream(c, [hello()], false);
  out.ticketWelcome =
    (await within(control.first, 3000, "WELCOME on the ticket connection"))?.type === FrameType.WELCOME;
  out.ticketConnection = await c.handshake;
  await sleep(100); // the ticket arrives after the handshake
  await c.close();
  await sleep(100);
}

let withheld: Connection | undefined;

// 2. The 0-RTT connection: HELLO, counter.inc and counter.get in the first flight.
relay.phase = "zeroRtt";
relay.toClientDelayMs = DELAY_MS;
if (MODE === "withhold") relay.withhold = "zeroRtt";
{
  const t0 = now();
  const c = await t.connect(target);
  out.connectReturnedEarly = await Promise.race([
    c.handshake.then(() => false, () => false),
    sleep(0).then(() => true),
  ]);
  // The client marks counter.inc IDEMPOTENT too: the server must go by its own declaration only.
  const opened = Promise.all([
    stream(c, [hello()], false),
    stream(c, [request("counter.inc", FrameFlag.IDEMPOTENT)], true),
    stream(c, [request("counter.get", FrameFlag.IDEMPOTENT)], true),
  ]);
  opened.catch(() => {});
  if (MODE === "replay") {
    const [control, inc, get] = await opened;
    out.flightWrittenMs = Math.round(now() - t0);
    const [w, g, i] = await within(
      Promise.all([control.first, get.first, inc.first]),
      5000,
      "answers on the 0-RTT connection",
    );
    out.welcome = w?.type === FrameType.WELCOME;
    out.get = value(g);
    out.inc = value(i);
    out.clientFirstHeardAt = relay.firstToClient.get("zeroRtt");
    // Read once the answers are in: the relay binds its upstream socket asynchronously, on the
    // flight's first datagram, so right after connect() the port may not be known yet. Everything
    // the relay carries in this phase is the client's own (the attacker sends straight to the server).
    out.zeroRttPorts = relay.upstreamPorts.get("zeroRtt") ?? [];
    out.handshake = await c.handshake.catch((e) => String(e));
    await c.close();
  } else {
    // Where the server's ticket allows no early data, the writes wait for a handshake that the
    // withheld flight never completes: the flight is then the Initial alone.
    out.flightWritten = await Promise.race([opened.then(() => true, () => false), sleep(FLIGHT_MS).then(() => false)]);
    await sleep(FLIGHT_MS);
    // Left open to the end (its resends are dropped too): were it closed now, its close would
    // reach the server as a fresh Initial for the same connection ID.
    withheld = c;
  }
}

// 3. The attacker sends the captured first flight from fresh sockets, straight to the server.
const flight = relay.flight("zeroRtt");
out.flight = { datagrams: flight.length, bytes: flight.reduce((n, d) => n + d.bytes.length, 0) };
interface Replay {
  port: number;
  at: number;
  /** What the server sent back to the attacker. */
  gotBack: { datagrams: number; bytes: number };
}
const replays: Replay[] = [];
const attackers: dgram.Socket[] = [];
for (let n = 0; n < 8; n++) {
  const a = dgram.createSocket("udp4");
  attackers.push(a);
  await new Promise<void>((r) => a.bind(0, "127.0.0.1", () => r()));
  const r: Replay = { port: a.address().port, at: now(), gotBack: { datagrams: 0, bytes: 0 } };
  replays.push(r);
  a.on("message", (m: Uint8Array) => {
    r.gotBack.datagrams++;
    r.gotBack.bytes += m.length;
  });
  for (const d of flight) {
    a.send(d.bytes, serverPort, "127.0.0.1");
    await sleep(1);
  }
  await sleep(REPLAY_EVERY_MS);
  if (r.gotBack.datagrams > 0) break; // the server took this copy as a new connection
}
out.replays = replays;

// 4. Once the server has given up every connection the attacker started, its final stats.
let stats!: Stats;
for (const until = now() + 6000; now() < until;) {
  stats = await serverStats();
  const open = stats.conns.filter((c) => replays.some((r) => r.port === c.port) && c.closedAt === undefined);
  if (open.length === 0) break;
  await sleep(200);
}
await sleep(200); // anything the close set off has run by now
out.server = await serverStats();
if (withheld) out.droppedByRelay = relay.dropped;
withheld?.close().catch(() => {});
await honest.close();
for (const a of attackers) a.close();
relay.close();
console.log(JSON.stringify(out));
proc.exit(0);
