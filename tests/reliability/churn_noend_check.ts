// Reproduction, not a test (yet): an EchoStream opener that reads the peer's end but never calls
// end() keeps its stream. The server's handler returns (release(): end marker, QUIC FIN, stop
// reading); the opener's send half stays open. On Deno, quinn does not reset a send half its peer
// stopped, so the server's stack keeps the slot: opens stop after 2 × maxStreams - 1. On Bun the
// stack resets it, but the opener's `openStreams` count keeps every such stream.
//   bun tests/reliability/churn_noend_check.ts
//   deno run --unstable-net -A tests/reliability/churn_noend_check.ts
// Prints {"runtime","opened","clientOpenStreams"}; fixed when opened is 40 and clientOpenStreams 0.

import { streamHandler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { exit, runtime } from "./churn_common.ts";

const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {}).maxStreams(8)
  .streamHandler(streamHandler("one", async (_ctx, s) => {
    const f = await s.recv();
    if (f) await s.send(f);
  }))
  .build();
await server.start();
const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
let opened = 0;
for (let i = 0; i < 40; i++) {
  try {
    const s = await client.createStream("one").timeout(2000);
    await s.send(new Uint8Array([i]));
    await s.recv();
    await s.recv(); // undefined: the handler returned; this side never calls s.end()
    opened++;
  } catch {
    break; // DEADLINE_EXCEEDED: no stream slot came back
  }
}
console.log(JSON.stringify({ runtime, opened, clientOpenStreams: client.peer.stats.openStreams }));
await Promise.race([client.close(), new Promise((r) => setTimeout(r, 1000))]);
await Promise.race([server.close({ graceMs: 100 }), new Promise((r) => setTimeout(r, 1000))]);
exit(0);
