/**
 * What discovery returns: a found service and a browse event.
 *
 * @module
 */

/**
 * An EchoStream server found on the local network.
 *
 * `fingerprint` comes from an unauthenticated multicast answer: pinning it is trust on first use, so
 * pass it to `connect` only as an explicit choice (see docs/DISCOVERY.md).
 */
export interface DiscoveredService {
  /** The service name (TXT `svc`, or the instance name without a ` (n)` suffix when `svc` is absent). */
  name: string;
  /** The DNS-SD instance name, e.g. `AudioService` or `AudioService (2)` after a conflict. */
  instance: string;
  /** The host name from the SRV record, e.g. `AudioService.local`. */
  host: string;
  /** The UDP port of the QUIC listener. */
  port: number;
  /**
   * Addresses to try in order: IPv4, routable IPv6, link-local IPv6 (with `%iface` when known); loopback
   * ones only with `includeLoopback`.
   */
  addresses: string[];
  /** SHA-256 fingerprint of the server certificate (TXT `fp`, lowercase hex), when advertised. */
  fingerprint: string | undefined;
  /** Protocol version (TXT `v`), when advertised as a number. */
  version: number | undefined;
  /** Every TXT entry, keys lower case (a key without a value maps to ""). */
  txt: Record<string, string>;
}

/** A change seen by `browse`: a service came up (or changed: `up` again with new data) or went down. */
export interface BrowseEvent {
  /** `up`: appeared or changed; `down`: said goodbye, expired, or stopped answering. */
  type: "up" | "down";
  /** The service (for `down`, as it was last seen). */
  service: DiscoveredService;
}
