// Frame constructors for hand-written regression cases: each fuzz finding is replayed as the
// exact frame sequence, spelled the way docs/PROTOCOL.md names the frames.

import { type Frame, FrameFlag, FrameType } from "../../src/protocol/frame.ts";
import { defaultPayloadCodec } from "../../src/protocol/payload_codec.ts";

const payloads = defaultPayloadCodec();
const EMPTY = new Uint8Array(0);

export const F = {
  hello: (version = 1, payload: Uint8Array = payloads.encode({ caps: {} })): Frame => ({ type: FrameType.HELLO, flags: 0, version, name: "regression", payload }),
  request: (method: string, value: unknown, o: { deadlineMs?: number; cancellable?: boolean } = {}): Frame => ({
    type: FrameType.REQUEST,
    flags: o.cancellable ? FrameFlag.CANCELLABLE : 0,
    method,
    deadlineMs: o.deadlineMs ?? 0,
    metadata: {},
    payload: payloads.encode(value),
  }),
  /** A REQUEST whose payload is raw bytes (flag RAW). */
  requestRaw: (method: string, bytes: number[]): Frame => ({ type: FrameType.REQUEST, flags: FrameFlag.RAW, method, deadlineMs: 0, metadata: {}, payload: new Uint8Array(bytes) }),
  open: (name: string): Frame => ({ type: FrameType.OPEN, flags: 0, name, metadata: {}, payload: EMPTY }),
  /** An OPEN with stream options (`{ dg }`: unreliable, `{ ts }`: time-synced). */
  openWith: (name: string, options: unknown): Frame => ({ type: FrameType.OPEN, flags: 0, name, metadata: {}, payload: payloads.encode(options) }),
  data: (bytes: number[] | Uint8Array, fin = false): Frame => ({ type: FrameType.DATA, flags: FrameFlag.RAW | (fin ? FrameFlag.FIN : 0), payload: new Uint8Array(bytes) }),
  window: (increment: number): Frame => ({ type: FrameType.WINDOW, flags: 0, increment }),
  ping: (seq = 1, t1 = 1): Frame => ({ type: FrameType.PING, flags: 0, seq, t1 }),
  pong: (seq = 1): Frame => ({ type: FrameType.PONG, flags: 0, seq, t1: 1, t2: 2, t3: 3 }),
  error: (code: number, message = "x"): Frame => ({ type: FrameType.ERROR, flags: 0, code, message, payload: EMPTY }),
  response: (value: unknown): Frame => ({ type: FrameType.RESPONSE, flags: 0, metadata: {}, payload: payloads.encode(value) }),
  event: (topic: string, value: unknown): Frame => ({ type: FrameType.EVENT, flags: 0, topic, metadata: {}, payload: payloads.encode(value) }),
};

/** Decodes a frame's payload with the default codec. */
export function valueOf(f: Frame | undefined): unknown {
  const p = (f as { payload?: Uint8Array } | undefined)?.payload;
  return p && p.length ? payloads.decode(p) : undefined;
}
