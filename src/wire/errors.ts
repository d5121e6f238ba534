// The one conversion from what a transport operation threw to the RpcError the application sees
// (toRpcError), and from how a connection closed to the error of what it ends (closeError). Every
// layer above the transport (streams, calls, events, the handshake, connecting) goes through them,
// so a transport failure reads the same whichever API met it.

import { ErrorCode, RpcError } from "../protocol/rpc_error.ts";
import { TransportError, type TransportErrorCode } from "../transport/transport_error.ts";
import type { CloseInfo } from "../transport/types.ts";
import { CloseCode } from "../protocol/version.ts";

/** The RpcError code for a TransportError code. */
function codeFor(code: TransportErrorCode): ErrorCode {
  switch (code) {
    // The other side gave up on the stream (a cancel): not a failure of the connection.
    case "STREAM_RESET":
    case "STOP_SENDING":
      return ErrorCode.CANCELLED;
    // Only connecting raises these two.
    case "TLS_VERIFICATION":
      return ErrorCode.UNAUTHENTICATED;
    case "INVALID_ARGUMENT":
      return ErrorCode.INVALID_ARGUMENT;
    default:
      return ErrorCode.UNAVAILABLE;
  }
}

/**
 * What a transport operation (open, read, write, datagram, connect) threw, as an RpcError: an
 * RpcError stays as it is; a TransportError keeps its message (after `context`, when given) and
 * becomes `CANCELLED` (the stream was reset or stopped), `UNAUTHENTICATED` (the server's
 * certificate failed verification), `INVALID_ARGUMENT` (bad transport options) or `UNAVAILABLE`
 * (anything else: the connection is closed or failed); any other value becomes `INTERNAL`.
 * The original is the `cause`.
 *
 * @param e What was thrown.
 * @param context Put before a TransportError's message (`"cannot connect to host:port"`).
 */
export function toRpcError(e: unknown, context?: string): RpcError {
  if (e instanceof RpcError) return e;
  if (e instanceof TransportError) {
    return new RpcError(codeFor(e.code), context === undefined ? e.message : `${context}: ${e.message}`, undefined, { cause: e });
  }
  return RpcError.from(e, ErrorCode.INTERNAL);
}

/**
 * Why a connection ended, as an RpcError for what it ends: `RESOURCE_EXHAUSTED` when the other
 * side refused it at a connection limit (0x106: try later or elsewhere), else `UNAVAILABLE`.
 * The message names the reason and the close code in hex, as the protocol documents codes.
 *
 * @param info How the connection closed.
 * @param what What was going on: `"connection closed"` (calls in flight when it ends) or the
 *   handshake's `"the server closed the connection during the handshake"`.
 */
export function closeError(info: CloseInfo, what: string): RpcError {
  const why = `${info.reason || "no reason given"} (close code 0x${info.code.toString(16)})`;
  if (info.code === CloseCode.CONNECTION_LIMIT) return new RpcError(ErrorCode.RESOURCE_EXHAUSTED, `server refused the connection: ${why}`);
  return new RpcError(ErrorCode.UNAVAILABLE, `${what}: ${why}`);
}
