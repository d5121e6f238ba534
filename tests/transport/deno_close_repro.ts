// Minimal reproduction (docs/TRANSPORT.md "Deno: close discards unsent data"): on Deno 2.9.6, bytes
// written on a QUIC stream, with write() and close() of the writer resolved, are lost when the
// connection is closed at once: quinn buffers them and Deno's QuicConn.close() discards what it
// has not sent. After a 1 ms wait they arrive (loopback). Prints which trials the server got:
//
//   deno run -A --unstable-net tests/transport/deno_close_repro.ts
//   ["hello after 1 ms","hello after 5 ms","hello after 20 ms"]   (the three 0 ms trials lost)

import { createDevCertificates } from "../../src/security/dev_cert.ts";
const c = await createDevCertificates({ hosts: ["localhost", "127.0.0.1"] });
const ep = new Deno.QuicEndpoint({ hostname: "127.0.0.1", port: 0 });
const listener = ep.listen({ cert: c.cert, key: c.key, alpnProtocols: ["x"] });
const got: string[] = [];
(async () => {
  for await (const incoming of listener) {
    const conn = await incoming.accept();
    (async () => {
      for await (const s of conn.incomingUnidirectionalStreams) {
        const text = await new Response(s).text().catch((e) => `error ${e}`);
        got.push(text);
      }
    })().catch(() => {});
  }
})();
async function trial(waitMs: number) {
  const conn = await Deno.connectQuic({ hostname: "127.0.0.1", port: ep.addr.port, caCerts: [c.ca], alpnProtocols: ["x"], serverName: "localhost" });
  const s = await conn.createUnidirectionalStream();
  const w = s.getWriter();
  await w.write(new TextEncoder().encode(`hello after ${waitMs} ms`));
  await w.close();
  if (waitMs) await new Promise((r) => setTimeout(r, waitMs));
  conn.close({ closeCode: 0, reason: "" });
}
for (const ms of [0, 0, 0, 1, 5, 20]) await trial(ms);
await new Promise((r) => setTimeout(r, 500));
console.log(JSON.stringify(got));
Deno.exit(0);
