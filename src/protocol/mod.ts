/**
 * The EchoStream wire protocol: frame types, the frame codec (WASM with a TypeScript
 * reference), QUIC varints, limits and the decode error. Exported as
 * `@echostream/core/protocol`; the RPC layer uses it, and tools that read EchoStream traffic can.
 *
 * @example Encode and decode a frame
 * ```ts
 * import { createFrameCodec, FrameType } from "@echostream/core/protocol";
 *
 * const codec = createFrameCodec();
 * const bytes = codec.encode({ type: FrameType.PING, flags: 0, seq: 1, t1: 1000.5 });
 * console.log(codec.decode(bytes)); // { type: 10, flags: 0, seq: 1, t1: 1000.5 }
 * ```
 *
 * @module
 */

export { ALPN, PROTOCOL_VERSION } from "./version.ts";
export { AUTO_CHOICE, type CodecImpl, createFrameCodec, type FrameCodec, type FrameCodecOptions, FrameSplitter } from "./codec.ts";
export { DecodeError, DecodeErrorCode } from "./decode_error.ts";
export {
  type DataFrame,
  type ErrorFrame,
  type EventFrame,
  type Frame,
  FrameFlag,
  FrameType,
  type FrameTypeCode,
  type GoAwayFrame,
  type HelloFrame,
  type Metadata,
  type OpenFrame,
  type PingFrame,
  type PongFrame,
  type RequestFrame,
  type ResponseFrame,
  type WelcomeFrame,
  type WindowFrame,
} from "./frame.ts";
export { DEFAULT_LIMITS, MAX_FRAME_SIZE_CEILING, type ProtocolLimits, resolveLimits } from "./limits.ts";
export { decodeVarint, encodeVarint, VARINT_MAX, varintLength } from "./varint.ts";
export { cborCodec, defaultPayloadCodec, jsonCodec, msgpackCodec, type PayloadCodec, PayloadDecodeError } from "./payload_codec.ts";
export { ErrorCode, errorCodeFromNumber, errorCodeNumber, RpcError } from "./rpc_error.ts";
export { CloseCode } from "./version.ts";
