/**
 * The context every handler, listener and stream handler receives.
 *
 * @module
 */

import type { Metadata } from "../protocol/frame.ts";
import type { PeerCertificate, SocketAddress } from "../transport/types.ts";
import type { Peer } from "./peer.ts";

/** What a handler knows about the call it serves. */
export interface Context {
  /** The other side: call back into it with `request`, `emit` and `createStream`. */
  readonly peer: Peer;
  /** The method, topic or stream name. */
  readonly name: string;
  /** What is being served. */
  readonly kind: "request" | "event" | "stream";
  /** Metadata the caller attached. */
  readonly metadata: Metadata;
  /** Fires when the caller cancels, the deadline passes or the connection ends. */
  readonly signal: AbortSignal;
  /** The caller's address. */
  readonly remote: SocketAddress;
  /** Who the peer authenticated as (what the server's `authenticate` returned), if anyone. */
  readonly principal: unknown;
  /**
   * What TLS proved about the peer: its client certificate (subject and SHA-256 fingerprint)
   * when it presented one under mutual TLS; undefined otherwise.
   */
  readonly certificate: PeerCertificate | undefined;
  /** Absolute deadline (ms, `Date.now()` clock), when the caller set one. */
  readonly deadline: number | undefined;
}
