/**
 * Security: TLS material. Today: development certificates (a CA plus a leaf, ECDSA P-256)
 * made on the fly with WebCrypto, and certificate fingerprints for pinning.
 *
 * @example Make development certificates
 * ```ts
 * import { createDevCertificates, formatFingerprint } from "@echostream/core/security";
 *
 * const certs = await createDevCertificates({ hosts: ["localhost", "127.0.0.1"] });
 * console.log(formatFingerprint(certs.fingerprint)); // AB:CD:… pin this, or trust certs.ca
 * ```
 *
 * @module
 */

export {
  certificateFingerprint,
  createDevCertificates,
  type DevCertificateOptions,
  type DevCertificates,
  formatFingerprint,
} from "./dev_cert.ts";
