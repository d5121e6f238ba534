// Test helper: mDNS responses built with dns-packet, as a responder would send them.

import { Buffer } from "node:buffer";
import { encode } from "dns-packet";
import { subtypeFqdn } from "../../src/discovery/_names.ts";

export interface FakeService {
  name: string;
  instance?: string;
  port?: number;
  host?: string;
  addresses?: string[];
  txt?: string[];
  ttl?: number;
}

// deno-lint-ignore no-explicit-any
export type AnyRecord = any;

/** The records of one instance: PTR (type and subtype), SRV, TXT, A/AAAA. */
export function serviceRecords(s: FakeService): AnyRecord[] {
  const instance = `${s.instance ?? s.name}._echostream._udp.local`;
  const host = s.host ?? `${(s.instance ?? s.name).replace(/\W/g, "-")}.local`;
  const ttl = s.ttl ?? 120;
  const txt = s.txt ?? ["v=1", "alpn=echostream/1", `svc=${s.name}`, `fp=${"ab".repeat(32)}`];
  return [
    { type: "PTR", name: subtypeFqdn(s.name), ttl: s.ttl ?? 4500, data: instance },
    { type: "PTR", name: "_echostream._udp.local", ttl: s.ttl ?? 4500, data: instance },
    {
      type: "SRV",
      name: instance,
      ttl,
      flush: true,
      data: { port: s.port ?? 5000, target: host, priority: 0, weight: 0 },
    },
    { type: "TXT", name: instance, ttl: s.ttl ?? 4500, flush: true, data: txt.map((t) => Buffer.from(t)) },
    ...(s.addresses ?? ["10.0.0.7"]).map((a) => ({
      type: a.includes(":") ? "AAAA" : "A",
      name: host,
      ttl,
      flush: true,
      data: a,
    })),
  ];
}

/** A response packet carrying `answers`. */
export function response(answers: AnyRecord[], additionals: AnyRecord[] = []): Uint8Array {
  return encode({ type: "response", id: 0, flags: 1 << 10, answers, additionals });
}
