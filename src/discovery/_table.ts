// The browser's view of the network: instances of one service name assembled from PTR, SRV, TXT and
// A/AAAA records, with TTLs, goodbyes, liveness (missed answers) and limits. Pure logic: the sockets
// live in _querier.ts.

import { addressRank, isLinkLocal6, isLoopback } from "./_interfaces.ts";
import { canonicalName, instanceLabel, nameKey, parseTxt, subtypeFqdn, TYPE_FQDN } from "./_names.ts";
import type { Question, WireRecord } from "./_wire.ts";
import type { DiscoveryLimits, DiscoveryStats } from "./limits.ts";
import type { BrowseEvent, DiscoveredService } from "./types.ts";

/** RFC 5952 form (dns-packet prints fd66:0:0:1::1 as fd66::1:0:0:0:1). */
function canonicalIpv6(a: string): string {
  try {
    return new URL(`http://[${a}]/`).hostname.slice(1, -1);
  } catch {
    return a;
  }
}

interface Instance {
  fqdn: string;
  label: string;
  ptrUntil: number;
  srv?: { port: number; target: string; host: string; until: number };
  txt?: { map: Record<string, string>; until: number };
  lastSeen: number;
  misses: number;
  /** TXT says another service name: tracked so it is not re-added, never published. */
  foreign: boolean;
  lastAsked: number;
  published?: DiscoveredService;
  publishedKey?: string;
}

/** Minimum time between follow-up questions about one name (responders rate-limit at 1 s). */
const FOLLOW_UP_MS = 1000;
/** Most follow-up questions per packet sent. */
const MAX_FOLLOW_UPS = 32;

export interface TableOptions {
  name: string;
  includeLoopback: boolean;
  limits: Readonly<DiscoveryLimits>;
  stats: DiscoveryStats;
  onEvent: (e: BrowseEvent) => void;
  now?: () => number;
}

export class ServiceTable {
  readonly subtypeKey: string;
  private readonly typeKey = TYPE_FQDN.toLowerCase();
  private readonly canonical: string;
  private readonly instances = new Map<string, Instance>();
  /** host name key → address → expiry (ms). */
  private readonly hosts = new Map<string, Map<string, number>>();
  private lastQueryAt: number | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: TableOptions) {
    this.subtypeKey = subtypeFqdn(opts.name).toLowerCase();
    this.canonical = canonicalName(opts.name);
    this.now = opts.now ?? (() => performance.now());
  }

  /** The question that finds every instance of the name. */
  browseQuestion(): Question {
    return { type: "PTR", name: subtypeFqdn(this.opts.name) };
  }

  /** Applies one response's records; `iface` is the receiving interface when known (zones link-local AAAA). */
  apply(records: WireRecord[], iface?: string): void {
    const now = this.now();
    const { stats } = this.opts;
    const touched = new Set<Instance>();
    // PTRs first, so SRV/TXT/A in the same packet find their instance whatever the record order.
    for (const r of records) {
      if (r.type !== "PTR") continue;
      const key = nameKey(r.name);
      if (key !== this.subtypeKey && key !== this.typeKey) continue;
      const label = instanceLabel(r.target);
      if (label === undefined) {
        stats.invalidRecords++;
        continue;
      }
      const ik = nameKey(r.target);
      let inst = this.instances.get(ik);
      if (r.ttl === 0) {
        if (inst) this.remove(ik, inst);
        continue;
      }
      if (!inst) {
        if (this.instances.size >= this.opts.limits.maxServices) {
          stats.servicesDropped++;
          continue;
        }
        inst = {
          fqdn: nameKey(r.target),
          label,
          ptrUntil: 0,
          lastSeen: now,
          misses: 0,
          foreign: false,
          lastAsked: -Infinity,
        };
        this.instances.set(ik, inst);
      }
      inst.ptrUntil = now + r.ttl * 1000;
      inst.lastSeen = now;
      inst.misses = 0;
      touched.add(inst);
    }
    const targets = new Set<string>();
    for (const r of records) {
      if (r.type === "SRV" || r.type === "TXT") {
        const inst = this.instances.get(nameKey(r.name));
        if (!inst) {
          stats.ignoredRecords++;
          continue;
        }
        inst.lastSeen = now;
        inst.misses = 0;
        touched.add(inst);
        if (r.type === "SRV") {
          inst.srv = r.ttl === 0
            ? undefined
            : { port: r.port, target: nameKey(r.target), host: r.target.replace(/\.$/, ""), until: now + r.ttl * 1000 };
        } else if (r.ttl === 0) {
          inst.txt = undefined;
        } else {
          const map = parseTxt(r.strings, this.opts.limits);
          if (!map) {
            stats.invalidRecords++;
            continue;
          }
          inst.txt = { map, until: now + r.ttl * 1000 };
          inst.foreign = !this.matches(inst);
        }
      }
    }
    for (const inst of this.instances.values()) if (inst.srv) targets.add(inst.srv.target);
    for (const r of records) {
      if (r.type === "PTR" || r.type === "SRV" || r.type === "TXT") continue;
      const key = nameKey(r.name);
      if (r.type === "invalid") {
        if (targets.has(key) || this.instances.has(key) || key === this.subtypeKey || key === this.typeKey) {
          stats.invalidRecords++;
        } else stats.ignoredRecords++;
        continue;
      }
      if (r.type === "other" || !targets.has(key)) {
        stats.ignoredRecords++;
        continue;
      }
      let addrs = this.hosts.get(key);
      if (!addrs) this.hosts.set(key, addrs = new Map());
      const canonical = r.type === "AAAA" ? canonicalIpv6(r.address) : r.address;
      const address = r.type === "AAAA" && iface && isLinkLocal6(canonical) ? `${canonical}%${iface}` : canonical;
      if (r.ttl === 0) addrs.delete(address);
      else if (addrs.has(address) || addrs.size < this.opts.limits.maxAddressesPerHost) {
        addrs.set(address, now + r.ttl * 1000);
      } else stats.addressesDropped++;
      for (const inst of this.instances.values()) if (inst.srv?.target === key) touched.add(inst);
    }
    for (const inst of touched) this.publish(inst);
  }

  /** Drops what has expired (TTL), then republishes what changed. */
  sweep(): void {
    const now = this.now();
    for (const [k, inst] of this.instances) {
      if (inst.ptrUntil <= now) {
        this.remove(k, inst);
        continue;
      }
      let changed = false;
      if (inst.srv && inst.srv.until <= now) (inst.srv = undefined), (changed = true);
      if (inst.txt && inst.txt.until <= now) (inst.txt = undefined), (changed = true);
      if (changed) this.publish(inst);
    }
    for (const [h, addrs] of this.hosts) {
      let changed = false;
      for (const [a, until] of addrs) if (until <= now) (addrs.delete(a), (changed = true));
      if (addrs.size === 0) this.hosts.delete(h);
      if (changed) { for (const inst of this.instances.values()) if (inst.srv?.target === h) this.publish(inst); }
    }
  }

  /**
   * Called as a new browse query goes out: an instance that has not answered since the previous query
   * gets a miss, and after `maxMissed` misses in a row it is taken down (a killed server sends no goodbye
   * and its PTR lives 75 minutes).
   */
  liveness(maxMissed: number): void {
    const now = this.now();
    const prev = this.lastQueryAt;
    this.lastQueryAt = now;
    if (prev === undefined) return;
    for (const [k, inst] of this.instances) {
      if (inst.lastSeen >= prev) continue;
      if (++inst.misses >= maxMissed) this.remove(k, inst);
    }
  }

  /** Questions for instances missing SRV/TXT or addresses (throttled per name). */
  followUps(): Question[] {
    const now = this.now();
    const qs: Question[] = [];
    for (const inst of this.instances.values()) {
      if (qs.length >= MAX_FOLLOW_UPS) break;
      if (inst.foreign || now - inst.lastAsked < FOLLOW_UP_MS) continue;
      if (!inst.srv || !inst.txt) {
        qs.push({ type: "SRV", name: inst.fqdn }, { type: "TXT", name: inst.fqdn });
        inst.lastAsked = now;
      } else if (!this.hosts.get(inst.srv.target)?.size) {
        qs.push({ type: "A", name: inst.srv.target }, { type: "AAAA", name: inst.srv.target });
        inst.lastAsked = now;
      }
    }
    return qs;
  }

  /** Services currently up, sorted by instance name. */
  services(): DiscoveredService[] {
    const out: DiscoveredService[] = [];
    for (const inst of this.instances.values()) if (inst.published) out.push(inst.published);
    return out.sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : a.host < b.host ? -1 : 1));
  }

  private matches(inst: Instance): boolean {
    const svc = inst.txt?.map.svc;
    if (svc !== undefined) return canonicalName(svc) === this.canonical;
    return canonicalName(inst.label.replace(/ \(\d+\)$/, "")) === this.canonical;
  }

  private remove(key: string, inst: Instance): void {
    this.instances.delete(key);
    if (inst.published) this.opts.onEvent({ type: "down", service: inst.published });
    inst.published = undefined;
    // Forget host addresses no remaining instance points at.
    const target = inst.srv?.target;
    if (target && ![...this.instances.values()].some((i) => i.srv?.target === target)) this.hosts.delete(target);
  }

  private build(inst: Instance): DiscoveredService | undefined {
    if (!inst.srv || !inst.txt || inst.foreign) return undefined;
    const all = [...(this.hosts.get(inst.srv.target)?.keys() ?? [])];
    // Deno reports IPv6 sources without a zone, so a link-local address may arrive both bare (over IPv6)
    // and zoned (over IPv4): keep the zoned one.
    const zoned = new Set(all.filter((a) => a.includes("%")).map((a) => a.slice(0, a.indexOf("%"))));
    const addrs = all
      .filter((a) => this.opts.includeLoopback || !isLoopback(a))
      .filter((a) => a.includes("%") || !zoned.has(a))
      .sort((a, b) => addressRank(a) - addressRank(b) || (a < b ? -1 : a > b ? 1 : 0));
    if (addrs.length === 0) return undefined;
    const txt = inst.txt.map;
    const fp = txt.fp && /^[0-9a-f]{64}$/i.test(txt.fp) ? txt.fp.toLowerCase() : undefined;
    const service: DiscoveredService = {
      name: txt.svc ?? inst.label.replace(/ \(\d+\)$/, ""),
      instance: inst.label,
      host: inst.srv.host,
      port: inst.srv.port,
      addresses: addrs,
      fingerprint: fp,
      version: /^\d{1,9}$/.test(txt.v ?? "") ? Number(txt.v) : undefined,
      txt: Object.assign(Object.create(null), txt),
    };
    return service;
  }

  private publish(inst: Instance): void {
    if (!this.instances.has(inst.fqdn)) return;
    const s = this.build(inst);
    if (!s) {
      if (inst.published) {
        this.opts.onEvent({ type: "down", service: inst.published });
        inst.published = undefined;
        inst.publishedKey = undefined;
      }
      return;
    }
    const key = JSON.stringify({ ...s, txt: Object.entries(s.txt) });
    if (key === inst.publishedKey) return;
    inst.published = s;
    inst.publishedKey = key;
    this.opts.onEvent({ type: "up", service: s });
  }
}
