// Attack (7): a subscriber that never reads. Past HELLO, it accepts the server's event lane (a uni
// stream) and never reads it, then starts the server's broadcasts (`bytes` every `everyMs` for
// `bcastMs`, to every peer). The server must close it with 0x108 once more than maxOutgoingBytes
// are queued for it (rejected.slowConsumer), never buffer without bound, and keep serving the
// subscribers that read. Run on Deno: quinn's receive window follows what the application reads
// (Bun's node:quic grants credit regardless, so a Bun process cannot stall the sender).

import type { RecvStream } from "../../src/transport/types.ts";
import { attack, closedWithin, drain, goAways, rawCall, rawPeer, runtime } from "./_raw.ts";

interface Params {
  bcastMs: number;
  everyMs: number;
  bytes: number;
  waitMs: number;
}

await attack<Params, Record<string, unknown>>(async ({ address, ca, params: p }) => {
  const held: RecvStream[] = [];
  const peer = await rawPeer(address, ca, {
    name: "slow-reader",
    handlers: { bidi: (s) => void drain(s), uni: (s) => void held.push(s), datagram: () => {} },
  });
  const t0 = performance.now();
  const started = await rawCall(peer.conn, "bcast.start", { ms: p.bcastMs, everyMs: p.everyMs, bytes: p.bytes }, 5000);
  const close = await closedWithin(peer, p.waitMs);
  const closedAfterMs = close ? Math.round(performance.now() - t0) : null;
  const goaway = goAways(peer);
  if (!close) await peer.conn.close(0, "done").catch(() => {});
  return { runtime, started, lanesHeld: held.length, close: close ?? null, closedAfterMs, goaway };
});
