// Run in its own process under Bun, Deno (`--unstable-net -A`) or Node (bundled) by
// socket_release.test.ts: connections opened and closed one after another on this runtime's
// adapter must give back what they held. Counts the process's open file descriptors (each client
// connection binds a UDP socket) before and after; Linux only (/proc/self/fd). Prints one JSON line.

import { readdirSync } from "node:fs";
import { createDevCertificates } from "../../src/security/mod.ts";
import { defaultTransport } from "../../src/transport/mod.ts";

const t = await defaultTransport();
const ALPN = "echostream/1";
const CYCLES = 30;
const fds = () => readdirSync("/proc/self/fd").length;
const settle = () => new Promise((r) => setTimeout(r, 300));

const certs = await createDevCertificates();
const listener = await t.listen({ host: "127.0.0.1", port: 0, alpn: ALPN, tls: certs }, (conn) => {
  conn.handle({
    bidi: async (s) => {
      for await (const _ of s) { /* drain */ }
      await s.end();
    },
  });
});

async function cycle(): Promise<void> {
  const c = await t.connect({ host: "127.0.0.1", port: listener.address.port, alpn: ALPN, tls: { ca: certs.ca } });
  const s = await c.openBidi();
  await s.write(new Uint8Array([1]));
  await s.end();
  for await (const _ of s) { /* the server's end */ }
  await c.close();
}

for (let i = 0; i < 3; i++) await cycle(); // whatever a runtime makes once, lazily
await settle();
const before = fds();
for (let i = 0; i < CYCLES; i++) await cycle();
await settle();
const after = fds();
await listener.close();
console.log(JSON.stringify({ runtime: t.name, cycles: CYCLES, fdsPerConnection: Math.round(((after - before) / CYCLES) * 100) / 100 }));
