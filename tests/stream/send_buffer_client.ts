// A sender in its own process (Deno or Bun, run by send_buffer.test.ts): reuses one buffer for
// every frame it sends, overwriting it as soon as `send()` resolves, for small frames (copied
// into the writer's batch) and large ones (handed to the stack by reference), then prints what
// the server found. Usage: send_buffer_client.ts <host:port>, with {"ca": "..."} on stdin.

import { RpcClient } from "../../mod.ts";
import { childInput, childRuntime } from "../support/child.ts";

const { args: [address], input: { ca } } = await childInput<{ ca: string }>();
const client = await RpcClient.connect(address, { ca });
const s = await client.createStream("check");
let i = 0;
for (const [size, count] of [[1024, 600], [64 * 1024, 40], [300, 600], [20_000, 40]]) {
  const buf = new Uint8Array(size);
  for (let k = 0; k < count; k++, i++) {
    buf.fill(i & 0xff);
    await s.send(buf);
    buf.fill(0xee); // the caller owns its buffer again once send() resolved
  }
}
await s.end();
const verdict = await s.recv();
console.log(JSON.stringify({ runtime: childRuntime, sent: i, ...JSON.parse(new TextDecoder().decode(verdict!)) }));
await client.close();
