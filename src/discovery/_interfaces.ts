// Network interfaces for advertising and browsing, read from os.networkInterfaces() (ciao's own
// detection parses `ip -o link` and skips names such as veth peers `vma@if5`).

import { networkInterfaces } from "node:os";
import { isIP } from "node:net";
import { DiscoveryError } from "./discovery_error.ts";

/** One interface with the addresses that matter for mDNS. */
export interface Iface {
  name: string;
  internal: boolean;
  /** First IPv4 address and its netmask. */
  ipv4?: { address: string; netmask: string };
  /** Every IPv6 address (link-local ones have scopeid ≠ 0). */
  ipv6: { address: string; scopeid: number }[];
}

/** Every interface with at least one address, in the order the OS lists them. */
export function listInterfaces(): Iface[] {
  const out: Iface[] = [];
  for (const [name, infos] of Object.entries(networkInterfaces())) {
    if (!infos || infos.length === 0) continue;
    const iface: Iface = { name, internal: infos.some((i) => i.internal), ipv6: [] };
    for (const info of infos) {
      // Node 18+ reports the family as a string, older runtimes as a number
      const fam = String(info.family);
      if ((fam === "IPv4" || fam === "4") && !iface.ipv4) iface.ipv4 = { address: info.address, netmask: info.netmask };
      else if (fam === "IPv6" || fam === "6") iface.ipv6.push({ address: info.address, scopeid: info.scopeid ?? 0 });
    }
    out.push(iface);
  }
  return out;
}

/**
 * The interfaces to use: every non-internal one by default (plus internal ones when `includeLoopback`),
 * or exactly those named in `wanted` (interface names or addresses).
 * @throws {DiscoveryError} `INVALID_ARGUMENT` when an entry of `wanted` matches no interface.
 */
export function selectInterfaces(wanted: readonly string[] | undefined, includeLoopback = false): Iface[] {
  const all = listInterfaces();
  if (!wanted) return all.filter((i) => !i.internal || includeLoopback);
  if (!Array.isArray(wanted)) {
    throw new DiscoveryError(
      "INVALID_ARGUMENT",
      `interfaces must be an array of names or addresses, received ${typeof wanted}`,
    );
  }
  const picked = new Map<string, Iface>();
  for (const w of wanted) {
    const hit = all.find((i) => i.name === w || i.ipv4?.address === w || i.ipv6.some((a) => a.address === w));
    if (!hit) {
      throw new DiscoveryError(
        "INVALID_ARGUMENT",
        `interface "${w}" matches no interface name or address (have: ${all.map((i) => i.name).join(", ")})`,
      );
    }
    picked.set(hit.name, hit);
  }
  return [...picked.values()];
}

/** The interface that owns `address`, if any. */
export function interfaceOwning(address: string): Iface | undefined {
  const a = address.split("%")[0].toLowerCase();
  return listInterfaces().find((i) => i.ipv4?.address === a || i.ipv6.some((x) => x.address.toLowerCase() === a));
}

/** Whether `host` means "every address" (no host, 0.0.0.0, ::). */
export function isWildcard(host: string | undefined): boolean {
  return host === undefined || host === "" || host === "0.0.0.0" || host === "::" || host === "[::]";
}

function ipv4ToInt(a: string): number {
  const p = a.split(".").map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

/** Whether IPv4 `address` lies in the subnet of `iface`. */
export function inSubnet(address: string, iface: Iface): boolean {
  if (!iface.ipv4 || isIP(address) !== 4) return false;
  const mask = ipv4ToInt(iface.ipv4.netmask);
  return ((ipv4ToInt(address) & mask) >>> 0) === ((ipv4ToInt(iface.ipv4.address) & mask) >>> 0);
}

/** Loopback: 127.0.0.0/8, ::1, and IPv4-mapped loopback. */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase();
  return a.startsWith("127.") || a === "::1" || a.startsWith("::ffff:127.");
}

/** IPv6 link-local (fe80::/10): needs a zone (`%iface`) to be connected to. */
export function isLinkLocal6(address: string): boolean {
  return /^fe[89ab]/i.test(address);
}

/**
 * Sort rank for connecting: IPv4 first (reachable without a zone, and what ciao announces first), then
 * routable IPv6, then link-local IPv6, loopback last.
 */
export function addressRank(address: string): number {
  if (isLoopback(address)) return 3;
  if (isIP(address.split("%")[0]) === 4) return 0;
  return isLinkLocal6(address) ? 2 : 1;
}
