// StatsTotals (src/rpc/stats.ts), the running totals a server and a client keep over their peers:
// a closed peer is folded into the totals as soon as its live state is zero, so the totals do not
// keep the peer (its session, streams and timers) alive. They once kept every closed peer until
// the next stats() call: a server nobody asked for stats held about 14 KB per connection it had
// ever served (measured over 200 connections in a separate server process), for good.

import { expect, test } from "bun:test";
import { StatsTotals, zeroPeerStats } from "../../src/rpc/stats.ts";
import type { Peer, PeerStats } from "../../src/rpc/peer.ts";

/** A stand-in for a Peer: the totals read only its `stats`. */
function peer(counts: Partial<PeerStats>): Peer {
  return { stats: { ...zeroPeerStats(), ...counts } } as unknown as Peer;
}

test("closed peers with nothing live are folded at once and not held; their counts stay in the totals", () => {
  const totals = new StatsTotals();
  for (let i = 0; i < 100; i++) totals.retire(peer({ requestsSent: 2, requestsServed: 1 }));
  expect(totals.held).toBe(0);
  const s = totals.snapshot([]);
  expect(s.requestsSent).toBe(200);
  expect(s.requestsServed).toBe(100);
});

test("a closed peer still holding a call is summed as it is, held until its live state is zero, then folded once", () => {
  const totals = new StatsTotals();
  const busy = peer({ requestsServed: 3, inFlight: 1 });
  totals.retire(busy);
  expect(totals.held).toBe(1);
  expect(totals.snapshot([]).inFlight).toBe(1);
  busy.stats.inFlight = 0;
  busy.stats.requestsServed = 4;
  // Another close (no stats() call in between) folds it too.
  totals.retire(peer({ requestsServed: 1 }));
  expect(totals.held).toBe(0);
  const s = totals.snapshot([peer({ requestsServed: 10 })]);
  expect(s.requestsServed).toBe(15);
  expect(s.inFlight).toBe(0);
  totals.retire(busy); // retired twice (a client's close paths): counted once
  expect(totals.snapshot([]).requestsServed).toBe(5);
});
