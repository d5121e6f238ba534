/**
 * Protocol identity: the ALPN token and the version HELLO carries.
 *
 * @module
 */

/** The TLS ALPN protocol id for EchoStream over QUIC. */
export const ALPN = "echostream/1";

/** The wire protocol version sent in HELLO and WELCOME. */
export const PROTOCOL_VERSION = 1;

/** Application close codes EchoStream itself uses (others are the application's). */
export const CloseCode = {
  /** Normal close. */
  NORMAL: 0,
  /** The peer broke the protocol (bad handshake, malformed control frames). */
  PROTOCOL_ERROR: 0x101,
  /** HELLO carried a protocol version this side does not speak. */
  VERSION_MISMATCH: 0x102,
  /** Authentication failed. */
  UNAUTHENTICATED: 0x103,
  /** The server is shutting down. */
  GOING_AWAY: 0x104,
  /** The handshake did not complete in time (server: no HELLO, or `authenticate` pending; client: no WELCOME). */
  HANDSHAKE_TIMEOUT: 0x105,
  /** The server is at a connection limit (total, per address, or pending handshakes): try later or elsewhere. */
  CONNECTION_LIMIT: 0x106,
  /** The peer cancelled or reset too many streams in a window (the "rapid reset" flood). */
  TOO_MANY_RESETS: 0x107,
  /** The peer did not read what was queued for it (events) past the outgoing limit. */
  SLOW_CONSUMER: 0x108,
} as const;
