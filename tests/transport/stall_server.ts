// A server whose application stops reading: for each bidi stream it takes one chunk and then
// never reads again. Run in its own process under Bun or Deno; prints {"port":N}.
//
//   stall_server.ts <certDir>

import { defaultTransport } from "../../src/transport/mod.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const { readFileSync } = await import("node:fs");
const t = await defaultTransport();
const held: unknown[] = [];
const listener = await t.listen({
  host: "127.0.0.1",
  port: 0,
  alpn: "echostream/1",
  tls: { cert: readFileSync(`${args[0]}/cert.pem`, "utf8"), key: readFileSync(`${args[0]}/key.pem`, "utf8") },
}, (conn) => {
  conn.handle({
    bidi: async (s) => {
      const it = s[Symbol.asyncIterator]();
      await it.next();
      held.push(it); // keep the stream, never read again
    },
  });
});
console.log(JSON.stringify({ port: listener.address.port }));
