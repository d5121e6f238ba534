// Clock PINGs when timers starve: Bun fires timers seconds late while a UDP socket has a receive
// backlog, though I/O callbacks still run (tests/reliability/_fault_timer_starvation.ts). The
// first PING goes out at attach, and an overdue one goes out from the receive path.

import { expect, test } from "bun:test";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { FrameType, type PingFrame } from "../../src/protocol/frame.ts";
import { SyncedClock, systemClock } from "../../src/clock/sync.ts";

const codec = createFrameCodec();

function clockWithChannel() {
  const sent: number[] = [];
  const clock = new SyncedClock(systemClock, codec, { intervalMs: 250 });
  clock.attach({ transport: "datagram", send: (f) => void sent.push(codec.decode(f).type) });
  return { clock, sent };
}

/** Holds the thread (no timer can fire) for `ms`. */
function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* starve timers */ }
}

const ping = (seq: number): PingFrame => ({ type: FrameType.PING, flags: 0, seq, t1: systemClock() });

test("the first PING leaves at attach, not from a timer", () => {
  const { clock, sent } = clockWithChannel();
  try {
    expect(sent).toEqual([FrameType.PING]);
  } finally {
    clock.free();
  }
});

test("a PING whose timer is overdue is sent when the other side's PING arrives", () => {
  const { clock, sent } = clockWithChannel();
  try {
    const replies: number[] = [];
    clock.answer(ping(1), systemClock(), (f) => void replies.push(codec.decode(f).type));
    expect(sent.length).toBe(1); // nothing overdue yet: no extra PING
    block(400); // the burst's next PING was due 50 ms after attach; its timer cannot fire
    clock.answer(ping(2), systemClock(), (f) => void replies.push(codec.decode(f).type));
    expect(replies).toEqual([FrameType.PONG, FrameType.PONG]);
    expect(sent).toEqual([FrameType.PING, FrameType.PING]);
    expect(clock.stats().pingsSent).toBe(2);
  } finally {
    clock.free();
  }
});

test("a PING whose timer is overdue is sent when a PONG arrives", () => {
  const { clock, sent } = clockWithChannel();
  try {
    block(400);
    clock.receive({ type: FrameType.PONG, flags: 0, seq: 999, t1: 1, t2: 2, t3: 3 }, systemClock()); // unmatched: still traffic
    expect(sent.length).toBe(2);
    expect(clock.stats().unmatchedPongs).toBe(1);
  } finally {
    clock.free();
  }
});
