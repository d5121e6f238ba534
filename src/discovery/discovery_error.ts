/**
 * `DiscoveryError`: what advertising and browsing raise, with a stable code.
 *
 * @module
 */

/** Stable discovery error codes. */
export const DiscoveryErrorCode = {
  /** Invalid options: a service name DNS-SD cannot carry, an unknown interface, a bad port or TXT entry. */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  /** Multicast DNS cannot work here: no interface could join the mDNS group or bind port 5353. */
  UNAVAILABLE: "UNAVAILABLE",
  /** The responder could not probe or announce the service. */
  ADVERTISE_FAILED: "ADVERTISE_FAILED",
} as const;

/** A discovery error code. */
export type DiscoveryErrorCode = (typeof DiscoveryErrorCode)[keyof typeof DiscoveryErrorCode];

const BRAND = Symbol.for("@echostream/core/DiscoveryError");

/**
 * A discovery failure with a stable code; `cause` holds the native error when there is one.
 *
 * @example Telling "no multicast here" from "nothing found"
 * ```ts
 * import { discover, DiscoveryError } from "@echostream/core/discovery";
 *
 * try {
 *   const found = await discover("AudioService", { timeoutMs: 1000 });
 *   console.log(found.length ? found : "no AudioService on this LAN");
 * } catch (e) {
 *   if (e instanceof DiscoveryError && e.code === "UNAVAILABLE") console.log("multicast is not available here");
 *   else throw e;
 * }
 * ```
 */
export class DiscoveryError extends Error {
  /** The stable code. */
  readonly code: DiscoveryErrorCode;

  /**
   * Creates a discovery error.
   *
   * @param code The stable code.
   * @param message What happened, lower-case.
   * @param options The native error, when there is one.
   */
  constructor(code: DiscoveryErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "DiscoveryError";
    this.code = code;
  }

  /** Recognises DiscoveryErrors from any copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  /** Brand checked by `instanceof`. */
  get [BRAND](): boolean {
    return true;
  }
}
