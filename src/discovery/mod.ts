/**
 * Zero-config discovery for EchoStream servers: DNS-SD over multicast DNS. A server advertises itself
 * with {@link advertise} (the RPC layer calls it for `.enableDiscovery(name)`); clients find servers with
 * {@link discover} or follow them with {@link browse}. Interoperates with Avahi and Bonjour
 * (`avahi-browse -rt _echostream._udp`, `dns-sd -B _echostream._udp`).
 *
 * @example Advertise, then find it from another process
 * ```ts
 * import { advertise, discover } from "@echostream/core/discovery";
 *
 * const ad = await advertise({ name: "AudioService", port: 5000, fingerprint: "ab".repeat(32) });
 * // in another process, on another host of the LAN:
 * const [found] = await discover("AudioService", { timeoutMs: 2000 });
 * console.log(found?.addresses, found?.port);
 * await ad.close();
 * ```
 *
 * @module
 */

export { advertise, type Advertisement, type AdvertiseOptions, RESERVED_TXT_KEYS, subtypeFor } from "./advertise.ts";
export {
  browse,
  type BrowseOptions,
  type CommonBrowseOptions,
  discover,
  type DiscoverOptions,
  type ServiceBrowser,
} from "./browse.ts";
export { DiscoveryError, DiscoveryErrorCode } from "./discovery_error.ts";
export {
  DEFAULT_DISCOVERY_LIMITS,
  type DiscoveryLimits,
  type DiscoveryStats,
  emptyStats,
  resolveDiscoveryLimits,
} from "./limits.ts";
export type { BrowseEvent, DiscoveredService } from "./types.ts";
export { SERVICE_TYPE } from "./_names.ts";
