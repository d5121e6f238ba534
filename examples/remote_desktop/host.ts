// The machine being viewed. A viewer connects and opens the "screen" stream: the host captures
// a frame every 1/30 s but sends only when the stream can take it (awaiting send() is the
// backpressure), so a slow viewer gets fewer, fresh frames instead of a growing backlog. Input
// events from the viewer move the cursor drawn into the next frame. The host calls back into
// the viewer to open an "audio" stream, time-synced, on the same connection.

import { type EchoStream, listener, RpcServer, streamHandler } from "../../mod.ts";

/** What the host measured. */
export interface HostReport {
  captured: number;
  sent: number;
  /** Frames replaced by a newer capture before the stream could take them. */
  skipped: number;
  inputs: number;
  audioSent: number;
}

/** A synthetic 64 KiB "screen": a header (frame number, cursor, capture time) and a pattern. */
function capture(n: number, cursor: { x: number; y: number; seq: number }): Uint8Array {
  const f = new Uint8Array(64 * 1024);
  const v = new DataView(f.buffer);
  v.setUint32(0, n);
  v.setInt32(4, cursor.x);
  v.setInt32(8, cursor.y);
  v.setInt32(12, cursor.seq);
  v.setFloat64(16, Date.now());
  for (let i = 24; i < f.length; i += 64) f[i] = (n + i) & 0xff;
  return f;
}

/** Starts the host; `report()` says what it did so far. */
export async function startHost(opts: { fps?: number; log?: (line: string) => void } = {}) {
  const log = opts.log ?? console.log;
  const fps = opts.fps ?? 30;
  const cursor = { x: 0, y: 0, seq: -1 };
  const r: HostReport = { captured: 0, sent: 0, skipped: 0, inputs: 0, audioSent: 0 };
  const server = RpcServer.builder()
    .name("remote-desktop-host")
    .bind("127.0.0.1:0")
    .log(() => {})
    .onError(() => {})
    .listener(listener("input", (_ctx, e: { seq: number; x: number; y: number }) => {
      r.inputs++;
      if (e.seq > cursor.seq) Object.assign(cursor, e);
    }, { description: "Pointer moves: { seq, x, y }" }))
    .streamHandler(streamHandler("screen", async (ctx, s: EchoStream) => {
      let closed = false;
      // Audio the other way, on the same connection: the host opens a stream to the viewer.
      const audio = (async () => {
        const a = await ctx.peer.createStream("audio").withTimeSync().build();
        for (let i = 0; !ctx.signal.aborted && !closed; i++) {
          await a.sendWithTimestamp(new Uint8Array(320), a.now());
          r.audioSent++;
          await new Promise((res) => setTimeout(res, 20));
        }
        await a.end();
      })().catch(() => {});
      const viewerDone = (async () => {
        for await (const _ of s) { /* the viewer sends nothing; its end stops the host */ }
        closed = true;
      })().catch(() => (closed = true));
      let latest: Uint8Array | undefined;
      let sending: Promise<void> | undefined;
      const t0 = performance.now();
      for (let n = 0; !closed; n++) {
        latest && r.skipped++; // the previous capture never went out: replaced
        latest = capture(n, cursor);
        r.captured++;
        if (!sending) {
          // One frame in flight at most: send the freshest capture when the stream takes it.
          const frame = latest;
          latest = undefined;
          sending = s.send(frame).then(() => {
            r.sent++;
            sending = undefined;
          }, () => {
            closed = true;
          });
        }
        await new Promise((res) => setTimeout(res, Math.max(0, t0 + (n + 1) * (1000 / fps) - performance.now())));
      }
      await sending;
      await s.end().catch(() => {});
      await viewerDone;
      await audio;
    }, { description: "64 KiB screen frames at up to 30 fps, freshest first under backpressure" }))
    .build();
  await server.start();
  log(`[host] sharing a screen on ${server.address}`);
  return { server, report: () => ({ ...r }), close: () => server.close({ graceMs: 500 }) };
}
