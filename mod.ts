/**
 * EchoStream: asynchronous, bidirectional RPC and real-time streaming over QUIC, for Deno and
 * Bun (Node supported).
 *
 * This release holds the foundation: the wire protocol's frame codec, with its hot paths in a
 * Rust crate compiled to WebAssembly. The RPC layer (`RpcServer`, `RpcClient`, `handler`, …)
 * lands on top of it; see README.md for the roadmap.
 *
 * @example Round-trip a frame
 * ```ts
 * import { createFrameCodec, FrameType } from "@echostream/core";
 *
 * const codec = createFrameCodec();
 * const frame = codec.decode(codec.encode({
 *   type: FrameType.EVENT, flags: 0, topic: "audio.stopped", metadata: {}, payload: new Uint8Array([0xc0]),
 * }));
 * console.log(frame); // { type: 7, flags: 0, topic: "audio.stopped", metadata: {}, payload: Uint8Array(1) [ 192 ] }
 * ```
 *
 * @module
 */

export {
  ALPN,
  createFrameCodec,
  DecodeError,
  DecodeErrorCode,
  DEFAULT_LIMITS,
  type Frame,
  type FrameCodec,
  type FrameCodecOptions,
  FrameFlag,
  FrameSplitter,
  FrameType,
  type Metadata,
  PROTOCOL_VERSION,
  type ProtocolLimits,
} from "./src/protocol/mod.ts";
