/**
 * Advertising an EchoStream server on the local network as a DNS-SD service over multicast DNS,
 * with `@homebridge/ciao` (which probes, announces, answers and says goodbye per RFC 6762/6763).
 *
 * @module
 */

import { logger } from "../observe/log.ts";
import type { CiaoService, Responder } from "@homebridge/ciao";
import { ALPN, PROTOCOL_VERSION } from "../protocol/version.ts";
import { DiscoveryError } from "./discovery_error.ts";
import { type Iface, interfaceOwning, isWildcard, selectInterfaces } from "./_interfaces.ts";
import { checkServiceName, checkTxt, SERVICE_TYPE, subtypeLabel } from "./_names.ts";

const log = logger("discovery");

/** TXT keys EchoStream sets itself; `txt` options cannot override them. */
export const RESERVED_TXT_KEYS: readonly string[] = Object.freeze(["v", "alpn", "svc", "fp"]);

/** What to advertise, and where. */
export interface AdvertiseOptions {
  /** The service name (the DNS-SD instance name, and TXT `svc`): 1–63 UTF-8 bytes, no dot. */
  name: string;
  /** The UDP port the QUIC listener is bound to. */
  port: number;
  /** SHA-256 fingerprint (hex, colons allowed) of the certificate clients must trust; published as TXT `fp`. */
  fingerprint?: string;
  /**
   * The address the listener is bound to. A wildcard (`0.0.0.0`, `::`, or none) advertises the addresses of
   * the selected interfaces (`0.0.0.0`: IPv4 only); a specific address advertises only that address.
   * @default {undefined} (every address)
   */
  host?: string;
  /**
   * Interface names or addresses to advertise on.
   * @default {undefined} (every interface with a non-internal IPv4 or IPv6 address)
   */
  interfaces?: string[];
  /** Extra TXT entries (keys `v`, `alpn`, `svc`, `fp` are reserved). */
  txt?: Record<string, string>;
  /**
   * Publish AAAA records and answer over IPv6 multicast too.
   * @default {true} unless `host` is an IPv4 address or `0.0.0.0`
   */
  ipv6?: boolean;
}

/** A running advertisement. */
export interface Advertisement {
  /** The service name as given. */
  readonly name: string;
  /** The instance name actually published: `name`, or `name (2)`… after a conflict on the network. */
  readonly instanceName: string;
  /** The subtype label (see {@link subtypeFor}). */
  readonly subtype: string;
  /** The interfaces the responder listens and answers on. */
  readonly interfaces: readonly string[];
  /** Sends goodbye packets (TTL 0) and shuts the responder down, so the process can exit. Idempotent. */
  close(): Promise<void>;
  /** Same as {@link Advertisement.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The DNS-SD subtype label browsed for a service name: `_es-` plus the first 16 hex digits of the SHA-256
 * of the name in NFC, lower case, UTF-8 (`printf %s audioservice | sha256sum | cut -c1-16`).
 *
 * @param name The service name.
 * @returns The label, e.g. `_es-4b3e6ac2b49a0d1f`.
 *
 * @example The subtype to browse with avahi-browse
 * ```ts
 * import { subtypeFor } from "@echostream/core/discovery";
 *
 * console.log(`avahi-browse -rt ${subtypeFor("AudioService")}._sub._echostream._udp`);
 * ```
 */
export function subtypeFor(name: string): string {
  return subtypeLabel(checkServiceName(name));
}

function normalizeFingerprint(fp: string): string {
  const hex = String(fp).replace(/[:\s]/g, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new DiscoveryError(
      "INVALID_ARGUMENT",
      `fingerprint must be SHA-256 hex (64 hex digits, colons allowed), received "${fp}"`,
    );
  }
  return hex;
}

function pickInterfaces(opts: AdvertiseOptions): { ifaces: Iface[]; restricted?: string[] } {
  if (!isWildcard(opts.host)) {
    const host = opts.host!.replace(/^\[|\]$/g, "");
    const owner = interfaceOwning(host);
    if (!owner) {
      throw new DiscoveryError("INVALID_ARGUMENT", `bound address ${host} belongs to no interface of this host`);
    }
    if (opts.interfaces && !selectInterfaces(opts.interfaces).some((i) => i.name === owner.name)) {
      throw new DiscoveryError(
        "INVALID_ARGUMENT",
        `bound address ${host} is on ${owner.name}, which interfaces excludes`,
      );
    }
    return { ifaces: [owner], restricted: [host] };
  }
  let ifaces = selectInterfaces(opts.interfaces);
  // Only loopback here: advertise there, so same-host clients (includeLoopback) still find the server.
  if (ifaces.length === 0 && !opts.interfaces) ifaces = selectInterfaces(undefined, true);
  if (ifaces.length === 0) throw new DiscoveryError("UNAVAILABLE", "no network interface to advertise on");
  return { ifaces };
}

/**
 * Advertises a server as `<name>._echostream._udp.local` with the subtype {@link subtypeFor}(name) and TXT
 * `v` (protocol version), `alpn`, `svc` (the name) and `fp` (certificate fingerprint). Resolves once the
 * name has been probed and announced. A name already taken on the network is renamed `name (2)`, `name (3)`…
 * (RFC 6762 §9); `instanceName` tells the published one.
 *
 * @param opts What to advertise and where.
 * @returns The running advertisement; call `close()` to send goodbyes and release the sockets.
 * @throws {DiscoveryError} `INVALID_ARGUMENT` for bad options, `UNAVAILABLE` without interfaces,
 * `ADVERTISE_FAILED` when probing or announcing fails.
 *
 * @example Advertise a QUIC server bound to port 5000
 * ```ts
 * import { advertise } from "@echostream/core/discovery";
 *
 * const ad = await advertise({ name: "AudioService", port: 5000, fingerprint: "ab".repeat(32) });
 * console.log(`advertised as ${ad.instanceName}`);
 * await ad.close(); // goodbye packets; the process can exit
 * ```
 */
export async function advertise(opts: AdvertiseOptions): Promise<Advertisement> {
  const name = checkServiceName(opts?.name);
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
    throw new DiscoveryError("INVALID_ARGUMENT", `port must be an integer in 1..65535, received ${String(opts.port)}`);
  }
  const txt: Record<string, string> = { v: String(PROTOCOL_VERSION), alpn: ALPN, svc: name };
  if (opts.fingerprint !== undefined) txt.fp = normalizeFingerprint(opts.fingerprint);
  for (const [k, v] of Object.entries(opts.txt ?? {})) {
    if (RESERVED_TXT_KEYS.includes(k.toLowerCase())) {
      throw new DiscoveryError("INVALID_ARGUMENT", `TXT key "${k}" is reserved (${RESERVED_TXT_KEYS.join(", ")})`);
    }
    txt[k] = v;
  }
  checkTxt(txt);
  const { ifaces, restricted } = pickInterfaces(opts);
  const host = opts.host?.replace(/^\[|\]$/g, "");
  const ipv4Host = host !== undefined && host !== "" && !host.includes(":");
  const ipv6 = opts.ipv6 ?? !ipv4Host;
  const subtype = subtypeLabel(name);
  const names = ifaces.map((i) => i.name);

  let responder: Responder;
  try {
    // Loaded on first use: browsing never needs it, and its `debug` dependency reads the whole
    // environment on import (Deno: --allow-env).
    const { default: ciao } = await import("@homebridge/ciao");
    responder = ciao.getResponder({ interface: names, advertiseIpv6: ipv6, disableIpv6: !ipv6 });
  } catch (e) {
    throw new DiscoveryError("UNAVAILABLE", `could not start the mDNS responder: ${(e as Error).message}`, {
      cause: e,
    });
  }
  let service: CiaoService | undefined;
  let instanceName = name;
  try {
    service = responder.createService({
      name,
      type: SERVICE_TYPE.slice(1, SERVICE_TYPE.indexOf(".")),
      protocol: "udp" as never,
      port: opts.port,
      // ciao prefixes the underscore itself
      subtypes: [subtype.slice(1)],
      txt,
      restrictedAddresses: restricted,
      disabledIpv6: !ipv6 || undefined,
    });
    // Probing may rename the service before advertise() resolves.
    service.on("name-change", (n: string) => (instanceName = n));
    await service.advertise();
    log.info("advertising {instance} ({subtype}) on port {port}", { instance: instanceName, subtype, port: opts.port, interfaces: names });
  } catch (e) {
    await service?.destroy().catch(() => {});
    await responder.shutdown().catch(() => {});
    throw new DiscoveryError("ADVERTISE_FAILED", `could not advertise "${name}": ${(e as Error).message}`, {
      cause: e,
    });
  }
  const svc = service;
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      try {
        await svc.destroy(); // goodbye packets (TTL 0) for every record
      } finally {
        await responder.shutdown();
        log.info("stopped advertising {instance}", { instance: instanceName });
      }
    })();
  return {
    name,
    get instanceName() {
      return instanceName;
    },
    subtype,
    interfaces: Object.freeze(names),
    close,
    [Symbol.asyncDispose]: close,
  };
}
