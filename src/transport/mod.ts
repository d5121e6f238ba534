/**
 * The transport layer: one interface over each runtime's QUIC stack. `defaultTransport()`
 * picks the adapter for the running runtime; `./bun` and `./deno` export each adapter directly.
 *
 * @example Echo over QUIC with the runtime's own stack
 * ```ts
 * import { defaultTransport } from "@echostream/core/transport";
 * import { createDevCertificates } from "@echostream/core/security";
 *
 * const t = await defaultTransport();
 * const certs = await createDevCertificates();
 * const listener = await t.listen({ host: "127.0.0.1", port: 0, alpn: "echostream/1", tls: certs }, (conn) => {
 *   conn.handle({ bidi: async (s) => { for await (const c of s) await s.write(c); await s.end(); } });
 * });
 * const conn = await t.connect({ host: "127.0.0.1", port: listener.address.port, alpn: "echostream/1", tls: { ca: certs.ca } });
 * const s = await conn.openBidi();
 * await s.write(new TextEncoder().encode("hi"));
 * await s.end();
 * for await (const chunk of s) console.log(new TextDecoder().decode(chunk)); // hi
 * await conn.close();
 * await listener.close();
 * ```
 *
 * @module
 */

export type * from "./types.ts";
export { TransportError, TransportErrorCode } from "./transport_error.ts";
export { defaultTransport, runtimeName } from "./select.ts";
