// A process (Bun, Deno or Node) that starts a server on a port another server holds: start() must
// reject with LISTEN_FAILED and the process must live on (Bun's node:quic left an unhandled
// rejection that ended it). Prints one JSON line.
import { RpcServer } from "../../mod.ts";

const a = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).build();
await a.start();
const b = RpcServer.builder().bind(a.address).log(() => {}).build();
const e = await b.start().then(() => undefined, (err) => err);
await new Promise((r) => setTimeout(r, 300)); // an unhandled rejection would end the process here
await a.close();
console.log(JSON.stringify({ code: e?.code, message: e?.message, alive: true }));
