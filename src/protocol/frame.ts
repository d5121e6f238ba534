/**
 * Frame types of the EchoStream wire protocol (docs/PROTOCOL.md). A frame is
 * `type:varint flags:varint length:varint body[length]`; the body holds the type's header
 * fields, then the payload.
 *
 * @module
 */

/** Numeric frame type codes as they appear on the wire. */
export const FrameType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  GOAWAY: 0x03,
  REQUEST: 0x04,
  RESPONSE: 0x05,
  ERROR: 0x06,
  EVENT: 0x07,
  OPEN: 0x08,
  DATA: 0x09,
  PING: 0x0a,
  PONG: 0x0b,
  WINDOW: 0x0c,
} as const;

/** A frame type code. */
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

/** Frame flag bits. Their meaning is per type; unknown bits are refused on decode. */
export const FrameFlag = {
  /** The payload is raw bytes, not encoded by the payload codec. Any type with a payload. */
  RAW: 0x01,
  /** REQUEST: idempotent, so it may travel in 0-RTT early data. */
  IDEMPOTENT: 0x02,
  /**
   * REQUEST: the caller may cancel (it has a deadline or a signal): it keeps its half open until
   * answered, and an ERROR frame or the end of its half before that cancels. Without the flag
   * the caller ends its half with the REQUEST.
   */
  CANCELLABLE: 0x04,
  /** DATA: a sequence number is present (set by the encoder from `seq`). */
  SEQ: 0x02,
  /** DATA: a sender timestamp is present (set by the encoder from `timestamp`). */
  TIMESTAMP: 0x04,
  /** DATA: a stream id is present, for datagram mode (set by the encoder from `streamId`). */
  STREAM_ID: 0x08,
  /** DATA: the last frame of this direction of an EchoStream (the payload may be empty). */
  FIN: 0x10,
} as const;

/** String-keyed metadata (request headers, event and stream-open attributes). */
export type Metadata = Record<string, string>;

/** Client → server, first frame on the control stream. The payload carries auth and capabilities. */
export interface HelloFrame {
  type: typeof FrameType.HELLO;
  flags: number;
  /** Protocol version the client speaks. */
  version: number;
  /** Free-form peer name (may be empty). */
  name: string;
  payload: Uint8Array;
}

/** Server → client, accepting a HELLO. */
export interface WelcomeFrame {
  type: typeof FrameType.WELCOME;
  flags: number;
  version: number;
  name: string;
  payload: Uint8Array;
}

/** Either side, on the control stream: the sender is going away (or refuses the handshake). */
export interface GoAwayFrame {
  type: typeof FrameType.GOAWAY;
  flags: number;
  code: number;
  reason: string;
  payload: Uint8Array;
}

/** Opens a call on a new bidirectional stream. */
export interface RequestFrame {
  type: typeof FrameType.REQUEST;
  flags: number;
  method: string;
  /** Milliseconds the caller will wait, counted from receipt; 0 means no deadline. */
  deadlineMs: number;
  metadata: Metadata;
  payload: Uint8Array;
}

/** A call's successful result. */
export interface ResponseFrame {
  type: typeof FrameType.RESPONSE;
  flags: number;
  /** Trailing metadata. */
  metadata: Metadata;
  payload: Uint8Array;
}

/** A call's failure: a stable numeric error code, a message and optional encoded details. */
export interface ErrorFrame {
  type: typeof FrameType.ERROR;
  flags: number;
  code: number;
  message: string;
  payload: Uint8Array;
}

/** A fire-and-forget event on the ordered event lane. */
export interface EventFrame {
  type: typeof FrameType.EVENT;
  flags: number;
  topic: string;
  metadata: Metadata;
  payload: Uint8Array;
}

/** Opens an EchoStream stream; the payload carries the encoded stream options. */
export interface OpenFrame {
  type: typeof FrameType.OPEN;
  flags: number;
  name: string;
  metadata: Metadata;
  payload: Uint8Array;
}

/** Stream data, optionally sequenced and time-stamped (ms on the sender's clock). */
export interface DataFrame {
  type: typeof FrameType.DATA;
  flags: number;
  streamId?: number;
  seq?: number;
  timestamp?: number;
  payload: Uint8Array;
}

/** Clock-sync probe carrying the sender's transmit time t1. */
export interface PingFrame {
  type: typeof FrameType.PING;
  flags: number;
  seq: number;
  t1: number;
}

/** Clock-sync answer: the probe's t1, the receive time t2 and the transmit time t3. */
export interface PongFrame {
  type: typeof FrameType.PONG;
  flags: number;
  seq: number;
  t1: number;
  t2: number;
  t3: number;
}

/** EchoStream flow control: the receiver grants `increment` more payload bytes. */
export interface WindowFrame {
  type: typeof FrameType.WINDOW;
  flags: number;
  increment: number;
}

/** Any EchoStream frame. */
export type Frame =
  | HelloFrame
  | WelcomeFrame
  | GoAwayFrame
  | RequestFrame
  | ResponseFrame
  | ErrorFrame
  | EventFrame
  | OpenFrame
  | DataFrame
  | PingFrame
  | PongFrame
  | WindowFrame;

/** The flag bits each frame type may carry. */
export const ALLOWED_FLAGS: Readonly<Record<number, number>> = Object.freeze({
  [FrameType.HELLO]: FrameFlag.RAW,
  [FrameType.WELCOME]: FrameFlag.RAW,
  [FrameType.GOAWAY]: FrameFlag.RAW,
  [FrameType.REQUEST]: FrameFlag.RAW | FrameFlag.IDEMPOTENT | FrameFlag.CANCELLABLE,
  [FrameType.RESPONSE]: FrameFlag.RAW,
  [FrameType.ERROR]: FrameFlag.RAW,
  [FrameType.EVENT]: FrameFlag.RAW,
  [FrameType.OPEN]: FrameFlag.RAW,
  [FrameType.DATA]: FrameFlag.RAW | FrameFlag.SEQ | FrameFlag.TIMESTAMP | FrameFlag.STREAM_ID | FrameFlag.FIN,
  [FrameType.PING]: 0,
  [FrameType.PONG]: 0,
  [FrameType.WINDOW]: 0,
});

/** The wire flags of a frame: DATA's presence bits follow its optional fields. */
export function wireFlags(frame: Frame): number {
  if (frame.type !== FrameType.DATA) return frame.flags;
  let flags = frame.flags & ~(FrameFlag.SEQ | FrameFlag.TIMESTAMP | FrameFlag.STREAM_ID);
  if (frame.streamId !== undefined) flags |= FrameFlag.STREAM_ID;
  if (frame.seq !== undefined) flags |= FrameFlag.SEQ;
  if (frame.timestamp !== undefined) flags |= FrameFlag.TIMESTAMP;
  return flags;
}
