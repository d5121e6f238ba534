// Stream limits at the RPC level, in one process under Bun or Deno (`--unstable-net -A`); run by
// churn_limits.test.ts, prints one JSON line. The server serves 4 streams at once (one is the
// control stream), so its stack grants 8 stream slots.
//  1. 3 long-lived streams are served; a 4th opened with .timeout() waits at the server and fails.
//  2. 3 more fill every slot; then requests and streams with a deadline or a signal must fail
//     within it, naming the limit, and never reach the server.
//  3. The long-lived streams end: the waiting streams are served, a request goes through, and
//     every counter is back to its baseline.

import { handler, streamHandler } from "../../src/rpc/definitions.ts";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { inspectPeer } from "../../src/rpc/peer.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { exit, runtime } from "./churn_common.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How a call ended: "ok", or its error's code and message; "HUNG" when it took over 5 s. */
async function outcome(p: PromiseLike<unknown>): Promise<{ code: string; message: string; ms: number }> {
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    Promise.resolve(p).then(() => ({ code: "ok", message: "" }), (e) => ({ code: String(e?.code ?? e?.name), message: String(e?.message ?? e) })),
    new Promise<{ code: string; message: string }>((res) => (timer = setTimeout(() => res({ code: "HUNG", message: "no answer in 5 s" }), 5000))),
  ]);
  clearTimeout(timer);
  return { ...r, ms: Math.round(performance.now() - t0) };
}

const server = RpcServer.builder().bind("127.0.0.1:0").log(() => {}).onError(() => {}).maxStreams(4)
  .handler(handler("echo", (_ctx, v: unknown) => v))
  .streamHandler(streamHandler("hold", async (_ctx, s: EchoStream) => {
    for await (const f of s) await s.send(f);
    await s.end();
  }))
  .build();
await server.start();
// Idle request streams (reused by later calls) are swept after 20 ms, so the baseline below is
// reached soon after the last call: the server's incoming streams count them until then.
const client = await RpcClient.connect(server.address, { ca: server.trust.ca, limits: { requestStreamIdleMs: 20 } });
const peer = () => server.peers[0];
const r: Record<string, unknown> = { runtime };

// 1. Three served streams (with the control stream, the server's 4).
const held: EchoStream[] = [];
for (let i = 0; i < 3; i++) {
  const s = await client.createStream("hold");
  await s.send(new Uint8Array([i]));
  await s.recv();
  held.push(s);
}
r.waitsAtServer = await outcome(client.createStream("hold").timeout(300));

// 2. Three more fill the stack's 8 slots (control + 3 served + the abandoned one + these 3).
const queued = [0, 1, 2].map(() => client.createStream("hold").build());
queued.forEach((q) => q.catch(() => {}));
await sleep(100);
const servedBefore = peer().stats.requestsServed;
r.requestDeadline = await outcome(client.request("echo", 1, { timeoutMs: 300 }));
const ac = new AbortController();
setTimeout(() => ac.abort(), 100);
r.requestCancel = await outcome(client.request("echo", 2, { signal: ac.signal }));
r.streamDeadline = await outcome(client.createStream("hold").timeout(300));
const ac2 = new AbortController();
setTimeout(() => ac2.abort(), 100);
r.streamCancel = await outcome(client.createStream("hold").signal(ac2.signal));
r.reachedServer = peer().stats.requestsServed - servedBefore;

// 3. End the served streams: the waiting ones are served in turn.
for (const s of held) {
  await s.end();
  await s.recv();
}
const later = await Promise.all(queued.map((q) =>
  outcome(q.then(async (s) => {
    await s.send(new Uint8Array([9]));
    const back = await s.recv();
    await s.end();
    await s.recv();
    if (back?.[0] !== 9) throw new Error("bad echo");
  }))
));
r.queuedServed = later.map((o) => o.code);
r.afterwards = await outcome(client.request("echo", 42, { timeoutMs: 5000 }).then((v) => {
  if (v !== 42) throw new Error(`echo returned ${v}`);
}));
// The server finishes its halves a moment after ours.
for (let i = 0; i < 50 && (peer().stats.openStreams > 0 || (inspectPeer(peer()).conn.stats().incomingStreams ?? 0) > 1); i++) await sleep(20);
const c = client.peer.stats;
const s = peer().stats;
const t = inspectPeer(peer()).conn.stats();
r.baseline = {
  client: { openStreams: c.openStreams, pendingRequests: c.pendingRequests },
  server: { openStreams: s.openStreams, inFlight: s.inFlight, incomingStreams: t.incomingStreams, waitingStreams: t.waitingStreams },
};
console.log(JSON.stringify(r));
await Promise.race([client.close(), sleep(1000)]);
await Promise.race([server.close({ graceMs: 100 }), sleep(1000)]);
exit(0);
