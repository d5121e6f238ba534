// Clock synchronisation on real connections (Bun, loopback QUIC): PING/PONG on datagrams and on
// the control stream, injected offsets, skew and steps, both sides' views, and a peer that
// misbehaves (never answers, answers twice, answers what it was never asked).

import { expect, test } from "bun:test";
import { RpcClient } from "../../src/rpc/client.ts";
import { RpcServer } from "../../src/rpc/server.ts";
import { RpcError } from "../../src/protocol/rpc_error.ts";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { type Frame, FrameType } from "../../src/protocol/frame.ts";
import { msgpackCodec } from "../../src/protocol/payload_codec.ts";
import { ALPN, PROTOCOL_VERSION } from "../../src/protocol/version.ts";
import { bunTransport } from "../../src/transport/bun.ts";
import type { BidiStream } from "../../src/transport/types.ts";
import { type ClockStepDetail, systemClock } from "../../src/clock/sync.ts";
import { elapse, once, waitFor } from "../support/wait.ts";

// The keep-alive case (an idle connection past Bun's 60 s limit) is in tests/slow/keepalive.slow.ts.

const quiet = (b: ReturnType<typeof RpcServer.builder>) => b.bind("127.0.0.1:0").log(() => {}).onError(() => {});

/** A clock `shift` ms ahead of the system clock, with a settable extra offset (for steps). */
function shifted(shift: number) {
  const c = { extra: 0, fn: () => systemClock() + shift + c.extra };
  return c;
}

test("a client estimates an injected server offset over datagrams; the server knows the client's", async () => {
  const serverClock = shifted(1234.567);
  const clientClock = shifted(-777.25);
  const server = quiet(RpcServer.builder()).clock(serverClock.fn).build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, clock: clientClock.fn });
  try {
    await client.clock.ready;
    const peer = [...server.peers][0];
    // Past the startup burst (8 PINGs 50 ms apart, then 4 Hz) on both sides.
    await waitFor(() => client.clock.stats().pongsReceived >= 10 && peer.clock.stats().pongsReceived >= 10, "10 clock samples on each side");
    const truth = 1234.567 + 777.25; // server − client
    const st = client.clock.stats();
    expect(st.transport).toBe("datagram");
    expect(st.synced).toBe(true);
    expect(st.pingsSent).toBeGreaterThanOrEqual(10); // burst of 8 at 50 ms, then 4 Hz
    expect(st.pongsReceived).toBeGreaterThanOrEqual(9);
    expect(st.unmatchedPongs + st.duplicatePongs).toBe(0);
    expect(Math.abs(st.offsetMs - truth)).toBeLessThan(1);
    // The uncertainty is an honest bound, and small on loopback.
    expect(Math.abs(st.offsetMs - truth)).toBeLessThanOrEqual(st.uncertaintyMs);
    expect(st.uncertaintyMs).toBeLessThan(5);
    expect(Math.abs(client.clock.now() - serverClock.fn())).toBeLessThan(1);
    expect(Math.abs(client.clock.toLocal(serverClock.fn()) - clientClock.fn())).toBeLessThan(1);
    // The server pings too: it holds this client's offset (client − server).
    const sv = peer.clock.stats();
    expect(sv.transport).toBe("datagram");
    expect(Math.abs(sv.offsetMs + truth)).toBeLessThan(1);
    expect(sv.pingsAnswered).toBeGreaterThanOrEqual(9);
  } finally {
    await client.close();
    await server.close();
  }
});

test("clock sync falls back to the control stream when asked (or when datagrams are missing)", async () => {
  const server = quiet(RpcServer.builder()).clock(shifted(5000).fn).clockSync({ transport: "stream" }).build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, clockSync: { transport: "stream", intervalMs: 50 } });
  try {
    await client.clock.ready;
    await waitFor(() => client.clock.stats().samples >= 10, "10 clock samples over the control stream");
    const st = client.clock.stats();
    expect(st.transport).toBe("stream");
    expect(st.intervalMs).toBe(50);
    expect(st.samples).toBeGreaterThanOrEqual(10);
    expect(Math.abs(st.offsetMs - 5000)).toBeLessThan(1);
    expect([...server.peers][0].clock.stats().transport).toBe("stream");
  } finally {
    await client.close();
    await server.close();
  }
});

test("an injected skew of 2000 ppm is tracked", async () => {
  const t0 = systemClock();
  // The server's clock runs 2000 ppm fast.
  const server = quiet(RpcServer.builder()).clock(() => {
    const t = systemClock();
    return t + (t - t0) * 2e-3;
  }).build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, clockSync: { intervalMs: 50 } });
  try {
    // Time passing is the point: a skew shows only over a span of samples (2000 ppm is 6 ms in 3 s).
    await elapse(3000);
    const st = client.clock.stats();
    expect(Math.abs(st.skewPpm - 2000)).toBeLessThan(100);
    const truth = (systemClock() - t0) * 2e-3;
    expect(Math.abs(client.clock.offsetMs - truth)).toBeLessThan(1);
    expect(st.steps).toBe(0);
  } finally {
    await client.close();
    await server.close();
  }
});

test("a server clock step fires one clockstep event and the offset follows", async () => {
  const serverClock = shifted(100);
  const server = quiet(RpcServer.builder()).clock(serverClock.fn).build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, clockSync: { intervalMs: 50 } });
  const events: ClockStepDetail[] = [];
  client.clock.addEventListener("clockstep", (e) => events.push((e as CustomEvent<ClockStepDetail>).detail));
  const samples = () => client.clock.stats().samples;
  try {
    // Steps are told from outliers once the fit gates samples (16 of them): wait past that.
    await waitFor(() => samples() >= 20, "20 clock samples before the step");
    expect(events.length).toBe(0); // none while the clock was steady
    const step = once(client.clock, "clockstep");
    serverClock.extra = 500;
    await step;
    // The negative window: 6 more samples (~300 ms at 50 ms), in which no second clockstep may
    // fire, and over which the offset settles on the new value.
    const after = samples();
    await waitFor(() => samples() >= after + 6, "6 clock samples after the step");
    expect(events.length).toBe(1);
    expect(Math.abs(events[0].fromMs - 100)).toBeLessThan(1);
    expect(Math.abs(events[0].toMs - 600)).toBeLessThan(2);
    expect(client.clock.stats().steps).toBe(1);
    expect(Math.abs(client.clock.offsetMs - 600)).toBeLessThan(1);
  } finally {
    await client.close();
    await server.close();
  }
});

test("clock options are validated with clear errors", async () => {
  expect(() => RpcServer.builder().clockSync({ intervalMs: 10 })).toThrow(/intervalMs must be within 50..10000/);
  expect(() => RpcServer.builder().clockSync({ transport: "carrier-pigeon" as "auto" })).toThrow(/transport must be/);
  expect(() => RpcServer.builder().clock(42 as unknown as () => number)).toThrow(/clock must be a function/);
  const err = await RpcClient.connect("127.0.0.1:1", { clockSync: { intervalMs: 20_000 } }).catch((e) => e);
  expect(err).toBeInstanceOf(RpcError);
  expect(err.code).toBe("INVALID_ARGUMENT");
  expect(err.message).toMatch(/intervalMs/);
});

/**
 * A hand-made server that completes the handshake (without datagrams, so clock sync runs on the
 * control stream) and then treats PINGs as `onPing` says.
 */
async function rawServer(onPing: (ping: Frame & { type: typeof FrameType.PING }, s: BidiStream, reply: (seq: number, t1: number) => Uint8Array) => Promise<void>) {
  const frames = createFrameCodec();
  const t = bunTransport;
  const listener = await t.listen({ host: "127.0.0.1", port: 0, alpn: ALPN, log: () => {} }, (conn) => {
    conn.handle({
      bidi: async (s) => {
        const split = frames.splitter();
        let welcomed = false;
        for await (const chunk of s) {
          for (const f of split.push(chunk)) {
            if (f.type === FrameType.HELLO && !welcomed) {
              welcomed = true;
              await s.write(frames.encode({ type: FrameType.WELCOME, flags: 0, version: PROTOCOL_VERSION, name: "raw", payload: msgpackCodec().encode({ caps: {} }) }));
            } else if (f.type === FrameType.PING) {
              const now = systemClock();
              await onPing(f, s, (seq, t1) => frames.encode({ type: FrameType.PONG, flags: 0, seq, t1, t2: now, t3: now }));
            }
          }
        }
      },
    });
  });
  return listener;
}

test("a peer that never answers PINGs: counted, bounded, and everything else still works", async () => {
  let pings = 0;
  const l = await rawServer(() => {
    pings++;
    return Promise.resolve();
  });
  const client = await RpcClient.connect(`127.0.0.1:${l.address.port}`, { ca: l.trust.ca, clockSync: { intervalMs: 50 } });
  try {
    // 21 PINGs unanswered: more than the 16 it keeps outstanding.
    await waitFor(() => client.clock.stats().pingsSent > 20 && pings > 20, "21 PINGs sent and seen by the mute server");
    const st = client.clock.stats();
    expect(st.transport).toBe("stream");
    expect(st.pingsSent).toBeGreaterThan(20);
    expect(pings).toBeGreaterThan(20);
    expect(st.pongsReceived).toBe(0);
    expect(st.outstandingPings).toBe(16); // old PINGs are forgotten: memory stays bounded
    expect(st.synced).toBe(false);
    expect(Number.isNaN(client.clock.offsetMs)).toBe(true);
    expect(client.clock.uncertaintyMs).toBe(Infinity);
    // now() falls back to the local clock rather than NaN.
    expect(Math.abs(client.clock.now() - systemClock())).toBeLessThan(5);
  } finally {
    await client.close();
    await l.close();
  }
});

test("duplicate and bogus PONGs are dropped and counted", async () => {
  const l = await rawServer(async (ping, s, reply) => {
    await s.write(reply(ping.seq, ping.t1));
    await s.write(reply(ping.seq, ping.t1)); // the same answer again
    await s.write(reply(ping.seq + 1000, ping.t1)); // a PING never sent
    await s.write(reply(ping.seq, ping.t1 - 1)); // the right seq with a t1 that was not sent
  });
  const client = await RpcClient.connect(`127.0.0.1:${l.address.port}`, { ca: l.trust.ca });
  try {
    // The burst's 8 PINGs, each answered with 4 PONGs. Read before the next PING (250 ms after
    // the burst), so the snapshot below holds whole answers.
    const read = () => {
      const c = client.clock.stats();
      return c.pongsReceived + c.duplicatePongs + c.unmatchedPongs;
    };
    await waitFor(() => read() >= 4 * 8, "the 32 PONGs answering the startup burst");
    const st = client.clock.stats();
    expect(st.pongsReceived).toBe(st.pingsSent - st.outstandingPings);
    expect(st.pongsReceived).toBeGreaterThanOrEqual(6);
    expect(st.duplicatePongs).toBe(2 * st.pongsReceived); // the repeat, and the wrong t1 after it
    expect(st.unmatchedPongs).toBe(st.pongsReceived); // the unknown seqs
    expect(st.synced).toBe(true);
  } finally {
    await client.close();
    await l.close();
  }
});

test("a reconnecting client keeps one clock", async () => {
  const server = quiet(RpcServer.builder()).clock(shifted(42).fn).build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca, reconnect: { minDelayMs: 20 } });
  try {
    const clock = client.clock;
    await clock.ready;
    const before = clock.stats().pingsSent;
    await [...server.peers][0].close(0, "bye");
    await waitFor(() => client.stats().reconnects === 1 && client.connected, "the client to reconnect");
    // PONGs on the new connection: the same clock is pinging again.
    const pongs = clock.stats().pongsReceived;
    await waitFor(() => clock.stats().pongsReceived >= pongs + 3, "3 clock samples on the new connection");
    expect(client.connected).toBe(true);
    expect(client.clock).toBe(clock);
    expect(clock.stats().pingsSent).toBeGreaterThan(before);
    expect(Math.abs(clock.offsetMs - 42)).toBeLessThan(1);
  } finally {
    await client.close();
    await server.close();
  }
});
