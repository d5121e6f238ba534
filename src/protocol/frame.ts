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
  /**
   * REQUEST: the caller keeps this stream for its next call. The callee answers without ending
   * its half and then reads the next REQUEST on the stream (or its end); the caller's half stays
   * open as for {@link FrameFlag.CANCELLABLE}, so ending it or an ERROR frame before the answer
   * cancels. One call at a time per stream: the next REQUEST follows the answer, never overtakes it.
   */
  REUSE: 0x08,
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
  /** Always {@link FrameType.HELLO}. */
  type: typeof FrameType.HELLO;
  /** Flag bits: only {@link FrameFlag.RAW} applies. */
  flags: number;
  /** Protocol version the client speaks. */
  version: number;
  /** Free-form peer name (may be empty). */
  name: string;
  /** `{ auth, caps }` in the payload codec: the client's credentials and capabilities. */
  payload: Uint8Array;
}

/** Server → client, accepting a HELLO. */
export interface WelcomeFrame {
  /** Always {@link FrameType.WELCOME}. */
  type: typeof FrameType.WELCOME;
  /** Flag bits: only {@link FrameFlag.RAW} applies. */
  flags: number;
  /** Protocol version the server speaks (the one the connection uses). */
  version: number;
  /** Free-form server name (may be empty). */
  name: string;
  /** `{ caps }` in the payload codec: the server's capabilities. */
  payload: Uint8Array;
}

/** Either side, on the control stream: the sender is going away (or refuses the handshake). */
export interface GoAwayFrame {
  /** Always {@link FrameType.GOAWAY}. */
  type: typeof FrameType.GOAWAY;
  /** Flag bits: only {@link FrameFlag.RAW} applies. */
  flags: number;
  /** Why, as a numeric error code (the gRPC numbers: `ErrorCode` names them). */
  code: number;
  /** Human-readable reason (may be empty). */
  reason: string;
  /** Encoded details (payload codec); empty for none. */
  payload: Uint8Array;
}

/** Opens a call on a new bidirectional stream. */
export interface RequestFrame {
  /** Always {@link FrameType.REQUEST}. */
  type: typeof FrameType.REQUEST;
  /** Flag bits: {@link FrameFlag.RAW}, {@link FrameFlag.IDEMPOTENT}, {@link FrameFlag.CANCELLABLE}, {@link FrameFlag.REUSE}. */
  flags: number;
  /** Method name: non-empty, at most `maxNameLength` bytes. */
  method: string;
  /** Milliseconds the caller will wait, counted from receipt; 0 means no deadline. */
  deadlineMs: number;
  /** Request headers. */
  metadata: Metadata;
  /** The argument: one value in the payload codec, or raw bytes with {@link FrameFlag.RAW}. */
  payload: Uint8Array;
}

/** A call's successful result. */
export interface ResponseFrame {
  /** Always {@link FrameType.RESPONSE}. */
  type: typeof FrameType.RESPONSE;
  /** Flag bits: only {@link FrameFlag.RAW} applies. */
  flags: number;
  /** Trailing metadata. */
  metadata: Metadata;
  /** The result: one value in the payload codec, or raw bytes with {@link FrameFlag.RAW}. */
  payload: Uint8Array;
}

/** A call's failure: a stable numeric error code, a message and optional encoded details. */
export interface ErrorFrame {
  /** Always {@link FrameType.ERROR}. */
  type: typeof FrameType.ERROR;
  /** Flag bits: only {@link FrameFlag.RAW} applies. */
  flags: number;
  /** Numeric error code (the gRPC numbers: `ErrorCode` names them). */
  code: number;
  /** What went wrong. */
  message: string;
  /** Encoded `details` (payload codec); empty for none. */
  payload: Uint8Array;
}

/** A fire-and-forget event on the ordered event lane. */
export interface EventFrame {
  /** Always {@link FrameType.EVENT}. */
  type: typeof FrameType.EVENT;
  /** Flag bits: only {@link FrameFlag.RAW} applies. */
  flags: number;
  /** Event topic: non-empty, at most `maxNameLength` bytes. */
  topic: string;
  /** Event attributes. */
  metadata: Metadata;
  /** The event's value: one value in the payload codec, or raw bytes with {@link FrameFlag.RAW}. */
  payload: Uint8Array;
}

/** Opens an EchoStream stream; the payload carries the encoded stream options. */
export interface OpenFrame {
  /** Always {@link FrameType.OPEN}. */
  type: typeof FrameType.OPEN;
  /** Flag bits: only {@link FrameFlag.RAW} applies. */
  flags: number;
  /** Stream name: non-empty, at most `maxNameLength` bytes. */
  name: string;
  /** Stream attributes. */
  metadata: Metadata;
  /** Empty for a plain stream, else `{ ts?, dg? }` in the payload codec (docs/PROTOCOL.md). */
  payload: Uint8Array;
}

/** Stream data, optionally sequenced and time-stamped (ms on the sender's clock). */
export interface DataFrame {
  /** Always {@link FrameType.DATA}. */
  type: typeof FrameType.DATA;
  /**
   * Flag bits: {@link FrameFlag.RAW} and {@link FrameFlag.FIN}; the encoder sets SEQ, TIMESTAMP
   * and STREAM_ID itself from the fields present.
   */
  flags: number;
  /** Stream id in datagram mode (the OPEN's `dg`); absent on a QUIC stream. */
  streamId?: number;
  /** Sender's sequence number (time-synced and datagram streams). */
  seq?: number;
  /** Sender's timestamp, ms on its own clock (f64 on the wire; time-synced streams). */
  timestamp?: number;
  /** The frame's bytes (may be empty with {@link FrameFlag.FIN}). */
  payload: Uint8Array;
}

/** Clock-sync probe carrying the sender's transmit time t1. */
export interface PingFrame {
  /** Always {@link FrameType.PING}. */
  type: typeof FrameType.PING;
  /** Flag bits: none are defined, so 0. */
  flags: number;
  /** Probe number, echoed in the PONG. */
  seq: number;
  /** Sender's clock when the PING left, ms on the Unix epoch. */
  t1: number;
}

/** Clock-sync answer: the probe's t1, the receive time t2 and the transmit time t3. */
export interface PongFrame {
  /** Always {@link FrameType.PONG}. */
  type: typeof FrameType.PONG;
  /** Flag bits: none are defined, so 0. */
  flags: number;
  /** The PING's `seq`. */
  seq: number;
  /** The PING's `t1`, echoed. */
  t1: number;
  /** Answerer's clock when the PING arrived, ms on the Unix epoch. */
  t2: number;
  /** Answerer's clock just before the PONG left, ms on the Unix epoch. */
  t3: number;
}

/** EchoStream flow control: the receiver grants `increment` more payload bytes. */
export interface WindowFrame {
  /** Always {@link FrameType.WINDOW}. */
  type: typeof FrameType.WINDOW;
  /** Flag bits: none are defined, so 0. */
  flags: number;
  /** Bytes of DATA payload granted to the sender, on top of what it had. */
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
  [FrameType.REQUEST]: FrameFlag.RAW | FrameFlag.IDEMPOTENT | FrameFlag.CANCELLABLE | FrameFlag.REUSE,
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
