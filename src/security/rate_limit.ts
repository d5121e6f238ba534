/**
 * Rate limits: GCRA buckets (one number per key) kept per connection, per principal, per remote
 * address or per a key of your own, covering requests, events and stream opens by name, and
 * stream data bytes (enforced by withholding flow-control credit rather than by dropping).
 *
 * @example Two rules: logins per address, and everything per principal
 * ```ts
 * import { RateLimiter } from "@echostream/core/security";
 *
 * const limiter = new RateLimiter([
 *   { key: "address", names: ["user.login"], perSecond: 5 },
 *   { key: "principal", perSecond: 1000 },
 * ]);
 * const conn = limiter.forConnection({
 *   principal: { id: "alice" },
 *   remote: { host: "192.0.2.7", port: 50123 },
 *   peerName: "alice-laptop",
 *   certificate: undefined,
 * });
 * for (let i = 0; i < 6; i++) console.log(conn.admit("request", "user.login")); // 0 0 0 0 0, then about 200 (ms to wait)
 * ```
 *
 * @module
 */

import type { SocketAddress } from "../transport/types.ts";
import { namePattern } from "./names.ts";
import type { AccessKind } from "./access.ts";

/** Who is asking: what rate-limit keys are computed from (the access subject of `./access.ts`). */
export interface LimitSubject {
  /** What `authenticate` returned (undefined on a client). */
  principal: unknown;
  /** The peer's address; the "address" key is its host. */
  remote: SocketAddress;
  /** The name the peer gave in HELLO/WELCOME. */
  peerName: string;
  /** The peer's client certificate under mutual TLS, if any. */
  certificate: { fingerprint: string; subject: string } | undefined;
}

/**
 * One rate limit. Repeatable on the server builder: every rule that applies to an operation must
 * admit it.
 *
 * @example Per-address logins, per-principal everything, per-connection upload bytes
 * ```ts
 * import { type RateLimitRule, validateRateLimitRule } from "@echostream/core/security";
 *
 * const rules: RateLimitRule[] = [
 *   { key: "address", names: ["user.login"], kinds: ["request"], perSecond: 5, burst: 10 },
 *   { key: "principal", perSecond: 1000 },
 *   { key: "connection", names: ["upload.>"], bytesPerSecond: 1_000_000 },
 * ];
 * rules.forEach((r, i) => validateRateLimitRule(r, `rateLimit[${i}]`));
 * ```
 */
export interface RateLimitRule {
  /**
   * What a bucket is kept per: each connection, each principal (see {@link principalKey}), each
   * remote address (host only, no port), or a function of the subject and name (a non-string
   * result is turned into one with `String`).
   */
  key: "connection" | "principal" | "address" | ((subject: LimitSubject, kind: AccessKind, name: string) => string);
  /** Name patterns the rule covers (NATS style); all names when left out. */
  names?: readonly string[];
  /** Kinds the rule covers. @default all three: requests, events and stream opens */
  kinds?: readonly AccessKind[];
  /** Operations per second (requests, events, stream opens), sustained. Exactly one of perSecond / bytesPerSecond. */
  perSecond?: number;
  /**
   * Bytes per second of stream data received (DATA payload bytes). The receiver withholds
   * flow-control credit instead of dropping: senders slow down. Only applies to kind "stream".
   */
  bytesPerSecond?: number;
  /**
   * How many operations (or bytes) may pass at once from an idle bucket.
   * @default one second's worth (perSecond, at least 1; or bytesPerSecond, at least 1)
   */
  burst?: number;
  /** Most buckets kept (memory bound): idle buckets are evicted first, then the least recently used. @default 10000 */
  maxKeys?: number;
}

const FIELDS: ReadonlySet<string> = new Set([
  "key",
  "names",
  "kinds",
  "perSecond",
  "bytesPerSecond",
  "burst",
  "maxKeys",
]);
const KINDS: readonly AccessKind[] = ["request", "event", "stream"];
const DEFAULT_MAX_KEYS = 10_000;

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "number":
    case "boolean":
    case "bigint":
      return String(v);
    case "undefined":
      return "undefined";
    case "function":
      return "a function";
    case "object":
      return "an object";
    default:
      return `a ${typeof v}`;
  }
}

function positive(v: unknown): boolean {
  return typeof v === "number" && Number.isFinite(v) && v > 0;
}

/**
 * Checks a rate limit rule, so a mistake fails when the server is built rather than silently
 * allowing (or refusing) everything.
 *
 * @example
 * ```ts
 * import { validateRateLimitRule } from "@echostream/core/security";
 *
 * validateRateLimitRule({ key: "address", perSecond: 5 }); // fine
 * try {
 *   validateRateLimitRule({ key: "address", perSecond: 5, bytesPerSecond: 100 }, "rateLimit[1]");
 * } catch (e) {
 *   console.log((e as Error).message); // rateLimit[1]: give exactly one of perSecond and bytesPerSecond, not both
 * }
 * ```
 *
 * @param rule The value to check.
 * @param where Its path, for the message. @default "rateLimit"
 * @throws {TypeError} Naming the path and the reason: an unknown field, a bad key, both or neither
 * of perSecond/bytesPerSecond, a non-positive or non-finite number, burst below 1, maxKeys not a
 * positive integer, an empty or malformed `names`, an empty `kinds` or an unknown kind, or
 * bytesPerSecond with kinds other than `["stream"]`.
 */
export function validateRateLimitRule(rule: unknown, where = "rateLimit"): asserts rule is RateLimitRule {
  if (typeof rule !== "object" || rule === null || Array.isArray(rule)) {
    throw new TypeError(`${where}: a rate limit rule must be an object, received ${describe(rule)}`);
  }
  const r = rule as Record<string, unknown>;
  for (const field of Object.keys(r)) {
    if (!FIELDS.has(field)) {
      throw new TypeError(`${where}.${field}: unknown field (expected ${[...FIELDS].join(", ")})`);
    }
  }
  const key = r.key;
  if (key !== "connection" && key !== "principal" && key !== "address" && typeof key !== "function") {
    throw new TypeError(
      `${where}.key: must be "connection", "principal", "address" or a function, received ${describe(key)}`,
    );
  }
  const hasOps = r.perSecond !== undefined;
  const hasBytes = r.bytesPerSecond !== undefined;
  if (hasOps && hasBytes) throw new TypeError(`${where}: give exactly one of perSecond and bytesPerSecond, not both`);
  if (!hasOps && !hasBytes) {
    throw new TypeError(`${where}: give exactly one of perSecond and bytesPerSecond, received neither`);
  }
  const rateField = hasOps ? "perSecond" : "bytesPerSecond";
  if (!positive(r[rateField])) {
    throw new TypeError(`${where}.${rateField}: must be a positive finite number, received ${describe(r[rateField])}`);
  }
  if (r.burst !== undefined && !(positive(r.burst) && (r.burst as number) >= 1)) {
    throw new TypeError(`${where}.burst: must be a finite number of at least 1, received ${describe(r.burst)}`);
  }
  if (r.maxKeys !== undefined && !(Number.isSafeInteger(r.maxKeys) && (r.maxKeys as number) > 0)) {
    throw new TypeError(`${where}.maxKeys: must be a positive integer, received ${describe(r.maxKeys)}`);
  }
  if (r.names !== undefined) {
    if (!Array.isArray(r.names)) {
      throw new TypeError(`${where}.names: must be an array of name patterns, received ${describe(r.names)}`);
    }
    if (r.names.length === 0) {
      throw new TypeError(`${where}.names: must not be empty (leave it out to cover all names)`);
    }
    namePattern(r.names as string[], `${where}.names`);
  }
  if (r.kinds !== undefined) {
    if (!Array.isArray(r.kinds)) {
      throw new TypeError(
        `${where}.kinds: must be an array of "request", "event" or "stream", received ${describe(r.kinds)}`,
      );
    }
    if (r.kinds.length === 0) {
      throw new TypeError(`${where}.kinds: must not be empty (leave it out to cover all kinds)`);
    }
    r.kinds.forEach((k: unknown, i: number) => {
      if (!KINDS.includes(k as AccessKind)) {
        throw new TypeError(
          `${where}.kinds[${i}]: unknown kind ${describe(k)} (expected "request", "event" or "stream")`,
        );
      }
    });
    if (hasBytes && r.kinds.some((k: unknown) => k !== "stream")) {
      throw new TypeError(
        `${where}.kinds: bytesPerSecond only applies to streams: kinds must be ["stream"] or left out`,
      );
    }
  }
}

/**
 * The key `"principal"` uses: a string or number principal as is; an object's string or number
 * `id` field; otherwise (undefined, null, anything else) `""`, so all such peers share one bucket:
 * combine with an `"address"` rule for anonymous clients.
 *
 * @example
 * ```ts
 * import { principalKey } from "@echostream/core/security";
 *
 * console.log(principalKey("alice"), principalKey(42), principalKey({ id: "bob" }), JSON.stringify(principalKey(undefined)));
 * // alice 42 bob ""
 * ```
 */
export function principalKey(principal: unknown): string {
  if (typeof principal === "string") return principal;
  if (typeof principal === "number") return String(principal);
  if (typeof principal === "object" && principal !== null) {
    const id = (principal as { id?: unknown }).id;
    if (typeof id === "string") return id;
    if (typeof id === "number") return String(id);
  }
  return "";
}

/** Entries the eviction sweep looks at, oldest first, for idle buckets before evicting the LRU one. */
const SWEEP = 64;

/**
 * How far past the tolerance a request may be and still pass: rounding only (the TAT is a sum
 * of emission intervals), relative to the magnitudes compared.
 */
function slack(now: number, toleranceSlack: number): number {
  return (now < 0 ? -now : now) * 1e-14 + toleranceSlack;
}

/** GCRA state for many keys: a Map in least-recently-used order (delete + set on touch). */
class Store {
  readonly interval: number;
  readonly tolerance: number;
  readonly toleranceSlack: number;
  readonly burst: number;
  readonly maxKeys: number;
  readonly tats: Map<string, number> = new Map();

  constructor(ratePerSecond: number, burst: number, maxKeys: number) {
    this.interval = 1000 / ratePerSecond;
    this.tolerance = burst * this.interval;
    this.toleranceSlack = this.tolerance * 1e-12;
    this.burst = burst;
    this.maxKeys = maxKeys;
  }

  /** The TAT to build on: the stored one, or `now` for an absent or idle key. */
  tat(key: string, now: number): number {
    const v = this.tats.get(key);
    return v !== undefined && v > now ? v : now;
  }

  /** Stores `tat` for `key`, making it the most recently used; makes room first for a new key. */
  put(key: string, tat: number, now: number): void {
    const m = this.tats;
    if (!m.delete(key) && m.size >= this.maxKeys) this.makeRoom(now);
    m.set(key, tat);
  }

  /** Makes `key` the most recently used without changing its TAT (a refused key is active). */
  touch(key: string): void {
    const m = this.tats;
    const v = m.get(key);
    if (v !== undefined) {
      m.delete(key);
      m.set(key, v);
    }
  }

  /** Drops idle entries among the oldest few; if none, the least recently used one. */
  makeRoom(now: number): void {
    const m = this.tats;
    let seen = 0;
    for (const [k, v] of m) {
      if (v <= now) m.delete(k);
      if (++seen >= SWEEP) break;
    }
    if (m.size >= this.maxKeys) {
      const oldest = m.keys().next();
      if (!oldest.done) m.delete(oldest.value);
    }
  }
}

function checkCost(cost: number): void {
  if (!(cost >= 0) || cost === Infinity) throw new RangeError(`cost must be a finite number >= 0, received ${cost}`);
}

function checkOption(ok: boolean, what: string, value: unknown): void {
  if (!ok) throw new TypeError(`Gcra: ${what}, received ${describe(value)}`);
}

const defaultNow = (): number => performance.now();

/**
 * The GCRA (generic cell rate algorithm): one number per key, the theoretical arrival time (TAT),
 * and an exact retry-after. The emission interval is `T = 1000 / ratePerSecond` ms per unit and
 * the tolerance `burst * T`: from idle, `burst` units pass at once, then one every `T`.
 *
 * Memory is bounded by `maxKeys`: a key whose TAT is not in the future is idle (the same as
 * absent); a new key at the bound first sweeps the oldest entries for idle ones, then evicts the
 * least recently used key. Every operation is O(1) amortised.
 *
 * @example
 * ```ts
 * import { Gcra } from "@echostream/core/security";
 *
 * let now = 0;
 * const g = new Gcra({ ratePerSecond: 2, burst: 2, maxKeys: 100, now: () => now });
 * console.log(g.take("a"), g.take("a"), g.take("a")); // 0 0 500 (wait 500 ms)
 * now = 500;
 * console.log(g.take("a")); // 0
 * ```
 */
export class Gcra {
  readonly #store: Store;
  readonly #now: () => number;

  /**
   * Makes an empty limiter: every key starts idle, with its full burst.
   *
   * @param opts `ratePerSecond` (units per second, > 0), `burst` (units from idle, >= 1),
   * `maxKeys` (positive integer) and `now`, the clock in ms (default `performance.now`).
   * @throws {TypeError} For an option out of range.
   */
  constructor(opts: { ratePerSecond: number; burst: number; maxKeys: number; now?: () => number }) {
    checkOption(positive(opts.ratePerSecond), "ratePerSecond must be a positive finite number", opts.ratePerSecond);
    checkOption(positive(opts.burst) && opts.burst >= 1, "burst must be a finite number of at least 1", opts.burst);
    checkOption(
      Number.isSafeInteger(opts.maxKeys) && opts.maxKeys > 0,
      "maxKeys must be a positive integer",
      opts.maxKeys,
    );
    checkOption(
      opts.now === undefined || typeof opts.now === "function",
      "now must be a function returning ms",
      opts.now,
    );
    this.#store = new Store(opts.ratePerSecond, opts.burst, opts.maxKeys);
    this.#now = opts.now ?? defaultNow;
  }

  /**
   * Admits `cost` units for `key` now, or refuses (the TAT is unchanged; the key counts as
   * recently used).
   *
   * @param cost Units, >= 0. @default 1
   * @returns 0 when admitted; else the ms to wait until it would be (> 0, not rounded), or
   * `Infinity` when `cost` exceeds the burst and never will be.
   * @throws {RangeError} For a negative or non-finite cost.
   */
  take(key: string, cost = 1): number {
    checkCost(cost);
    const s = this.#store;
    const now = this.#now();
    const next = s.tat(key, now) + cost * s.interval;
    const over = next - now - s.tolerance;
    if (over > slack(now, s.toleranceSlack)) {
      s.touch(key);
      return cost > s.burst ? Infinity : over;
    }
    s.put(key, next, now);
    return 0;
  }

  /**
   * Always commits `cost` units for `key` and returns how long the caller should wait before the
   * units are within the rate (used to delay flow-control credit).
   *
   * @returns ms, >= 0 (not rounded).
   * @throws {RangeError} For a negative or non-finite cost.
   */
  reserve(key: string, cost: number): number {
    checkCost(cost);
    const s = this.#store;
    const now = this.#now();
    const next = s.tat(key, now) + cost * s.interval;
    s.put(key, next, now);
    const over = next - now - s.tolerance;
    return over > slack(now, s.toleranceSlack) ? over : 0;
  }

  /** Keys held now, idle ones not yet swept included (for tests and stats). */
  get size(): number {
    return this.#store.tats.size;
  }
}

/** The limits of one connection. Get one from {@link RateLimiter.forConnection}. */
export interface ConnectionLimits {
  /**
   * Whether one more operation of `kind` named `name` may run now. Every operations rule that
   * covers it must admit it; a refusal consumes nothing from any rule (all are checked before any
   * is committed).
   *
   * @returns 0 when admitted; else the longest retry-after among the rules that refused, in ms
   * rounded up to an integer >= 1.
   */
  admit(kind: AccessKind, name: string): number;
  /**
   * For a stream named `name`: a function taking the DATA payload bytes just received and
   * returning the delay (ms, >= 0, not rounded) before granting flow-control credit for them, or
   * undefined when no bytes rule covers the stream. The keys are fixed when this is called.
   */
  streamBytes(name: string): ((bytes: number) => number) | undefined;
}

type KeyFn = (subject: LimitSubject, kind: AccessKind, name: string) => string;

/** A rule compiled: its GCRA constants and where its buckets live. */
interface Compiled {
  readonly key: "connection" | "principal" | "address" | KeyFn;
  readonly match: ((name: string) => boolean) | undefined;
  readonly kinds: readonly AccessKind[];
  readonly bytes: boolean;
  /** Index into the connection's TAT array for a "connection" rule, else -1. */
  readonly slot: number;
  /** The shared buckets of any other rule (a placeholder for "connection" rules). */
  readonly store: Store;
}

const NONE: readonly Compiled[] = [];
const NAME_CACHE = 4096;

/** The rules that apply to one kind (or to stream bytes), with a bounded per-name cache. */
class Lookup {
  readonly #all: readonly Compiled[];
  readonly #unfiltered: boolean;
  readonly #cache = new Map<string, readonly Compiled[]>();

  constructor(rules: readonly Compiled[]) {
    this.#all = rules;
    this.#unfiltered = rules.every((r) => r.match === undefined);
  }

  get(name: string): readonly Compiled[] {
    if (this.#unfiltered) return this.#all;
    const cache = this.#cache;
    let hit = cache.get(name);
    if (hit === undefined) {
      const found = this.#all.filter((r) => r.match === undefined || r.match(name));
      hit = found.length === 0 ? NONE : found;
      if (cache.size >= NAME_CACHE) cache.delete(cache.keys().next().value!);
      cache.set(name, hit);
    }
    return hit;
  }
}

function keyOf(r: Compiled, subject: LimitSubject, kind: AccessKind, name: string): string {
  const k = r.key;
  if (k === "principal") return principalKey(subject.principal);
  if (k === "address") return subject.remote.host;
  if (k === "connection") return "";
  const v: unknown = k(subject, kind, name);
  return typeof v === "string" ? v : String(v);
}

const NO_LIMITS: ConnectionLimits = Object.freeze({
  admit: (): number => 0,
  streamBytes: (): undefined => undefined,
});

/**
 * The rate limit rules, compiled once for a server (or for a client's connections). Buckets keyed
 * by principal, address or function are shared by all connections; per-connection buckets live in
 * each {@link ConnectionLimits} and go with it.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@echostream/core/security";
 *
 * let now = 0;
 * const limiter = new RateLimiter([{ key: "connection", names: ["chat.*"], perSecond: 1 }], () => now);
 * const conn = limiter.forConnection({
 *   principal: undefined,
 *   remote: { host: "127.0.0.1", port: 40000 },
 *   peerName: "",
 *   certificate: undefined,
 * });
 * console.log(conn.admit("event", "chat.say"), conn.admit("event", "chat.say")); // 0 1000
 * console.log(conn.admit("event", "other")); // 0 (no rule covers it)
 * now = 1000;
 * console.log(conn.admit("event", "chat.say")); // 0
 * ```
 */
export class RateLimiter {
  readonly #empty: boolean;
  readonly #ops: Readonly<Record<AccessKind, Lookup>>;
  readonly #bytes: Lookup;
  readonly #slots: number;
  readonly #now: () => number;

  /**
   * Compiles the rules. An empty list gives a limiter that admits everything at no cost.
   *
   * @param rules The rules (each checked with {@link validateRateLimitRule}, as `rateLimit[i]`).
   * @param now The clock, in ms. @default performance.now
   * @throws {TypeError} For a rule that is not valid.
   */
  constructor(rules: readonly RateLimitRule[], now: () => number = defaultNow) {
    if (!Array.isArray(rules)) throw new TypeError(`rateLimit: rules must be an array, received ${describe(rules)}`);
    if (typeof now !== "function") throw new TypeError("rateLimit: now must be a function returning ms");
    const compiled: Compiled[] = [];
    let slots = 0;
    rules.forEach((rule, i) => {
      const where = `rateLimit[${i}]`;
      validateRateLimitRule(rule, where);
      const bytes = rule.bytesPerSecond !== undefined;
      const rate = bytes ? rule.bytesPerSecond! : rule.perSecond!;
      const burst = rule.burst ?? Math.max(1, rate);
      const perConnection = rule.key === "connection";
      compiled.push({
        key: rule.key,
        match: rule.names ? namePattern(rule.names, `${where}.names`) : undefined,
        kinds: bytes ? ["stream"] : [...new Set(rule.kinds ?? KINDS)],
        bytes,
        slot: perConnection ? slots++ : -1,
        store: new Store(rate, burst, perConnection ? 1 : rule.maxKeys ?? DEFAULT_MAX_KEYS),
      });
    });
    const ops = (kind: AccessKind): Lookup => new Lookup(compiled.filter((r) => !r.bytes && r.kinds.includes(kind)));
    this.#empty = compiled.length === 0;
    this.#ops = { request: ops("request"), event: ops("event"), stream: ops("stream") };
    this.#bytes = new Lookup(compiled.filter((r) => r.bytes));
    this.#slots = slots;
    this.#now = now;
  }

  /** Whether there are no rules at all (the fast path skips everything). */
  get empty(): boolean {
    return this.#empty;
  }

  /**
   * The limits of one connection. The subject is read on every check (its principal may be set
   * after the handshake); per-connection buckets live in the returned object.
   */
  forConnection(subject: LimitSubject): ConnectionLimits {
    if (this.#empty) return NO_LIMITS;
    return new Limits(subject, this.#ops, this.#bytes, this.#slots, this.#now);
  }
}

/** One connection's view of a {@link RateLimiter}. */
class Limits implements ConnectionLimits {
  readonly #subject: LimitSubject;
  readonly #ops: Readonly<Record<AccessKind, Lookup>>;
  readonly #bytes: Lookup;
  readonly #now: () => number;
  /** TATs of the "connection" rules, by slot (-Infinity: idle). */
  readonly #tats: Float64Array;

  constructor(
    subject: LimitSubject,
    ops: Readonly<Record<AccessKind, Lookup>>,
    bytes: Lookup,
    slots: number,
    now: () => number,
  ) {
    this.#subject = subject;
    this.#ops = ops;
    this.#bytes = bytes;
    this.#now = now;
    this.#tats = new Float64Array(slots).fill(-Infinity);
  }

  admit(kind: AccessKind, name: string): number {
    const lookup = this.#ops[kind];
    if (lookup === undefined) return 0;
    const rules = lookup.get(name);
    const n = rules.length;
    if (n === 0) return 0;
    const now = this.#now();
    const tats = this.#tats;
    if (n === 1) {
      // The common case: no two-phase bookkeeping.
      const r = rules[0];
      const s = r.store;
      if (r.slot >= 0) {
        const prev = tats[r.slot];
        const next = (prev > now ? prev : now) + s.interval;
        const over = next - now - s.tolerance;
        if (over > slack(now, s.toleranceSlack)) return retryAfter(over);
        tats[r.slot] = next;
        return 0;
      }
      const key = keyOf(r, this.#subject, kind, name);
      const next = s.tat(key, now) + s.interval;
      const over = next - now - s.tolerance;
      if (over > slack(now, s.toleranceSlack)) {
        s.touch(key);
        return retryAfter(over);
      }
      s.put(key, next, now);
      return 0;
    }
    // Check every rule, then commit only if all admit.
    const keys: string[] = new Array(n);
    const nexts: number[] = new Array(n);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const r = rules[i];
      const s = r.store;
      let tat: number;
      if (r.slot >= 0) {
        const prev = tats[r.slot];
        tat = prev > now ? prev : now;
      } else {
        keys[i] = keyOf(r, this.#subject, kind, name);
        tat = s.tat(keys[i], now);
      }
      const next = tat + s.interval;
      const over = next - now - s.tolerance;
      if (over > slack(now, s.toleranceSlack)) {
        if (over > worst) worst = over;
        if (r.slot < 0) s.touch(keys[i]);
      }
      nexts[i] = next;
    }
    if (worst > 0) return retryAfter(worst);
    for (let i = 0; i < n; i++) {
      const r = rules[i];
      if (r.slot >= 0) tats[r.slot] = nexts[i];
      else r.store.put(keys[i], nexts[i], now);
    }
    return 0;
  }

  streamBytes(name: string): ((bytes: number) => number) | undefined {
    const rules = this.#bytes.get(name);
    if (rules.length === 0) return undefined;
    const keys = rules.map((r) => keyOf(r, this.#subject, "stream", name));
    const tats = this.#tats;
    const clock = this.#now;
    return (bytes: number): number => {
      checkCost(bytes);
      const now = clock();
      let delay = 0;
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i];
        const s = r.store;
        let next: number;
        if (r.slot >= 0) {
          const prev = tats[r.slot];
          next = (prev > now ? prev : now) + bytes * s.interval;
          tats[r.slot] = next;
        } else {
          next = s.tat(keys[i], now) + bytes * s.interval;
          s.put(keys[i], next, now);
        }
        const over = next - now - s.tolerance;
        if (over > delay && over > slack(now, s.toleranceSlack)) delay = over;
      }
      return delay;
    };
  }
}

/** A refusal's wait in whole ms: `ms` is above the slack, so > 0, and its ceiling >= 1. */
function retryAfter(ms: number): number {
  return Math.ceil(ms);
}
