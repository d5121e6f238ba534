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
} as const;
