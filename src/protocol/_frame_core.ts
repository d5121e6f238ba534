// What both codec implementations share: the interface a core implements, the one function that
// turns decoded fields into Frame objects, and the argument checks done before encoding.

import { DecodeErrorCode } from "./decode_error.ts";
import { type Frame, FrameType, type Metadata } from "./frame.ts";
import type { ProtocolLimits } from "./limits.ts";
import { EMPTY_METADATA } from "./_utf8.ts";

/** Where a scan stopped: `need` is 0 at a boundary, -1 for an incomplete prefix, else the next frame's size. */
export interface ScanResult {
  consumed: number;
  need: number;
}

/** One codec implementation (WASM or plain TypeScript) with fixed limits. */
export interface FrameCore {
  readonly impl: "wasm" | "ts";
  readonly limits: Readonly<ProtocolLimits>;
  /** Appends every complete frame in `buf` to `out`; DecodeError offsets are relative to `buf`. */
  scan(buf: Uint8Array, out: Frame[]): ScanResult;
  /** Decodes exactly one frame. */
  decode(buf: Uint8Array): Frame;
  /** Header bytes for `frame`, whose length field counts `frame.payload`. */
  encodeHeader(frame: Frame): Uint8Array;
  /** Header and payload in one buffer. */
  encode(frame: Frame): Uint8Array;
  /** Many frames back to back in one buffer. */
  encodeMany(frames: readonly Frame[]): Uint8Array;
}

export const EMPTY_PAYLOAD: Uint8Array = new Uint8Array(0);

/** Builds the Frame object for decoded fields. `payload` is a view of the caller's bytes. */
export function makeFrame(
  ty: number,
  flags: number,
  str: string,
  n1: number,
  n2: number,
  t1: number,
  t2: number,
  t3: number,
  metadata: Metadata,
  payload: Uint8Array,
): Frame {
  switch (ty) {
    case FrameType.HELLO:
      return { type: FrameType.HELLO, flags, version: n1, name: str, payload };
    case FrameType.WELCOME:
      return { type: FrameType.WELCOME, flags, version: n1, name: str, payload };
    case FrameType.GOAWAY:
      return { type: FrameType.GOAWAY, flags, code: n1, reason: str, payload };
    case FrameType.REQUEST:
      return { type: FrameType.REQUEST, flags, method: str, deadlineMs: n1, metadata, payload };
    case FrameType.RESPONSE:
      return { type: FrameType.RESPONSE, flags, metadata, payload };
    case FrameType.ERROR:
      return { type: FrameType.ERROR, flags, code: n1, message: str, payload };
    case FrameType.EVENT:
      return { type: FrameType.EVENT, flags, topic: str, metadata, payload };
    case FrameType.OPEN:
      return { type: FrameType.OPEN, flags, name: str, metadata, payload };
    case FrameType.DATA: {
      const f: Frame = { type: FrameType.DATA, flags, payload };
      if (flags & 0x08) f.streamId = n1;
      if (flags & 0x02) f.seq = n2;
      if (flags & 0x04) f.timestamp = t1;
      return f;
    }
    case FrameType.PING:
      return { type: FrameType.PING, flags, seq: n1, t1 };
    case FrameType.WINDOW:
      return { type: FrameType.WINDOW, flags, increment: n1 };
    default:
      return { type: FrameType.PONG, flags, seq: n1, t1, t2, t3 };
  }
}

/** The fields of a frame as the cores take them. */
export interface FrameFields {
  str: string;
  n1: number;
  n2: number;
  t1: number;
  t2: number;
  t3: number;
  metadata: Metadata;
  payload: Uint8Array;
}

/** Flattens a Frame into core fields; a value of the wrong JavaScript type is a TypeError. */
export function frameFields(frame: Frame): FrameFields {
  const f: FrameFields = { str: "", n1: 0, n2: 0, t1: 0, t2: 0, t3: 0, metadata: EMPTY_METADATA, payload: EMPTY_PAYLOAD };
  switch (frame.type) {
    case FrameType.HELLO:
    case FrameType.WELCOME:
      f.n1 = frame.version;
      f.str = frame.name;
      break;
    case FrameType.GOAWAY:
      f.n1 = frame.code;
      f.str = frame.reason;
      break;
    case FrameType.ERROR:
      f.n1 = frame.code;
      f.str = frame.message;
      break;
    case FrameType.REQUEST:
      f.str = frame.method;
      f.n1 = frame.deadlineMs;
      f.metadata = frame.metadata;
      break;
    case FrameType.RESPONSE:
      f.metadata = frame.metadata;
      break;
    case FrameType.EVENT:
      f.str = frame.topic;
      f.metadata = frame.metadata;
      break;
    case FrameType.OPEN:
      f.str = frame.name;
      f.metadata = frame.metadata;
      break;
    case FrameType.DATA:
      f.n1 = frame.streamId ?? 0;
      f.n2 = frame.seq ?? 0;
      f.t1 = frame.timestamp ?? 0;
      break;
    case FrameType.PING:
      f.n1 = frame.seq;
      f.t1 = frame.t1;
      break;
    case FrameType.WINDOW:
      f.n1 = frame.increment;
      break;
    case FrameType.PONG:
      f.n1 = frame.seq;
      f.t1 = frame.t1;
      f.t2 = frame.t2;
      f.t3 = frame.t3;
      break;
    default:
      throw new TypeError(`cannot encode frame: unknown frame type ${String((frame as { type: unknown }).type)}`);
  }
  if ("payload" in frame) f.payload = frame.payload ?? EMPTY_PAYLOAD;
  if (!(f.payload instanceof Uint8Array)) {
    throw new TypeError(`cannot encode frame: payload must be a Uint8Array, received ${typeof f.payload}`);
  }
  if (typeof f.str !== "string") {
    throw new TypeError(`cannot encode frame: expected a string field, received ${typeof f.str}`);
  }
  if (typeof f.n1 !== "number" || typeof f.n2 !== "number") {
    throw new TypeError(`cannot encode frame: expected number fields, received ${typeof f.n1} and ${typeof f.n2}`);
  }
  if (typeof f.t1 !== "number" || typeof f.t2 !== "number" || typeof f.t3 !== "number") {
    throw new TypeError("cannot encode frame: timestamps must be numbers");
  }
  if (!Number.isSafeInteger(f.n1) || f.n1 < 0 || !Number.isSafeInteger(f.n2) || f.n2 < 0) {
    throw encodeError(DecodeErrorCode.VALUE_RANGE, frame);
  }
  if (typeof f.metadata !== "object" || f.metadata === null) {
    throw new TypeError("cannot encode frame: metadata must be an object of strings");
  }
  if (f.metadata !== EMPTY_METADATA) {
    for (const k in f.metadata) {
      if (typeof f.metadata[k] !== "string") {
        throw new TypeError(
          `cannot encode frame: metadata value for "${k}" must be a string, received ${typeof f.metadata[k]}`,
        );
      }
    }
  }
  return f;
}

const ENCODE_MESSAGES: Partial<Record<DecodeErrorCode, string>> = {
  FRAME_TOO_LARGE: "frame larger than maxFrameSize",
  UNKNOWN_TYPE: "unknown frame type",
  UNKNOWN_FLAGS: "flag bits not defined for this frame type",
  NAME_TOO_LONG: "name longer than maxNameLength",
  METADATA_LIMIT: "metadata over maxMetadataEntries or maxMetadataBytes",
  INVALID_VALUE: "empty name, empty metadata key or non-finite timestamp",
  VALUE_RANGE: "integer field negative, fractional or above 2^53 - 1",
  TRAILING_BYTES: "PING, PONG and WINDOW carry no payload",
};

/** The error both encoders raise for a frame the limits or the layout refuse. */
export function encodeError(code: DecodeErrorCode, frame: Frame): RangeError {
  return new RangeError(`cannot encode frame of type ${frame.type}: ${ENCODE_MESSAGES[code] ?? code}`);
}
