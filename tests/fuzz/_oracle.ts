// What the live side owes each stream the raw peer opened: whether it must end its half (an
// invalid sequence, or one the raw peer finished) and whether what it sent fits the protocol
// (docs/PROTOCOL.md). A stream the live side may keep open is one that is valid so far and still
// open on the raw side (an idle stream to a stream handler, say).

import { isDeepStrictEqual } from "node:util";
import { type Frame, FrameFlag, FrameType } from "../../src/protocol/frame.ts";
import { defaultPayloadCodec } from "../../src/protocol/payload_codec.ts";
import { STREAM_WINDOW } from "../../src/stream/echo_stream.ts";
import type { StreamRecord } from "./_raw.ts";

const payloads = defaultPayloadCodec();
/** Stream handlers the live side has (see _target.ts). */
const SERVED_STREAMS = new Set(["echo", "sink", "talk", "stall"]);
/** Past this much DATA payload a receiver that is not reading must abort (2 windows + one frame). */
const PAST_WINDOW = 2 * STREAM_WINDOW + 64 * 1024;
const CONTROL_OK = new Set<number>([FrameType.PING, FrameType.PONG, FrameType.GOAWAY]);

/** What the evaluation knows about the connection. */
export interface Env {
  handshake: "accepted" | "refused" | "none";
  /** Both ends announced datagram support. */
  datagrams: boolean;
}

/** The frames the raw side sent on its control stream after the greeting. */
function controlFrames(rec: StreamRecord): Frame[] {
  return rec.slot === -1 ? rec.sent : rec.sent.slice(1);
}

/** Why a stream to a stream handler is invalid or finished, if it is. */
function openVerdict(rec: StreamRecord, env: Env): string | undefined {
  const open = rec.sent[0] as Extract<Frame, { type: typeof FrameType.OPEN }>;
  if (!SERVED_STREAMS.has(open.name)) return `OPEN of unknown stream "${open.name}"`;
  if (open.payload.length > 0) {
    let o: { ts?: { latencyMs?: number }; dg?: number } | undefined;
    try {
      o = payloads.decode(open.payload) as typeof o;
    } catch {
      return "OPEN with undecodable options";
    }
    if (o?.ts && (o.ts.latencyMs ?? 0) < 0) return "OPEN with bad time-sync options";
    if (o?.dg !== undefined && (!Number.isSafeInteger(o.dg) || o.dg < 0)) return "OPEN with a bad datagram id";
    if (o?.dg !== undefined && !env.datagrams) return "OPEN of an unreliable stream without datagrams";
  }
  let fin = false;
  let bytes = 0;
  for (const f of rec.sent.slice(1)) {
    if (f.type === FrameType.DATA) {
      if (fin) return "DATA after the DATA+FIN that ended our direction";
      fin = (f.flags & FrameFlag.FIN) !== 0;
      bytes += f.payload.length;
    } else if (f.type === FrameType.ERROR) {
      return "the raw side aborted the stream with ERROR";
    } else if (f.type !== FrameType.WINDOW) {
      return `frame type ${f.type} on an open stream`;
    }
  }
  if (bytes > PAST_WINDOW) return `${bytes} bytes of DATA, past twice the window`;
  if (fin) return "the raw side ended its direction (DATA+FIN)";
  if (open.name === "talk") return "the talk handler returns by itself";
  return undefined;
}

/**
 * Why the live side must end its half of `rec` (reason), or undefined when it may hold it.
 */
export function mustResolve(rec: StreamRecord, env: Env): string | undefined {
  if (env.handshake === "none") return undefined; // streams wait for HELLO (bounded by the handshake timeout)
  if (rec.control) {
    const bad = controlFrames(rec).find((f) => !CONTROL_OK.has(f.type));
    if (bad) return `frame type ${bad.type} on the control stream`;
    if (rec.ending !== "open" && rec.ending !== "stop") return `the control stream was ended (${rec.ending})`;
    return undefined;
  }
  const first = rec.sent[0];
  if (!first) return rec.ending === "fin" || rec.ending === "reset" || rec.ending === "cut" ? `an empty stream ended (${rec.ending})` : undefined;
  // After STOP_SENDING the raw side reads nothing more: what the live side does is not observable
  // here (the leak checks still see it).
  if (rec.ending === "stop") return undefined;
  if (rec.ending === "cut" || rec.ending === "reset") return `the raw side ended its half (${rec.ending})`;
  if (first.type === FrameType.REQUEST) return "a request is always answered";
  if (first.type === FrameType.OPEN) return openVerdict(rec, env) ?? (rec.ending === "fin" ? "the raw side ended its half (fin)" : undefined);
  return `first frame of type ${first.type}`;
}

/** Whether the live side resolved `rec`: ended or reset its half, or (control) sent GOAWAY. */
export function resolved(rec: StreamRecord): boolean {
  return rec.tap.resolved || (rec.control && rec.tap.frames.some((f) => f.type === FrameType.GOAWAY));
}

const validCode = (f: Frame) => f.type !== FrameType.ERROR || (f.code >= 1 && f.code <= 16);

/** Frames the live side sent that do not fit the stream's kind (empty when all fit). */
export function shapeProblems(rec: StreamRecord): string[] {
  const got = rec.tap.frames;
  const out: string[] = [];
  if (got.some((f) => !validCode(f))) out.push("ERROR with a code outside 1..16");
  if (rec.control) {
    const rest = got.slice(1); // after WELCOME/GOAWAY (server mode) or the client's HELLO (client mode)
    const odd = rest.find((f) => !CONTROL_OK.has(f.type));
    if (odd) out.push(`frame type ${odd.type} on the control stream`);
    return out;
  }
  const first = rec.sent[0];
  if (first?.type === FrameType.REQUEST) {
    if (got.length > 1 || (got[0] && got[0].type !== FrameType.RESPONSE && got[0].type !== FrameType.ERROR)) {
      out.push(`a request answered with ${got.map((f) => f.type).join(",")}`);
    }
  } else if (first?.type === FrameType.OPEN) {
    if (got[0] && got[0].type !== FrameType.RESPONSE && got[0].type !== FrameType.ERROR) out.push(`OPEN answered with type ${got[0].type}`);
    let fin = false;
    for (const f of got.slice(1)) {
      if (f.type === FrameType.DATA && fin) out.push("DATA after the live side's DATA+FIN");
      if (f.type === FrameType.DATA && f.flags & FrameFlag.FIN) fin = true;
      if (f.type !== FrameType.DATA && f.type !== FrameType.WINDOW && f.type !== FrameType.ERROR) out.push(`type ${f.type} on a stream`);
    }
    if (got[0]?.type === FrameType.ERROR && got.length > 1) out.push("frames after the ERROR that refused an OPEN");
  } else if (got.length > 1 || (got[0] && got[0].type !== FrameType.ERROR)) {
    out.push(`a stream starting with type ${first?.type} answered with ${got.map((f) => f.type).join(",")}`);
  }
  return out;
}

/**
 * For a plain stream to the echo handler: what came back must be what was sent before the raw
 * side's DATA+FIN, in order (a frame after the FIN marker is not data of this stream).
 */
export function echoProblem(rec: StreamRecord): string | undefined {
  const open = rec.sent[0];
  if (rec.control || open?.type !== FrameType.OPEN || open.name !== "echo" || open.payload.length > 0 || rec.tap.frames[0]?.type !== FrameType.RESPONSE) return undefined;
  const sent: number[][] = [];
  const extra: number[][] = [];
  let fin = false;
  for (const f of rec.sent.slice(1)) {
    if (f.type !== FrameType.DATA) continue;
    if (f.payload.length > 0) (fin ? extra : sent).push([...f.payload]);
    fin ||= (f.flags & FrameFlag.FIN) !== 0;
  }
  const back = rec.tap.frames.filter((f) => f.type === FrameType.DATA && f.payload.length > 0).map((f) => [...(f as { payload: Uint8Array }).payload]);
  for (let i = 0; i < back.length; i++) {
    if (i >= sent.length) return `the echo handler got ${back.length - sent.length} frame(s) sent after the DATA+FIN`;
    if (!isDeepStrictEqual(back[i], sent[i])) return `echo frame ${i} came back changed`;
  }
  return undefined;
}

/**
 * What the answer to a call must be, when the caller did not cancel it: a call that is not
 * CANCELLABLE cannot be cancelled (what follows the REQUEST does not matter), a CANCELLABLE one
 * is left alone when nothing follows. Undefined when the answer is right or not due.
 */
export function answerProblem(rec: StreamRecord): string | undefined {
  const req = rec.sent[0];
  // After a reset the REQUEST itself may never have been delivered (RESET_STREAM discards what
  // was not sent yet), and after STOP_SENDING the answer cannot be read.
  if (req?.type !== FrameType.REQUEST || rec.control || rec.blocked || rec.early || rec.ending === "stop" || rec.ending === "reset") return undefined;
  const cancellable = (req.flags & FrameFlag.CANCELLABLE) !== 0;
  if (cancellable && !(rec.sent.length === 1 && rec.ending === "open")) return undefined;
  const a = rec.tap.frames[0];
  if (!a) return rec.tap.end === "fin" ? `"${req.method}": the stream ended without an answer` : undefined;
  const code = a.type === FrameType.ERROR ? a.code : 0;
  const raw = (req.flags & FrameFlag.RAW) !== 0;
  let input: unknown;
  let decodable = true;
  try {
    input = raw ? req.payload : req.payload.length ? payloads.decode(req.payload) : undefined;
  } catch {
    decodable = false;
  }
  const known = ["echo", "slow", "fail", "boom", "cb"].includes(req.method);
  if (!known) return code === 5 ? undefined : `unknown method "${req.method}" answered ${a.type}/${code}, expected NOT_FOUND`;
  if (!decodable) return code === 3 ? undefined : `undecodable input to "${req.method}" answered ${a.type}/${code}, expected INVALID_ARGUMENT`;
  if (req.method === "fail") return code === 9 ? undefined : `"fail" answered ${a.type}/${code}, expected FAILED_PRECONDITION`;
  if (req.method === "boom") return code === 13 ? undefined : `"boom" answered ${a.type}/${code}, expected INTERNAL`;
  // "slow" pauses 150 ms: a deadline well inside that passes first.
  if (req.method === "slow" && req.deadlineMs > 0 && req.deadlineMs < 100 && code !== 4) return `"slow" past its ${req.deadlineMs} ms deadline answered ${a.type}/${code}, expected DEADLINE_EXCEEDED`;
  if (req.method === "echo") {
    if (a.type !== FrameType.RESPONSE) return `"echo" answered ${a.type}/${code}`;
    const back = a.flags & FrameFlag.RAW ? a.payload : a.payload.length ? payloads.decode(a.payload) : undefined;
    if (!isDeepStrictEqual(back, input)) return `"echo" answered ${JSON.stringify(back)} for ${JSON.stringify(input)}`;
  }
  return undefined;
}
