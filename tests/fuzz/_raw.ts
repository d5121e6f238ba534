// The raw peer: plays a case's operations on a transport Connection with the frame codec, and
// records every stream it opened (what it sent, how it ended its half) with a Tap that reads
// what the live side answered. Every write is bounded: a live side that stops reading must not
// hang the fuzzer (QUIC flow control can block a writer for good).

import { createFrameCodec, type FrameCodec } from "../../src/protocol/codec.ts";
import { DecodeError } from "../../src/protocol/decode_error.ts";
import { type Frame, FrameFlag, FrameType } from "../../src/protocol/frame.ts";
import { TransportError } from "../../src/transport/transport_error.ts";
import type { BidiStream, Connection, RecvStream, SendStream } from "../../src/transport/types.ts";
import type { Ending, Op } from "./_model.ts";
import { bounded, sleep, waitFor } from "./_wait.ts";

export const codec: FrameCodec = createFrameCodec({ limits: { maxFrameSize: 64 * 1024 } });
const WRITE_BOUND_MS = 400;

export { bounded, sleep, waitFor } from "./_wait.ts";

/** Reads a stream in the background: the frames the other side sent, and how its half ended. */
export class Tap {
  readonly frames: Frame[] = [];
  end: "open" | "fin" | "reset" | "error" | "malformed" = "open";
  readonly done: Promise<void>;

  constructor(s: RecvStream) {
    this.done = (async () => {
      const splitter = codec.splitter();
      try {
        for await (const chunk of s) this.frames.push(...splitter.push(chunk));
        splitter.end();
        this.end = "fin";
      } catch (e) {
        this.end = e instanceof DecodeError ? "malformed" : e instanceof TransportError && e.code === "STREAM_RESET" ? "reset" : "error";
      }
    })();
  }

  get resolved(): boolean {
    return this.end !== "open";
  }
}

/** One stream the raw peer opened (or, for the control stream, was given). */
export interface StreamRecord {
  id: number;
  slot: number;
  /** Frames written, in order (a cut frame is not counted: see `ending`). */
  sent: Frame[];
  /** How our half ended; "open" while it has not. */
  ending: "open" | Ending;
  /** Whether a write did not complete within the bound (the other side stopped reading). */
  blocked: boolean;
  /** Opened before the handshake finished. */
  early: boolean;
  control: boolean;
  tap: Tap;
  s: BidiStream;
}

/** Writes `bytes`; false when it did not complete in time or failed (stopped by the other side). */
async function write(s: SendStream, bytes: Uint8Array): Promise<boolean> {
  const r = await bounded(s.write(bytes).then(() => true, () => false), WRITE_BOUND_MS);
  return r === true;
}

async function finish(s: SendStream & Partial<RecvStream>, how: Ending, cut?: Frame, keep = 0, code = 0): Promise<void> {
  if (how === "reset") return s.reset(code);
  if (how === "stop") return s.stopSending?.(code);
  if (how === "cut" && cut) {
    const bytes = codec.encode(cut);
    // At least one byte and always short of the whole frame: the stream ends inside it.
    await write(s, bytes.subarray(0, Math.max(1, Math.min(keep, bytes.length - 1))));
  }
  await bounded(s.end().catch(() => {}), WRITE_BOUND_MS);
}

/** A raw side's answer to one call from the live side. */
export interface Reply {
  frames: Frame[];
  how: "fin" | "reset" | "none";
}

/** Honest answer: a REQUEST gets its payload back, anything else UNIMPLEMENTED. */
function honest(first: Frame | undefined): Reply {
  const f: Frame = first?.type === FrameType.REQUEST
    ? { type: FrameType.RESPONSE, flags: first.flags & FrameFlag.RAW, metadata: {}, payload: first.payload }
    : { type: FrameType.ERROR, flags: 0, code: 12, message: "the raw peer serves calls only", payload: new Uint8Array(0) };
  return { frames: [f], how: "fin" };
}

/** Plays ops on a connection, and answers the live side's calls (honestly unless an op said otherwise). */
export class RawPeer {
  readonly records: StreamRecord[] = [];
  readonly #slots = new Map<number, StreamRecord>();
  #control: StreamRecord | undefined;
  #handshaken = false;
  /** Answers for the live side's next calls, in order; then honest answers. */
  readonly #replies: Reply[] = [];
  /** Streams the live side opened, with what it sent on them. */
  readonly incoming: Tap[] = [];

  /** @param onCall Makes the live side call the raw side (a "call" op). */
  constructor(readonly conn: Connection, readonly onCall: () => Promise<void> | void = () => {}) {}

  /** Answers a stream the live side opened, with the next queued reply or honestly. */
  async answer(s: BidiStream): Promise<void> {
    const tap = new Tap(s);
    this.incoming.push(tap);
    await waitFor(() => tap.frames.length > 0 || tap.resolved, 2000);
    const r = this.#replies.shift() ?? honest(tap.frames[0]);
    for (const f of r.frames) if (!(await write(s, codec.encode(f)))) return;
    if (r.how === "reset") s.reset(1);
    else if (r.how === "fin") await bounded(s.end().catch(() => {}), WRITE_BOUND_MS);
  }

  /** Marks the handshake as done: streams opened from now on are not "early". */
  handshaken(): void {
    this.#handshaken = true;
  }

  /** Opens a stream in `slot` (replacing what the slot held) and records it. */
  async #open(slot: number): Promise<StreamRecord | undefined> {
    const s = await bounded(this.conn.openBidi().catch(() => undefined), WRITE_BOUND_MS);
    if (!s || s === "timeout") return undefined;
    const rec: StreamRecord = { id: this.records.length, slot, sent: [], ending: "open", blocked: false, early: !this.#handshaken, control: false, tap: new Tap(s), s };
    this.records.push(rec);
    this.#slots.set(slot, rec);
    return rec;
  }

  /** Adopts `s` as the control stream (its Tap reads what the other side sends on it). */
  adoptControl(s: BidiStream, tap: Tap, sent: Frame[]): StreamRecord {
    const rec: StreamRecord = { id: this.records.length, slot: -1, sent, ending: "open", blocked: false, early: false, control: true, tap, s };
    this.records.push(rec);
    this.#control = rec;
    return rec;
  }

  /** Opens a stream in `slot` and writes HELLO-like first frames; used for the server-mode greeting. */
  async startIn(slot: number, frames: Frame[]): Promise<StreamRecord | undefined> {
    const rec = await this.#open(slot);
    if (rec) await this.#send(rec, frames);
    return rec;
  }

  get control(): StreamRecord | undefined {
    return this.#control;
  }

  set control(rec: StreamRecord | undefined) {
    if (rec) rec.control = true;
    this.#control = rec;
  }

  async #send(rec: StreamRecord, frames: Frame[]): Promise<void> {
    for (const f of frames) {
      if (rec.blocked || rec.ending !== "open") return;
      rec.sent.push(f);
      if (!(await write(rec.s, codec.encode(f)))) rec.blocked = true;
    }
  }

  async #slot(slot: number): Promise<StreamRecord | undefined> {
    const rec = this.#slots.get(slot);
    if (rec && rec.ending === "open" && !rec.blocked) return rec;
    return await this.#open(slot);
  }

  /** Performs one op. */
  async play(o: Op): Promise<void> {
    switch (o.op) {
      case "start": {
        const rec = await this.#open(o.slot);
        if (rec) await this.#send(rec, o.frames);
        return;
      }
      case "send": {
        const rec = await this.#slot(o.slot);
        if (rec) await this.#send(rec, o.frames);
        return;
      }
      case "end": {
        const rec = this.#slots.get(o.slot);
        if (!rec || rec.ending !== "open") return;
        rec.ending = o.how;
        await finish(rec.s, o.how, o.cut, o.keep, o.code);
        return;
      }
      case "flood": {
        const rec = o.slot < 0 ? this.#control : await this.#slot(o.slot);
        if (!rec || rec.ending !== "open") return;
        const bytes = codec.encode(o.frame);
        const all = new Uint8Array(bytes.length * o.count);
        for (let i = 0; i < o.count; i++) all.set(bytes, i * bytes.length);
        for (let i = 0; i < o.count; i++) rec.sent.push(o.frame);
        if (!(await write(rec.s, all))) rec.blocked = true;
        return;
      }
      case "control": {
        if (this.#control && this.#control.ending === "open") await this.#send(this.#control, o.frames);
        return;
      }
      case "controlEnd": {
        const rec = this.#control;
        if (!rec || rec.ending !== "open") return;
        rec.ending = o.how;
        await finish(rec.s, o.how, o.cut, o.keep);
        return;
      }
      case "uni": {
        const s = await bounded(this.conn.openUni().catch(() => undefined), WRITE_BOUND_MS);
        if (!s || s === "timeout") return;
        let ok = true;
        for (const f of o.frames) if (ok) ok = await write(s, codec.encode(f));
        if (ok) await finish(s, o.how, o.cut, o.keep);
        return;
      }
      case "dgram": {
        let bytes = o.bytes ?? new Uint8Array(0);
        if (o.frame) bytes = codec.encode(o.frame);
        if (bytes.length > 0 && bytes.length <= this.conn.maxDatagramSize) await this.conn.sendDatagram(bytes).catch(() => {});
        return;
      }
      case "wait":
        return await sleep(o.ms);
      case "burst": {
        await Promise.all(Array.from({ length: o.count }, async () => {
          const rec = await this.#open(-2);
          if (!rec) return;
          await this.#send(rec, o.frames);
          if (o.how === "open") return;
          rec.ending = o.how;
          await finish(rec.s, o.how, o.frames[0], 2, 8);
        }));
        return;
      }
      case "pongs": {
        // Matching (seq, t1), so the live side's clock estimator takes them as real samples.
        const c = this.#control;
        if (!c || c.ending !== "open") return;
        const pings = c.tap.frames.filter((f) => f.type === FrameType.PING);
        const t2 = Date.now() + o.offset;
        const pongs = pings.map((p) => ({ type: FrameType.PONG, flags: 0, seq: p.seq, t1: p.t1, t2, t3: t2 + o.spread }) as Frame);
        await this.#send(c, pongs);
        return;
      }
      case "call":
        this.#replies.push({ frames: o.reply, how: o.how });
        return await this.onCall();
    }
  }
}
