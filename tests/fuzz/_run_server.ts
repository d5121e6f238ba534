// Mode "server": a raw QUIC client plays a case against a live RpcServer, then the checks run:
// every stream owed an answer got one, the connection still serves an honest call, and once the
// raw client has gone the server holds nothing for it and a fresh RpcClient is served normally.

import { type Frame, FrameType } from "../../src/protocol/frame.ts";
import { defaultPayloadCodec } from "../../src/protocol/payload_codec.ts";
import { ALPN } from "../../src/protocol/version.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import type { Peer } from "../../src/rpc/peer.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { bunTransport } from "../../src/transport/bun.ts";
import type { Connection } from "../../src/transport/types.ts";
import { ANSWER_MS, closeRaw, countersSettle, evaluate, probeEnded, LIVE_KEYS, rawHonestCall, settledWhileConnected } from "./_check.ts";
import { isKnown } from "./_known.ts";
import type { Case, Finding, Greeting } from "./_model.ts";
import type { Env } from "./_oracle.ts";
import { RawPeer, Tap, waitFor } from "./_raw.ts";
import { Instruments } from "./_target.ts";

const payloads = defaultPayloadCodec();
/** Short, so cases without HELLO are settled by the server within the answer bound. */
export const HANDSHAKE_TIMEOUT_MS = 800;

/** A live server for the whole run. */
export interface ServerTarget {
  server: RpcServer;
  ins: Instruments;
  host: string;
  port: number;
  ca: string | undefined;
  close(): Promise<void>;
}

export async function startServerTarget(): Promise<ServerTarget> {
  const ins = new Instruments();
  const b = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(ins.onError).limits({ maxFrameSize: 64 * 1024 }).handshakeTimeout(HANDSHAKE_TIMEOUT_MS);
  for (const d of ins.definitions()) b.handler(d);
  const server = b.build();
  await server.start();
  const [host, port] = server.address.split(":");
  return { server, ins, host, port: Number(port), ca: server.trust.ca, close: () => server.close({ graceMs: 0 }) };
}

function helloFrame(g: Extract<Greeting, { kind: "hello" }> | undefined, name: string, conn: Connection): Frame {
  const body = g?.body ?? "ok";
  const payload = body === "garbage" ? new Uint8Array([0xc1]) : payloads.encode({ caps: body === "dgram" ? { dgram: conn.maxDatagramSize } : {} });
  return { type: FrameType.HELLO, flags: 0, version: g?.version ?? 1, name, payload };
}


/** A fresh, honest RpcClient: a call and a stream round trip. */
export async function honestClient(t: ServerTarget, n: number): Promise<string | undefined> {
  let client: RpcClient | undefined;
  try {
    client = await RpcClient.connect(`${t.host}:${t.port}`, { ca: t.ca, clockSync: false, timeoutMs: ANSWER_MS });
    const v = await client.request("echo", `fresh-${n}`, { timeoutMs: ANSWER_MS });
    if (v !== `fresh-${n}`) return `echo answered ${JSON.stringify(v)}`;
    const s = await client.createStream("echo");
    await s.send(new Uint8Array([n & 0xff]));
    const back = await s.recv();
    await s.end();
    if (back?.[0] !== (n & 0xff)) return "stream echo lost its frame";
    return undefined;
  } catch (e) {
    return `a fresh client failed: ${(e as Error).message}`;
  } finally {
    await client?.close().catch(() => {});
  }
}

/** Runs case `c` (number `n`) against the live server; returns what went wrong. */
export async function runServerCase(t: ServerTarget, c: Case, n: number, strict = false): Promise<Finding[]> {
  const name = `fuzz-${n}`;
  t.ins.errors.length = 0;
  const stats = () => (t.server as unknown as { stats?: () => Record<string, unknown> }).stats?.();
  const base = stats();
  const conn = await bunTransport.connect({ host: t.host, port: t.port, alpn: ALPN, tls: { ca: t.ca } });
  let closed = false;
  conn.closed.then(() => (closed = true));
  // A "call" op: REQUEST "cb" makes the server call back into the raw client, which answers it
  // as the op says.
  const raw: RawPeer = new RawPeer(conn, () => raw.play({ op: "start", slot: 8, frames: [{ type: FrameType.REQUEST, flags: 0, method: "cb", deadlineMs: 0, metadata: {}, payload: payloads.encode(null) }] }));
  conn.handle({ bidi: (s) => void raw.answer(s), uni: (s) => void new Tap(s).done, datagram: () => {} });
  const g = c.greeting;
  const out: Finding[] = [];
  let peer: Peer | undefined;
  let handshake: Env["handshake"] = "none";

  const greet = async () => {
    const rec = await raw.startIn(9, [helloFrame(g.kind === "hello" ? g : undefined, name, conn)]);
    if (!rec) return;
    await waitFor(() => rec.tap.frames.length > 0 || rec.tap.resolved || closed, ANSWER_MS);
    const first = rec.tap.frames[0];
    if (first?.type === FrameType.WELCOME) {
      handshake = "accepted";
      raw.control = rec;
      raw.handshaken();
      peer = t.server.peers.find((p) => p.name === name);
    } else if (first?.type === FrameType.GOAWAY || closed) {
      handshake = "refused";
      raw.control = rec;
    } else if (!first && !rec.tap.resolved) {
      out.push({ kind: "hang", detail: `HELLO not answered within ${ANSWER_MS} ms` });
    } // else: an ERROR, as a second HELLO deserves (the ops sent the first)
  };

  const half = g.kind === "late" ? Math.ceil(c.ops.length / 2) : 0;
  if (g.kind === "hello") await greet();
  for (let i = 0; i < c.ops.length; i++) {
    if (g.kind === "late" && i === half) await greet();
    await raw.play(c.ops[i]);
  }
  if (g.kind === "late" && half >= c.ops.length) await greet();
  // A HELLO may also come from the ops (a stream whose first frame is HELLO): the stream the
  // server answered with WELCOME or GOAWAY is the control stream, whoever opened it.
  const answered = () => raw.records.find((r) => r.sent[0]?.type === FrameType.HELLO && [FrameType.WELCOME, FrameType.GOAWAY].includes(r.tap.frames[0]?.type as never));
  // No HELLO: with an odd number of ops the raw client leaves first (the server must count the
  // half-open connection out at once), else it waits for the server's handshake timeout.
  const leaveFirst = g.kind === "never" && c.ops.length % 2 === 1 && !raw.records.some((r) => r.sent[0]?.type === FrameType.HELLO);
  if (leaveFirst) out.push(...(await closeRaw(conn)));
  if (handshake === "none" && !leaveFirst) {
    const sentHello = raw.records.some((r) => r.sent[0]?.type === FrameType.HELLO);
    // Without HELLO the server owes a close at its handshake timeout, which ends every stream.
    const wait = sentHello ? ANSWER_MS : HANDSHAKE_TIMEOUT_MS + ANSWER_MS;
    await waitFor(() => closed || answered() !== undefined, wait);
    const rec = answered();
    if (rec) {
      raw.control = rec;
      handshake = rec.tap.frames[0].type === FrameType.WELCOME ? "accepted" : "refused";
      const hello = rec.sent[0] as Extract<Frame, { type: typeof FrameType.HELLO }>;
      if (handshake === "accepted") peer = t.server.peers.find((p) => p.name === hello.name);
    } else if (!closed) {
      out.push({ kind: "hang", detail: `${sentHello ? "HELLO not answered" : "no HELLO, yet the connection is open"} ${wait} ms later` });
    }
  }
  const datagrams = g.kind === "hello" && g.body === "dgram" && conn.maxDatagramSize > 0;
  out.push(...(await evaluate(raw, { handshake, datagrams }, () => closed, (d) => isKnown("unanswered", d, strict))));

  if (handshake === "accepted") out.push(...(await probeEnded(raw, () => closed)));
  if (peer && !closed) {
    const p = peer;
    out.push(...(await settledWhileConnected("the raw client's peer", () => p.stats as unknown as Record<string, unknown>, raw, () => closed)));
  }
  // A GOAWAY on the control stream after WELCOME: the server found a control-stream violation
  // and closes the connection; it must then close, and no honest call is owed on it.
  const goaway = raw.control?.tap.frames.slice(1).some((f) => f.type === FrameType.GOAWAY) ?? false;
  if (goaway) {
    await waitFor(() => closed, 1000);
    if (!closed) out.push({ kind: "hang", detail: "the server sent GOAWAY on the control stream, yet the connection is open 1000 ms later" });
  }
  if (handshake === "accepted" && !closed && !goaway) {
    const bad = await rawHonestCall(conn, `honest-${n}`);
    if (bad && !closed) out.push({ kind: "honest", detail: `same connection: ${bad}` });
  }
  const hung = await closeRaw(conn);
  out.push(...hung);

  // Everything held for the raw client must go with it (unless its close hung: then it is here).
  if (peer && !hung.length) {
    await waitFor(() => !t.server.peers.includes(peer!), ANSWER_MS);
    if (t.server.peers.includes(peer)) out.push({ kind: "leak", detail: "the server still lists the raw client's peer" });
    const p = peer;
    out.push(...(await countersSettle("the raw client's peer", () => p.stats as unknown as Record<string, unknown>)));
  }
  await waitFor(() => t.ins.running === 0, ANSWER_MS);
  if (t.ins.running !== 0) out.push({ kind: "leak", detail: `${t.ins.running} server handler(s) still running after the raw client left` });
  // A raw connection whose own close hung is still up: the server is right to count it.
  const lingering = await countersSettle("server.stats()", stats, [...LIVE_KEYS, ...(hung.length ? [] : ["connections"]), "handshaking"], base);
  for (const f of lingering) f.detail += `; peers: ${t.server.peers.map((p) => `${p.name} ${JSON.stringify(p.stats)}`).join("; ")}`;
  out.push(...lingering);
  for (const e of t.ins.unexpectedErrors()) out.push({ kind: "onError", detail: e });

  const fresh = await honestClient(t, n);
  if (fresh) out.push({ kind: "honest", detail: fresh });
  return out;
}
