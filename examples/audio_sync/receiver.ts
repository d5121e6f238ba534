// The receiving half of the audio_sync example: a server whose "audio.sync" stream handler
// plays 20 ms audio frames out at their aligned time (here: prints them), with the clock offset
// and jitter-buffer stats. Use it alone (`bun examples/audio_sync/receiver.ts`) or through run.ts.

import { type EchoStream, RpcServer, streamHandler } from "../../mod.ts";

/** What the receiver saw, for run.ts's summary. */
export interface ReceiverReport {
  frames: number;
  late: number;
  /** Release time − alignedTime, p99 (ms): how precisely playout followed the schedule. */
  releaseErrorP99Ms: number;
  stats: ReturnType<EchoStream["stats"]>;
  /** Set when the stream failed before its end marker (what was played is still reported). */
  error?: string;
}

/** Starts the receiver; `onDone` gets a report when a sender's stream ends. */
export async function startReceiver(
  options: { bind?: string; quiet?: boolean; onDone?: (r: ReceiverReport) => void } = {},
) {
  const say = options.quiet ? () => {} : (m: string) => console.log(m);
  const server = RpcServer.builder()
    .bind(options.bind ?? "127.0.0.1:0")
    .log(() => {})
    .streamHandler(streamHandler("audio.sync", async (ctx, stream: EchoStream) => {
      const errors: number[] = [];
      let frames = 0;
      let late = 0;
      let error: string | undefined;
      try {
        for (let f = await stream.recvAligned(); f; f = await stream.recvAligned()) {
          const now = stream.now();
          errors.push(now - f.alignedTime);
          frames++;
          if (f.late) late++;
          if (f.seq % 25 === 0) {
            const st = stream.stats();
            const clock = ctx.peer.clock;
            say(
              `[receiver] frame ${String(f.seq).padStart(3)} play at ${f.alignedTime.toFixed(1)} (+${
                (now - f.alignedTime).toFixed(2)
              } ms)` +
                ` | sender clock offset ${clock.offsetMs.toFixed(3)} ± ${clock.uncertaintyMs.toFixed(3)} ms` +
                ` | latency ${st.latencyMs.toFixed(1)} ms (target ${st.targetLatencyMs.toFixed(1)}), transit p99 ${
                  st.transitP99Ms.toFixed(1)
                } ms,` +
                ` late ${st.late}, lost ${st.lost}, buffered ${st.bufferedFrames}`,
            );
          }
        }
      } catch (e) {
        error = (e as Error).message; // the sender vanished: report what was played
      }
      errors.sort((a, b) => a - b);
      const report: ReceiverReport = {
        frames,
        late,
        releaseErrorP99Ms: errors[Math.floor(errors.length * 0.99)] ?? 0,
        stats: stream.stats(),
        error,
      };
      options.onDone?.(report);
    }))
    .build();
  await server.start();
  return server;
}

if (import.meta.main) {
  const server = await startReceiver({ bind: "127.0.0.1:5070" });
  console.log(`[receiver] listening on ${server.address}; trust fingerprint ${server.trust.fingerprint}`);
}
