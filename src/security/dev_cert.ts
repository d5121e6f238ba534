/**
 * Development certificates: a throwaway CA and a leaf for local hosts (ECDSA P-256), built with
 * WebCrypto alone, on Bun, Deno (no permissions) and Node 20. Not for production.
 *
 * @example Create certificates and log the pin
 * ```ts
 * import { createDevCertificates, formatFingerprint } from "@echostream/core/security";
 *
 * const dev = await createDevCertificates({ hosts: ["localhost", "127.0.0.1"] });
 * console.log(formatFingerprint(dev.fingerprint)); // "3F:A2:..."
 * ```
 *
 * @module
 */

import * as der from "./_der.ts";

/** Options for {@linkcode createDevCertificates}. */
export interface DevCertificateOptions {
  /**
   * DNS names and IPv4/IPv6 literals for the leaf; the first is its common name.
   * @default {["localhost", "127.0.0.1", "::1"]}
   */
  hosts?: string[];
  /**
   * Days the leaf stays valid, up to 3650. The CA outlives it by one day.
   * @default {30}
   */
  validityDays?: number;
  /**
   * Common name of the CA.
   * @default {"EchoStream development CA"}
   */
  commonName?: string;
}

/** A development CA and a leaf issued by it. */
export interface DevCertificates {
  /** CA certificate, PEM. */
  ca: string;
  /** CA private key, PKCS#8 PEM. */
  caKey: string;
  /** Leaf then CA certificate, PEM: the chain a server presents. */
  cert: string;
  /** Leaf private key, PKCS#8 PEM. */
  key: string;
  /** SHA-256 of the leaf certificate DER, lowercase hex (what a client pins). */
  fingerprint: string;
  /** SHA-256 of the CA certificate DER, lowercase hex. */
  caFingerprint: string;
  /** Hosts in the leaf's SAN. */
  hosts: string[];
  /** When the leaf expires (whole seconds). */
  notAfter: Date;
}

const subtle = globalThis.crypto.subtle;
const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const DAY = 86_400_000;

const received = (v: unknown) =>
  typeof v === "string"
    ? JSON.stringify(v)
    : typeof v === "number"
    ? String(v)
    : Array.isArray(v)
    ? "an array"
    : typeof v;

/** GeneralName: iPAddress [7] for IP literals, else dNSName [2]. */
function generalName(host: string): Uint8Array {
  const ip = host.includes(":") ? der.parseIPv6(host) : der.parseIPv4(host);
  if (ip) return der.implicit(7, Uint8Array.from(ip));
  if (/^[\d.]+$|:/.test(host) || !/^(\*\.)?[\w]([\w.-]*\w)?$/.test(host)) {
    throw new TypeError(`hosts: expected DNS names or IP literals, received ${received(host)}`);
  }
  return der.implicit(2, new TextEncoder().encode(host));
}

function name(cn: string, org?: string): Uint8Array {
  const rdn = (o: string, v: string) => der.set(der.sequence(der.oid(o), der.utf8String(v)));
  return der.sequence(rdn("2.5.4.3", cn), ...(org ? [rdn("2.5.4.10", org)] : []));
}

const ext = (id: string, critical: boolean, value: Uint8Array) =>
  der.sequence(der.oid(id), ...(critical ? [der.boolean(true)] : []), der.octetString(value));

const ECDSA_SHA256 = der.sequence(der.oid("1.2.840.10045.4.3.2"));

async function certificate(
  signer: CryptoKey,
  issuer: Uint8Array,
  subject: Uint8Array,
  validity: [Date, Date],
  spki: Uint8Array,
  extensions: Uint8Array[],
): Promise<der.Bytes> {
  const tbs = der.sequence(
    der.explicit(0, der.smallInteger(2)),
    der.randomSerial(),
    ECDSA_SHA256,
    issuer,
    der.sequence(der.time(validity[0]), der.time(validity[1])),
    subject,
    spki,
    der.explicit(3, der.sequence(...extensions)),
  );
  const rs = new Uint8Array(await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, signer, tbs));
  return der.sequence(tbs, ECDSA_SHA256, der.bitString(der.ecdsaSignature(rs)));
}

/** SPKI DER and its key identifier: SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2). */
async function publicKeyInfo(key: CryptoKey): Promise<{ spki: der.Bytes; ski: der.Bytes }> {
  const spki = new Uint8Array(await subtle.exportKey("spki", key));
  const [, bits] = der.readChildren(spki, der.readTlv(spki));
  const ski = new Uint8Array(await subtle.digest("SHA-1", spki.subarray(bits.start + 1, bits.end)));
  return { spki, ski };
}

const keyPem = async (key: CryptoKey) => der.toPem("PRIVATE KEY", new Uint8Array(await subtle.exportKey("pkcs8", key)));

function validate(opts: DevCertificateOptions) {
  if (typeof opts !== "object" || opts === null) {
    throw new TypeError(`options: expected an object, received ${received(opts)}`);
  }
  const { hosts = ["localhost", "127.0.0.1", "::1"], validityDays = 30, commonName = "EchoStream development CA" } =
    opts;
  const bad = !Array.isArray(hosts) || hosts.length === 0 ? [hosts] : hosts.filter((h) => typeof h !== "string" || !h);
  if (bad.length) {
    throw new TypeError(`hosts: expected a non-empty array of non-empty strings, received ${received(bad[0])}`);
  }
  if (typeof validityDays !== "number") {
    throw new TypeError(`validityDays: expected a number, received ${received(validityDays)}`);
  }
  if (!(validityDays > 0 && validityDays <= 3650)) {
    throw new RangeError(`validityDays: expected a positive number up to 3650, received ${validityDays}`);
  }
  if (typeof commonName !== "string" || commonName === "") {
    throw new TypeError(`commonName: expected a non-empty string, received ${received(commonName)}`);
  }
  return { hosts: [...hosts], validityDays, commonName };
}

/**
 * Creates a development CA and a leaf signed by it (ECDSA P-256, ecdsa-with-SHA256, X.509 v3).
 * The leaf is not a CA, has serverAuth and clientAuth, and lists every host in its subjectAltName.
 *
 * @example Server and client settings
 * ```ts
 * import { createDevCertificates } from "@echostream/core/security";
 *
 * const { cert, key, ca, fingerprint } = await createDevCertificates({ validityDays: 7 });
 * // server: { cert, key }; client: { caCerts: [ca] } or pin `fingerprint`
 * ```
 *
 * @param opts Hosts, leaf validity and CA name; every field is optional.
 * @returns The CA and leaf as PEM, their keys as PKCS#8 PEM, and their SHA-256 fingerprints.
 * @throws {TypeError} When `hosts` is empty or holds other than DNS names and IP literals, or on a wrong type.
 * @throws {RangeError} When `validityDays` is not in (0, 3650].
 */
export async function createDevCertificates(opts: DevCertificateOptions = {}): Promise<DevCertificates> {
  const { hosts, validityDays, commonName } = validate(opts);
  const names = hosts.map(generalName);
  const now = Math.floor(Date.now() / 1000) * 1000;
  const notBefore = new Date(now - 3_600_000);
  const notAfter = new Date(Math.floor((now + validityDays * DAY) / 1000) * 1000);

  const [caKeys, leafKeys] = await Promise.all([
    subtle.generateKey(EC, true, ["sign", "verify"]),
    subtle.generateKey(EC, true, ["sign", "verify"]),
  ]);
  const caPub = await publicKeyInfo(caKeys.publicKey);
  const leafPub = await publicKeyInfo(leafKeys.publicKey);
  const caName = name(commonName, "EchoStream");

  const caDer = await certificate(
    caKeys.privateKey,
    caName,
    caName,
    [notBefore, new Date(+notAfter + DAY)],
    caPub.spki,
    [
      ext("2.5.29.19", true, der.sequence(der.boolean(true), der.smallInteger(0))),
      ext("2.5.29.15", true, der.bitString(Uint8Array.of(0x06), 1)), // keyCertSign | cRLSign
      ext("2.5.29.14", false, der.octetString(caPub.ski)),
    ],
  );
  const leafDer = await certificate(caKeys.privateKey, caName, name(hosts[0]), [notBefore, notAfter], leafPub.spki, [
    ext("2.5.29.19", true, der.sequence()), // cA FALSE: the DER default, so omitted
    ext("2.5.29.15", true, der.bitString(Uint8Array.of(0x80), 7)), // digitalSignature
    ext("2.5.29.37", false, der.sequence(der.oid("1.3.6.1.5.5.7.3.1"), der.oid("1.3.6.1.5.5.7.3.2"))),
    ext("2.5.29.17", false, der.sequence(...names)),
    ext("2.5.29.14", false, der.octetString(leafPub.ski)),
    ext("2.5.29.35", false, der.sequence(der.implicit(0, caPub.ski))),
  ]);

  const ca = der.toPem("CERTIFICATE", caDer);
  const [caKey, key, fp, caFp] = await Promise.all([
    keyPem(caKeys.privateKey),
    keyPem(leafKeys.privateKey),
    subtle.digest("SHA-256", leafDer),
    subtle.digest("SHA-256", caDer),
  ]);
  return {
    ca,
    caKey,
    cert: der.toPem("CERTIFICATE", leafDer) + ca,
    key,
    fingerprint: der.hex(fp),
    caFingerprint: der.hex(caFp),
    hosts,
    notAfter,
  };
}

/**
 * SHA-256 fingerprint of the first CERTIFICATE block in `pem`.
 *
 * @example Fingerprint of a server chain (leaf first)
 * ```ts
 * import { certificateFingerprint, createDevCertificates } from "@echostream/core/security";
 *
 * const dev = await createDevCertificates();
 * console.log((await certificateFingerprint(dev.cert)) === dev.fingerprint); // true
 * ```
 *
 * @param pem Text holding at least one PEM CERTIFICATE block.
 * @returns Lowercase hex without separators (64 characters).
 * @throws {TypeError} (as a rejection) When `pem` holds no CERTIFICATE block.
 */
export async function certificateFingerprint(pem: string): Promise<string> {
  const blocks = typeof pem === "string" ? der.decodePem(pem) : [];
  if (blocks.length === 0) {
    throw new TypeError(`expected PEM text with a CERTIFICATE block, received ${received(pem).slice(0, 60)}`);
  }
  return der.hex(await subtle.digest("SHA-256", blocks[0]));
}

/**
 * Formats a hex fingerprint the way OpenSSL prints it, for logs.
 *
 * @example Format a fingerprint
 * ```ts
 * import { formatFingerprint } from "@echostream/core/security";
 *
 * console.log(formatFingerprint("ab01ff")); // "AB:01:FF"
 * ```
 *
 * @param hex Hex digits (colons are ignored), an even number of them.
 * @returns Uppercase byte pairs joined by ":".
 * @throws {TypeError} When `hex` is not an even-length hex string.
 */
export function formatFingerprint(hex: string): string {
  const clean = typeof hex === "string" ? hex.replaceAll(":", "") : "";
  if (!/^([0-9a-fA-F]{2})+$/.test(clean)) {
    throw new TypeError(`expected an even-length hex string, received ${received(hex)}`);
  }
  return clean.toUpperCase().match(/../g)!.join(":");
}
