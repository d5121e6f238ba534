// Abuse resistance, on a Bun server and on a Deno server (separate processes, loopback): eight
// attacks, each from its own attacker process (_attack_*.ts) against a fresh, production-shaped
// server (_server.ts: access policy, event rate limit, the tightened limits of _config.ts), while
// an honest client in another process (_honest.ts) keeps calling "echo" with a 2 s timeout.
// For each: the server stays up, the attacker is limited or disconnected with the right code,
// every honest call succeeds (and enough of them are made), the matching `rejected` counter moves
// by what the attacker saw, live state returns to baseline, and the server's RSS stays within
// RSS_BOUND_MB of its idle RSS. Each attack takes 0.3-6 s; the file about 1.5 minutes on 2 cores.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DEFAULT_PEER_LIMITS } from "../../src/security/limits.ts";
import { CLOSE, EVENT_RATE, LIMITS, type ServerSnapshot } from "./_config.ts";
import { type AttackName, ATTACKS, runScenario, type ScenarioResult, summary } from "./_harness.ts";

/** Peak server RSS may exceed its idle RSS (after warm-up) by at most this much, in MB. */
const RSS_BOUND_MB = 128;
const DENO_BURST_RSS_BOUND_MB = 256;
/** The honest client paces itself at one call per 2 ms at most; under attack it must still make 50/s. */
const MIN_HONEST_PER_SECOND = 50;
const SCENARIO_TIMEOUT_MS = 60_000;

const all: ScenarioResult[] = [];
afterAll(() => {
  console.log("\nabuse scenarios:\n" + all.map((r) => `  ${summary(r)}`).join("\n"));
});

// deno-lint-ignore no-explicit-any -- an attacker's JSON result, read field by field
type A = Record<string, any>;
const snap = (r: ScenarioResult): ServerSnapshot => {
  if (!("stats" in r.final)) throw new Error(`no final snapshot: ${r.final.error}`);
  return r.final;
};

/** What every scenario must show, whatever the attack. */
function common(rt: string, get: () => ScenarioResult) {
  test("the server stayed up and the attacker ran to its end", () => {
    const r = get();
    expect(r.server).toBe(rt as "bun");
    expect(r.serverAlive).toBe(true);
    expect(r.attacker.error ?? null).toBeNull();
    expect(r.attacker.ok).toBe(true);
    expect(snap(r).runtime).toBe(rt as "bun");
  });

  test("every honest call succeeded, enough were made, the honest connection was never dropped, and a newcomer is served", () => {
    const r = get();
    expect(r.honest.failures).toEqual([]);
    expect(r.honest.failureCount).toBe(0);
    expect(r.honest.disconnected).toBeNull();
    expect(r.phases.all.failed).toBe(0);
    expect(r.phases.all.calls).toBeGreaterThanOrEqual(500);
    expect(r.phases.attack.calls).toBeGreaterThanOrEqual(
      Math.max(20, Math.floor((MIN_HONEST_PER_SECOND * r.attackMs) / 1000)),
    );
    expect(r.honest.fresh).toMatchObject({ ok: true });
  });

  // One known exception (docs/SECURITY.md "Known limits"): after a burst of QUIC handshakes a Deno
  // server's RSS rises by 80-160 MB and stays (repeated bursts plateau near +200 MB) while its JS
  // heap stays ~9 MB: memory the runtime's QUIC stack keeps, bounded but above the general bound.
  const bound = (r: ScenarioResult) => (rt === "deno" && r.attack === "connectBurst" ? DENO_BURST_RSS_BOUND_MB : RSS_BOUND_MB);
  test(`server RSS stays within ${RSS_BOUND_MB} MB of idle (${DENO_BURST_RSS_BOUND_MB} MB for a handshake burst on Deno)`, () => {
    const r = get();
    expect(r.rss.idleMB).toBeGreaterThan(0);
    expect(r.rss.peakMB - r.rss.idleMB).toBeLessThanOrEqual(bound(r));
  });

  test("live state back to baseline: only the honest connection, nothing handshaking, no stream or call held", () => {
    const s = snap(get()).stats;
    expect({ connections: s.connections, handshaking: s.handshaking, openStreams: s.openStreams, inFlight: s.inFlight })
      // inFlight 1: the "stats" call that took this snapshot.
      .toEqual({ connections: 1, handshaking: 0, openStreams: 0, inFlight: 1 });
  });
}

function scenario(rt: "bun" | "deno", attack: AttackName, title: string, checks: (get: () => ScenarioResult) => void) {
  describe(`${rt} server: ${title}`, () => {
    let r: ScenarioResult;
    beforeAll(async () => {
      r = await runScenario(rt, attack);
      all.push(r);
      console.log(summary(r));
    }, SCENARIO_TIMEOUT_MS);
    const get = () => {
      if (!r) throw new Error("the scenario did not run");
      return r;
    };
    common(rt, get);
    checks(get);
  });
}

for (const rt of ["bun", "deno"] as const) {
  scenario(
    rt,
    "connectBurst",
    "1,000 connections in a burst, half never sending HELLO, then 100 HELLOs at once",
    (get) => {
      const P = ATTACKS.connectBurst.params;
      test("every attempt is accounted for: welcomed, refused (0x106 or QUIC CONNECTION_REFUSED) or timed out (0x105)", () => {
        const a = get().attacker as A;
        expect(a.attempts).toBe(P.count + P.helloWave);
        expect(a.welcomed + a.refused + a.timedOut).toBe(a.attempts);
        // Most of the burst is refused; the limits were hit.
        expect(a.refused).toBeGreaterThanOrEqual(
          a.attempts - (LIMITS.maxConnectionsPerAddress + 4 * LIMITS.maxPendingHandshakes),
        );
      });

      test("no more admitted than the limits: per address (the honest client holds one), pending handshakes", () => {
        const r = get();
        const a = r.attacker as A;
        expect(a.welcomed).toBeLessThanOrEqual(LIMITS.maxConnectionsPerAddress - 1);
        expect(a.welcomed).toBeGreaterThan(0);
        expect(r.maxDuring.connections).toBeLessThanOrEqual(LIMITS.maxConnectionsPerAddress);
        expect(r.maxDuring.handshaking).toBeLessThanOrEqual(LIMITS.maxPendingHandshakes);
      });

      test("the server counted the refusals (exactly on Bun, at least once each on Deno) and timeouts the attacker saw", () => {
        const r = get();
        const a = r.attacker as A;
        const d = r.rejectedDelta;
        const counted = d.addressLimit + d.handshakeLimit + d.connectionLimit;
        if (rt === "bun") expect({ refused: counted, timedOut: d.handshakeTimeout }).toEqual({ refused: a.refused, timedOut: a.timedOut });
        else {
          // Deno refuses before TLS, once per QuicIncoming the stack presents, and an attempt
          // whose Initial is retransmitted after the refusal comes back as another one: every
          // refused attempt is counted, some more than once (docs/SECURITY.md).
          expect(counted).toBeGreaterThanOrEqual(a.refused);
          expect(counted).toBeLessThanOrEqual(2 * a.attempts);
          expect(d.handshakeTimeout).toBe(a.timedOut);
        }
        expect(d.handshakeLimit).toBeGreaterThan(0);
        expect(d.addressLimit).toBeGreaterThan(0);
      });
    },
  );

  scenario(rt, "silentStreams", "the maximum of streams opened, never a frame sent", (get) => {
    // The GOAWAY is written, but with a thousand streams being reset at that moment it does not
    // always arrive before the close; the close carries the same code and reason.
    test("streams are ended at firstFrameTimeoutMs, none earlier; past maxResets silent streams the connection is closed with 0x107 and why", () => {
      const a = get().attacker as A;
      expect(a.opened).toBeGreaterThanOrEqual(1024);
      expect(a.ended).toBeGreaterThan(LIMITS.maxResets);
      expect(a.firstEndedMs).toBeGreaterThanOrEqual(LIMITS.firstFrameTimeoutMs - 20);
      expect(a.close?.code).toBe(CLOSE.TOO_MANY_RESETS);
      expect(a.close?.local).toBe(false);
      expect(a.close?.reason).toContain("too many streams cancelled or reset");
      expect(a.closedAtMs).toBeLessThanOrEqual(LIMITS.firstFrameTimeoutMs + 2000);
    });

    test("counted: rejected.firstFrameTimeout past the budget, tooManyResets once", () => {
      const r = get();
      expect(r.rejectedDelta.firstFrameTimeout).toBeGreaterThan(LIMITS.maxResets);
      expect(r.rejectedDelta.firstFrameTimeout).toBeLessThanOrEqual((r.attacker as A).opened);
      expect(r.rejectedDelta.tooManyResets).toBe(1);
    });
  });

  scenario(rt, "rapidReset", "rapid reset: REQUEST then reset, thousands of times", (get) => {
    test("the attacker is disconnected with 0x107 after a GOAWAY RESOURCE_EXHAUSTED, within 3 s", () => {
      const a = get().attacker as A;
      expect(a.close?.code).toBe(CLOSE.TOO_MANY_RESETS);
      expect(a.goaway.map((g: A) => g.code)).toContain("RESOURCE_EXHAUSTED");
      expect(a.closedAtMs).toBeLessThanOrEqual(3000);
      expect(a.sent).toBeGreaterThan(LIMITS.maxResets);
      expect(a.sent).toBeLessThan(ATTACKS.rapidReset.params.count);
    });

    test("counted once (rejected.tooManyResets), and the handlers it started were bounded and all ended", () => {
      const r = get();
      const app = snap(r).app;
      expect(r.rejectedDelta.tooManyResets).toBe(1);
      expect(app.slow.peak).toBeLessThanOrEqual(DEFAULT_PEER_LIMITS.maxConcurrentHandlers);
      expect(app.slow.running).toBe(0);
      expect(app.slow.completed).toBe(0); // every one was cancelled, none ran its 2 s out
    });
  });

  scenario(rt, "eventFlood", "100,000 events as fast as possible", (get) => {
    test("every event the server read was delivered within the rate limit or dropped and counted", () => {
      const r = get();
      const a = r.attacker as A;
      expect(a.written).toBe(ATTACKS.eventFlood.params.count);
      expect(a.received).toBeGreaterThan(EVENT_RATE.burst);
      expect(a.received).toBeLessThanOrEqual(a.written);
      expect(a.ticks).toBeGreaterThanOrEqual(EVENT_RATE.burst);
      expect(a.ticks).toBeLessThanOrEqual(EVENT_RATE.burst + (EVENT_RATE.perSecond * a.readMs) / 1000 + 50);
      expect(a.eventQueueFull).toBe(0);
      expect(a.rateLimited).toBe(a.received - a.ticks);
      expect(a.rateLimited).toBeGreaterThan(0);
      expect(r.rejectedDelta.rateLimited).toBeGreaterThanOrEqual(a.rateLimited);
    });

    test("the flooding connection stays open and usable (events are dropped, not the connection)", () => {
      const a = get().attacker as A;
      expect(a.stillOpen).toBe(true);
      expect(a.echoAfter).toEqual({ kind: "response", value: "still here" });
    });
  });

  scenario(rt, "garbage", "oversize frames and garbage bytes on new streams", (get) => {
    const P = ATTACKS.garbage.params;
    test("each oversize frame is refused RESOURCE_EXHAUSTED and counted (oversizeFrames)", () => {
      const a = get().attacker as A;
      expect(a.oversize).toEqual({ RESOURCE_EXHAUSTED: P.oversize });
      expect(a.countedFor.oversize).toEqual({ oversizeFrames: P.oversize, malformedFrames: 0 });
    });

    test("each garbage stream is refused DATA_LOSS and counted (malformedFrames)", () => {
      const a = get().attacker as A;
      expect(a.garbage).toEqual({ DATA_LOSS: P.garbage });
      expect(a.countedFor.garbage).toEqual({ oversizeFrames: 0, malformedFrames: P.garbage });
    });

    test("garbage on an event lane (a new uni stream) is counted too (malformedFrames)", () => {
      const a = get().attacker as A;
      expect(a.uniWritten).toBe(P.uniGarbage);
      expect(a.countedFor.uniGarbage).toEqual({ oversizeFrames: 0, malformedFrames: P.uniGarbage });
    });

    test("the connection stays open and serves an allowed call after each kind", () => {
      const a = get().attacker as A;
      expect(a.stillOpen).toBe(true);
      expect(a.checks).toEqual({
        before: "ok",
        "after oversize": "ok",
        "after garbage": "ok",
        "after uni garbage": "ok",
      });
    });
  });

  scenario(rt, "slowloris", "slowloris: REQUEST frames trickled a byte at a time", (get) => {
    const P = ATTACKS.slowloris.params;
    test("every trickled stream is ended at firstFrameTimeoutMs, before its frame completed", () => {
      const a = get().attacker as A;
      expect(a.frameBytes * P.byteEveryMs).toBeGreaterThan(2 * LIMITS.firstFrameTimeoutMs); // the attack is slow enough
      expect(a.completedFrames).toBe(0);
      expect(a.endedCount).toBe(P.streams);
      expect(a.endedMinMs).toBeGreaterThanOrEqual(LIMITS.firstFrameTimeoutMs - 20);
      expect(a.endedMaxMs).toBeLessThanOrEqual(LIMITS.firstFrameTimeoutMs + 1000);
    });

    test("counted (firstFrameTimeout), the handler never ran, the connection still serves calls", () => {
      const r = get();
      const a = r.attacker as A;
      expect(r.rejectedDelta.firstFrameTimeout).toBe(P.streams);
      expect(snap(r).app.slow.started).toBe(0);
      expect(a.stillOpen).toBe(true);
      expect(a.echoAfter).toEqual({ kind: "response", value: "after" });
    });
  });

  scenario(rt, "slowReader", "a subscriber that never reads its broadcasts", (get) => {
    test("the non-reading subscriber is disconnected with 0x108 after a GOAWAY RESOURCE_EXHAUSTED", () => {
      const a = get().attacker as A;
      expect(a.started).toEqual({ kind: "response", value: true });
      expect(a.lanesHeld).toBe(1);
      expect(a.goaway.map((g: A) => g.code)).toContain("RESOURCE_EXHAUSTED");
      expect(a.close?.code).toBe(CLOSE.SLOW_CONSUMER);
      expect(a.closedAfterMs).toBeLessThanOrEqual(5000);
    });

    test("counted once (slowConsumer); the honest subscriber kept receiving broadcasts", () => {
      const r = get();
      expect(r.rejectedDelta.slowConsumer).toBe(1);
      expect(r.honest.broadcasts).toBeGreaterThanOrEqual(100);
    });
  });

  scenario(rt, "denied", "a peer calling what the policy denies", (get) => {
    const P = ATTACKS.denied.params;
    test("every denied call and stream open answers PERMISSION_DENIED; events are dropped silently", () => {
      const a = get().attacker as A;
      expect(a.calls).toEqual({ PERMISSION_DENIED: P.calls });
      expect(a.streams).toEqual({ PERMISSION_DENIED: P.streams });
      expect(a.emitted).toBe(P.events);
      expect(a.emitErrors).toEqual({});
    });

    test("counted exactly (permissionDenied); no denied handler, listener or stream handler ran", () => {
      const r = get();
      const app = snap(r).app;
      expect(r.rejectedDelta.permissionDenied).toBe(P.calls + P.events + P.streams);
      expect({ secretCalls: app.secretCalls, secretEvents: app.secretEvents, secretStreams: app.secretStreams })
        .toEqual({ secretCalls: 0, secretEvents: 0, secretStreams: 0 });
    });

    test("its connection stays open and its allowed calls and events still work", () => {
      const r = get();
      const a = r.attacker as A;
      expect(a.connectionOpen).toBe(true);
      expect(a.closedEarly).toBeNull();
      expect(a.allowed.failed).toEqual([]);
      expect(a.allowed.ok).toBe(a.allowed.made);
      expect(a.allowed.made).toBeGreaterThanOrEqual(Math.floor((P.calls + P.streams) / P.allowedEvery));
      expect(snap(r).app.ticks).toBe(1);
    });
  });
}
