// Attack (6): slowloris. Past HELLO, `streams` streams at once, each trickling a REQUEST for
// "slow" one byte every `byteEveryMs` (the frame takes longer than firstFrameTimeoutMs to
// complete). The server must end each stream at firstFrameTimeoutMs (counted in
// rejected.firstFrameTimeout) without ever running the handler. Records, per stream, when the
// server ended it, measured from its first byte.

import { attack, bounded, collect, rawCall, rawPeer, requestBytes, sleep } from "./_raw.ts";
import type { Frame } from "../../src/protocol/frame.ts";

interface Params {
  streams: number;
  byteEveryMs: number;
}

await attack<Params, Record<string, unknown>>(async ({ address, ca, params: p }) => {
  const peer = await rawPeer(address, ca, { name: "slowloris" });
  // Padded so the whole frame takes 3x the server's timeout at this pace.
  const frame = requestBytes("slow", { pad: "x".repeat(40) }, {});
  const results = await Promise.all(Array.from({ length: p.streams }, async () => {
    const s = await peer.conn.openBidi();
    const frames: Frame[] = [];
    let endedAt: number | undefined;
    let how = "open";
    const t0 = performance.now();
    const reading = collect(s, frames).then((e) => {
      endedAt ??= performance.now() - t0;
      how = e;
    });
    let sent = 0;
    for (; sent < frame.length; sent++) {
      const ok = await bounded(s.write(frame.subarray(sent, sent + 1)).then(() => true, () => false), 1000);
      if (ok !== true) {
        endedAt ??= performance.now() - t0;
        if (how === "open") how = "write failed";
        break;
      }
      if (endedAt !== undefined) break;
      await sleep(p.byteEveryMs);
    }
    await bounded(reading, 500);
    return {
      sent,
      of: frame.length,
      endedMs: endedAt === undefined ? null : Math.round(endedAt),
      how,
      frames: frames.length,
    };
  }));
  const stillOpen = !peer.closedInfo;
  const echo = stillOpen ? await rawCall(peer.conn, "echo", "after", 3000) : null;
  await peer.conn.close(0, "done").catch(() => {});
  const ended = results.map((r) => r.endedMs).filter((x): x is number => x !== null);
  return {
    frameBytes: frame.length,
    streams: results.length,
    completedFrames: results.filter((r) => r.sent >= r.of).length,
    endedCount: ended.length,
    endedMinMs: Math.min(...ended),
    endedMaxMs: Math.max(...ended),
    hows: results.reduce((m, r) => ((m[r.how] = (m[r.how] ?? 0) + 1), m), {} as Record<string, number>),
    stillOpen,
    echoAfter: echo,
  };
});
