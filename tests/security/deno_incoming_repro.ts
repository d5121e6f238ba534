// Minimal reproduction (Deno 2.9.6): reading any property of a Deno.QuicIncoming but localIp
// (remoteAddr, remoteAddressValidated) consumes the incoming's resource, so accept() and refuse()
// then throw "BadResource: Invalid QuicIncoming resource" and the client is refused. Reading
// remoteAddr is why EchoStream cannot refuse per address before the handshake on Deno (it
// refuses per address after it; total and pending-handshake limits still refuse before). Run:
//   deno run --unstable-net -A tests/security/deno_incoming_repro.ts
// Expected on a fixed Deno: "remoteAddr {...}", "accepted {...}", "client connected".

import { createDevCertificates } from "../../src/security/mod.ts";
const certs = await createDevCertificates();
const ep = new Deno.QuicEndpoint({ hostname: "127.0.0.1", port: 0 });
const listener = ep.listen({ alpnProtocols: ["x"], cert: certs.cert, key: certs.key });
(async () => {
  for await (const inc of listener) {
    for (const k of ["remoteAddr"] as const) {
      try { console.log(k, JSON.stringify(inc[k])); } catch (e) { console.log(k, "THROWS", String(e)); }
    }
    const c = await inc.accept();
    console.log("accepted", JSON.stringify(c.remoteAddr));
  }
})();
const c = await Deno.connectQuic({ hostname: "127.0.0.1", port: ep.addr.port, alpnProtocols: ["x"], caCerts: [certs.ca] });
console.log("client connected");
c.close(); listener.stop(); ep.close();
