// What the attackers share: a raw QUIC connection from the runtime's own stack (defaultTransport)
// that does HELLO/WELCOME by hand and then writes whatever frames (or bytes) it likes; bounded
// waits; reading the attacker's config from stdin and printing its result. Runs on Bun and Deno.

import { createFrameCodec } from "../../src/protocol/codec.ts";
import { type Frame, FrameFlag, FrameType } from "../../src/protocol/frame.ts";
import { defaultPayloadCodec } from "../../src/protocol/payload_codec.ts";
import { errorCodeFromNumber } from "../../src/protocol/rpc_error.ts";
import { ALPN, PROTOCOL_VERSION } from "../../src/protocol/version.ts";
import { defaultTransport } from "../../src/transport/select.ts";
import type { BidiStream, CloseInfo, Connection, IncomingHandlers, RecvStream } from "../../src/transport/types.ts";

export { runtime } from "../reliability/churn_common.ts";
import { exit, stdinJson } from "../reliability/churn_common.ts";
import { bounded, sleep } from "../fuzz/_wait.ts";
import { F } from "../fuzz/_frames.ts";

/** The attacker's codec: it may write frames as large as it likes (the server's limit is the test). */
export const codec = createFrameCodec({ limits: { maxFrameSize: 16 * 1024 * 1024 } });
export const payloads = defaultPayloadCodec();

/** What every attacker is given on stdin. */
export interface AttackInput<P = Record<string, unknown>> {
  address: string;
  ca: string;
  params: P;
}

export { bounded, sleep };

/** Reads the attacker's input, runs `main`, prints its result as one JSON line and exits. */
export async function attack<P, R>(main: (input: AttackInput<P>) => Promise<R>): Promise<never> {
  const input = await stdinJson<AttackInput<P>>();
  const t0 = performance.now();
  let out: Record<string, unknown>;
  try {
    out = { ok: true, ...(await main(input)), elapsedMs: Math.round(performance.now() - t0) };
  } catch (e) {
    out = {
      ok: false,
      error: String((e as Error)?.stack ?? e).slice(0, 2000),
      elapsedMs: Math.round(performance.now() - t0),
    };
  }
  console.log(JSON.stringify(out));
  return exit(0);
}

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(":");
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** A raw QUIC connection to the server, without HELLO. */
export async function rawQuic(address: string, ca: string, handshakeTimeoutMs = 5000): Promise<Connection> {
  const t = await defaultTransport();
  return await t.connect({ ...splitAddress(address), alpn: ALPN, tls: { ca }, handshakeTimeoutMs });
}

/** A raw client past HELLO/WELCOME. */
export interface RawPeer {
  conn: Connection;
  control: BidiStream;
  /** Frames the server sent on the control stream after WELCOME (GOAWAY, PING…). */
  controlFrames: Frame[];
  /** Set once the connection has ended. */
  closedInfo: CloseInfo | undefined;
  closed: Promise<CloseInfo>;
}

/** Reads every frame of `s` into `into` (in the background); resolves at its end or failure. */
export async function collect(s: RecvStream, into: Frame[]): Promise<"fin" | "error"> {
  const splitter = codec.splitter();
  try {
    for await (const chunk of s) into.push(...splitter.push(chunk));
    return "fin";
  } catch {
    return "error";
  }
}

/** Drains a stream, discarding what it carries. */
export async function drain(s: RecvStream): Promise<void> {
  try {
    for await (const _ of s) { /* discard */ }
  } catch { /* ended */ }
}

/**
 * Connects and completes HELLO/WELCOME by hand. `handlers` take what the server opens (its event
 * lane is a uni stream): by default everything is drained.
 * @throws {Error} When the server does not answer WELCOME within `timeoutMs`.
 */
export async function rawPeer(
  address: string,
  ca: string,
  opts: { name?: string; handlers?: IncomingHandlers; timeoutMs?: number } = {},
): Promise<RawPeer> {
  const conn = await rawQuic(address, ca);
  const peer: RawPeer = {
    conn,
    control: undefined as unknown as BidiStream,
    controlFrames: [],
    closedInfo: undefined,
    closed: conn.closed,
  };
  conn.closed.then((i) => (peer.closedInfo = i));
  conn.handle(
    opts.handlers ?? {
      bidi: (s) => void drain(s).then(() => s.end().catch(() => {})),
      uni: (s) => void drain(s),
      datagram: () => {},
    },
  );
  const h = await hello(conn, opts.name ?? "attacker", opts.timeoutMs ?? 5000);
  if (h.answer?.type !== FrameType.WELCOME) {
    await conn.close(0, "no welcome").catch(() => {});
    throw new Error(
      `no WELCOME: ${
        h.answer
          ? `frame type ${h.answer.type}`
          : peer.closedInfo
          ? `closed ${JSON.stringify(peer.closedInfo)}`
          : "timeout"
      }`,
    );
  }
  peer.control = h.control;
  // The rest of the control stream: GOAWAY, and the server's clock PINGs (left unanswered).
  peer.controlFrames = h.frames;
  return peer;
}

/**
 * Sends HELLO on a new control stream of `conn` and waits up to `timeoutMs` for the answer (the
 * first frame back, taken off `frames`, which keeps collecting the control stream after it).
 */
export async function hello(
  conn: Connection,
  name: string,
  timeoutMs: number,
): Promise<{ control: BidiStream; answer: Frame | undefined; frames: Frame[] }> {
  let closed = false;
  conn.closed.then(() => (closed = true));
  const control = await conn.openBidi();
  const frames: Frame[] = [];
  void collect(control, frames);
  await control.write(
    codec.encode({
      type: FrameType.HELLO,
      flags: 0,
      version: PROTOCOL_VERSION,
      name,
      payload: payloads.encode({ caps: {} }),
    }),
  );
  const until = performance.now() + timeoutMs;
  while (frames.length === 0 && !closed && performance.now() < until) await sleep(2);
  return { control, answer: frames.shift(), frames };
}

/** What a raw call got back. */
export interface RawAnswer {
  kind: "response" | "error" | "fin" | "reset" | "timeout";
  code?: string;
  message?: string;
  value?: unknown;
  details?: unknown;
}

/** The first frame of an answer, as a RawAnswer. */
export function answerOf(f: Frame | undefined, end: "fin" | "error" | "timeout"): RawAnswer {
  if (f?.type === FrameType.RESPONSE) {
    return {
      kind: "response",
      value: f.flags & FrameFlag.RAW ? f.payload : f.payload.length ? payloads.decode(f.payload) : undefined,
    };
  }
  if (f?.type === FrameType.ERROR) {
    return {
      kind: "error",
      code: errorCodeFromNumber(f.code),
      message: f.message,
      details: f.payload.length ? payloads.decode(f.payload) : undefined,
    };
  }
  return { kind: end === "timeout" ? "timeout" : end === "fin" ? "fin" : "reset" };
}

/** Writes `bytes` on a new stream, ends it (unless `keepOpen`), and waits up to `timeoutMs` for the first frame back. */
export async function rawExchange(
  conn: Connection,
  bytes: Uint8Array,
  timeoutMs = 3000,
  keepOpen = false,
): Promise<RawAnswer> {
  const s = await bounded(conn.openBidi(), timeoutMs);
  if (s === "timeout") return { kind: "timeout", message: "no stream slot" };
  const frames: Frame[] = [];
  const done = collect(s, frames);
  const wrote = await bounded(s.write(bytes).then(() => true, () => false), timeoutMs);
  if (!keepOpen && wrote === true) s.end().catch(() => {});
  const until = performance.now() + timeoutMs;
  let end: "fin" | "error" | "timeout" = "timeout";
  done.then((e) => (end = e));
  while (frames.length === 0 && end === "timeout" && performance.now() < until) await sleep(2);
  if (keepOpen) s.end().catch(() => {});
  return answerOf(frames[0], end);
}

/** A REQUEST frame, encoded. */
export function requestBytes(
  method: string,
  value: unknown,
  opts: { cancellable?: boolean; deadlineMs?: number } = {},
): Uint8Array {
  return codec.encode(F.request(method, value, opts));
}

/** Calls `method` on a raw connection. */
export function rawCall(conn: Connection, method: string, value: unknown, timeoutMs = 3000): Promise<RawAnswer> {
  return rawExchange(conn, requestBytes(method, value), timeoutMs);
}

/** Whether the GOAWAY frames the server sent on the control stream include one. */
export function goAways(peer: RawPeer): { code: string; reason: string }[] {
  return peer.controlFrames.filter((f) => f.type === FrameType.GOAWAY).map((f) => ({
    code: errorCodeFromNumber((f as { code: number }).code),
    reason: (f as { reason: string }).reason,
  }));
}

/** Waits up to `ms` for the connection to close; its CloseInfo, or undefined. */
export async function closedWithin(peer: RawPeer | Connection, ms: number): Promise<CloseInfo | undefined> {
  const r = await bounded(peer.closed, ms);
  return r === "timeout" ? undefined : r;
}
