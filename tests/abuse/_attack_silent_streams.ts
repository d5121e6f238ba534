// Attack (2): past HELLO, open as many streams as the server allows (its advertised limit is twice
// the streams it serves at once) and never send a frame: each stream carries `firstBytes` bytes
// (0: a stream opened and left empty; 1: one byte of a frame header, so the server surely sees it)
// and nothing more. The server must end each one at firstFrameTimeoutMs (counted in
// rejected.firstFrameTimeout); silent streams are non-productive, so past maxResets of them in the
// window the connection is closed with 0x107 after a GOAWAY (what a QUIC stack may keep of a
// stream its peer never resets, e.g. quinn's, goes with it).

import { attack, bounded, collect, goAways, rawCall, rawPeer, sleep } from "./_raw.ts";
import type { BidiStream } from "../../src/transport/types.ts";
import type { Frame } from "../../src/protocol/frame.ts";

interface Params {
  streams: number;
  runMs: number;
  firstBytes?: number;
}

await attack<Params, Record<string, unknown>>(async ({ address, ca, params: p }) => {
  const peer = await rawPeer(address, ca, { name: "silent-streams" });
  const goaway = goAways(peer);
  const prefix = new Uint8Array(p.firstBytes ?? 1).fill(0x04); // 0x04: REQUEST, the frame's first byte
  const t0 = performance.now();
  const ended: number[] = [];
  let opened = 0;
  let openStalledAt: number | null = null;
  const held: BidiStream[] = [];
  const open = async (): Promise<boolean> => {
    const s = await bounded(peer.conn.openBidi().catch(() => undefined), 300);
    if (!s || s === "timeout") return false;
    opened++;
    held.push(s);
    const frames: Frame[] = [];
    collect(s, frames).then(() => ended.push(performance.now() - t0));
    if (prefix.length) await bounded(s.write(prefix).catch(() => {}), 300);
    return true;
  };
  // As many as the stack lets us open, until an open has to wait for a slot.
  for (let i = 0; i < p.streams; i++) {
    if (!(await open())) {
      openStalledAt = opened;
      break;
    }
  }
  const openMs = performance.now() - t0;
  // Wait for the server to end them (or give up at runMs).
  const until = t0 + p.runMs;
  while (ended.length < opened && !peer.closedInfo && performance.now() < until) await sleep(20);
  // Streams fail a moment before the connection's close is reported: give the close time to come.
  const closeBy = performance.now() + 2000;
  while (!peer.closedInfo && performance.now() < closeBy) await sleep(20);
  const closedAtMs = peer.closedInfo ? performance.now() - t0 : undefined;
  const endedAll = ended.length;
  // Whether the slots came back: up to 50 more streams open without waiting, and a call goes
  // through. (Only if the stack gives the slots back: on Deno, quinn keeps a stream whose sending
  // half this side never ended; that is this connection's own loss, not the server's.)
  let reopened = 0;
  for (let i = 0; i < 50; i++) {
    if (!(await open())) break;
    reopened++;
  }
  const echo = peer.closedInfo ? null : await rawCall(peer.conn, "echo", "after", 1000).catch((e) => String(e));
  const stillOpen = !peer.closedInfo;
  for (const s of held) s.reset(0);
  await peer.conn.close(0, "done").catch(() => {});
  const sorted = ended.slice(0, endedAll).sort((a, b) => a - b);
  return {
    opened: opened - reopened,
    openStalledAt,
    openMs: Math.round(openMs),
    ended: endedAll,
    firstEndedMs: sorted.length ? Math.round(sorted[0]) : null,
    lastEndedMs: sorted.length ? Math.round(sorted[sorted.length - 1]) : null,
    reopened,
    echoAfter: echo,
    stillOpen,
    close: peer.closedInfo ?? null,
    closedAtMs: closedAtMs === undefined ? null : Math.round(closedAtMs),
    goaway,
  };
});
