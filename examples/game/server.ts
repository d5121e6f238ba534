// An authoritative game server: ticks at 30 Hz, applies each player's inputs, and sends every
// player a state snapshot per tick over a datagram stream (a late snapshot is worthless: the
// next one supersedes it). Match events (joins, leaves, scores) are broadcast as ordinary
// reliable events; each player's voice arrives on a time-synced stream aligned to this clock.

import { type EchoStream, RpcServer, streamHandler } from "../../mod.ts";

/** One player as the server simulates it. */
interface Player {
  name: string;
  x: number;
  y: number;
  /** The last input applied (players show it to measure input → snapshot delay). */
  lastInput: number;
  stream: EchoStream;
  snapshotsSent: number;
}

/** What the server measured of one player's voice. */
export interface VoiceReport {
  name: string;
  /** Frames played (released at their playout time). */
  frames: number;
  /** Frames that arrived after their playout time: dropped. */
  late: number;
  lost: number;
  latencyMs: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Starts the server (loopback, a free port). */
export async function startGameServer(opts: { tickHz?: number; log?: (line: string) => void } = {}) {
  const log = opts.log ?? console.log;
  const tickMs = 1000 / (opts.tickHz ?? 30);
  const players = new Map<string, Player>();
  const voice: VoiceReport[] = [];
  let tick = 0;
  const server = RpcServer.builder()
    .name("game")
    .bind("127.0.0.1:0")
    .log(() => {})
    .onError(() => {})
    // Inputs up and snapshots down share one datagram stream per player.
    .streamHandler(streamHandler("play", async (ctx, s) => {
      const name = ctx.peer.name;
      const p: Player = { name, x: 0, y: 0, lastInput: -1, stream: s, snapshotsSent: 0 };
      players.set(name, p);
      void server.broadcast("match.event", { tick, what: "join", name });
      try {
        for await (const f of s) {
          const input = JSON.parse(dec.decode(f)) as { seq: number; dx: number; dy: number };
          // Datagrams can arrive out of order: an older input than the last applied is stale.
          if (input.seq <= p.lastInput) continue;
          p.lastInput = input.seq;
          p.x += input.dx;
          p.y += input.dy;
        }
      } catch { /* the player vanished */ }
      players.delete(name);
      void server.broadcast("match.event", { tick, what: "leave", name, snapshotsSent: p.snapshotsSent });
    }, { description: "Inputs up, 30 Hz snapshots down (datagrams)" }))
    .streamHandler(streamHandler("voice", async (ctx, s) => {
      // Frames come out at their playout time on this clock (sender's timestamps mapped by clock sync).
      // A frame that arrives after its playout time is dropped (the default late policy) and
      // counted in stats().late. forEachAligned: the release itself calls back (no promise per
      // frame, for a server taking every player's voice); it resolves when the player ends.
      let frames = 0;
      try {
        await s.forEachAligned(() => void frames++);
      } catch { /* the player vanished */ }
      const st = s.stats();
      voice.push({ name: ctx.peer.name, frames, late: st.late, lost: st.lost, latencyMs: st.latencyMs });
    }, { description: "20 ms voice frames, time-synced" }))
    .build();
  await server.start();

  // The simulation: one snapshot per tick to every player; a score event every 30 ticks.
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout>;
  const step = () => {
    tick++;
    const state = enc.encode(JSON.stringify({ tick, players: [...players.values()].map(({ name, x, y, lastInput }) => ({ name, x, y, lastInput })) }));
    for (const p of players.values()) {
      p.snapshotsSent++;
      p.stream.send(state).catch(() => {}); // a datagram: sent or not, the next tick follows
    }
    if (tick % 30 === 0 && players.size > 0) {
      const leader = [...players.values()].sort((a, b) => b.x - a.x)[0];
      void server.broadcast("match.event", { tick, what: "leader", name: leader.name, x: leader.x });
    }
    // An absolute schedule: a late tick does not push the later ones back.
    timer = setTimeout(step, Math.max(0, t0 + (tick + 1) * tickMs - performance.now()));
  };
  timer = setTimeout(step, tickMs);
  log(`[server] ticking at ${Math.round(1000 / tickMs)} Hz on ${server.address}`);
  return {
    server,
    voice,
    get tick() {
      return tick;
    },
    async close() {
      clearTimeout(timer);
      await server.close({ graceMs: 500 });
    },
  };
}
