// Mode "client": a raw QUIC server (the transport layer and the frame codec, nothing of the RPC
// layer) answers a live RpcClient's HELLO as the case says, then plays the case toward it:
// calls and stream opens to the client's handlers, frames on the control stream, events,
// datagrams. Afterwards an honest call each way must work (or fail with a clear code when the
// connection was closed), and once the raw server drops the connection the client holds nothing.

import { type Frame, FrameType } from "../../src/protocol/frame.ts";
import { defaultPayloadCodec } from "../../src/protocol/payload_codec.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";
import { ALPN } from "../../src/protocol/version.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { bunTransport } from "../../src/transport/bun.ts";
import type { BidiStream, Connection, Listener } from "../../src/transport/types.ts";
import { ANSWER_MS, closeRaw, countersSettle, evaluate, probeEnded, rawHonestCall, settledWhileConnected } from "./_check.ts";
import { isKnown } from "./_known.ts";
import type { Case, Finding, Greeting } from "./_model.ts";
import { bounded, codec, RawPeer, Tap, waitFor } from "./_raw.ts";
import { Instruments } from "./_target.ts";

const payloads = defaultPayloadCodec();
const EMPTY = new Uint8Array(0);
/** The live client's connect timeout: bounds a HELLO the raw server never answers. */
const CONNECT_MS = 1000;

interface Accepted {
  conn: Connection;
  control: BidiStream;
  tap: Tap;
  /** Where the client's own calls go once the case's raw peer exists (until then: answered honestly). */
  route: { to?: RawPeer };
}

/** A raw server for the whole run; each case sets how the next connection's HELLO is answered. */
export interface ClientTarget {
  listener: Listener;
  ca: string | undefined;
  next: { greeting: Greeting; accepted: (a: Accepted) => void } | undefined;
  close(): Promise<void>;
}

/** The answer to HELLO a case asked for (nothing for "silent"). */
function greetingFrame(g: Greeting, conn: Connection): Frame | undefined {
  if (g.kind === "goaway") return { type: FrameType.GOAWAY, flags: 0, code: 16, reason: "refused by the fuzzer", payload: EMPTY };
  if (g.kind !== "welcome") return undefined;
  const payload = g.body === "garbage" ? new Uint8Array([0xc1]) : payloads.encode({ caps: g.body === "dgram" ? { dgram: conn.maxDatagramSize } : {} });
  return { type: FrameType.WELCOME, flags: 0, version: g.version, name: "raw-server", payload };
}

/** The client's own calls: REQUEST is echoed back, anything else refused. */
async function serveHonestly(s: BidiStream): Promise<void> {
  const tap = new Tap(s);
  await waitFor(() => tap.frames.length > 0 || tap.resolved, ANSWER_MS);
  const f = tap.frames[0];
  const reply: Frame = f?.type === FrameType.REQUEST
    ? { type: FrameType.RESPONSE, flags: f.flags & 1, metadata: {}, payload: f.payload }
    : { type: FrameType.ERROR, flags: 0, code: 12, message: "the raw server serves calls only", payload: EMPTY };
  await bounded(s.write(codec.encode(reply)).then(() => s.end()).catch(() => {}), ANSWER_MS);
}

export async function startClientTarget(): Promise<ClientTarget> {
  const t: ClientTarget = { listener: undefined as unknown as Listener, ca: undefined, next: undefined, close: () => t.listener.close() };
  t.listener = await bunTransport.listen({ host: "127.0.0.1", port: 0, alpn: ALPN, log: () => {} }, (conn) => {
    const next = t.next;
    t.next = undefined;
    let first = true;
    const route: Accepted["route"] = {};
    conn.handle({
      bidi: (s) => {
        if (!first) return void (route.to ? route.to.answer(s) : serveHonestly(s));
        first = false; // the client's first stream is its control stream
        const tap = new Tap(s);
        (async () => {
          await waitFor(() => tap.frames.length > 0 || tap.resolved, ANSWER_MS);
          const answer = next && tap.frames[0]?.type === FrameType.HELLO ? greetingFrame(next.greeting, conn) : undefined;
          if (answer) await bounded(s.write(codec.encode(answer)).catch(() => {}), ANSWER_MS);
          if (next) next.accepted({ conn, control: s, tap, route });
        })();
      },
      uni: (s) => void new Tap(s).done,
      datagram: () => {},
    });
  });
  t.ca = t.listener.trust.ca;
  return t;
}

/** What connect() must fail with for a greeting that refuses the client. */
const REFUSED: Partial<Record<Greeting["kind"], string>> = { goaway: "UNAUTHENTICATED", silent: "UNAVAILABLE" };

/** Runs case `c` (number `n`) against a fresh live client; returns what went wrong. */
export async function runClientCase(t: ClientTarget, c: Case, n: number, strict = false): Promise<Finding[]> {
  const ins = new Instruments();
  const out: Finding[] = [];
  const g = c.greeting;
  const accepted = new Promise<Accepted>((r) => (t.next = { greeting: g, accepted: r }));
  const { port } = t.listener.address;
  const connecting = RpcClient.connect(`127.0.0.1:${port}`, { ca: t.ca, timeoutMs: CONNECT_MS, onError: ins.onError });
  const got = await bounded(connecting.then((client) => ({ client }), (error) => ({ error })), CONNECT_MS + ANSWER_MS);
  const side = await bounded(accepted, ANSWER_MS);
  if (got === "timeout") return [{ kind: "hang", detail: `connect() did not settle within ${CONNECT_MS + ANSWER_MS} ms` }];
  if ("error" in got) {
    const code = (got.error as RpcError).code;
    const want = g.kind === "welcome" ? "FAILED_PRECONDITION" : REFUSED[g.kind];
    if (!(got.error instanceof RpcError) || code !== want) out.push({ kind: "shape", detail: `connect() failed with ${code ?? got.error}, expected ${want}` });
    if (side !== "timeout") {
      await waitFor(() => side.tap.resolved, ANSWER_MS);
      await side.conn.close(0).catch(() => {});
    }
    return out;
  }
  const client = got.client;
  if (g.kind !== "welcome" || g.version !== 1 || side === "timeout") {
    await client.close().catch(() => {});
    return [{ kind: "shape", detail: `connect() succeeded after ${g.kind}` }];
  }
  client.handle(...ins.definitions());
  const conn = side.conn;
  let closed = false;
  // Closed, seen from either end: the client may have closed it (for a protocol error the raw
  // side's stack made, say) before the raw side has heard.
  const gone = () => closed || client.peer.isClosed;
  let closeInfo = "";
  conn.closed.then((i) => ((closed = true), (closeInfo = ` (closed by the ${i.local ? "raw server" : "client"}: code ${i.code} ${i.reason})`)));
  // A "call" op: the live client calls the raw server, which answers as the op says.
  const calls: Promise<{ v: unknown } | { e: unknown }>[] = [];
  const callRaw = () => client.request("echo", calls.length, { timeoutMs: 500 }).then((v) => ({ v }), (e) => ({ e }));
  const raw = new RawPeer(conn, () => void calls.push(callRaw()));
  side.route.to = raw;
  raw.adoptControl(side.control, side.tap, []);
  raw.handshaken();
  for (const o of c.ops) await raw.play(o);
  const settled = await bounded(Promise.all(calls), 500 + ANSWER_MS);
  if (settled === "timeout") out.push({ kind: "hang", detail: "a call from the live client did not settle within its 500 ms timeout" });
  else {
    for (const r of settled) {
      if ("e" in r && !(r.e instanceof RpcError)) out.push({ kind: "crash", detail: `a call from the live client failed with a non-RpcError: ${(r.e as Error)?.stack ?? r.e}` });
    }
  }
  const datagrams = g.body === "dgram" && conn.maxDatagramSize > 0;
  out.push(...(await evaluate(raw, { handshake: "accepted", datagrams }, gone, (d) => isKnown("unanswered", d, strict))));

  out.push(...(await probeEnded(raw, gone)));
  const live = client.peer;
  out.push(...(await settledWhileConnected("the client's peer", () => live.stats as unknown as Record<string, unknown>, raw, gone)));
  // Honest traffic both ways: it works, or the connection is gone and says so clearly.
  // A GOAWAY from the client on the control stream: it found a protocol error there and closes
  // the connection; it must then close, and no honest call is owed on it.
  const goaway = raw.control?.tap.frames.some((f) => f.type === FrameType.GOAWAY) ?? false;
  if (goaway) {
    await waitFor(gone, 1000);
    if (!gone()) out.push({ kind: "hang", detail: "the client sent GOAWAY on the control stream, yet the connection is open 1000 ms later" });
  }
  if (!gone() && !goaway) {
    const bad = await rawHonestCall(conn, `honest-${n}`);
    if (bad && !gone()) out.push({ kind: "honest", detail: `raw server → client: ${bad}${closeInfo}` });
  }
  let liveClose = "";
  client.peer.closed.then((i) => (liveClose = ` (the client's connection closed: ${i.local ? "locally" : "by the peer"}, code ${i.code} ${i.reason})`));
  const call = await bounded(client.request("echo", `up-${n}`, { timeoutMs: ANSWER_MS }).then((v) => ({ v }), (e) => ({ e })), 2 * ANSWER_MS);
  // UNAVAILABLE while the client is closing the connection (a protocol error it found): the close
  // is under way but may not have been reported yet.
  const unavailable = call !== "timeout" && "e" in call && call.e instanceof RpcError && call.e.code === "UNAVAILABLE";
  if (unavailable) await waitFor(gone, 1000);
  if (call === "timeout") out.push({ kind: "hang", detail: "an honest call from the client did not settle" });
  else if ("e" in call && !(gone() && unavailable)) {
    out.push({ kind: "honest", detail: `client → raw server: ${(call.e as Error)?.message ?? call.e}${closeInfo}${liveClose}` });
  } else if ("v" in call && call.v !== `up-${n}`) out.push({ kind: "honest", detail: `client → raw server answered ${JSON.stringify(call.v)}` });

  const hung = await closeRaw(conn);
  out.push(...hung);
  if (hung.length) await client.close().catch(() => {}); // the raw side could not close: the client does
  await waitFor(() => !client.connected, ANSWER_MS);
  if (client.connected) out.push({ kind: "leak", detail: "the client still reports a connection the raw server closed" });
  await waitFor(() => ins.running === 0, ANSWER_MS);
  if (ins.running !== 0) out.push({ kind: "leak", detail: `${ins.running} client handler(s) still running after the connection ended` });
  const peer = client.peer;
  out.push(...(await countersSettle("the client's peer", () => peer.stats as unknown as Record<string, unknown>)));
  out.push(...(await countersSettle("client.stats()", () => (client as unknown as { stats?: () => Record<string, unknown> }).stats?.())));
  for (const e of ins.unexpectedErrors()) out.push({ kind: "onError", detail: e });
  await bounded(client.close().catch(() => {}), ANSWER_MS);
  return out;
}
