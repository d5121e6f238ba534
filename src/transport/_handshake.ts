// Shared by the adapters' connect(): the handshake deadline. None of the stacks enforces one
// itself (Bun ignores `handshakeTimeout`, Deno and @matrixai/quic have none), and QUIC has no
// "connection refused": a silent port looks the same as a slow one.

import { TransportError, TransportErrorCode as E } from "./transport_error.ts";

/** `ConnectOptions.handshakeTimeoutMs` when left out. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;

/** A running handshake deadline; see {@link handshakeDeadline}. */
export interface HandshakeDeadline {
  /** The time allowed (ms). */
  readonly ms: number;
  /** Whether the time ran out. */
  readonly expired: boolean;
  /** The `HANDSHAKE_TIMEOUT` error: "no QUIC handshake with <where> within <ms> ms". */
  error(cause?: unknown): TransportError;
  /** Settles like `pending`, or rejects with {@link error} once the time runs out. */
  race<T>(pending: T | Promise<T>): Promise<T>;
  /** Stops the timer (the handshake finished or failed). */
  clear(): void;
}

/**
 * Starts the handshake timer.
 * @param where The address as the error names it.
 * @param timeoutMs The time allowed: `ConnectOptions.handshakeTimeoutMs`, by default
 *   {@link DEFAULT_HANDSHAKE_TIMEOUT_MS}.
 * @param onExpire Called once when the time runs out, before {@link HandshakeDeadline.race}
 *   rejects: stops the native attempt (or closes a connection that completes late).
 */
export function handshakeDeadline(
  where: string,
  timeoutMs: number | undefined,
  onExpire: (error: TransportError) => void,
): HandshakeDeadline {
  const ms = timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  let fired: TransportError | undefined;
  let rejectRace: ((e: TransportError) => void) | undefined;
  const error = (cause?: unknown) =>
    new TransportError(E.HANDSHAKE_TIMEOUT, `no QUIC handshake with ${where} within ${ms} ms`, { cause });
  const timer = setTimeout(() => {
    fired = error();
    onExpire(fired);
    rejectRace?.(fired);
  }, ms);
  return {
    ms,
    get expired() {
      return fired !== undefined;
    },
    error,
    race<T>(pending: T | Promise<T>): Promise<T> {
      const timeout = fired ? Promise.reject(fired) : new Promise<never>((_, reject) => (rejectRace = reject));
      return Promise.race([pending, timeout]);
    },
    clear: () => clearTimeout(timer),
  };
}
