// Attack (3): HTTP/2 "rapid reset" shape. Past HELLO, up to `count` times: open a stream, write a
// REQUEST for "slow" (CANCELLABLE, `slowMs`), and reset the stream at once; next. The server must
// close the connection with 0x107 (after a GOAWAY RESOURCE_EXHAUSTED) once past its reset budget.
// Runs on Bun (Deno's stack cannot send a reset: its abort is a clean FIN, which the server reads as
// a cancel all the same).

import { attack, bounded, closedWithin, goAways, rawPeer, requestBytes } from "./_raw.ts";

interface Params {
  count: number;
  slowMs: number;
}

await attack<Params, Record<string, unknown>>(async ({ address, ca, params: p }) => {
  const peer = await rawPeer(address, ca, { name: "rapid-reset" });
  const frame = requestBytes("slow", p.slowMs, { cancellable: true });
  const t0 = performance.now();
  let sent = 0;
  let openFailed = 0;
  let closedAtSent: number | undefined;
  let closedAtMs: number | undefined;
  peer.closed.then(() => {
    closedAtSent = sent;
    closedAtMs = performance.now() - t0;
  });
  for (let i = 0; i < p.count && !peer.closedInfo; i++) {
    const s = await bounded(peer.conn.openBidi().catch(() => undefined), 1000);
    if (!s || s === "timeout") {
      // The connection is closing (the server's close is on its way): stop after a few.
      if (++openFailed >= 10) break;
      continue;
    }
    await bounded(s.write(frame).catch(() => {}), 200);
    s.reset(8); // CANCELLED
    s.stopSending(8);
    sent++;
    // Let the event loop breathe now and then (the close must be able to arrive).
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 0));
  }
  const close = peer.closedInfo ?? (await closedWithin(peer, 3000));
  const goaway = goAways(peer);
  if (!close) await peer.conn.close(0, "done").catch(() => {});
  return {
    sent,
    openFailed,
    closedAtSent: closedAtSent ?? null,
    closedAtMs: closedAtMs === undefined ? null : Math.round(closedAtMs),
    close: close ?? null,
    goaway,
  };
});
