// Writing frames on a transport stream: large payloads go as their own write (never copied), and
// the GOAWAY-then-close a connection ends with when the other side broke a rule.

import type { FrameCodec } from "../protocol/codec.ts";
import { type Frame, FrameType } from "../protocol/frame.ts";
import { errorCodeNumber, type RpcError } from "../protocol/rpc_error.ts";
import type { Connection, SendStream } from "../transport/types.ts";

/** Payloads above this many bytes are written apart from their header instead of copied into one buffer. */
const LARGE = 4096;

/**
 * Encodes a frame for writing: one buffer, or header and payload apart when the payload is
 * large (so it is not copied). Throws what the codec throws, before anything is written.
 */
export function encodeFrame(codec: FrameCodec, frame: Frame): Uint8Array[] {
  const payload = "payload" in frame ? frame.payload : undefined;
  return payload && payload.length > LARGE ? [codec.encodeHeader(frame), payload] : [codec.encode(frame)];
}

/** Writes the parts `encodeFrame` made, in order. */
export async function writeParts(s: SendStream, parts: Uint8Array[]): Promise<void> {
  for (const part of parts) await s.write(part);
}

/** Writes one frame; large payloads go as a separate write so they are not copied. */
export function writeFrame(s: SendStream, codec: FrameCodec, frame: Frame): Promise<void> {
  return writeParts(s, encodeFrame(codec, frame));
}

/**
 * Tells the peer why on stream `s` (a GOAWAY with `err`'s code and message; `end` ends the stream
 * after it), then closes the connection with `closeCode` once the frame had a moment to arrive (a
 * close sent at once could overtake it), or after 1 s if the write is held by flow control (a peer
 * that does not read its control stream must not keep its connection that way). Resolves once the
 * GOAWAY is written or cannot be.
 */
export async function goAwayAndClose(frames: FrameCodec, conn: Connection, s: SendStream, err: RpcError, closeCode: number, end: boolean): Promise<void> {
  const close = () => void conn.close(closeCode, err.message).catch(() => {});
  const stuck = setTimeout(close, 1000);
  try {
    await s.write(frames.encode({ type: FrameType.GOAWAY, flags: 0, code: errorCodeNumber(err.code), reason: err.message, payload: new Uint8Array(0) }));
    if (end) await s.end();
  } catch { /* gone */ }
  clearTimeout(stuck);
  setTimeout(close, 50);
}
