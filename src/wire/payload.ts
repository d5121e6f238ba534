// A frame's payload and the value it carries: bytes pass untouched (the RAW flag), anything else
// goes through the payload codec.

import { FrameFlag } from "../protocol/frame.ts";
import type { PayloadCodec } from "../protocol/payload_codec.ts";

/** Payload bytes and the RAW flag for a value: bytes pass untouched, anything else is encoded. */
export function encodePayload(value: unknown, codec: PayloadCodec): { flags: number; payload: Uint8Array } {
  if (value instanceof Uint8Array) return { flags: FrameFlag.RAW, payload: value };
  return { flags: 0, payload: codec.encode(value) };
}

/** The value a frame's payload carries. */
export function decodePayload(flags: number, payload: Uint8Array, codec: PayloadCodec): unknown {
  if (flags & FrameFlag.RAW) return payload;
  if (payload.length === 0) return undefined;
  return codec.decode(payload);
}
