/**
 * `RpcError`: the one error that crosses the wire, with stable codes.
 *
 * @module
 */

/** Stable error codes (their numbers are the wire values in ERROR and GOAWAY frames). */
export const ErrorCode = {
  CANCELLED: "CANCELLED",
  UNKNOWN: "UNKNOWN",
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
  NOT_FOUND: "NOT_FOUND",
  ALREADY_EXISTS: "ALREADY_EXISTS",
  PERMISSION_DENIED: "PERMISSION_DENIED",
  RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED",
  FAILED_PRECONDITION: "FAILED_PRECONDITION",
  ABORTED: "ABORTED",
  OUT_OF_RANGE: "OUT_OF_RANGE",
  UNIMPLEMENTED: "UNIMPLEMENTED",
  INTERNAL: "INTERNAL",
  UNAVAILABLE: "UNAVAILABLE",
  DATA_LOSS: "DATA_LOSS",
  UNAUTHENTICATED: "UNAUTHENTICATED",
} as const;

/** An error code. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Wire numbers, as in gRPC (1 = CANCELLED … 16 = UNAUTHENTICATED). */
const NUMBERS: readonly ErrorCode[] = [
  "UNKNOWN", // 0 is "ok" in gRPC; never sent in an ERROR frame, read as UNKNOWN
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** The wire number of a code. */
export function errorCodeNumber(code: ErrorCode): number {
  const n = NUMBERS.indexOf(code, 1);
  return n < 0 ? 2 : n;
}

/** The code for a wire number (unknown numbers read as UNKNOWN). */
export function errorCodeFromNumber(n: number): ErrorCode {
  return NUMBERS[n] ?? ErrorCode.UNKNOWN;
}

const BRAND = Symbol.for("@echostream/core/RpcError");

/**
 * An error with a stable code, carried across the wire as `{ code, message, details }`. Throw it
 * from a handler to answer with that code; anything else a handler throws is answered as
 * `INTERNAL` with a generic message (the original stays on the server, never leaked).
 *
 * @example Answering NOT_FOUND from a handler
 * ```ts
 * import { handler, RpcError } from "@echostream/core";
 *
 * export const getUser = handler("user.get", (_ctx, id: string) => {
 *   throw new RpcError("NOT_FOUND", `no user "${id}"`, { id });
 * });
 * ```
 */
export class RpcError extends Error {
  /** The stable code. */
  readonly code: ErrorCode;
  /** Structured details (encoded with the payload codec). */
  readonly details: unknown;

  /**
   * Makes an error to throw from a handler (or to compare against on the caller's side).
   *
   * @param code A stable code.
   * @param message What went wrong, lower-case.
   * @param details Anything the payload codec can encode.
   * @param options The underlying cause (kept locally, never sent).
   */
  constructor(code: ErrorCode, message: string, details?: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RpcError";
    this.code = code;
    this.details = details;
  }

  /**
   * Wraps any thrown value: an RpcError stays as it is; anything else becomes `code`
   * (default `INTERNAL`) with the original as `cause`.
   */
  static from(reason: unknown, code: ErrorCode = ErrorCode.INTERNAL): RpcError {
    if (reason instanceof RpcError) return reason;
    const message = reason instanceof Error ? reason.message : String(reason);
    return new RpcError(code, message, undefined, { cause: reason });
  }

  /** Recognises RpcErrors from any copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  /** Brand checked by `instanceof`. */
  get [BRAND](): boolean {
    return true;
  }
}
