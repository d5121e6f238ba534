// A client process (Bun, Deno or Node) that emits events and closes at once: `close()` must not lose
// what `emit()` already resolved for. Args: <address>; stdin: the CA (PEM, JSON string line).
import process from "node:process";
import { RpcClient } from "../../src/rpc/client.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
const ca = await new Promise<string>((resolve) => {
  let text = "";
  process.stdin.on("data", (d: Uint8Array) => {
    text += new TextDecoder().decode(d);
    const i = text.indexOf("\n");
    if (i >= 0) resolve(JSON.parse(text.slice(0, i)));
  });
});
const client = await RpcClient.connect(args[0], { ca, onError: () => {} });
for (let i = 0; i < 3; i++) await client.emit("counted", i);
// A stream's last frame too: sent, then the connection closes.
const s = await client.createStream("sink");
await s.send(new Uint8Array([7, 7, 7]));
await s.end();
await client.close();
console.log(JSON.stringify({ ok: true }));
process.exit(0);
