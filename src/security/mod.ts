/**
 * Security: TLS material (development certificates, a CA plus a leaf, ECDSA P-256, made on the
 * fly with WebCrypto; certificate fingerprints for pinning), and the building blocks of access
 * control and rate limiting the server uses: NATS-style name patterns, the access-policy
 * compiler and the GCRA rate limiter (docs/SECURITY.md).
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
export { patternProblem, namePattern } from "./names.ts";
export {
  type Access,
  type AccessHook,
  type AccessKind,
  type AccessPolicy,
  type AccessRules,
  compileAccess,
  type NameRules,
  type PeerAccess,
  type Permissions,
  validateAccessPolicy,
  type Who,
} from "./access.ts";
export { type ConnectionLimits, Gcra, type LimitSubject, principalKey, RateLimiter, type RateLimitRule, validateRateLimitRule } from "./rate_limit.ts";
export { type AdmissionLimits, DEFAULT_CONNECTION_LIMITS, DEFAULT_PEER_LIMITS, type PeerLimits, type ServerLimits } from "./limits.ts";
export type { PeerCertificate, SocketAddress } from "../transport/types.ts";
export type { ProtocolLimits } from "../protocol/limits.ts";
