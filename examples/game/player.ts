// A player: sends an input every tick and renders the server's snapshots (datagrams), follows
// match events (reliable), and talks on a time-synced voice stream. Reports what it saw: how many
// snapshots arrived, the longest run of ticks it missed (what a player sees as a stutter; a real
// client interpolates across it), and input → snapshot delay.

import { listener, RpcClient } from "../../mod.ts";

/** What one player saw. */
export interface PlayerReport {
  name: string;
  snapshots: number;
  /** Ticks from the first snapshot to the last seen. */
  span: number;
  /** The longest run of consecutive ticks missed. */
  longestGap: number;
  /** Input sent → first snapshot that reflects it, median and p95 (ms). */
  inputDelayMs: { p50: number; p95: number };
  events: string[];
  /** Voice frames sent. */
  voiceSent: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const q = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] : NaN);

/** Plays for `seconds` against `address` (the server itself, or a relay in front of it). */
export async function runPlayer(address: string, ca: string, name: string, seconds: number): Promise<PlayerReport> {
  const events: string[] = [];
  const client = await RpcClient.connect(address, { ca, name, serverName: "localhost", onError: () => {} });
  client.handle(listener("match.event", (_ctx, e: { what: string; name: string }) => void events.push(`${e.what} ${e.name}`)));
  await client.clock.ready;
  const play = await client.createStream("play").unreliable().build();
  const voice = await client.createStream("voice").withTimeSync().build();
  const sentAt = new Map<number, number>();
  const delays: number[] = [];
  let snapshots = 0, first = -1, last = -1, longestGap = 0;
  const reading = (async () => {
    for await (const f of play) {
      const snap = JSON.parse(dec.decode(f)) as { tick: number; players: { name: string; lastInput: number }[] };
      if (snap.tick <= last) continue; // reordered: older than what is on screen
      if (first < 0) first = snap.tick;
      else longestGap = Math.max(longestGap, snap.tick - last - 1);
      last = snap.tick;
      snapshots++;
      const me = snap.players.find((p) => p.name === name);
      const t = me ? sentAt.get(me.lastInput) : undefined;
      if (t !== undefined) {
        delays.push(performance.now() - t);
        sentAt.delete(me!.lastInput);
      }
    }
  })().catch(() => {});
  const t0 = performance.now();
  let voiceSent = 0;
  for (let i = 0; performance.now() - t0 < seconds * 1000; i++) {
    sentAt.set(i, performance.now());
    await play.send(enc.encode(JSON.stringify({ seq: i, dx: 1, dy: i % 2 ? 1 : -1 })));
    // 20 ms of "voice" (silence here), stamped with this side's clock.
    await voice.sendWithTimestamp(new Uint8Array(160), voice.now());
    voiceSent++;
    await new Promise((r) => setTimeout(r, 20));
  }
  await voice.end();
  // The server ends its side once it has played everything: closing before that could cut off
  // frames still being retransmitted (this player may be behind a lossy link).
  while ((await voice.recv()) !== undefined) { /* the server sends nothing on it */ }
  await play.end();
  await Promise.race([reading, new Promise((r) => setTimeout(r, 500))]);
  await client.close();
  return { name, snapshots, span: last - first + 1, longestGap, inputDelayMs: { p50: q(delays, 0.5), p95: q(delays, 0.95) }, events, voiceSent };
}
