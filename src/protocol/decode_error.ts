/**
 * The one error the frame decoder raises.
 *
 * @module
 */

/** Why a frame could not be decoded (or encoded). Codes are stable; see docs/PROTOCOL.md. */
export const DecodeErrorCode = {
  FRAME_TOO_LARGE: "FRAME_TOO_LARGE",
  UNKNOWN_TYPE: "UNKNOWN_TYPE",
  UNKNOWN_FLAGS: "UNKNOWN_FLAGS",
  TRUNCATED: "TRUNCATED",
  NAME_TOO_LONG: "NAME_TOO_LONG",
  METADATA_LIMIT: "METADATA_LIMIT",
  INVALID_UTF8: "INVALID_UTF8",
  INVALID_VALUE: "INVALID_VALUE",
  TRAILING_BYTES: "TRAILING_BYTES",
  VALUE_RANGE: "VALUE_RANGE",
} as const;

/** A decode error code. */
export type DecodeErrorCode = (typeof DecodeErrorCode)[keyof typeof DecodeErrorCode];

/** Numeric codes used by the WASM core, in the same order as wasm/src/frame.rs. */
export const DECODE_ERROR_BY_NUMBER: readonly DecodeErrorCode[] = [
  DecodeErrorCode.INVALID_VALUE, // 0 is unused; mapped defensively
  DecodeErrorCode.FRAME_TOO_LARGE,
  DecodeErrorCode.UNKNOWN_TYPE,
  DecodeErrorCode.UNKNOWN_FLAGS,
  DecodeErrorCode.TRUNCATED,
  DecodeErrorCode.NAME_TOO_LONG,
  DecodeErrorCode.METADATA_LIMIT,
  DecodeErrorCode.INVALID_UTF8,
  DecodeErrorCode.INVALID_VALUE,
  DecodeErrorCode.TRAILING_BYTES,
  DecodeErrorCode.VALUE_RANGE,
];

const DESCRIPTIONS: Record<DecodeErrorCode, string> = {
  FRAME_TOO_LARGE: "frame larger than the maximum frame size",
  UNKNOWN_TYPE: "unknown frame type",
  UNKNOWN_FLAGS: "flag bits not defined for this frame type",
  TRUNCATED: "frame ended before its fields did",
  NAME_TOO_LONG: "name or string longer than allowed",
  METADATA_LIMIT: "metadata over its entry or byte limit",
  INVALID_UTF8: "string is not valid UTF-8",
  INVALID_VALUE: "field value not allowed",
  TRAILING_BYTES: "unexpected bytes after the frame",
  VALUE_RANGE: "integer above 2^53 - 1, the largest a number field holds exactly",
};

const BRAND = Symbol.for("@echostream/core/DecodeError");

/**
 * Raised for malformed, oversize or otherwise unacceptable frames. `offset` is the byte offset
 * of the problem, counted from the start of the input (for a splitter: of the whole stream).
 *
 * @example Catching a decode error
 * ```ts
 * import { createFrameCodec, DecodeError } from "@echostream/core/protocol";
 *
 * const codec = createFrameCodec();
 * try {
 *   codec.decode(new Uint8Array([0x3f, 0, 0]));
 * } catch (e) {
 *   if (e instanceof DecodeError) console.log(e.code, e.offset); // UNKNOWN_TYPE 0
 * }
 * ```
 */
export class DecodeError extends Error {
  /** Stable error code. */
  readonly code: DecodeErrorCode;
  /** Byte offset of the problem. */
  readonly offset: number;

  /**
   * Makes a decode error; the message names the problem and the offset.
   *
   * @param code The stable code.
   * @param offset Byte offset of the problem.
   * @param detail Extra words for the message.
   */
  constructor(code: DecodeErrorCode, offset: number, detail?: string) {
    super(`${DESCRIPTIONS[code]}${detail ? ` (${detail})` : ""} at byte ${offset}`);
    this.name = "DecodeError";
    this.code = code;
    this.offset = offset;
  }

  /** Recognises DecodeErrors from any copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  /** Brand checked by `instanceof`. */
  get [BRAND](): boolean {
    return true;
  }
}
