// Attack (4): `count` events to an allowed topic ("tick") as fast as the connection takes them,
// written in batches of `batch` frames on one event lane (a uni stream). The server must drop what
// is over its per-connection event rate limit and count it (rejected.rateLimited), run the
// listener only for what passed, and keep the connection open. It also pauses reading a lane that
// keeps flooding (so QUIC flow control holds the sender): the attacker watches for `readWaitMs`
// how much the server read, then leaves.

import { FrameType } from "../../src/protocol/frame.ts";
import type { ServerSnapshot } from "./_config.ts";
import { attack, bounded, codec, payloads, rawCall, rawPeer, sleep } from "./_raw.ts";

interface Params {
  count: number;
  batch: number;
  readWaitMs: number;
}

await attack<Params, Record<string, unknown>>(async ({ address, ca, params: p }) => {
  const peer = await rawPeer(address, ca, { name: "event-flood" });
  const stats = async () => {
    const a = await rawCall(peer.conn, "stats", null, 5000);
    return a.kind === "response" ? (a.value as ServerSnapshot) : undefined;
  };
  const before = await stats();
  const frame = codec.encode({
    type: FrameType.EVENT,
    flags: 0,
    topic: "tick",
    metadata: {},
    payload: payloads.encode(12345),
  });
  const chunk = new Uint8Array(frame.length * p.batch);
  for (let i = 0; i < p.batch; i++) chunk.set(frame, i * frame.length);
  const lane = await peer.conn.openUni();
  const t0 = performance.now();
  let written = 0;
  let blocked = false;
  while (written < p.count && !peer.closedInfo) {
    const n = Math.min(p.batch, p.count - written);
    const r = await bounded(
      lane.write(n === p.batch ? chunk : chunk.subarray(0, n * frame.length)).then(() => true, () => false),
      5000,
    );
    if (r !== true) {
      blocked = true;
      break;
    }
    written += n;
  }
  const writeMs = performance.now() - t0;
  await bounded(lane.end().catch(() => {}), 2000);
  // Until the server has read them all (or readWaitMs): what it received, limited and delivered.
  let after = await stats();
  const until = t0 + p.readWaitMs;
  while (
    after && before && after.stats.eventsReceived - before.stats.eventsReceived < written && performance.now() < until
  ) {
    await sleep(100);
    after = await stats();
  }
  const readMs = performance.now() - t0;
  const readPerSecond = after && before
    ? (after.stats.eventsReceived - before.stats.eventsReceived) / (readMs / 1000)
    : null;
  const stillOpen = !peer.closedInfo;
  const echo = await rawCall(peer.conn, "echo", "still here", 3000);
  await peer.conn.close(0, "done").catch(() => {});
  return {
    written,
    frameBytes: frame.length,
    blocked,
    writeMs: Math.round(writeMs),
    readMs: Math.round(readMs),
    readPerSecond: readPerSecond === null ? null : Math.round(readPerSecond),
    received: after && before ? after.stats.eventsReceived - before.stats.eventsReceived : null,
    rateLimited: after && before ? after.stats.rejected.rateLimited - before.stats.rejected.rateLimited : null,
    ticks: after && before ? after.app.ticks - before.app.ticks : null,
    eventQueueFull: after && before ? after.stats.rejected.eventQueueFull - before.stats.rejected.eventQueueFull : null,
    stillOpen,
    echoAfter: echo,
    close: peer.closedInfo ?? null,
  };
});
