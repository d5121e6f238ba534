// The soak client's time-synced datagram part: streams of 3–8 s, 160-byte frames at `fps` (50)
// (`withTimeSync().unreliable()`), each frame carrying the client id, its seq and a byte pattern;
// the server echoes every frame it releases, re-stamped. Datagrams may be lost (2% each way
// here) but never corrupted, duplicated into the output, or delivered out of timestamp order.

import type { RpcClient } from "../../src/rpc/client.ts";
import { pattern, patternMismatches, sleep } from "./_soak_common.ts";

const FRAME = 160;

/** Totals over all of a client's media streams (its own side; the server reports its side). */
export interface MediaTotals {
  streams: number;
  sent: number;
  echoesReceived: number;
  echoesDelivered: number;
  echoesLost: number;
  echoesLate: number;
  echoesDuplicates: number;
  badEchoes: number;
  transitP50Ms: number[];
  transitP99Ms: number[];
}

export async function runMedia(
  client: RpcClient,
  id: number,
  rand: () => number,
  running: () => boolean,
  violate: (m: string) => void,
  failed: (kind: string, e: unknown) => string,
  pace = 1,
  fps = 50,
): Promise<MediaTotals> {
  const period = 1000 / fps;
  const t: MediaTotals = { streams: 0, sent: 0, echoesReceived: 0, echoesDelivered: 0, echoesLost: 0, echoesLate: 0, echoesDuplicates: 0, badEchoes: 0, transitP50Ms: [], transitP99Ms: [] };
  const filler = pattern(id, 8, FRAME - 8);
  for (let k = 0; running(); k++) {
    try {
      const s = await client.createStream("media").withMetadata({ c: String(id) }).withTimeSync().unreliable().build();
      t.streams++;
      let lastTs = -Infinity;
      const reader = (async () => {
        for (let f = await s.recvAligned(); f; f = await s.recvAligned()) {
          const v = new DataView(f.data.buffer, f.data.byteOffset, f.data.byteLength);
          if (f.data.length !== FRAME || v.getUint32(0) !== id || patternMismatches(id, 8, f.data.subarray(8)) > 0) t.badEchoes++;
          if (f.timestamp < lastTs) violate(`media ${k}: frame released out of timestamp order`);
          lastTs = f.timestamp;
        }
      })();
      const until = performance.now() + 3000 + rand() * 5000;
      for (let seq = 0; running() && performance.now() < until; seq++) {
        const frame = new Uint8Array(FRAME);
        const v = new DataView(frame.buffer);
        v.setUint32(0, id);
        v.setUint32(4, seq);
        frame.set(filler, 8);
        await s.sendWithTimestamp(frame, s.now());
        t.sent++;
        await sleep(period);
      }
      await s.end();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([reader, new Promise((_, no) => (timer = setTimeout(() => no(new Error("echo did not end within 20 s")), 20_000)))])
        .finally(() => clearTimeout(timer));
      const st = s.stats();
      t.echoesReceived += st.received;
      t.echoesDelivered += st.delivered;
      t.echoesLost += st.lost;
      t.echoesLate += st.late;
      t.echoesDuplicates += st.duplicates;
      if (Number.isFinite(st.transitP50Ms)) t.transitP50Ms.push(Math.round(st.transitP50Ms * 100) / 100);
      if (Number.isFinite(st.transitP99Ms)) t.transitP99Ms.push(Math.round(st.transitP99Ms * 100) / 100);
    } catch (e) {
      // With the clock's state: a stream that cannot align frames says why here.
      const { synced, samples, pingsSent, pongsReceived, outstandingPings, transport } = client.clock.stats();
      const clock = JSON.stringify({ synced, samples, pingsSent, pongsReceived, outstandingPings, transport });
      violate(`media ${k} failed: ${failed("media", e)} ${(e as Error).message}; client clock ${clock}`);
    }
    await sleep((200 + rand() * 800) * pace); // the 50 fps stays: pace spaces the streams out
  }
  if (t.badEchoes) violate(`media: ${t.badEchoes} echoed frames corrupted`);
  return t;
}
