/**
 * Protocol identity: the ALPN token and the version HELLO carries.
 *
 * @module
 */

/** The TLS ALPN protocol id for EchoStream over QUIC. */
export const ALPN = "echostream/1";

/** The wire protocol version sent in HELLO and WELCOME. */
export const PROTOCOL_VERSION = 1;
