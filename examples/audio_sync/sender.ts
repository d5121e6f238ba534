// The sending half of the audio_sync example: stamps 20 ms frames of 8 kHz 16-bit PCM (a 440 Hz
// tone, 320 bytes) with its own clock and sends them on a time-synced stream, 50 frames/s.

import { RpcClient } from "../../mod.ts";

/** 20 ms of a 440 Hz tone at 8 kHz, 16-bit little-endian, starting at sample `n0`. */
export function toneFrame(n0: number): Uint8Array {
  const pcm = new Int16Array(160);
  for (let i = 0; i < 160; i++) pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (n0 + i)) / 8000));
  return new Uint8Array(pcm.buffer);
}

/** Sends `seconds` of audio to `address`; returns once the stream has ended. */
export async function sendAudio(
  address: string,
  trust: { ca?: string; fingerprint?: string },
  options: { seconds?: number; unreliable?: boolean; quiet?: boolean } = {},
) {
  const say = options.quiet ? () => {} : (m: string) => console.log(m);
  const client = await RpcClient.connect(address, { ...trust, serverName: "localhost" });
  try {
    await client.clock.ready; // a round trip after connecting
    await new Promise((r) => setTimeout(r, 500)); // the startup burst: 8 samples
    say(
      `[sender] server clock offset ${client.clock.offsetMs.toFixed(3)} ms ± ${
        client.clock.uncertaintyMs.toFixed(3)
      }, rtt ${client.clock.rttMs.toFixed(2)} ms, via ${client.clock.stats().transport}`,
    );
    let builder = client.createStream("audio.sync").withTimeSync();
    if (options.unreliable) builder = builder.unreliable();
    const stream = await builder.build();
    const frames = Math.round((options.seconds ?? 3) * 50);
    const t0 = performance.now();
    for (let i = 0; i < frames; i++) {
      const wait = t0 + i * 20 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await stream.sendWithTimestamp(toneFrame(i * 160), stream.now());
    }
    await stream.end();
    // Wait for the receiver to end its side (after playing everything out) before closing:
    // closing the connection at once could cut off frames still in flight.
    while ((await stream.recv()) !== undefined) { /* the receiver sends nothing else */ }
    say(`[sender] sent ${frames} frames (${options.unreliable ? "QUIC datagrams" : "reliable stream"})`);
  } finally {
    await client.close();
  }
}

if (import.meta.main) {
  const args = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
  const [address = "127.0.0.1:5070", fingerprint] = args;
  if (!fingerprint) throw new Error("usage: sender.ts <host:port> <server fingerprint>");
  await sendAudio(address, { fingerprint });
}
