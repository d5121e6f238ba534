// Attack (5): oversize frames and garbage bytes on new streams, on one connection past HELLO.
//   oversize:   a REQUEST header announcing a body of 1 MiB (over the server's maxFrameSize),
//               followed by 4 KiB of it: refused with ERROR RESOURCE_EXHAUSTED, counted
//               (rejected.oversizeFrames), nothing of the body buffered
//   garbage:    bytes that are no frame (an unknown frame type): ERROR DATA_LOSS, counted
//               (rejected.malformedFrames)
//   uniGarbage: the same garbage as an event lane (a uni stream): the server stops reading it
// After each kind, an allowed call on the same connection must still work, and the connection
// must stay open throughout.

import { FrameType } from "../../src/protocol/frame.ts";
import { encodeVarint } from "../../src/protocol/varint.ts";
import type { ServerSnapshot } from "./_config.ts";
import { attack, bounded, type RawAnswer, rawCall, rawExchange, rawPeer, sleep } from "./_raw.ts";

interface Params {
  oversize: number;
  garbage: number;
  uniGarbage: number;
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
};
const tally = (into: Record<string, number>, a: RawAnswer) => {
  const k = a.kind === "error" ? a.code! : a.kind;
  into[k] = (into[k] ?? 0) + 1;
};

await attack<Params, Record<string, unknown>>(async ({ address, ca, params: p }) => {
  const peer = await rawPeer(address, ca, { name: "garbage" });
  const checks: Record<string, string> = {};
  const allowed = async (label: string) => {
    const a = await rawCall(peer.conn, "echo", label, 3000);
    checks[label] = a.kind === "response" && a.value === label ? "ok" : JSON.stringify(a);
  };
  // The server's refusal counters after each kind (so each kind's count is known on its own).
  const counted: Record<string, { oversizeFrames: number; malformedFrames: number }> = {};
  const snap = async (label: string) => {
    const a = await rawCall(peer.conn, "stats", null, 5000);
    const r = a.kind === "response" ? (a.value as ServerSnapshot).stats.rejected : undefined;
    counted[label] = { oversizeFrames: r?.oversizeFrames ?? NaN, malformedFrames: r?.malformedFrames ?? NaN };
  };
  await allowed("before");
  await snap("before");
  // type REQUEST, flags 0, length 1 MiB: refused on the length prefix.
  const oversizeHeader = concat(encodeVarint(FrameType.REQUEST), encodeVarint(0), encodeVarint(1024 * 1024));
  const oversizeBytes = concat(oversizeHeader, new Uint8Array(4096).fill(0x61));
  const oversize: Record<string, number> = {};
  for (let i = 0; i < p.oversize; i++) tally(oversize, await rawExchange(peer.conn, oversizeBytes, 3000, true));
  await allowed("after oversize");
  await snap("oversize");
  // 0x3f is no frame type; then bytes that would be a length and a body.
  const garbageBytes = concat(new Uint8Array([0x3f, 0x00, 0x10]), new Uint8Array(16).fill(0xee));
  const garbage: Record<string, number> = {};
  for (let i = 0; i < p.garbage; i++) tally(garbage, await rawExchange(peer.conn, garbageBytes, 3000));
  await allowed("after garbage");
  await snap("garbage");
  let uniWritten = 0;
  for (let i = 0; i < p.uniGarbage; i++) {
    const s = await bounded(peer.conn.openUni(), 2000);
    if (s === "timeout") break;
    const ok = await bounded(s.write(garbageBytes).then(() => true, () => false), 2000);
    await bounded(s.end().catch(() => {}), 2000);
    if (ok === true) uniWritten++;
  }
  await sleep(300);
  await allowed("after uni garbage");
  await snap("uniGarbage");
  const delta = (to: string, from: string) => ({
    oversizeFrames: counted[to].oversizeFrames - counted[from].oversizeFrames,
    malformedFrames: counted[to].malformedFrames - counted[from].malformedFrames,
  });
  const stillOpen = !peer.closedInfo;
  await peer.conn.close(0, "done").catch(() => {});
  return {
    oversize,
    garbage,
    uniWritten,
    checks,
    /** What the server counted for each kind. */
    countedFor: {
      oversize: delta("oversize", "before"),
      garbage: delta("garbage", "oversize"),
      uniGarbage: delta("uniGarbage", "garbage"),
    },
    stillOpen,
    close: stillOpen ? null : peer.closedInfo,
  };
});
