// The protocol fuzzer's case model: a case is a list of operations a raw QUIC peer performs on
// numbered stream "slots", the control stream, the event lane and datagrams. Cases are plain
// data (frames as the codec's objects) so a failing one prints as a frame sequence that can be
// pasted into tests/fuzz/regressions.test.ts.

import type { Frame } from "../../src/protocol/frame.ts";
import { FrameType } from "../../src/protocol/frame.ts";

/** How the raw side ends its half of a stream. */
export type Ending = "fin" | "reset" | "cut" | "stop";

/** One thing the raw peer does. Slots are small integers; the first use of a slot opens a stream. */
export type Op =
  /** Writes frames on the slot's stream (opening a new one when the slot has none, or its half ended). */
  | { op: "send"; slot: number; frames: Frame[] }
  /** Opens a fresh stream in the slot (the old one is left as it is) and writes `frames`. */
  | { op: "start"; slot: number; frames: Frame[] }
  /** Ends the slot's half: QUIC FIN, RESET_STREAM, part of a frame then FIN, or STOP_SENDING. */
  | { op: "end"; slot: number; how: Ending; cut?: Frame; keep?: number; code?: number }
  /** The same frame `count` times on the slot (floods). */
  | { op: "flood"; slot: number; frame: Frame; count: number }
  /** Frames on the control stream (client mode: the live client's HELLO stream). */
  | { op: "control"; frames: Frame[] }
  /** Ends or resets the control stream. */
  | { op: "controlEnd"; how: Ending; cut?: Frame; keep?: number }
  /** A new unidirectional stream (the event lane's kind) with these frames, then `how`. */
  | { op: "uni"; frames: Frame[]; how: Ending; cut?: Frame; keep?: number }
  /** A QUIC datagram: an encoded frame, or raw bytes. */
  | { op: "dgram"; frame?: Frame; bytes?: Uint8Array }
  /** `count` streams at once, each with `frames` then `how` (rapid open/reset and the like). */
  | { op: "burst"; count: number; frames: Frame[]; how: Ending | "open" }
  /** Answers every PING the live side sent on the control stream so far: t2 = now + offset, t3 = t2 + spread. */
  | { op: "pongs"; offset: number; spread: number }
  /** Lets the other side run for a moment. */
  | { op: "wait"; ms: number }
  /**
   * The live side calls the raw side, which answers with `reply` then `how` (server mode: a
   * REQUEST "cb" makes the server call back; client mode: the live client calls "echo").
   */
  | { op: "call"; reply: Frame[]; how: "fin" | "reset" | "none" };

/** Server mode: how the raw client introduces itself; client mode: how the raw server answers HELLO. */
export type Greeting =
  | { kind: "hello"; version: number; body: "ok" | "garbage" | "dgram" } // server mode
  | { kind: "late" } // server mode: HELLO after the first half of the ops
  | { kind: "never" } // server mode: no HELLO at all
  | { kind: "welcome"; version: number; body: "ok" | "garbage" | "dgram" } // client mode
  | { kind: "goaway" } // client mode: refuse the HELLO
  | { kind: "silent" }; // client mode: never answer the HELLO

/** One fuzz case. */
export interface Case {
  greeting: Greeting;
  ops: Op[];
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(FrameType).map(([k, v]) => [v, k]));

/** A short, readable form of a frame (for reports and regression tests). */
export function showFrame(f: Frame): string {
  const name = TYPE_NAMES[f.type] ?? `type${f.type}`;
  const parts: string[] = [];
  if (f.flags) parts.push(`flags=${f.flags}`);
  for (const key of ["version", "name", "method", "topic", "code", "message", "reason", "deadlineMs", "seq", "streamId", "timestamp", "t1", "increment"] as const) {
    const v = (f as unknown as Record<string, unknown>)[key];
    if (v !== undefined) parts.push(`${key}=${JSON.stringify(v)}`);
  }
  const payload = (f as { payload?: Uint8Array }).payload;
  if (payload && payload.length) parts.push(`payload=${payload.length}B`);
  return `${name}(${parts.join(" ")})`;
}

/** A short, readable form of an op. */
export function showOp(o: Op): string {
  switch (o.op) {
    case "send":
    case "start":
      return `${o.op} s${o.slot}: ${o.frames.map(showFrame).join(", ")}`;
    case "end":
      return `end s${o.slot} ${o.how}${o.cut ? ` after ${o.keep}B of ${showFrame(o.cut)}` : ""}${o.code !== undefined ? ` code=${o.code}` : ""}`;
    case "flood":
      return `flood s${o.slot}: ${o.count} × ${showFrame(o.frame)}`;
    case "control":
      return `control: ${o.frames.map(showFrame).join(", ")}`;
    case "controlEnd":
      return `control end ${o.how}${o.cut ? ` after ${o.keep}B of ${showFrame(o.cut)}` : ""}`;
    case "uni":
      return `uni: ${o.frames.map(showFrame).join(", ")} then ${o.how}`;
    case "dgram":
      return `datagram: ${o.frame ? showFrame(o.frame) : `${o.bytes?.length ?? 0} raw bytes`}`;
    case "wait":
      return `wait ${o.ms} ms`;
    case "burst":
      return `burst of ${o.count} streams: ${o.frames.map(showFrame).join(", ")} then ${o.how}`;
    case "pongs":
      return `answer its PINGs: PONG(t2=now${o.offset >= 0 ? "+" : ""}${o.offset} t3=t2${o.spread >= 0 ? "+" : ""}${o.spread})`;
    case "call":
      return `call, answered: ${o.reply.map(showFrame).join(", ") || "nothing"} then ${o.how}`;
  }
}

/** A short, readable form of a case. */
export function showCase(c: Case): string {
  const g = c.greeting;
  const head = "version" in g ? `${g.kind}(v${g.version}, ${g.body})` : g.kind;
  return [head, ...c.ops.map((o) => "  " + showOp(o))].join("\n");
}

/** What a case found wrong. `known` names the regression test that tracks an unfixed bug. */
export interface Finding {
  kind: "crash" | "unhandled" | "hang" | "unanswered" | "leak" | "honest" | "shape" | "onError";
  detail: string;
  known?: string;
}
