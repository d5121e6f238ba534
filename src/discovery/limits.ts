/**
 * Receive-side limits for browsing, with their defaults in one place. Everything read off the
 * network is checked against them before it is kept; what breaks a limit is dropped and counted
 * in {@link DiscoveryStats}.
 *
 * @module
 */

import { DiscoveryError } from "./discovery_error.ts";

/** Limits on what a browser accepts from the network. */
export interface DiscoveryLimits {
  /**
   * Largest mDNS packet accepted, in bytes (RFC 6762 §17 caps mDNS messages at 9000 bytes).
   * @default {9000}
   */
  maxPacketBytes: number;
  /**
   * Most resource records (answers + authorities + additionals) in one packet.
   * @default {128}
   */
  maxRecordsPerPacket: number;
  /**
   * Largest TXT record in bytes (RFC 6763 §6.2 recommends at most 1300).
   * @default {2048}
   */
  maxTxtBytes: number;
  /**
   * Most key/value entries in one TXT record.
   * @default {64}
   */
  maxTxtEntries: number;
  /**
   * Most service instances tracked at once (complete or still being resolved).
   * @default {256}
   */
  maxServices: number;
  /**
   * Most addresses kept for one host name.
   * @default {16}
   */
  maxAddressesPerHost: number;
  /**
   * Most events a {@link ServiceBrowser} holds for a consumer that does not read them; the oldest go first.
   * @default {1024}
   */
  maxQueuedEvents: number;
}

/** The default browsing limits. */
export const DEFAULT_DISCOVERY_LIMITS: Readonly<DiscoveryLimits> = Object.freeze({
  maxPacketBytes: 9000,
  maxRecordsPerPacket: 128,
  maxTxtBytes: 2048,
  maxTxtEntries: 64,
  maxServices: 256,
  maxAddressesPerHost: 16,
  maxQueuedEvents: 1024,
});

/** Counters of what a browser received, kept, dropped and sent. Dropped = every field but `packets`, `responses`, `queries`, `sent`. */
export interface DiscoveryStats {
  /** Packets received. */
  packets: number;
  /** Well-formed responses processed. */
  responses: number;
  /** Queries from other hosts (and our own, looped back): ignored. */
  queries: number;
  /** Packets that did not decode as DNS. */
  malformed: number;
  /** Packets over `maxPacketBytes`. */
  oversized: number;
  /** Packets with more records than `maxRecordsPerPacket`. */
  tooManyRecords: number;
  /** Responses RFC 6762 says to ignore: source port not 5353, non-zero opcode or rcode. */
  nonCompliant: number;
  /** Packets from outside the selected interfaces. */
  foreignInterface: number;
  /** Records about our services with bad data: wrong class, bad port, bad address, oversized or malformed TXT. */
  invalidRecords: number;
  /** Records about names we do not follow (other services, other hosts). */
  ignoredRecords: number;
  /** PTR records for new instances refused because `maxServices` were tracked. */
  servicesDropped: number;
  /** Addresses refused because a host had `maxAddressesPerHost`. */
  addressesDropped: number;
  /** Events dropped because the consumer had `maxQueuedEvents` unread. */
  eventsDropped: number;
  /** Query packets sent (one per interface and address family). */
  sent: number;
  /** Query packets that failed to send. */
  sendErrors: number;
}

/** Fresh counters, all zero. */
export function emptyStats(): DiscoveryStats {
  return {
    packets: 0,
    responses: 0,
    queries: 0,
    malformed: 0,
    oversized: 0,
    tooManyRecords: 0,
    nonCompliant: 0,
    foreignInterface: 0,
    invalidRecords: 0,
    ignoredRecords: 0,
    servicesDropped: 0,
    addressesDropped: 0,
    eventsDropped: 0,
    sent: 0,
    sendErrors: 0,
  };
}

/**
 * Fills in defaults and checks each limit is a positive integer.
 *
 * @param limits Overrides; anything left out keeps its default.
 * @returns The complete, frozen limits.
 * @throws {DiscoveryError} `INVALID_ARGUMENT` when a limit is not a positive safe integer.
 *
 * @example Allow larger TXT records
 * ```ts
 * import { resolveDiscoveryLimits } from "@echostream/core/discovery";
 *
 * console.log(resolveDiscoveryLimits({ maxTxtBytes: 8900 }).maxTxtBytes); // 8900
 * ```
 */
export function resolveDiscoveryLimits(limits: Partial<DiscoveryLimits> = {}): Readonly<DiscoveryLimits> {
  const out = { ...DEFAULT_DISCOVERY_LIMITS, ...limits };
  for (const [key, value] of Object.entries(out)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new DiscoveryError(
        "INVALID_ARGUMENT",
        `limit ${key} must be a positive integer, received ${String(value)}`,
      );
    }
  }
  return Object.freeze(out);
}
