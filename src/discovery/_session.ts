// One browsing session for one service name: the sockets, the service table, the query schedule and the
// expiry sweep. `discover` and `browse` are thin layers over it.

import { logger } from "../observe/log.ts";
import { observeDiscovery } from "../observe/otel.ts";
import { DiscoveryError } from "./discovery_error.ts";
import { selectInterfaces } from "./_interfaces.ts";
import { checkServiceName } from "./_names.ts";
import { Querier } from "./_querier.ts";
import { ServiceTable } from "./_table.ts";
import { readResponse } from "./_wire.ts";
import { type DiscoveryLimits, type DiscoveryStats, emptyStats, resolveDiscoveryLimits } from "./limits.ts";
import type { BrowseEvent, DiscoveredService } from "./types.ts";

/** Options shared by `discover` and `browse`. */
export interface CommonBrowseOptions {
  /**
   * Interface names or addresses to browse on; answers from elsewhere are dropped.
   * @default {undefined} (every interface with a non-internal address)
   */
  interfaces?: string[];
  /**
   * Keep loopback addresses (127.0.0.0/8, ::1) and browse on loopback interfaces too: for a client on the
   * same host as the server.
   * @default {false}
   */
  includeLoopback?: boolean;
  /**
   * Query over IPv6 multicast (ff02::fb) as well as IPv4 (224.0.0.251). AAAA records are read either way.
   * @default {true}
   */
  ipv6?: boolean;
  /** Receive-side limits; see {@link DiscoveryLimits}. */
  limits?: Partial<DiscoveryLimits>;
  /** Stops browsing. */
  signal?: AbortSignal;
}

/** Delay before follow-up questions, so one packet's worth of gaps goes out as one query. */
const FOLLOW_UP_DELAY_MS = 20;

export class Session {
  readonly stats: DiscoveryStats = emptyStats();
  readonly table: ServiceTable;
  private querier: Querier | undefined;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private followUpPending = false;
  closed = false;

  private constructor(name: string, private readonly opts: CommonBrowseOptions, onEvent: (e: BrowseEvent) => void) {
    const limits = resolveDiscoveryLimits(opts.limits);
    this.table = new ServiceTable({
      name,
      includeLoopback: !!opts.includeLoopback,
      limits,
      stats: this.stats,
      onEvent: (e) => {
        logger("discovery").info("service {instance} {type} at {host}:{port}", { type: e.type, instance: e.service.instance, name: e.service.name, host: e.service.host, port: e.service.port });
        observeDiscovery(e.type);
        onEvent(e);
      },
    });
    this.limits = limits;
  }
  private readonly limits: Readonly<DiscoveryLimits>;

  /** Validates, binds and joins; the caller then schedules queries. */
  static async open(name: string, opts: CommonBrowseOptions, onEvent: (e: BrowseEvent) => void): Promise<Session> {
    checkServiceName(name);
    if (opts.ipv6 !== undefined && typeof opts.ipv6 !== "boolean") {
      throw new DiscoveryError("INVALID_ARGUMENT", `ipv6 must be a boolean, received ${typeof opts.ipv6}`);
    }
    const s = new Session(name, opts, onEvent);
    const ifaces = selectInterfaces(opts.interfaces, !!opts.includeLoopback);
    s.querier = await Querier.open({
      ifaces,
      ipv6: opts.ipv6 ?? true,
      strict: opts.interfaces !== undefined,
      stats: s.stats,
      onMessage: (buf, port, iface) => s.onMessage(buf, port, iface),
    });
    return s;
  }

  private onMessage(buf: Uint8Array, port: number, iface: string | undefined): void {
    if (this.closed) return;
    const records = readResponse(buf, port, this.limits, this.stats);
    if (!records) return;
    this.table.apply(records, iface);
    if (!this.followUpPending) {
      this.followUpPending = true;
      this.after(FOLLOW_UP_DELAY_MS, () => {
        this.followUpPending = false;
        void this.querier?.query(this.table.followUps());
      });
    }
  }

  /** Sends the browse question (PTR for the name's subtype). */
  query(): Promise<void> {
    return this.querier?.query([this.table.browseQuestion()]) ?? Promise.resolve();
  }

  /** Interfaces joined. */
  get joined(): { ipv4: string[]; ipv6: string[] } {
    return this.querier?.joined ?? { ipv4: [], ipv6: [] };
  }

  /** A timer that dies with the session. */
  after(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  services(): DiscoveredService[] {
    return this.table.services();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.querier?.close();
  }
}
