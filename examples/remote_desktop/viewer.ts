// The viewer: opens the screen stream, "decodes" each frame (a slow phase simulates a busy
// viewer), moves the pointer by emitting input events, and plays the host's audio stream at its
// aligned time. Reports what it saw.

import { type EchoStream, RpcClient, streamHandler } from "../../mod.ts";

/** What the viewer saw. */
export interface ViewerReport {
  frames: number;
  mbPerSec: number;
  /** Input event emitted → first frame showing it (ms), median and p95. */
  inputToScreenMs: { p50: number; p95: number };
  audioPlayed: number;
  audioLate: number;
  audioLatencyMs: number;
}

const q = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] : NaN);

/** Views for `seconds`; decoding takes `slowMs` per frame during the middle third. */
export async function runViewer(address: string, ca: string, seconds: number, slowMs = 100): Promise<ViewerReport> {
  let audioDone!: (r: { played: number; late: number; latencyMs: number }) => void;
  const audio = new Promise<{ played: number; late: number; latencyMs: number }>((r) => (audioDone = r));
  const client = await RpcClient.connect(address, { ca, name: "viewer", onError: () => {} });
  client.handle(
    streamHandler("audio", async (_ctx, s: EchoStream) => {
      let played = 0;
      try {
        for (let f = await s.recvAligned(); f; f = await s.recvAligned()) played++;
      } catch { /* the host went away */ }
      const st = s.stats();
      audioDone({ played, late: st.late, latencyMs: st.latencyMs });
    }),
  );
  const screen = await client.createStream("screen");
  const sentAt = new Map<number, number>();
  const delays: number[] = [];
  let frames = 0, bytes = 0, seq = 0;
  const t0 = performance.now();
  const pointer = setInterval(() => {
    sentAt.set(seq, performance.now());
    void client.emit("input", { seq, x: seq * 3, y: seq * 2 });
    seq++;
  }, 25);
  for await (const f of screen) {
    frames++;
    bytes += f.length;
    const shown = new DataView(f.buffer, f.byteOffset, f.length).getInt32(12);
    for (const [s, t] of sentAt) {
      if (s > shown) break;
      delays.push(performance.now() - t);
      sentAt.delete(s);
    }
    const elapsed = performance.now() - t0;
    // A busy viewer in the middle third: decoding takes slowMs per frame.
    if (elapsed > (seconds * 1000) / 3 && elapsed < (2 * seconds * 1000) / 3) await new Promise((r) => setTimeout(r, slowMs));
    if (elapsed > seconds * 1000) break;
  }
  clearInterval(pointer);
  const mbPerSec = bytes / 1e6 / ((performance.now() - t0) / 1000);
  await screen.end();
  while ((await screen.recv()) !== undefined) { /* frames in flight when we stopped */ }
  const a = await Promise.race([audio, new Promise<{ played: number; late: number; latencyMs: number }>((r) => setTimeout(() => r({ played: -1, late: -1, latencyMs: NaN }), 3000))]);
  await client.close();
  return { frames, mbPerSec, inputToScreenMs: { p50: q(delays, 0.5), p95: q(delays, 0.95) }, audioPlayed: a.played, audioLate: a.late, audioLatencyMs: a.latencyMs };
}
