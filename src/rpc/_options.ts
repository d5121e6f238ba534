// Parsing and defaults shared by RpcServer and RpcClient.

import { logger } from "../observe/log.ts";
import { createFrameCodec, type FrameCodec } from "../protocol/codec.ts";
import { defaultPayloadCodec, type PayloadCodec } from "../protocol/payload_codec.ts";
import type { ProtocolLimits } from "../protocol/limits.ts";

/** Parses "host:port", "[v6]:port" or a `{ host, port }`. */
export function parseAddress(addr: string | { host: string; port: number }, what: string): { host: string; port: number } {
  if (typeof addr === "object" && addr !== null) {
    if (typeof addr.host !== "string" || !Number.isInteger(addr.port) || addr.port < 0 || addr.port > 65535) {
      throw new TypeError(`${what}: expected { host, port } with a port from 0 to 65535`);
    }
    return { host: addr.host, port: addr.port };
  }
  const m = typeof addr === "string" ? /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(addr) : null;
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new TypeError(`${what}: expected "host:port" (IPv6 as "[::1]:5000"), received ${JSON.stringify(addr)}`);
  return { host: m[1] ?? m[2], port };
}

/** Formats an address as "host:port". */
export function formatAddress(a: { host: string; port: number }): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** The codecs a peer uses. */
export function codecs(opts: { payloadCodec?: PayloadCodec; limits?: Partial<ProtocolLimits> }): { frames: FrameCodec; payload: PayloadCodec } {
  return { frames: createFrameCodec({ limits: opts.limits }), payload: opts.payloadCodec ?? defaultPayloadCodec() };
}

/**
 * The default error sink: handler failures are logged (category ["echostream", "rpc"], level
 * error, with the error and its stack), never sent to the peer.
 */
export function defaultOnError(error: unknown, where: string): void {
  logger("rpc").error("error in {where}: {error}", { where, error });
}
