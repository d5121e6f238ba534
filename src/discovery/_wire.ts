// Reading mDNS packets off the wire: size and count limits first, then dns-packet's decoder, then the
// RFC 6762 rules for which responses count. Everything that fails is dropped and counted, never thrown.

import { Buffer } from "node:buffer";
import { isIP } from "node:net";
import { decode, encode, type Question } from "dns-packet";
import type { DiscoveryLimits, DiscoveryStats } from "./limits.ts";

/** The mDNS port and groups (RFC 6762 §3). */
export const MDNS_PORT = 5353;
export const MDNS_IPV4 = "224.0.0.251";
export const MDNS_IPV6 = "ff02::fb";

/** Longest TTL honoured, in seconds: longer ones are clamped (liveness checks cover the rest). */
const MAX_TTL_S = 4 * 3600;

/** A record we may use, shape-checked. `ttl` in seconds; 0 is a goodbye. */
export type WireRecord =
  | { type: "PTR"; name: string; ttl: number; target: string }
  | { type: "SRV"; name: string; ttl: number; port: number; target: string }
  | { type: "TXT"; name: string; ttl: number; strings: Uint8Array[] }
  | { type: "A" | "AAAA"; name: string; ttl: number; address: string }
  | { type: "other"; name: string; ttl: number }
  | { type: "invalid"; name: string; ttl: number };

/**
 * Decodes one received datagram. Returns the response's records (answers, then additionals), or undefined
 * when the packet is dropped (oversized, malformed, a query, non-compliant, too many records); `stats`
 * counts why.
 */
export function readResponse(
  buf: Uint8Array,
  sourcePort: number,
  limits: Readonly<DiscoveryLimits>,
  stats: DiscoveryStats,
): WireRecord[] | undefined {
  stats.packets++;
  if (buf.length > limits.maxPacketBytes) {
    stats.oversized++;
    return undefined;
  }
  // deno-lint-ignore no-explicit-any
  let p: any;
  try {
    p = decode(Buffer.from(buf.buffer, buf.byteOffset, buf.length));
  } catch {
    stats.malformed++;
    return undefined;
  }
  if (p.type !== "response") {
    stats.queries++;
    return undefined;
  }
  // RFC 6762 §6 and §18: responses must come from port 5353 with opcode 0 and rcode 0.
  if (sourcePort !== MDNS_PORT || p.opcode !== "QUERY" || p.rcode !== "NOERROR") {
    stats.nonCompliant++;
    return undefined;
  }
  const raw = [...(p.answers ?? []), ...(p.additionals ?? [])];
  if (raw.length + (p.authorities?.length ?? 0) > limits.maxRecordsPerPacket) {
    stats.tooManyRecords++;
    return undefined;
  }
  stats.responses++;
  return raw.map(toRecord);
}

// deno-lint-ignore no-explicit-any
function toRecord(r: any): WireRecord {
  const name = typeof r?.name === "string" ? r.name : "";
  const ttl = Number.isInteger(r?.ttl) && r.ttl >= 0 ? Math.min(r.ttl, MAX_TTL_S) : -1;
  // dns-packet moves the mDNS cache-flush bit to `flush`; anything but IN is not ours
  if (!name || ttl < 0 || r.class !== "IN") return { type: "invalid", name, ttl: 0 };
  const d = r.data;
  switch (r.type) {
    case "PTR":
      return typeof d === "string" && d.length > 0
        ? { type: "PTR", name, ttl, target: d }
        : { type: "invalid", name, ttl };
    case "SRV":
      return d && Number.isInteger(d.port) && d.port > 0 && d.port < 65536 && typeof d.target === "string" &&
          d.target.length > 0
        ? { type: "SRV", name, ttl, port: d.port, target: d.target }
        : { type: "invalid", name, ttl };
    case "TXT": {
      const list = Array.isArray(d) ? d : [d];
      return list.every((s: unknown) => s instanceof Uint8Array)
        ? { type: "TXT", name, ttl, strings: list }
        : { type: "invalid", name, ttl };
    }
    case "A":
      return typeof d === "string" && isIP(d) === 4
        ? { type: "A", name, ttl, address: d }
        : { type: "invalid", name, ttl };
    case "AAAA":
      return typeof d === "string" && isIP(d) === 6
        ? { type: "AAAA", name, ttl, address: d.toLowerCase() }
        : { type: "invalid", name, ttl };
    default:
      return { type: "other", name, ttl };
  }
}

/** A one-shot mDNS query packet (QM questions, id 0, per RFC 6762 §18.1). */
export function queryPacket(questions: Question[]): Uint8Array {
  return encode({ type: "query", id: 0, flags: 0, questions: questions.map((q) => ({ ...q, class: "IN" })) });
}

export type { Question };
