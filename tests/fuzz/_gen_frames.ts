// fast-check arbitraries for single frames of the protocol fuzzer: well-formed (the codec
// encodes them) and biased toward the names the live side serves and the edges of its state
// machine (WINDOW past 2^53, sequence numbers at 2^53-1, payloads the codec refuses, 60 KiB DATA).

import fc from "fast-check";
import { type Frame, FrameFlag, FrameType } from "../../src/protocol/frame.ts";
import { defaultPayloadCodec } from "../../src/protocol/payload_codec.ts";

const payloads = defaultPayloadCodec();
/** Names the live side serves (see _target.ts), plus ones it does not. */
export const METHODS = ["echo", "slow", "fail", "boom", "cb", "nope"] as const;
export const STREAMS = ["echo", "echo", "sink", "talk", "stall", "nope"] as const;
export const TOPICS = ["ev", "nope"] as const;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const oddName = fc.string({ minLength: 1, maxLength: 12 });
const name = <T extends string>(known: readonly T[]) => fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: oddName });
const value = fc.oneof(fc.constant(null), fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.array(fc.nat(), { maxLength: 3 }));

/** A payload with its RAW flag: a codec value, raw bytes, or bytes the codec refuses. */
const payload: fc.Arbitrary<{ flags: number; payload: Uint8Array }> = fc.oneof(
  { weight: 4, arbitrary: value.map((v) => ({ flags: 0, payload: payloads.encode(v) })) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 24 }).map((b) => ({ flags: FrameFlag.RAW, payload: b })) },
  { weight: 1, arbitrary: fc.constant({ flags: 0, payload: new Uint8Array([0xc1]) }) },
  { weight: 1, arbitrary: fc.constant({ flags: 0, payload: new Uint8Array(0) }) },
);
const metadata = fc.oneof({ weight: 5, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.constant({ k: "v" }) });
const code = fc.oneof(fc.integer({ min: 0, max: 17 }), fc.constant(MAX_SAFE));
const finite = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 });
const seq = fc.oneof(fc.nat({ max: 20 }), fc.constant(MAX_SAFE));

export const request: fc.Arbitrary<Frame> = fc
  .record({
    method: name(METHODS),
    extra: fc.constantFrom(0, FrameFlag.CANCELLABLE, FrameFlag.IDEMPOTENT, FrameFlag.CANCELLABLE | FrameFlag.IDEMPOTENT),
    deadlineMs: fc.constantFrom(0, 0, 1, 50, 5000, MAX_SAFE),
    metadata,
    p: payload,
  })
  .map(({ method, extra, deadlineMs, metadata, p }) => ({ type: FrameType.REQUEST, flags: p.flags | extra, method, deadlineMs, metadata, payload: p.payload }));

/** Stream options: none, valid, invalid, or undecodable. */
const openOptions = fc.oneof(
  { weight: 6, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.constant(payloads.encode({ ts: { latencyMs: 20 } })) },
  { weight: 1, arbitrary: fc.nat({ max: 9 }).map((dg) => payloads.encode({ dg })) },
  { weight: 1, arbitrary: fc.constant(payloads.encode({ ts: { latencyMs: -5 } })) },
  { weight: 1, arbitrary: fc.constant(payloads.encode({ dg: -1 })) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array([0xc1])) },
);
export const open: fc.Arbitrary<Frame> = fc
  .record({ name: name(STREAMS), metadata, payload: openOptions })
  .map((f) => ({ type: FrameType.OPEN, flags: 0, ...f }));

export const data: fc.Arbitrary<Frame> = fc
  .record({
    fin: fc.boolean(),
    seq: fc.option(seq, { nil: undefined }),
    timestamp: fc.option(fc.double({ min: 0, max: 1e12, noNaN: true }), { nil: undefined }),
    payload: fc.oneof({ weight: 5, arbitrary: fc.uint8Array({ maxLength: 32 }) }, { weight: 1, arbitrary: fc.constant(new Uint8Array(60 * 1024)) }),
  })
  .map(({ fin, seq, timestamp, payload }) => {
    const f: Frame = { type: FrameType.DATA, flags: FrameFlag.RAW | (fin ? FrameFlag.FIN : 0), payload };
    if (seq !== undefined) f.seq = seq;
    if (timestamp !== undefined) f.timestamp = timestamp;
    return f;
  });

/** DATA as an unreliable stream sends it: a datagram with a stream id (the ids OPEN's `dg` uses). */
export const dgData: fc.Arbitrary<Frame> = fc
  .record({ streamId: fc.nat({ max: 9 }), seq: fc.nat({ max: 50 }), ts: fc.option(fc.double({ min: 0, max: 1e12, noNaN: true }), { nil: undefined }), payload: fc.uint8Array({ maxLength: 32 }) })
  .map(({ streamId, seq, ts, payload }) => {
    const f: Frame = { type: FrameType.DATA, flags: FrameFlag.RAW, streamId, seq, payload };
    if (ts !== undefined) f.timestamp = ts;
    return f;
  });

export const window: fc.Arbitrary<Frame> = fc
  .constantFrom(0, 1, 65536, 2 ** 52, MAX_SAFE)
  .map((increment) => ({ type: FrameType.WINDOW, flags: 0, increment }));
export const ping: fc.Arbitrary<Frame> = fc.record({ seq, t1: finite }).map((f) => ({ type: FrameType.PING, flags: 0, ...f }));
export const pong: fc.Arbitrary<Frame> = fc
  .record({ seq, t1: finite, t2: finite, t3: finite })
  .map((f) => ({ type: FrameType.PONG, flags: 0, ...f }));
export const error: fc.Arbitrary<Frame> = fc
  .record({ code, message: fc.string({ maxLength: 12 }) })
  .map((f) => ({ type: FrameType.ERROR, flags: 0, ...f, payload: new Uint8Array(0) }));
export const goaway: fc.Arbitrary<Frame> = fc
  .record({ code, reason: fc.string({ maxLength: 12 }) })
  .map((f) => ({ type: FrameType.GOAWAY, flags: 0, ...f, payload: new Uint8Array(0) }));
export const hello: fc.Arbitrary<Frame> = fc
  .constantFrom(1, 2)
  .map((version) => ({ type: FrameType.HELLO, flags: 0, version, name: "again", payload: payloads.encode({ caps: {} }) }));
export const welcome: fc.Arbitrary<Frame> = fc
  .constantFrom(1, 2)
  .map((version) => ({ type: FrameType.WELCOME, flags: 0, version, name: "again", payload: payloads.encode({ caps: {} }) }));
export const response: fc.Arbitrary<Frame> = payload.map((p) => ({ type: FrameType.RESPONSE, flags: p.flags, metadata: {}, payload: p.payload }));
export const event: fc.Arbitrary<Frame> = fc
  .record({ topic: name(TOPICS), metadata, p: payload })
  .map(({ topic, metadata, p }) => ({ type: FrameType.EVENT, flags: p.flags, topic, metadata, payload: p.payload }));

/** Any frame, weighted toward what streams carry after their first frame. */
export const anyFrame: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 8, arbitrary: data },
  { weight: 3, arbitrary: window },
  { weight: 3, arbitrary: error },
  { weight: 2, arbitrary: request },
  { weight: 2, arbitrary: open },
  { weight: 1, arbitrary: response },
  { weight: 1, arbitrary: event },
  { weight: 1, arbitrary: ping },
  { weight: 1, arbitrary: pong },
  { weight: 1, arbitrary: goaway },
  { weight: 1, arbitrary: hello },
  { weight: 1, arbitrary: welcome },
);
