// Minimal ASN.1 DER encoder (just what X.509 certificates need), a tiny TLV reader, and PEM
// encoding/decoding. Private to src/security: no npm packages, runs on Bun, Deno and Node 20.

/** Bytes backed by a plain ArrayBuffer (what WebCrypto accepts as a BufferSource). */
export type Bytes = Uint8Array<ArrayBuffer>;

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Bytes {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function encodeLength(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (; n > 0; n = Math.floor(n / 256)) out.unshift(n & 0xff);
  return [0x80 | out.length, ...out];
}

/** One TLV: `tag` (a single identifier byte), the DER length, then the content. */
export function tlv(tag: number, ...content: Uint8Array[]): Bytes {
  const body = concat(...content);
  return concat(Uint8Array.of(tag, ...encodeLength(body.length)), body);
}

/** SEQUENCE of already-encoded items. */
export const sequence = (...items: Uint8Array[]): Bytes => tlv(0x30, ...items);
/** SET of already-encoded items (callers pass them in DER order; X.509 names use one item per SET). */
export const set = (...items: Uint8Array[]): Bytes => tlv(0x31, ...items);

/** INTEGER from unsigned big-endian bytes: strips leading zeros, adds one when the top bit is set. */
export function integer(unsigned: Uint8Array): Bytes {
  let i = 0;
  while (i < unsigned.length - 1 && unsigned[i] === 0) i++;
  const v = unsigned.subarray(i);
  if (v.length === 0) return tlv(0x02, Uint8Array.of(0));
  return v[0] & 0x80 ? tlv(0x02, Uint8Array.of(0), v) : tlv(0x02, v);
}

/** A random positive 16-byte INTEGER (top bit clear, first byte non-zero): an X.509 serial number. */
export function randomSerial(): Bytes {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f;
  if (b[0] === 0) b[0] = 1;
  return integer(b);
}

/** INTEGER from a small non-negative number. */
export function smallInteger(n: number): Bytes {
  const bytes: number[] = [];
  for (; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return integer(Uint8Array.from(bytes));
}

/** OBJECT IDENTIFIER from dotted form, e.g. "1.2.840.10045.4.3.2". */
export function oid(dotted: string): Bytes {
  const arcs = dotted.split(".").map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) {
    throw new TypeError(`expected a dotted object identifier, received "${dotted}"`);
  }
  const out: number[] = [];
  for (const arc of [arcs[0] * 40 + arcs[1], ...arcs.slice(2)]) {
    const chunk = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Uint8Array.from(out));
}

const encoder = new TextEncoder();

/** UTF8String. */
export const utf8String = (s: string): Bytes => tlv(0x0c, encoder.encode(s));

/** PrintableString (A-Z a-z 0-9 space and '()+,-./:=?). */
export function printableString(s: string): Bytes {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s)) {
    throw new TypeError(`expected PrintableString characters, received "${s}"`);
  }
  return tlv(0x13, encoder.encode(s));
}

/** IA5String (ASCII). */
export function ia5String(s: string): Bytes {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) throw new TypeError(`expected ASCII characters, received "${s}"`);
  }
  return tlv(0x16, encoder.encode(s));
}

/** X.509 Time: UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5). Seconds precision, UTC. */
export function time(date: Date): Bytes {
  const y = date.getUTCFullYear();
  const p = (n: number) => String(n).padStart(2, "0");
  const rest = p(date.getUTCMonth() + 1) + p(date.getUTCDate()) + p(date.getUTCHours()) +
    p(date.getUTCMinutes()) + p(date.getUTCSeconds()) + "Z";
  if (y >= 1950 && y < 2050) return tlv(0x17, encoder.encode(p(y % 100) + rest));
  return tlv(0x18, encoder.encode(String(y).padStart(4, "0") + rest));
}

/** BIT STRING with `unusedBits` padding bits at the end of the last byte. */
export const bitString = (bytes: Uint8Array, unusedBits = 0): Bytes => tlv(0x03, Uint8Array.of(unusedBits), bytes);
/** OCTET STRING. */
export const octetString = (bytes: Uint8Array): Bytes => tlv(0x04, bytes);
/** BOOLEAN (DER: TRUE is 0xff). */
export const boolean = (v: boolean): Bytes => tlv(0x01, Uint8Array.of(v ? 0xff : 0));
/** Context-specific [n] EXPLICIT wrapper around one encoded element. */
export const explicit = (n: number, element: Uint8Array): Bytes => tlv(0xa0 | n, element);
/** Context-specific [n] IMPLICIT: `content` replaces the original tag's content (primitive unless `constructed`). */
export const implicit = (n: number, content: Uint8Array, constructed = false): Bytes =>
  tlv((constructed ? 0xa0 : 0x80) | n, content);

/** ECDSA signature value: WebCrypto's r||s (IEEE P1363) as SEQUENCE { INTEGER r, INTEGER s }. */
export function ecdsaSignature(rs: Uint8Array): Bytes {
  const half = rs.length / 2;
  return sequence(integer(rs.subarray(0, half)), integer(rs.subarray(half)));
}

/** The 4 octets of a dotted-quad IPv4 literal, or undefined. */
export function parseIPv4(s: string): number[] | undefined {
  const parts = s.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) < 256)) return undefined;
  return parts.map(Number);
}

/** The 16 octets of an IPv6 literal ("::" compression and a dotted IPv4 tail allowed), or undefined. */
export function parseIPv6(s: string): number[] | undefined {
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === "") return [];
    const out: number[] = [];
    const parts = h.split(":");
    for (let i = 0; i < parts.length; i++) {
      const v4 = i === parts.length - 1 ? parseIPv4(parts[i]) : undefined;
      if (v4) out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      else if (/^[0-9a-fA-F]{1,4}$/.test(parts[i])) out.push(parseInt(parts[i], 16));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  return [...head, ...new Array<number>(fill).fill(0), ...tail].flatMap((g) => [g >> 8, g & 0xff]);
}

/** Lowercase hex of `bytes`. */
export const hex = (bytes: ArrayBuffer | Uint8Array): string =>
  Array.from(new Uint8Array(bytes), (x) => x.toString(16).padStart(2, "0")).join("");

/** A decoded TLV: its tag byte and where its content and the whole element end. */
export interface Tlv {
  tag: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset just past the content. */
  end: number;
}

/** Reads the TLV at `offset` (single-byte tags, definite lengths). */
export function readTlv(buf: Uint8Array, offset = 0): Tlv {
  const fail = () => new TypeError(`malformed DER at offset ${offset}`);
  if (offset + 2 > buf.length) throw fail();
  const tag = buf[offset];
  let len = buf[offset + 1];
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > buf.length) throw fail();
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i];
    start += n;
  }
  if (start + len > buf.length) throw fail();
  return { tag, start, end: start + len };
}

/** The children of a constructed element's content. */
export function readChildren(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = parent.start; off < parent.end;) {
    const t = readTlv(buf, off);
    if (t.end > parent.end) throw new TypeError(`malformed DER at offset ${off}`);
    out.push(t);
    off = t.end;
  }
  return out;
}

/** Standard base64 of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** PEM block with 64-character lines, ending in a newline. */
export function toPem(label: string, der: Uint8Array): string {
  const lines = toBase64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** DER contents of every `label` block in `pem`, in order (empty when there is none). */
export function decodePem(pem: string, label = "CERTIFICATE"): Bytes[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  const out: Bytes[] = [];
  for (const m of pem.matchAll(re)) {
    const b64 = m[1].replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      throw new TypeError(`expected base64 inside the ${label} PEM block`);
    }
    out.push(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  }
  return out;
}
