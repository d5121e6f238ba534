// A QUIC echo server and client on loopback with EchoStream's transport layer: no certificate
// given, so the server makes a development one and tells the client what to trust.
//
//   bun examples/quic_echo.ts
//   deno run --unstable-net -A examples/quic_echo.ts

import { defaultTransport } from "../src/transport/mod.ts";

const transport = await defaultTransport(); // Bun: node:quic, Deno: Deno.QuicEndpoint, Node: @matrixai/quic
const listener = await transport.listen(
  { host: "127.0.0.1", port: 0, alpn: "echostream/1", log: (m) => console.log(`[server] ${m.slice(0, 90)}…`) },
  (conn) => {
    console.log(`[server] connection from ${conn.remote.host}:${conn.remote.port}`);
    conn.handle({
      bidi: async (stream) => {
        for await (const chunk of stream) await stream.write(chunk); // write() waits for flow credit
        await stream.end();
      },
    });
  },
);

const conn = await transport.connect({
  host: "127.0.0.1",
  port: listener.address.port,
  alpn: "echostream/1",
  tls: { fingerprint: listener.trust.fingerprint }, // or { ca: listener.trust.ca }
});
const stream = await conn.openBidi();
await stream.write(new TextEncoder().encode("hello over QUIC"));
await stream.end();
let reply = "";
for await (const chunk of stream) reply += new TextDecoder().decode(chunk);
console.log(`[client] echoed: "${reply}" (ALPN ${conn.alpn}, stats ${JSON.stringify(conn.stats())})`);

await conn.close(0, "done");
await listener.close();
