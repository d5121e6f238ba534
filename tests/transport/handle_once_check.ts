// Run in its own process under Bun, Deno (`--unstable-net -A`) or Node (bundled) by
// handle_once.test.ts: Connection.handle() on this runtime's adapter, called twice on each end.
// types.ts: "Call it once per connection (a second call throws `INVALID_ARGUMENT`)", and the
// first call's handlers stay in effect. Prints one JSON line.

import { createDevCertificates } from "../../src/security/mod.ts";
import { defaultTransport, TransportError } from "../../src/transport/mod.ts";
import type { BidiStream, Connection, IncomingHandlers } from "../../src/transport/mod.ts";

const t = await defaultTransport();
const ALPN = "echostream/1";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** What a second handle() did: threw (its code and message), or returned. */
function secondCall(conn: Connection, handlers: IncomingHandlers): { code: string; message: string } | "returned" {
  try {
    conn.handle(handlers);
    return "returned";
  } catch (e) {
    return { code: e instanceof TransportError ? e.code : String(e), message: (e as Error).message };
  }
}

/** Answers a stream with `text`, after reading what the peer sent. */
function answer(text: string): (s: BidiStream) => Promise<void> {
  return async (s) => {
    for await (const _ of s) { /* drain */ }
    await s.write(enc.encode(text));
    await s.end();
  };
}

async function ask(conn: Connection): Promise<string> {
  const s = await conn.openBidi();
  await s.write(enc.encode("?"));
  await s.end();
  let got = "";
  for await (const c of s) got += dec.decode(c);
  return got;
}

const certs = await createDevCertificates();
let server!: { conn: Connection; second: ReturnType<typeof secondCall> };
let accepted!: () => void;
const ready = new Promise<void>((r) => (accepted = r));
const listener = await t.listen({ host: "127.0.0.1", port: 0, alpn: ALPN, tls: certs }, (conn) => {
  conn.handle({ bidi: answer("first") });
  server = { conn, second: secondCall(conn, { bidi: answer("second") }) };
  accepted();
});
const client = await t.connect({ host: "127.0.0.1", port: listener.address.port, alpn: ALPN, tls: { ca: certs.ca } });
client.handle({ bidi: answer("client first") });
const clientSecond = secondCall(client, { bidi: answer("client second") });
const served = await ask(client);
await ready;
const clientServed = await ask(server.conn);
await client.close();
await listener.close();
console.log(JSON.stringify({
  runtime: t.name,
  server: { second: server.second, served },
  client: { second: clientSecond, served: clientServed },
}));
// @matrixai/quic can leave handles behind; the result is printed.
(globalThis as { process?: { exit(code: number): void } }).process?.exit(0);
