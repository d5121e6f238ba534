// The one conversion from what a transport operation threw to the RpcError the application sees.
// Every layer above the transport (streams, calls, events, the handshake, connecting) goes through
// it, so a transport failure reads the same whichever API met it.

import { ErrorCode, RpcError } from "../protocol/rpc_error.ts";
import { TransportError, type TransportErrorCode } from "../transport/transport_error.ts";

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
