/**
 * The error every transport adapter raises: native errors are converted at the adapter edge.
 *
 * @module
 */

/** Stable transport error codes. */
export const TransportErrorCode = {
  /** The handshake did not finish in time (nothing listening, or the network dropped it). */
  HANDSHAKE_TIMEOUT: "HANDSHAKE_TIMEOUT",
  /** The peer's certificate failed verification (unknown CA, wrong name, pin mismatch). */
  TLS_VERIFICATION: "TLS_VERIFICATION",
  /** Any other handshake failure. */
  CONNECT_FAILED: "CONNECT_FAILED",
  /** The connection is closed (locally, by the peer, or by idle timeout). */
  CLOSED: "CLOSED",
  /** The peer reset the stream; `appCode` carries its code. */
  STREAM_RESET: "STREAM_RESET",
  /** The peer asked this side to stop sending; `appCode` carries its code. */
  STOP_SENDING: "STOP_SENDING",
  /** No stream slot came before the opener gave up: the peer's concurrent-stream limit is reached. */
  STREAM_LIMIT: "STREAM_LIMIT",
  /** The datagram exceeds the connection's current limit. */
  DATAGRAM_TOO_LARGE: "DATAGRAM_TOO_LARGE",
  /** This stack does not offer the feature. */
  UNSUPPORTED: "UNSUPPORTED",
  /** Invalid options. */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  /** The listener could not bind its address (in use, or not this machine's). */
  LISTEN_FAILED: "LISTEN_FAILED",
} as const;

/** A transport error code. */
export type TransportErrorCode = (typeof TransportErrorCode)[keyof typeof TransportErrorCode];

const BRAND = Symbol.for("@echostream/core/TransportError");

/**
 * A transport failure with a stable code; `appCode` is the peer's application code for
 * resets and closes, `cause` the native error.
 *
 * @example Telling a certificate problem from a dead port
 * ```ts
 * import { readFile } from "node:fs/promises";
 * import { defaultTransport, TransportError } from "@echostream/core/transport";
 *
 * const transport = await defaultTransport();
 * const ca = await readFile("ca.pem", "utf8"); // the CA the server's certificate should lead to
 * try {
 *   const conn = await transport.connect({ host: "127.0.0.1", port: 4433, alpn: "echostream/1", tls: { ca } });
 *   await conn.close();
 * } catch (e) {
 *   if (e instanceof TransportError && e.code === "TLS_VERIFICATION") console.error("untrusted server");
 * }
 * ```
 */
export class TransportError extends Error {
  /** The stable code: branch on this, not on the message. */
  readonly code: TransportErrorCode;
  /** The application error code the peer reset, stopped or closed with, when the stack reports one. */
  readonly appCode: number | undefined;

  /**
   * Makes a transport error; adapters raise these, applications only catch them.
   *
   * @param code The stable code.
   * @param message What happened, lower-case.
   * @param options The native error and the peer's application code, when there is one.
   */
  constructor(code: TransportErrorCode, message: string, options: { cause?: unknown; appCode?: number } = {}) {
    super(message, { cause: options.cause });
    this.name = "TransportError";
    this.code = code;
    this.appCode = options.appCode;
  }

  /** Recognises TransportErrors from any copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  /** Brand checked by `instanceof`. */
  get [BRAND](): boolean {
    return true;
  }
}

/** Normalises a fingerprint to lowercase hex without separators. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/[:\s]/g, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new TransportError(
      TransportErrorCode.INVALID_ARGUMENT,
      `fingerprint must be a SHA-256 hex string (64 hex digits, colons allowed), received "${fp}"`,
    );
  }
  return hex;
}

/** Whether a native handshake error's message says certificate verification failed. */
export function isVerificationFailure(message: string): boolean {
  return /certificate|UnknownIssuer|NotValidForName|SELF_SIGNED|validation failed|verify/i.test(message);
}

/** Refuses a datagram the connection cannot carry; shared by every adapter. */
export function checkDatagram(size: number, max: number): void {
  if (max === 0) throw new TransportError(TransportErrorCode.UNSUPPORTED, "the peer does not accept datagrams");
  if (size > max) {
    throw new TransportError(
      TransportErrorCode.DATAGRAM_TOO_LARGE,
      `datagram of ${size} bytes exceeds the connection's limit of ${max}`,
    );
  }
}

/** A client's trust settings, checked: CA list and/or pinned leaf fingerprint, and the TLS server name. */
export function clientTrust(
  tls: { ca?: string | string[]; fingerprint?: string; serverName?: string; insecureSkipVerify?: boolean },
  host: string,
): { ca: string[] | undefined; fingerprint: string | undefined; serverName: string; insecure: boolean } {
  const insecure = tls.insecureSkipVerify === true;
  if (insecure && (tls.ca !== undefined || tls.fingerprint)) {
    throw new TransportError(TransportErrorCode.INVALID_ARGUMENT, "insecureSkipVerify cannot be combined with a ca or a fingerprint");
  }
  const fingerprint = tls.fingerprint ? normalizeFingerprint(tls.fingerprint) : undefined;
  const ca = tls.ca === undefined ? undefined : (Array.isArray(tls.ca) ? tls.ca : [tls.ca]);
  if (!ca && !fingerprint && !insecure) {
    throw new TransportError(TransportErrorCode.INVALID_ARGUMENT, "tls needs a ca or a fingerprint to verify the server");
  }
  const isIp = /^[\d.]+$|:/.test(host);
  return { ca, fingerprint, serverName: tls.serverName ?? (isIp ? "localhost" : host), insecure };
}

/** PING interval that keeps a live but quiet connection from reaching its idle timeout. */
export function keepAliveMs(idleTimeoutMs = 30000): number {
  return Math.max(100, Math.floor(idleTimeoutMs / 3));
}

/** Maps a stack's handshake failure to a TransportError (certificate problems named as such). */
export function handshakeError(e: unknown): TransportError {
  if (e instanceof TransportError) return e;
  const n = e as { reason?: unknown; message?: unknown } | undefined;
  const msg = String(n?.reason ?? n?.message ?? e);
  const verify = isVerificationFailure(msg);
  return new TransportError(
    verify ? TransportErrorCode.TLS_VERIFICATION : TransportErrorCode.CONNECT_FAILED,
    `${verify ? "server certificate verification failed" : "connect failed"}: ${msg}`,
    { cause: e },
  );
}

/**
 * The error of a listener that could not bind `host:port` (in use, or not this machine's), with
 * the stack's reason; every adapter raises it the same way.
 */
export function listenError(host: string, port: number, cause: unknown): TransportError {
  const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const e = cause as Error | undefined;
  const reason = e?.message || e?.name || (cause === undefined ? "the endpoint closed" : String(cause));
  return new TransportError(TransportErrorCode.LISTEN_FAILED, `cannot listen on ${address}: ${reason}`, { cause });
}
