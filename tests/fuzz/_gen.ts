// fast-check arbitraries for whole fuzz cases: streams started with a call or a stream open
// and followed mostly by their own kind of frames, control-stream traffic, floods, bursts of
// streams, event lanes, datagrams, calls from the live side, and how each stream ends.

import fc from "fast-check";
import type { Case, Ending, Greeting, Op } from "./_model.ts";
import { anyFrame, data, dgData, error, event, goaway, open, ping, pong, request, response, window } from "./_gen_frames.ts";

/** A stream's first frame: mostly a call or a stream open. */
const starter = fc.oneof({ weight: 5, arbitrary: request }, { weight: 5, arbitrary: open }, { weight: 2, arbitrary: anyFrame });
/** What follows on a stream: mostly its data, credit and aborts. */
const follower = fc.oneof({ weight: 6, arbitrary: data }, { weight: 2, arbitrary: window }, { weight: 1, arbitrary: error }, { weight: 1, arbitrary: anyFrame });
const script = fc.tuple(starter, fc.array(follower, { maxLength: 4 })).map(([first, rest]) => [first, ...rest]);
/** What goes on the control stream: mostly clock frames and GOAWAY, sometimes anything. */
const controlFrame = fc.oneof({ weight: 3, arbitrary: ping }, { weight: 3, arbitrary: pong }, { weight: 1, arbitrary: goaway }, { weight: 2, arbitrary: anyFrame });

const slot = fc.nat({ max: 3 });
const ending: fc.Arbitrary<Ending> = fc.constantFrom("fin", "fin", "fin", "reset", "cut", "stop");
const cutPart = fc.record({ cut: anyFrame, keep: fc.nat({ max: 40 }) });
const ends = <T extends object>(base: T) =>
  fc.tuple(ending, cutPart).map(([how, c]) => (how === "cut" ? { ...base, how, cut: c.cut, keep: c.keep } : { ...base, how }));

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ slot, frames: script }).map((o) => ({ op: "start" as const, ...o })) },
  { weight: 8, arbitrary: fc.record({ slot, frames: fc.array(anyFrame, { minLength: 1, maxLength: 4 }) }).map((o) => ({ op: "send" as const, ...o })) },
  { weight: 5, arbitrary: fc.tuple(slot, fc.integer({ min: 0, max: 20 })).chain(([s, code]) => ends({ op: "end" as const, slot: s, code })) },
  {
    weight: 1,
    arbitrary: fc
      .record({ slot, frame: fc.oneof(window, ping, pong, data), count: fc.integer({ min: 20, max: 300 }) })
      .map((o) => ({ op: "flood" as const, ...o })),
  },
  { weight: 3, arbitrary: fc.array(controlFrame, { minLength: 1, maxLength: 3 }).map((frames) => ({ op: "control" as const, frames })) },
  {
    weight: 1,
    arbitrary: fc.oneof(ping, pong).chain((frame) => fc.integer({ min: 50, max: 400 }).map((count) => ({ op: "flood" as const, slot: -1, frame, count }))),
  },
  { weight: 1, arbitrary: fc.constant(0).chain(() => ends({ op: "controlEnd" as const })) },
  { weight: 2, arbitrary: fc.array(fc.oneof({ weight: 4, arbitrary: event }, { weight: 1, arbitrary: anyFrame }), { maxLength: 3 }).chain((frames) => ends({ op: "uni" as const, frames })) },
  { weight: 2, arbitrary: fc.oneof(fc.oneof(ping, pong, dgData, anyFrame).map((frame) => ({ op: "dgram" as const, frame })), fc.uint8Array({ maxLength: 40 }).map((bytes) => ({ op: "dgram" as const, bytes }))) },
  {
    weight: 1,
    arbitrary: fc
      .record({ count: fc.integer({ min: 5, max: 60 }), frames: script, how: fc.constantFrom("reset", "reset", "fin", "cut", "open") })
      .map((o) => ({ op: "burst" as const, ...o })),
  },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 20 }).map((ms) => ({ op: "wait" as const, ms })) },
  {
    weight: 1,
    arbitrary: fc
      .record({ offset: fc.constantFrom(0, 5, -2000, 2000, 1e9, -1e12), spread: fc.oneof(fc.constant(0), fc.double({ min: -1e6, max: 1e6, noNaN: true })) })
      .map((o) => ({ op: "pongs" as const, ...o })),
  },
  { weight: 2, arbitrary: fc.record({ reply: fc.array(fc.oneof({ weight: 3, arbitrary: response }, { weight: 2, arbitrary: error }, { weight: 2, arbitrary: anyFrame }), { maxLength: 2 }), how: fc.constantFrom("fin", "fin", "reset", "none") }).map((o) => ({ op: "call" as const, ...o })) },
);

const body = fc.constantFrom("ok", "ok", "ok", "dgram", "dgram", "garbage") as fc.Arbitrary<"ok" | "garbage" | "dgram">;
const serverGreeting: fc.Arbitrary<Greeting> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant("hello" as const), version: fc.constant(1), body }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("hello" as const), version: fc.constantFrom(0, 2), body: fc.constant("ok" as const) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "late" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "never" as const }) },
);
const clientGreeting: fc.Arbitrary<Greeting> = fc.oneof(
  { weight: 14, arbitrary: fc.record({ kind: fc.constant("welcome" as const), version: fc.constant(1), body }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("welcome" as const), version: fc.constant(2), body: fc.constant("ok" as const) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "goaway" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "silent" as const }) },
);

/** Cases for the raw client against a live server (mode "server") or the raw server against a live client. */
export function caseArb(mode: "server" | "client"): fc.Arbitrary<Case> {
  return fc.record({ greeting: mode === "server" ? serverGreeting : clientGreeting, ops: fc.array(op, { minLength: 1, maxLength: 10 }) });
}
