// The browser's sockets: one udp4 and one udp6 socket bound to the wildcard address on port 5353
// (reuseAddr, so ciao, Avahi and other browsers can share it), joined to the mDNS group on each selected
// interface. Binding to an interface address instead hears nothing (multicast goes to the group address),
// so the interface is chosen per send with setMulticastInterface, one send at a time.

import { createSocket, type Socket } from "node:dgram";
import { DiscoveryError } from "./discovery_error.ts";
import { type Iface, inSubnet } from "./_interfaces.ts";
import { MDNS_IPV4, MDNS_IPV6, MDNS_PORT, queryPacket, type Question } from "./_wire.ts";
import type { DiscoveryStats } from "./limits.ts";

export interface QuerierOptions {
  ifaces: Iface[];
  ipv6: boolean;
  /** Drop packets that cannot be attributed to a selected interface (set when the caller restricted them). */
  strict: boolean;
  stats: DiscoveryStats;
  onMessage: (buf: Uint8Array, sourcePort: number, iface: string | undefined) => void;
}

function bind(sock: Socket, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    sock.once("error", onError);
    sock.bind({ port: MDNS_PORT, address, exclusive: false }, () => {
      sock.off("error", onError);
      resolve();
    });
  });
}

function closeSocket(sock: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      sock.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

export class Querier {
  private sending: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly opts: QuerierOptions,
    private readonly v4: { sock: Socket; ifaces: Iface[] } | undefined,
    private readonly v6: { sock: Socket; ifaces: Iface[] } | undefined,
  ) {}

  /**
   * Binds and joins the group on every interface that takes it.
   * @throws {DiscoveryError} `UNAVAILABLE` when no interface could join (no multicast route, port 5353 taken
   * without SO_REUSEADDR, no permission).
   */
  static async open(opts: QuerierOptions): Promise<Querier> {
    const problems: string[] = [];
    const open = async (family: 4 | 6) => {
      const candidates = opts.ifaces.filter((i) => (family === 4 ? i.ipv4 : i.ipv6.length > 0));
      if (candidates.length === 0) return undefined;
      const sock = createSocket(
        family === 4 ? { type: "udp4", reuseAddr: true } : { type: "udp6", reuseAddr: true, ipv6Only: true },
      );
      try {
        await bind(sock, family === 4 ? "0.0.0.0" : "::");
      } catch (e) {
        problems.push(`udp${family} bind to port ${MDNS_PORT}: ${(e as Error).message}`);
        await closeSocket(sock);
        return undefined;
      }
      const joined: Iface[] = [];
      for (const i of candidates) {
        try {
          if (family === 4) sock.addMembership(MDNS_IPV4, i.ipv4!.address);
          else sock.addMembership(MDNS_IPV6, `::%${i.name}`);
          joined.push(i);
        } catch (e) {
          problems.push(`join ${family === 4 ? MDNS_IPV4 : MDNS_IPV6} on ${i.name}: ${(e as Error).message}`);
        }
      }
      if (joined.length === 0) {
        await closeSocket(sock);
        return undefined;
      }
      try {
        sock.setMulticastTTL(255);
        sock.setMulticastLoopback(true); // a responder on this host must hear us too
      } catch {
        // best effort: defaults work
      }
      return { sock, ifaces: joined };
    };
    const v4 = await open(4);
    const v6 = opts.ipv6 ? await open(6) : undefined;
    if (!v4 && !v6) {
      throw new DiscoveryError(
        "UNAVAILABLE",
        `multicast DNS is not available: ${problems.join("; ") || "no interface with an address to browse on"}`,
      );
    }
    const q = new Querier(opts, v4, v6);
    v4?.sock.on("message", (m, r) => q.receive(m, r.address, r.port, 4));
    v6?.sock.on("message", (m, r) => q.receive(m, r.address, r.port, 6));
    // Errors after binding (e.g. ICMP-triggered) must not crash the process.
    v4?.sock.on("error", () => opts.stats.sendErrors++);
    v6?.sock.on("error", () => opts.stats.sendErrors++);
    return q;
  }

  /** Interface names joined, per family. */
  get joined(): { ipv4: string[]; ipv6: string[] } {
    return { ipv4: this.v4?.ifaces.map((i) => i.name) ?? [], ipv6: this.v6?.ifaces.map((i) => i.name) ?? [] };
  }

  private receive(buf: Uint8Array, address: string, port: number, family: 4 | 6): void {
    if (this.closed) return;
    let iface: string | undefined;
    if (family === 4) {
      iface = this.v4?.ifaces.find((i) => inSubnet(address, i))?.name;
    } else {
      // Bun and Node give link-local sources a zone (`%name`); Deno does not.
      const zone = address.includes("%") ? address.slice(address.indexOf("%") + 1) : undefined;
      iface = zone ? this.v6?.ifaces.find((i) => i.name === zone)?.name : undefined;
      if (!iface && !zone && this.v6?.ifaces.length === 1) iface = this.v6.ifaces[0].name;
      if (zone && !iface && this.opts.strict) {
        this.opts.stats.packets++;
        this.opts.stats.foreignInterface++;
        return;
      }
    }
    if (family === 4 && !iface && this.opts.strict) {
      this.opts.stats.packets++;
      this.opts.stats.foreignInterface++;
      return;
    }
    this.opts.onMessage(buf, port, iface);
  }

  /** Sends `questions` as one query on every joined interface, v4 then v6; errors are counted. */
  query(questions: Question[]): Promise<void> {
    if (questions.length === 0 || this.closed) return Promise.resolve();
    const packet = queryPacket(questions);
    const run = async () => {
      for (const [fam, side] of [[4, this.v4], [6, this.v6]] as const) {
        for (const i of side?.ifaces ?? []) {
          if (this.closed) return;
          try {
            side!.sock.setMulticastInterface(fam === 4 ? i.ipv4!.address : `::%${i.name}`);
            await new Promise<void>((resolve, reject) =>
              side!.sock.send(packet, MDNS_PORT, fam === 4 ? MDNS_IPV4 : MDNS_IPV6, (e) => (e ? reject(e) : resolve()))
            );
            this.opts.stats.sent++;
          } catch {
            this.opts.stats.sendErrors++;
          }
        }
      }
    };
    // setMulticastInterface is per socket: one query at a time
    this.sending = this.sending.then(run, run);
    return this.sending;
  }

  /** Closes both sockets. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sending.catch(() => {});
    await Promise.all([this.v4 && closeSocket(this.v4.sock), this.v6 && closeSocket(this.v6.sock)]);
  }
}
