// DNS-SD naming for EchoStream: service type, the per-name subtype, instance names and TXT records.

import { createHash } from "node:crypto";
import { DiscoveryError } from "./discovery_error.ts";

/** The DNS-SD service type (QUIC runs over UDP, so `_udp` per RFC 6763 §7). */
export const SERVICE_TYPE = "_echostream._udp";
/** The browse domain: multicast DNS only. */
export const DOMAIN = "local";
/** `_echostream._udp.local`, the type's PTR name. */
export const TYPE_FQDN = `${SERVICE_TYPE}.${DOMAIN}`;

const encoder = new TextEncoder();

/** Bytes of `s` in UTF-8. */
export function utf8Length(s: string): number {
  return encoder.encode(s).length;
}

/** The form names are compared in: NFC, lower case (DNS-SD instance names compare case-insensitively). */
export function canonicalName(name: string): string {
  return name.normalize("NFC").toLowerCase();
}

/**
 * Checks a service name can be a DNS-SD instance label: 1–63 UTF-8 bytes, no dot (ciao does not escape
 * dots), no control characters.
 */
export function checkServiceName(name: unknown): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new DiscoveryError(
      "INVALID_ARGUMENT",
      `service name must be a non-empty string, received ${JSON.stringify(name)}`,
    );
  }
  const bytes = utf8Length(name);
  if (bytes > 63) {
    throw new DiscoveryError(
      "INVALID_ARGUMENT",
      `service name must be at most 63 UTF-8 bytes (one DNS label), received ${bytes}`,
    );
  }
  // deno-lint-ignore no-control-regex
  if (/[.\u0000-\u001f\u007f]/.test(name)) {
    throw new DiscoveryError(
      "INVALID_ARGUMENT",
      `service name must not contain dots or control characters, received ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/**
 * The subtype label for a service name: `_es-` followed by the first 16 hex digits of the SHA-256 of the
 * name in canonical form (NFC, lower case, UTF-8). In a shell:
 * `printf %s audioservice | sha256sum | cut -c1-16`. A hash keeps the label short, ASCII and valid
 * whatever the name's script, and browsing `_es-<hash>._sub._echostream._udp.local` wakes only servers of
 * that name.
 */
export function subtypeLabel(name: string): string {
  const hex = createHash("sha256").update(canonicalName(name), "utf8").digest("hex");
  return `_es-${hex.slice(0, 16)}`;
}

/** `_es-<hash>._sub._echostream._udp.local`, the PTR name browsed for one service name. */
export function subtypeFqdn(name: string): string {
  return `${subtypeLabel(name)}._sub.${TYPE_FQDN}`;
}

/**
 * The instance label of `fqdn` if it is an instance of our type (`<instance>._echostream._udp.local`),
 * undefined otherwise. dns-packet joins labels with dots without escaping, so an instance label that
 * itself holds a dot (possible from other responders) comes back with its dot.
 */
export function instanceLabel(fqdn: string): string | undefined {
  const suffix = `.${TYPE_FQDN}`;
  const n = fqdn.endsWith(".") ? fqdn.slice(0, -1) : fqdn;
  if (n.length <= suffix.length || n.slice(-suffix.length).toLowerCase() !== suffix) return undefined;
  const label = n.slice(0, -suffix.length);
  return utf8Length(label) <= 63 ? label : undefined;
}

/** A name as DNS carries it: no trailing dot, compared lower case. */
export function nameKey(name: string): string {
  return (name.endsWith(".") ? name.slice(0, -1) : name).toLowerCase();
}

/** Checks TXT entries we publish: printable ASCII keys without `=`, each `key=value` at most 255 bytes. */
export function checkTxt(txt: Record<string, string>): void {
  for (const [k, v] of Object.entries(txt)) {
    if (!/^[\x20-\x3c\x3e-\x7e]+$/.test(k)) {
      throw new DiscoveryError(
        "INVALID_ARGUMENT",
        `TXT key must be printable ASCII without "=", received ${JSON.stringify(k)}`,
      );
    }
    if (typeof v !== "string") {
      throw new DiscoveryError("INVALID_ARGUMENT", `TXT value for "${k}" must be a string, received ${typeof v}`);
    }
    const n = utf8Length(k) + 1 + utf8Length(v);
    if (n > 255) {
      throw new DiscoveryError("INVALID_ARGUMENT", `TXT entry "${k}" must be at most 255 bytes, received ${n}`);
    }
  }
}

/**
 * Parses TXT strings into a null-prototype map (keys lower case, first occurrence wins per RFC 6763 §6.4,
 * a key without `=` maps to ""). Returns undefined when the record breaks a limit or holds a bad key.
 */
export function parseTxt(
  strings: readonly Uint8Array[],
  limits: { maxTxtBytes: number; maxTxtEntries: number },
): Record<string, string> | undefined {
  if (strings.length > limits.maxTxtEntries) return undefined;
  let total = 0;
  const out: Record<string, string> = Object.create(null);
  const dec = new TextDecoder();
  for (const s of strings) {
    if (!(s instanceof Uint8Array)) return undefined;
    total += s.length + 1;
    if (total > limits.maxTxtBytes) return undefined;
    if (s.length === 0) continue; // an empty TXT record is one empty string
    let eq = s.indexOf(0x3d);
    if (eq === 0) return undefined; // no key
    if (eq < 0) eq = s.length;
    for (let i = 0; i < eq; i++) if (s[i] < 0x20 || s[i] > 0x7e) return undefined;
    const key = dec.decode(s.subarray(0, eq)).toLowerCase();
    if (key in out) continue;
    out[key] = eq < s.length ? dec.decode(s.subarray(eq + 1)) : "";
  }
  return out;
}
