// Frame codec throughput: encode, decode and split over 1 MiB of mixed small frames, for the
// WASM core and the plain-TS reference, on the same input. Runs under Bun and Deno (no
// permissions); prints one JSON object. Driven by bench/run.ts (`npm run bench`).

import { createFrameCodec, type Frame, FrameType } from "../src/protocol/mod.ts";
import { seededRandom } from "../src/testing/random.ts"; // the same seed gives every runtime the same frames


/** About `target` bytes of a realistic mix: media data, calls, responses, events, clock pings. */
export function mixedFrames(target = 1 << 20, seed = 42): Frame[] {
  const rnd = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(0, 255));
  const methods = ["audio.play", "user.login", "device.status", "game.move", "telemetry.push"];
  const frames: Frame[] = [];
  let total = 0;
  let seq = 2 ** 32 - 100;
  while (total < target) {
    const r = rnd();
    let f: Frame;
    if (r < 0.3) {
      f = { type: FrameType.DATA, flags: 1, seq: seq++, timestamp: 1.7e12 + seq * 20, payload: bytes(int(20, 200)) };
    } else if (r < 0.5) {
      const metadata: Record<string, string> = {};
      for (let i = int(0, 2); i > 0; i--) metadata[`x-key-${i}`] = `value-${int(0, 99999)}`;
      f = { type: FrameType.REQUEST, flags: int(0, 1), method: methods[int(0, 4)], deadlineMs: int(0, 5000), metadata, payload: bytes(int(8, 128)) };
    } else if (r < 0.7) {
      f = { type: FrameType.RESPONSE, flags: 0, metadata: {}, payload: bytes(int(8, 256)) };
    } else if (r < 0.85) {
      f = { type: FrameType.EVENT, flags: 0, topic: "audio.stopped", metadata: {}, payload: bytes(int(1, 64)) };
    } else if (r < 0.9) {
      f = { type: FrameType.PING, flags: 0, seq: int(0, 1e6), t1: 1.7e12 + rnd() };
    } else if (r < 0.95) {
      f = { type: FrameType.PONG, flags: 0, seq: int(0, 1e6), t1: 1.7e12, t2: 1.7e12 + 1, t3: 1.7e12 + 2 };
    } else {
      f = { type: FrameType.ERROR, flags: 0, code: int(1, 16), message: "method not found", payload: new Uint8Array(0) };
    }
    frames.push(f);
    total += ("payload" in f ? f.payload.length : 0) + 24;
  }
  return frames;
}

/** Median ops/s of `fn` over `runs` timed runs of at least `minMs` each, after a warm-up. */
function measure(fn: () => void, runs = 7, minMs = 150): number {
  const t0 = performance.now();
  while (performance.now() - t0 < 200) fn(); // warm-up: let the JIT settle
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    let n = 0;
    const start = performance.now();
    let now = start;
    while (now - start < minMs) {
      fn();
      n++;
      now = performance.now();
    }
    rates.push((n * 1000) / (now - start));
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)];
}

const frames = mixedFrames();
const reference = createFrameCodec({ impl: "ts" });
const stream = reference.encodeMany(frames);
const perFrame = frames.map((f) => reference.encode(f));
const MB = stream.length / 1e6;

function chunks(size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i += size) out.push(stream.subarray(i, i + size));
  return out;
}
const small = chunks(1200);
const large = chunks(64 * 1024);

const results: Record<string, Record<string, number>> = {};
for (const impl of ["wasm", "ts"] as const) {
  const codec = createFrameCodec({ impl });
  // Same bytes from both cores, or the comparison is meaningless.
  const enc = codec.encodeMany(frames);
  if (enc.length !== stream.length || enc.some((b, i) => b !== stream[i])) throw new Error(`${impl} encodes differently`);
  let sink = 0;
  const split = (cs: Uint8Array[]) => () => {
    const s = codec.splitter();
    for (const c of cs) sink += s.push(c).length;
  };
  results[impl] = {
    encodeMBps: measure(() => {
      for (const f of frames) sink += codec.encode(f).length;
    }) * MB,
    encodeManyMBps: measure(() => {
      sink += codec.encodeMany(frames).length;
    }) * MB,
    decodeMBps: measure(() => {
      for (const b of perFrame) sink += codec.decode(b).type;
    }) * MB,
    split1200MBps: measure(split(small)) * MB,
    split64kMBps: measure(split(large)) * MB,
  };
  if (sink === 0.5) console.error(sink); // keep the work observable
}

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const version = runtime === "deno"
  ? (globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno
  : runtime === "bun"
  ? (globalThis as unknown as { Bun: { version: string } }).Bun.version
  : (globalThis as unknown as { process: { version: string } }).process.version;
console.log(JSON.stringify({ runtime, version, inputBytes: stream.length, frames: frames.length, results }));
