// Shared by the adapters' listen(): the certificate to serve, made on the fly when none is given.

import { notice } from "../observe/log.ts";
import { certificateFingerprint, createDevCertificates, formatFingerprint } from "../security/dev_cert.ts";
import type { ListenOptions, ServerTls } from "./types.ts";

/** The TLS material to serve and what a client must trust. */
export async function serverTls(o: ListenOptions): Promise<{ tls: ServerTls; trust: { ca: string | undefined; fingerprint: string } }> {
  if (o.tls) return { tls: o.tls, trust: { ca: undefined, fingerprint: await certificateFingerprint(o.tls.cert) } };
  const wildcard = o.host === "0.0.0.0" || o.host === "::" || o.host === "";
  const hosts = ["localhost", "127.0.0.1", "::1"];
  if (!wildcard && !hosts.includes(o.host)) hosts.push(o.host);
  const dev = await createDevCertificates({ hosts });
  (o.log ?? ((m: string) => notice("transport", m)))(
    `echostream: no TLS certificate given; serving a development certificate for ${hosts.join(", ")}. ` +
      `Clients trust it with { ca } (listener.trust.ca) or pin its fingerprint ${formatFingerprint(dev.fingerprint)}. ` +
      `Development CA SHA-256: ${formatFingerprint(dev.caFingerprint)}`,
  );
  return { tls: { cert: dev.cert, key: dev.key }, trust: { ca: dev.ca, fingerprint: dev.fingerprint } };
}
