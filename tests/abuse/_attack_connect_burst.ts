// Attack (1): `count` QUIC connections in a burst from one address (up to `concurrency` handshakes
// at once, each kept open once made); every `helloEvery`-th one sends HELLO, the others never send
// anything. The server must admit no more than its limits (per address, pending handshakes), refuse
// the rest (close code 0x106, or, where the stack refuses before the handshake, a QUIC
// CONNECTION_REFUSED) and close the silent ones at its handshake timeout (0x105). Each connection
// is held for up to `holdMs` to see how the server ends it. Then a second wave, once the silent
// ones are gone: `helloWave` connections that all send HELLO at once (`concurrency` at a time), to
// run into the per-address limit. Everything is closed at the end.

import type { CloseInfo, Connection } from "../../src/transport/types.ts";
import { attack, bounded, hello, rawQuic, sleep } from "./_raw.ts";
import { FrameType } from "../../src/protocol/frame.ts";

interface Params {
  count: number;
  helloEvery: number;
  concurrency: number;
  holdMs: number;
  helloWave: number;
}

const tally = (into: Record<string, number>, k: string) => void (into[k] = (into[k] ?? 0) + 1);

await attack<Params, Record<string, unknown>>(async ({ address, ca, params: p }) => {
  const conns: { conn: Connection; hello: boolean; wave: string; close?: CloseInfo; answer?: string }[] = [];
  const connectErrors: Record<string, number> = {};
  const t0 = performance.now();
  let next = 0;
  const worker = (count: number, helloEvery: number, wave: string) => async () => {
    for (let i = next++; i < count; i = next++) {
      const sendHello = i % helloEvery === 0;
      let conn: Connection;
      try {
        conn = await rawQuic(address, ca, 5000);
      } catch (e) {
        const m = String((e as Error).message);
        tally(connectErrors, /transport error 2\b|refused/i.test(m) ? "refused" : m.slice(0, 80));
        continue;
      }
      const rec: (typeof conns)[number] = { conn, hello: sendHello, wave };
      conns.push(rec);
      conn.closed.then((c) => (rec.close = c));
      conn.handle({ bidi: () => {}, uni: () => {}, datagram: () => {} });
      if (sendHello) {
        // Not awaited: the burst goes on while HELLOs are answered.
        const h = hello(conn, `${wave}-${i}`, p.holdMs).then(
          (
            h,
          ) => (rec.answer = h.answer?.type === FrameType.WELCOME
            ? "welcome"
            : h.answer?.type === FrameType.GOAWAY
            ? "goaway"
            : h.answer
            ? `type ${h.answer.type}`
            : "none"),
          (e) => (rec.answer = `failed: ${String((e as Error).message).slice(0, 60)}`),
        );
        if (wave === "wave2") await h;
      }
    }
  };
  await Promise.all(Array.from({ length: p.concurrency }, worker(p.count, p.helloEvery, "burst")));
  const burstMs = performance.now() - t0;
  // Hold everything until the server has said what it will (or holdMs).
  const settle = async () => {
    const until = performance.now() + p.holdMs;
    while (performance.now() < until && conns.some((c) => !c.close && !(c.hello && c.answer === "welcome"))) {
      await sleep(50);
    }
  };
  await settle();
  next = 0;
  await Promise.all(Array.from({ length: 8 }, worker(p.helloWave, 1, "wave2")));
  await settle();
  const closes: Record<string, number> = {};
  const silent: Record<string, number> = {};
  const hellos: Record<string, number> = {};
  const wave2: Record<string, number> = {};
  for (const c of conns) {
    const k = c.close ? `0x${c.close.code.toString(16)}` : "open";
    tally(closes, k);
    if (c.wave === "wave2") tally(wave2, `${c.answer ?? "none"}/${k}`);
    else if (c.hello) tally(hellos, `${c.answer ?? "none"}/${k}`);
    else tally(silent, k);
  }
  await Promise.all(conns.map((c) => (c.close ? undefined : bounded(c.conn.close(0, "done").catch(() => {}), 2000))));
  return {
    attempts: p.count + p.helloWave,
    connected: conns.length,
    connectErrors,
    burstMs: Math.round(burstMs),
    closes,
    silent,
    hellos,
    wave2,
    welcomed: conns.filter((c) => c.answer === "welcome").length,
    refused: (closes["0x106"] ?? 0) + (connectErrors.refused ?? 0),
    timedOut: closes["0x105"] ?? 0,
  };
});
