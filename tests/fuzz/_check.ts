// Checks shared by both fuzz modes: what the live side owed each stream, whether the connection
// still serves an honest call from the raw side, and whether live counters return to zero.

import { type Frame, FrameType } from "../../src/protocol/frame.ts";
import { defaultPayloadCodec } from "../../src/protocol/payload_codec.ts";
import type { Connection } from "../../src/transport/types.ts";
import { type Finding, showFrame } from "./_model.ts";
import { answerProblem, echoProblem, type Env, mustResolve, resolved, shapeProblems } from "./_oracle.ts";
import { bounded, codec, type RawPeer, type StreamRecord, Tap, waitFor } from "./_raw.ts";

const payloads = defaultPayloadCodec();
/** How long the live side has to answer what it owes: generous for a shared 2-core machine. */
export const ANSWER_MS = 2000;
/** Counters that describe state held now (docs: `server.stats()` / `client.stats()`). */
export const LIVE_KEYS = ["openStreams", "datagramRoutes", "pendingRequests", "inFlight"] as const;

function label(rec: StreamRecord): string {
  const sent = rec.sent.length > 6 ? [...rec.sent.slice(0, 6).map(showFrame), `… ${rec.sent.length - 6} more`] : rec.sent.map(showFrame);
  return `${rec.control ? "control" : `s${rec.slot}#${rec.id}`} [${sent.join(", ")}] ending=${rec.ending}`;
}

/**
 * Waits (bounded) for every stream the live side owes an answer, then reports the ones it left
 * open, frames that do not fit, and wrong answers to clean calls.
 */
export async function evaluate(raw: RawPeer, env: Env, isClosed: () => boolean, stuck: (detail: string) => boolean = () => false): Promise<Finding[]> {
  const owed = raw.records.map((r) => ({ r, why: mustResolve(r, env) })).filter((x) => x.why !== undefined);
  // Streams a tracked bug leaves open are not waited for (they would cost the whole bound each).
  const awaited = owed.filter(({ why }) => !stuck(`${why}, yet the live side kept it open`));
  await waitFor(() => isClosed() || awaited.every(({ r }) => resolved(r)), ANSWER_MS);
  // Streams end (as if at FIN, on Bun) as the connection closes, a moment before the close itself
  // is seen: a call that ended unanswered gets that moment before it counts.
  if (!isClosed() && raw.records.some((r) => answerProblem(r) !== undefined)) await waitFor(isClosed, 300);
  const out: Finding[] = [];
  if (!isClosed()) {
    for (const { r, why } of owed) {
      if (!resolved(r)) out.push({ kind: "unanswered", detail: `${why}, yet the live side kept it open ${ANSWER_MS} ms: ${label(r)}` });
    }
  }
  for (const r of raw.records) {
    for (const p of shapeProblems(r)) out.push({ kind: "shape", detail: `${p}: ${label(r)} got [${r.tap.frames.map(showFrame).join(", ")}]` });
    const e = echoProblem(r);
    if (e) out.push({ kind: "shape", detail: `${e}: ${label(r)}` });
    const a = isClosed() ? undefined : answerProblem(r); // calls in flight die with the connection
    if (a) out.push({ kind: "shape", detail: `${a}: ${label(r)}` });
  }
  return out;
}

/** What a probe writes on a stream the live side has ended: four times its QUIC stream window. */
const PROBE_BYTES = 4 << 20;
const PROBE_MS = 1500;

/**
 * Once the live side has ended its half of a stream it reads nothing more from it, so it must
 * stop the raw side's sending (STOP_SENDING) or at least not take more than flow control allows:
 * a stack that buffers without backpressure (Bun's) would otherwise keep everything a peer sends
 * on a stream nobody reads, until the connection ends. Probes up to 3 such streams with 4 MiB.
 */
export async function probeEnded(raw: RawPeer, isClosed: () => boolean): Promise<Finding[]> {
  const ended = raw.records.filter((r) => !r.control && r.tap.resolved && r.ending === "open" && !r.blocked && r.sent.length > 0).slice(0, 3);
  const chunk = codec.encode({ type: FrameType.DATA, flags: 1, payload: new Uint8Array(64 * 1024 - 8) });
  const out: Finding[] = [];
  for (const r of ended) {
    let taken = 0;
    const until = performance.now() + PROBE_MS;
    while (taken < PROBE_BYTES && performance.now() < until && !isClosed()) {
      const ok = await bounded(r.s.write(chunk).then(() => true, () => false), until - performance.now());
      if (ok !== true) break;
      taken += chunk.length;
    }
    r.blocked = true; // whatever happened, this stream is done for the fuzzer
    if (taken >= PROBE_BYTES && !isClosed()) {
      out.push({ kind: "leak", detail: `the live side ended its half, yet took ${taken >> 20} MiB more on it (kept, never read): ${label(r)} got [${r.tap.frames.map(showFrame).join(", ")}]` });
    }
  }
  return out;
}

/** An honest call from the raw side on `conn`: REQUEST echo, expecting the value back. */
export async function rawHonestCall(conn: Connection, value: string): Promise<string | undefined> {
  let s;
  try {
    s = await conn.openBidi();
  } catch (e) {
    return `cannot open a stream: ${(e as Error).message}`;
  }
  const tap = new Tap(s);
  const req: Frame = { type: FrameType.REQUEST, flags: 0, method: "echo", deadlineMs: 0, metadata: {}, payload: payloads.encode(value) };
  await s.write(codec.encode(req)).then(() => s.end()).catch(() => {});
  await waitFor(() => tap.frames.length > 0 || tap.resolved, ANSWER_MS);
  const f = tap.frames[0];
  if (!f) return `no answer to an honest call (stream ${tap.end})`;
  if (f.type !== FrameType.RESPONSE) return `honest call answered ${showFrame(f)}`;
  const back = payloads.decode(f.payload);
  return back === value ? undefined : `honest call answered ${JSON.stringify(back)}`;
}

/** Live counters of a stats snapshot above their baseline (0 when none is given). */
function above(stats: Record<string, unknown> | undefined, keys: readonly string[], base?: Record<string, unknown>): string[] {
  if (!stats) return [];
  const floor = (k: string) => (typeof base?.[k] === "number" ? base[k] as number : 0);
  return keys.filter((k) => typeof stats[k] === "number" && (stats[k] as number) > floor(k)).map((k) => `${k}=${stats[k]}`);
}

/**
 * Waits (bounded) for `stats()`'s live counters to come back to zero, or to `base` (a snapshot
 * from before the case, so what an earlier case left is not blamed on this one).
 */
export async function countersSettle(what: string, stats: () => Record<string, unknown> | undefined, keys: readonly string[] = LIVE_KEYS, base?: Record<string, unknown>): Promise<Finding[]> {
  await waitFor(() => above(stats(), keys, base).length === 0, ANSWER_MS);
  const left = above(stats(), keys, base);
  return left.length ? [{ kind: "leak", detail: `${what} still holds ${left.join(", ")}${base ? " (more than before the case)" : ""} ${ANSWER_MS} ms after the raw peer left` }] : [];
}

/**
 * Closes the raw side's connection; a finding when its own close() does not complete (then the
 * connection is still up, and the live side is right to keep it).
 */
export async function closeRaw(conn: Connection): Promise<Finding[]> {
  if ((await bounded(conn.close(0, "fuzz case over"), ANSWER_MS)) !== "timeout") return [];
  return [{ kind: "hang", detail: `the raw peer's own Connection.close() did not complete within ${ANSWER_MS} ms` }];
}

/** Collects unhandled rejections and uncaught exceptions (installed once per process). */
export class Collector {
  readonly seen: string[] = [];
  #installed = false;

  install(): void {
    if (this.#installed) return;
    this.#installed = true;
    const keep = (kind: string) => (e: unknown) => void this.seen.push(`${kind}: ${(e as Error)?.stack ?? String(e)}`);
    process.on("unhandledRejection", keep("unhandled rejection"));
    process.on("uncaughtException", keep("uncaught exception"));
  }

  /** Findings for what arrived since `mark` (an index into `seen`). */
  since(mark: number): Finding[] {
    return this.seen.slice(mark).map((detail) => ({ kind: "unhandled" as const, detail }));
  }
}

/**
 * While the connection lives, after the answers: no call is still served or awaited (every call
 * was answered), and no more EchoStreams are counted than streams the live side has not ended.
 */
export async function settledWhileConnected(what: string, stats: () => Record<string, unknown>, raw: RawPeer, isClosed: () => boolean): Promise<Finding[]> {
  // A stream the raw side STOP_SENDING'd may still be read by the live side (its send half is
  // what was stopped): it may be held too.
  const held = () => raw.records.filter((r) => r.sent[0]?.type === FrameType.OPEN && (!r.tap.resolved || r.ending === "stop")).length;
  const ok = () => {
    const s = stats();
    return s.inFlight === 0 && s.pendingRequests === 0 && (typeof s.openStreams !== "number" || s.openStreams <= held());
  };
  await waitFor(() => isClosed() || ok(), ANSWER_MS);
  if (isClosed() || ok()) return [];
  const s = stats();
  return [{ kind: "leak", detail: `${what}, connection still up: inFlight=${s.inFlight} pendingRequests=${s.pendingRequests} openStreams=${s.openStreams} with ${held()} stream(s) it has not ended` }];
}
