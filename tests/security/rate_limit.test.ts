// Rate limits: the GCRA arithmetic and its memory bound, the rules compiled per kind and name,
// and rule validation. Every test drives an injected clock: no sleeps.

import { describe, expect, test } from "bun:test";
import {
  type ConnectionLimits,
  Gcra,
  principalKey,
  RateLimiter,
  type RateLimitRule,
  validateRateLimitRule,
} from "../../src/security/rate_limit.ts";

/** A clock the test moves by hand. */
function clock(start = 0): { now: () => number; set: (t: number) => void; add: (ms: number) => void } {
  let t = start;
  return { now: () => t, set: (v) => (t = v), add: (ms) => (t += ms) };
}

function subject(host: string, principal: unknown = undefined, port = 40000, peerName = "peer") {
  return { principal, remote: { host, port }, peerName, certificate: undefined };
}

/** Admits `kind`/`name` `n` times and returns what each call said. */
function admitN(
  c: ConnectionLimits,
  n: number,
  name = "x",
  kind: "request" | "event" | "stream" = "request",
): number[] {
  return Array.from({ length: n }, () => c.admit(kind, name));
}

describe("Gcra", () => {
  test("a burst of B passes, B+1 is refused with retry-after T", () => {
    const c = clock(1_000);
    const g = new Gcra({ ratePerSecond: 4, burst: 3, maxKeys: 10, now: c.now });
    expect([g.take("k"), g.take("k"), g.take("k")]).toEqual([0, 0, 0]);
    const wait = g.take("k");
    expect(wait).toBeGreaterThan(0);
    expect(Math.abs(wait - 250)).toBeLessThan(1);
  });

  test("an emission interval that is not a whole number of ms admits the full burst exactly", () => {
    // T = 1000/3 ms: 3 * T summed one at a time need not equal 3 * T in floating point.
    for (const start of [0, 123_456.789, 1e9]) {
      const c = clock(start);
      const g = new Gcra({ ratePerSecond: 3, burst: 3, maxKeys: 10, now: c.now });
      expect([g.take("k"), g.take("k"), g.take("k")]).toEqual([0, 0, 0]);
      const wait = g.take("k");
      expect(Math.abs(wait - 1000 / 3)).toBeLessThan(1);
      c.add(1000 / 3);
      expect(g.take("k")).toBe(0);
    }
  });

  test("refills after T, one unit per T, and a refusal does not move the TAT", () => {
    const c = clock();
    const g = new Gcra({ ratePerSecond: 10, burst: 2, maxKeys: 10, now: c.now });
    expect(g.take("k")).toBe(0);
    expect(g.take("k")).toBe(0);
    // Refused many times: the wait only shrinks with time, it never grows.
    expect(g.take("k")).toBeCloseTo(100, 6);
    expect(g.take("k")).toBeCloseTo(100, 6);
    c.add(60);
    expect(g.take("k")).toBeCloseTo(40, 6);
    c.add(39.5);
    expect(g.take("k")).toBeCloseTo(0.5, 6);
    c.add(0.5);
    expect(g.take("k")).toBe(0);
    expect(g.take("k")).toBeCloseTo(100, 6);
    // Idle for long: back to a full burst, not more.
    c.add(10_000);
    expect([g.take("k"), g.take("k")]).toEqual([0, 0]);
    expect(g.take("k")).toBeGreaterThan(0);
  });

  test("keys are independent", () => {
    const c = clock();
    const g = new Gcra({ ratePerSecond: 1, burst: 1, maxKeys: 10, now: c.now });
    expect(g.take("a")).toBe(0);
    expect(g.take("a")).toBeGreaterThan(0);
    expect(g.take("b")).toBe(0);
    expect(g.size).toBe(2);
  });

  test("cost > 1 takes several units; a cost above the burst never passes", () => {
    const c = clock();
    const g = new Gcra({ ratePerSecond: 1, burst: 5, maxKeys: 10, now: c.now });
    expect(g.take("k", 3)).toBe(0);
    expect(g.take("k", 3)).toBeCloseTo(1000, 6); // 6 units against a burst of 5: one T short
    expect(g.take("k", 2)).toBe(0); // the refusal took nothing
    expect(g.take("k", 1)).toBeCloseTo(1000, 6);
    c.add(2000);
    expect(g.take("k", 2)).toBe(0);
    expect(g.take("other", 6)).toBe(Infinity);
    expect(g.take("other", 5)).toBe(0);
    expect(g.take("free", 0)).toBe(0);
  });

  test("take and reserve reject a negative or non-finite cost", () => {
    const g = new Gcra({ ratePerSecond: 1, burst: 1, maxKeys: 10, now: () => 0 });
    expect(() => g.take("k", -1)).toThrow(RangeError);
    expect(() => g.take("k", Number.NaN)).toThrow(RangeError);
    expect(() => g.reserve("k", Infinity)).toThrow(RangeError);
    expect(g.size).toBe(0);
  });

  test("reserve always commits and returns growing delays", () => {
    const c = clock();
    // 1000 units/s: T = 1 ms per unit, 100 units of burst.
    const g = new Gcra({ ratePerSecond: 1000, burst: 100, maxKeys: 10, now: c.now });
    expect(g.reserve("k", 100)).toBe(0);
    expect(g.reserve("k", 50)).toBeCloseTo(50, 6);
    expect(g.reserve("k", 50)).toBeCloseTo(100, 6);
    expect(g.reserve("k", 1000)).toBeCloseTo(1100, 6);
    // take sees the debt reserve ran up.
    expect(g.take("k", 1)).toBeCloseTo(1101, 6);
    c.add(1100);
    expect(g.reserve("k", 0)).toBe(0);
    expect(g.reserve("k", 10)).toBeCloseTo(10, 6);
  });

  test("100,000 distinct keys never hold more than maxKeys", () => {
    const c = clock();
    const g = new Gcra({ ratePerSecond: 1, burst: 1, maxKeys: 1000, now: c.now });
    let most = 0;
    for (let i = 0; i < 100_000; i++) {
      // Half the time the clock stands still, so no key is idle and LRU eviction must work alone.
      if (i >= 50_000) c.add(0.01);
      expect(g.take(`key-${i}`)).toBe(0);
      if (g.size > most) most = g.size;
    }
    expect(most).toBe(1000);
    expect(g.size).toBeLessThanOrEqual(1000);
    // The newest key is still held: taking again is refused.
    expect(g.take("key-99999")).toBeGreaterThan(0);
  });

  test("an idle key is evicted before an active one, even a less recently used active one", () => {
    const c = clock();
    const g = new Gcra({ ratePerSecond: 1, burst: 10, maxKeys: 3, now: c.now });
    expect(g.take("active", 10)).toBe(0); // TAT = 10 s: active for 10 s, and least recently used
    expect(g.take("idle1")).toBe(0); // TAT = 1 s
    expect(g.take("idle2")).toBe(0);
    c.set(2000);
    expect(g.take("new")).toBe(0);
    expect(g.size).toBeLessThanOrEqual(3);
    // "active" kept its state: 10 more units are refused (had it been evicted they would pass).
    expect(g.take("active", 10)).toBeGreaterThan(0);
  });

  test("LRU: a recently touched key survives, the least recently used one goes", () => {
    const c = clock();
    const g = new Gcra({ ratePerSecond: 1, burst: 10, maxKeys: 3, now: c.now });
    for (const k of ["a", "b", "c"]) expect(g.take(k, 5)).toBe(0);
    expect(g.take("a", 5)).toBe(0); // touch a: b is now the least recently used
    expect(g.take("d", 5)).toBe(0);
    expect(g.size).toBe(3);
    expect(g.take("b", 10)).toBe(0); // evicted, so it starts from idle (and evicts c)
    expect(g.take("a", 1)).toBeGreaterThan(0); // kept: its 10 units are still spent
    expect(g.take("d", 6)).toBeGreaterThan(0); // kept
  });

  test("a refused key counts as recently used", () => {
    const c = clock();
    const g = new Gcra({ ratePerSecond: 1, burst: 1, maxKeys: 2, now: c.now });
    expect(g.take("a")).toBe(0);
    expect(g.take("b")).toBe(0);
    expect(g.take("a")).toBeGreaterThan(0); // refused, but a is now more recent than b
    expect(g.take("c")).toBe(0); // evicts b
    expect(g.take("a")).toBeGreaterThan(0);
    expect(g.take("b")).toBe(0);
  });

  test("the constructor rejects options out of range", () => {
    const ok = { ratePerSecond: 1, burst: 1, maxKeys: 1 };
    expect(() => new Gcra({ ...ok, ratePerSecond: 0 })).toThrow("ratePerSecond must be a positive finite number");
    expect(() => new Gcra({ ...ok, ratePerSecond: Infinity })).toThrow("ratePerSecond");
    expect(() => new Gcra({ ...ok, burst: 0.5 })).toThrow("burst must be a finite number of at least 1");
    expect(() => new Gcra({ ...ok, maxKeys: 1.5 })).toThrow("maxKeys must be a positive integer");
    expect(() => new Gcra({ ...ok, maxKeys: 0 })).toThrow("maxKeys must be a positive integer");
    expect(new Gcra(ok).take("k")).toBe(0); // the default clock works
  });
});

describe("RateLimiter", () => {
  const loginAndAll: RateLimitRule[] = [
    { key: "address", names: ["user.login"], perSecond: 5 },
    { key: "principal", perSecond: 1000 },
  ];

  test("empty: no rules, nothing limited", () => {
    const none = new RateLimiter([]);
    expect(none.empty).toBe(true);
    const c = none.forConnection(subject("192.0.2.1"));
    expect(admitN(c, 10_000).every((w) => w === 0)).toBe(true);
    expect(c.streamBytes("any")).toBeUndefined();
    expect(new RateLimiter([{ key: "connection", perSecond: 1 }]).empty).toBe(false);
  });

  test("the 6th login from one address is refused while another address still passes", () => {
    const c = clock();
    const rl = new RateLimiter(loginAndAll, c.now);
    const a = rl.forConnection(subject("192.0.2.1", "alice"));
    const a2 = rl.forConnection(subject("192.0.2.1", "bob", 40001)); // same host, other port
    const b = rl.forConnection(subject("192.0.2.2", "alice"));
    expect(admitN(a, 5, "user.login")).toEqual([0, 0, 0, 0, 0]);
    expect(a.admit("request", "user.login")).toBe(200); // T = 200 ms, rounded up to an integer
    expect(a2.admit("request", "user.login")).toBe(200); // the address is the host only
    expect(b.admit("request", "user.login")).toBe(0);
    expect(a.admit("request", "user.profile")).toBe(0); // the login rule covers logins only
    c.add(200);
    expect(a.admit("request", "user.login")).toBe(0);
    expect(a.admit("request", "user.login")).toBe(200);
  });

  test("the principal rule counts across addresses and connections", () => {
    const c = clock();
    const rl = new RateLimiter([{ key: "principal", perSecond: 3 }], c.now);
    const fromA = rl.forConnection(subject("192.0.2.1", "alice"));
    const fromB = rl.forConnection(subject("198.51.100.9", { id: "alice" }));
    const bob = rl.forConnection(subject("192.0.2.1", "bob"));
    expect(admitN(fromA, 2)).toEqual([0, 0]);
    expect(fromB.admit("event", "y")).toBe(0);
    expect(fromB.admit("request", "x")).toBe(334); // 1000/3 ms, rounded up
    expect(fromA.admit("stream", "z")).toBe(334);
    expect(bob.admit("request", "x")).toBe(0);
  });

  test("the subject is read on every check: a principal set after the handshake counts", () => {
    const rl = new RateLimiter([{ key: "principal", perSecond: 1 }], () => 0);
    const s = subject("192.0.2.1", undefined);
    const c = rl.forConnection(s);
    expect(c.admit("request", "x")).toBe(0); // the anonymous bucket ""
    s.principal = "carol";
    expect(c.admit("request", "x")).toBe(0); // carol's own bucket
    expect(c.admit("request", "x")).toBe(1000);
  });

  test("a refusal by one rule does not consume the other's tokens", () => {
    const c = clock();
    // Logins: 1 per address per 1000 s with a burst of 2. Everything: 1 per principal per second.
    const rl = new RateLimiter([
      { key: "address", names: ["user.login"], perSecond: 0.001, burst: 2 },
      { key: "principal", perSecond: 1 },
    ], c.now);
    const conn = rl.forConnection(subject("192.0.2.1", "alice"));
    expect(conn.admit("request", "other")).toBe(0); // principal bucket now full
    // Refused by the principal rule: the login rule must not lose a token each time.
    expect(conn.admit("request", "user.login")).toBe(1000);
    expect(conn.admit("request", "user.login")).toBe(1000);
    expect(conn.admit("request", "user.login")).toBe(1000);
    c.set(1000);
    expect(conn.admit("request", "user.login")).toBe(0);
    c.set(2000);
    expect(conn.admit("request", "user.login")).toBe(0); // the second of 2: none was lost
    c.set(3000);
    // Now refused by the login rule (and not the principal one): it must not take a principal token.
    // The first login token comes back at 1000 + 1e6 ms.
    expect(conn.admit("request", "user.login")).toBe(1_001_000 - 3000);
    expect(conn.admit("request", "other")).toBe(0);
  });

  test("the retry-after is the longest among the rules that refused", () => {
    const rl = new RateLimiter([
      { key: "connection", perSecond: 10, burst: 1 },
      { key: "address", perSecond: 2, burst: 1 },
      { key: "principal", perSecond: 1000 },
    ], () => 0);
    const conn = rl.forConnection(subject("192.0.2.1", "alice"));
    expect(conn.admit("request", "x")).toBe(0);
    expect(conn.admit("request", "x")).toBe(500);
  });

  test("a retry-after below 1 ms is reported as 1", () => {
    const c = clock();
    const rl = new RateLimiter([{ key: "connection", perSecond: 10, burst: 1 }], c.now);
    const conn = rl.forConnection(subject("192.0.2.1"));
    expect(conn.admit("request", "x")).toBe(0);
    c.add(99.8);
    expect(conn.admit("request", "x")).toBe(1);
    c.add(0.2);
    expect(conn.admit("request", "x")).toBe(0);
  });

  test("kinds: a rule covers only the kinds it names", () => {
    const rl = new RateLimiter([{ key: "connection", kinds: ["event"], perSecond: 1 }], () => 0);
    const conn = rl.forConnection(subject("192.0.2.1"));
    expect(conn.admit("event", "e")).toBe(0);
    expect(conn.admit("event", "e")).toBe(1000);
    expect(admitN(conn, 100, "e", "request").every((w) => w === 0)).toBe(true);
    expect(admitN(conn, 100, "e", "stream").every((w) => w === 0)).toBe(true);
    // Left out, kinds means all three, sharing one bucket.
    const all = new RateLimiter([{ key: "connection", perSecond: 1, burst: 2 }], () => 0).forConnection(subject("h"));
    expect([all.admit("request", "a"), all.admit("stream", "b"), all.admit("event", "c")]).toEqual([0, 0, 1000]);
  });

  test("names: NATS-style patterns pick what a rule covers", () => {
    const rl = new RateLimiter([
      { key: "connection", names: ["chat.*"], perSecond: 1 },
      { key: "connection", names: ["files.>"], perSecond: 1 },
    ], () => 0);
    const conn = rl.forConnection(subject("192.0.2.1"));
    expect(conn.admit("request", "chat.say")).toBe(0);
    expect(conn.admit("request", "chat.leave")).toBe(1000); // one bucket per rule, not per name
    expect(admitN(conn, 50, "chat.a.b").every((w) => w === 0)).toBe(true); // * is one token
    expect(admitN(conn, 50, "chat").every((w) => w === 0)).toBe(true);
    expect(conn.admit("request", "files.a.b.c")).toBe(0);
    expect(conn.admit("request", "files.x")).toBe(1000);
    expect(admitN(conn, 50, "other").every((w) => w === 0)).toBe(true);
    // More distinct names than the name cache holds: the answers stay right.
    for (let i = 0; i < 5000; i++) expect(conn.admit("event", `n${i}.x`)).toBe(0);
    expect(conn.admit("request", "chat.say")).toBe(1000);
    expect(conn.admit("request", "files.y")).toBe(1000);
  });

  test("per-connection rules are isolated between two connections, even of the same peer", () => {
    const rl = new RateLimiter([{ key: "connection", perSecond: 1, burst: 2 }], () => 0);
    const s = subject("192.0.2.1", "alice");
    const one = rl.forConnection(s);
    const two = rl.forConnection(s);
    expect(admitN(one, 3)).toEqual([0, 0, 1000]);
    expect(admitN(two, 3)).toEqual([0, 0, 1000]);
  });

  test("a key function: its result (turned into a string) picks the bucket", () => {
    const seen: string[] = [];
    const rl = new RateLimiter([{
      key: (s, kind, name) => {
        seen.push(`${kind} ${name} ${s.peerName}`);
        return s.principal as string; // a number for one peer: String() makes 7 and "7" one key
      },
      perSecond: 1,
    }], () => 0);
    const a = rl.forConnection(subject("192.0.2.1", 7, 1, "a"));
    const b = rl.forConnection(subject("192.0.2.2", "7", 2, "b"));
    const c = rl.forConnection(subject("192.0.2.3", "8", 3, "c"));
    expect(a.admit("event", "e")).toBe(0);
    expect(b.admit("request", "r")).toBe(1000);
    expect(c.admit("request", "r")).toBe(0);
    expect(seen).toEqual(["event e a", "request r b", "request r c"]);
  });

  test("shared buckets stay within maxKeys", () => {
    const rl = new RateLimiter([{ key: "address", perSecond: 1, maxKeys: 2 }], () => 0);
    const conns = ["h1", "h2", "h3"].map((h) => rl.forConnection(subject(h)));
    expect(conns.map((c) => c.admit("request", "x"))).toEqual([0, 0, 0]);
    // h1 was the least recently used and was evicted: it starts again from idle.
    expect(conns[0].admit("request", "x")).toBe(0);
    expect(conns[2].admit("request", "x")).toBe(1000);
  });

  test("streamBytes: undefined without a bytes rule", () => {
    const rl = new RateLimiter([
      { key: "connection", kinds: ["stream"], perSecond: 10 },
      { key: "address", perSecond: 10 },
    ], () => 0);
    expect(rl.forConnection(subject("192.0.2.1")).streamBytes("upload.file")).toBeUndefined();
  });

  test("streamBytes: delays credit with a bytes rule, per connection and shared by its streams", () => {
    const c = clock();
    const rl = new RateLimiter([{ key: "connection", names: ["upload.>"], bytesPerSecond: 1000 }], c.now);
    const conn = rl.forConnection(subject("192.0.2.1"));
    expect(conn.streamBytes("download.file")).toBeUndefined();
    // A bytes rule does not count stream opens.
    expect(admitN(conn, 100, "upload.file", "stream").every((w) => w === 0)).toBe(true);
    const s1 = conn.streamBytes("upload.file");
    const s2 = conn.streamBytes("upload.other");
    expect(s1).toBeFunction();
    expect(s1!(1000)).toBe(0); // the burst: one second's worth
    expect(s1!(500)).toBeCloseTo(500, 6);
    expect(s2!(500)).toBeCloseTo(1000, 6); // same connection, same bucket
    c.add(1000);
    expect(s1!(0)).toBe(0);
    expect(s1!(100)).toBeCloseTo(100, 6);
    // Another connection has its own bucket.
    const other = rl.forConnection(subject("192.0.2.1")).streamBytes("upload.file")!;
    expect(other(1000)).toBe(0);
    expect(() => s1!(-1)).toThrow(RangeError);
  });

  test("streamBytes: the longest delay of several bytes rules, all committed", () => {
    const c = clock();
    const rl = new RateLimiter([
      { key: "address", bytesPerSecond: 100 },
      { key: "principal", kinds: ["stream"], bytesPerSecond: 1000, burst: 1000 },
    ], c.now);
    const a = rl.forConnection(subject("192.0.2.1", "alice")).streamBytes("s")!;
    expect(a(100)).toBe(0);
    expect(a(100)).toBeCloseTo(1000, 6); // the address rule: 100 B/s
    // alice from elsewhere: the address rule is fresh, the principal one has 200 of 1000 B spent.
    const b = rl.forConnection(subject("192.0.2.2", "alice")).streamBytes("s")!;
    expect(b(100)).toBe(0);
    expect(b(800)).toBeCloseTo(8000, 6);
    const b2 = rl.forConnection(subject("192.0.2.3", "alice")).streamBytes("s")!;
    expect(b2(100)).toBeCloseTo(200, 6); // 1200 B on alice's 1000 B burst: 200 ms at 1000 B/s
  });

  test("the constructor validates each rule, naming its index", () => {
    expect(() => new RateLimiter([{ key: "address", perSecond: 1 }, { key: "ip", perSecond: 1 } as never])).toThrow(
      'rateLimit[1].key: must be "connection", "principal", "address" or a function, received "ip"',
    );
    expect(() => new RateLimiter("nope" as never)).toThrow("rateLimit: rules must be an array");
  });
});

describe("principalKey", () => {
  test("strings and numbers as is, an object's id, otherwise the shared empty key", () => {
    expect(principalKey("alice")).toBe("alice");
    expect(principalKey(42)).toBe("42");
    expect(principalKey({ id: "bob", role: "admin" })).toBe("bob");
    expect(principalKey({ id: 7 })).toBe("7");
    expect(principalKey({ id: { nested: true } })).toBe("");
    expect(principalKey({ name: "no id" })).toBe("");
    expect(principalKey(undefined)).toBe("");
    expect(principalKey(null)).toBe("");
    expect(principalKey(true)).toBe("");
    expect(principalKey(Symbol("s"))).toBe("");
    expect(principalKey(() => "fn")).toBe("");
  });
});

describe("validateRateLimitRule", () => {
  const fails = (rule: unknown, message: string, where?: string) => {
    expect(() => validateRateLimitRule(rule, where)).toThrow(TypeError);
    expect(() => validateRateLimitRule(rule, where)).toThrow(message);
  };

  test("accepts valid rules", () => {
    const valid: RateLimitRule[] = [
      { key: "connection", perSecond: 1 },
      { key: "principal", perSecond: 0.5, burst: 1, maxKeys: 1 },
      { key: "address", names: ["a.*", "b.>", "c"], kinds: ["request", "event"], perSecond: 100 },
      { key: () => "k", bytesPerSecond: 1e6 },
      { key: "connection", bytesPerSecond: 10, kinds: ["stream"], burst: 1.5 },
      { key: "connection", perSecond: 1, burst: undefined, names: undefined },
    ];
    for (const rule of valid) expect(() => validateRateLimitRule(rule)).not.toThrow();
  });

  test("not an object", () => {
    fails(null, "rateLimit: a rate limit rule must be an object, received null");
    fails([], "rateLimit: a rate limit rule must be an object, received an array");
    fails("5/s", 'rateLimit: a rate limit rule must be an object, received "5/s"');
  });

  test("the path: `where` is used, default rateLimit", () => {
    fails(
      { key: "address" },
      "rateLimit[3]: give exactly one of perSecond and bytesPerSecond, received neither",
      "rateLimit[3]",
    );
    fails({ key: "address" }, "rateLimit: give exactly one");
  });

  test("an unknown field", () => {
    fails({ key: "address", perSecond: 1, perMinute: 5 }, "rateLimit.perMinute: unknown field");
    fails({ key: "address", perSecond: 1, name: ["a"] }, "rateLimit.name: unknown field (expected key, names, kinds");
  });

  test("a bad key", () => {
    const reason = 'must be "connection", "principal", "address" or a function';
    fails({ key: "ip", perSecond: 1 }, `rateLimit.key: ${reason}, received "ip"`);
    fails({ perSecond: 1 }, `rateLimit.key: ${reason}, received undefined`);
    fails({ key: 5, perSecond: 1 }, `rateLimit.key: ${reason}, received 5`);
  });

  test("both or neither of perSecond and bytesPerSecond", () => {
    fails(
      { key: "address", perSecond: 1, bytesPerSecond: 1 },
      "rateLimit: give exactly one of perSecond and bytesPerSecond, not both",
    );
    fails({ key: "address" }, "rateLimit: give exactly one of perSecond and bytesPerSecond, received neither");
  });

  test("non-positive or non-finite rates", () => {
    const reason = "must be a positive finite number";
    fails({ key: "address", perSecond: 0 }, `rateLimit.perSecond: ${reason}, received 0`);
    fails({ key: "address", perSecond: -3 }, `rateLimit.perSecond: ${reason}, received -3`);
    fails({ key: "address", perSecond: Number.NaN }, `rateLimit.perSecond: ${reason}, received NaN`);
    fails({ key: "address", perSecond: Infinity }, `rateLimit.perSecond: ${reason}, received Infinity`);
    fails({ key: "address", perSecond: "5" }, `rateLimit.perSecond: ${reason}, received "5"`);
    fails({ key: "address", bytesPerSecond: 0 }, `rateLimit.bytesPerSecond: ${reason}, received 0`);
    fails({ key: "address", bytesPerSecond: -Infinity }, `rateLimit.bytesPerSecond: ${reason}, received -Infinity`);
  });

  test("burst below 1 or not finite", () => {
    const reason = "rateLimit.burst: must be a finite number of at least 1";
    fails({ key: "address", perSecond: 1, burst: 0.5 }, `${reason}, received 0.5`);
    fails({ key: "address", perSecond: 1, burst: 0 }, `${reason}, received 0`);
    fails({ key: "address", perSecond: 1, burst: -1 }, `${reason}, received -1`);
    fails({ key: "address", perSecond: 1, burst: Infinity }, `${reason}, received Infinity`);
    fails({ key: "address", perSecond: 1, burst: Number.NaN }, `${reason}, received NaN`);
  });

  test("maxKeys not a positive integer", () => {
    const reason = "rateLimit.maxKeys: must be a positive integer";
    fails({ key: "address", perSecond: 1, maxKeys: 0 }, `${reason}, received 0`);
    fails({ key: "address", perSecond: 1, maxKeys: 1.5 }, `${reason}, received 1.5`);
    fails({ key: "address", perSecond: 1, maxKeys: -10 }, `${reason}, received -10`);
    fails({ key: "address", perSecond: 1, maxKeys: "10" }, `${reason}, received "10"`);
    fails({ key: "address", perSecond: 1, maxKeys: Infinity }, `${reason}, received Infinity`);
  });

  test("malformed or empty names", () => {
    fails(
      { key: "address", perSecond: 1, names: ["ok", "a..b"] },
      'rateLimit.names: pattern "a..b" has an empty token',
    );
    fails(
      { key: "address", perSecond: 1, names: ["a.>.b"] },
      'rateLimit.names: pattern "a.>.b": ">" may only be the last token',
    );
    fails(
      { key: "address", perSecond: 1, names: ["a*"] },
      'rateLimit.names: pattern "a*": "*" and ">" must be whole tokens',
    );
    fails({ key: "address", perSecond: 1, names: [5] }, "rateLimit.names: a pattern must be a string, received number");
    fails({ key: "address", perSecond: 1, names: [""] }, "rateLimit.names: a pattern must not be empty");
    fails(
      { key: "address", perSecond: 1, names: "user.login" },
      'rateLimit.names: must be an array of name patterns, received "user.login"',
    );
    fails(
      { key: "address", perSecond: 1, names: [] },
      "rateLimit.names: must not be empty (leave it out to cover all names)",
    );
  });

  test("an unknown, missing or empty kinds", () => {
    fails(
      { key: "address", perSecond: 1, kinds: ["request", "query"] },
      'rateLimit.kinds[1]: unknown kind "query" (expected "request", "event" or "stream")',
    );
    fails(
      { key: "address", perSecond: 1, kinds: "request" },
      'rateLimit.kinds: must be an array of "request", "event" or "stream", received "request"',
    );
    fails({ key: "address", perSecond: 1, kinds: [] }, "rateLimit.kinds: must not be empty");
  });

  test("bytesPerSecond with kinds other than just stream", () => {
    const reason = 'rateLimit.kinds: bytesPerSecond only applies to streams: kinds must be ["stream"] or left out';
    fails({ key: "address", bytesPerSecond: 1, kinds: ["request"] }, reason);
    fails({ key: "address", bytesPerSecond: 1, kinds: ["stream", "event"] }, reason);
    expect(() => validateRateLimitRule({ key: "address", bytesPerSecond: 1, kinds: ["stream"] })).not.toThrow();
  });
});
