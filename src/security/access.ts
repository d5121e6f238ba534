/**
 * Access control: which requests, events and streams a connection's peer may use, decided by
 * NATS-style name patterns (see `./names.ts`: `*` is one token, `>` the rest), per-peer rules
 * computed once when a connection is accepted, and an optional hook that has the last word.
 *
 * How one decision for a (kind, name) is made:
 *
 * 1. The static `permissions` and what `perPeer` returned for this connection are merged:
 *    allow lists are unioned, deny lists are unioned. A kind "has an allow list" when either
 *    source gives one (the array form, or an object with `allow`; `allow: []` allows nothing).
 * 2. A matching deny pattern denies: deny always wins.
 * 3. Else, when the kind has an allow list, it is allowed iff an allow pattern matches.
 * 4. Else it is allowed, unless `defaultDeny` is true.
 * 5. Only if allowed so far and `check` is set: `check(access)` decides. Only `true` allows;
 *    any other value, a throw or a rejection denies (and the error goes to `onHookError`).
 *
 * A bare function as the policy is a hook called for every decision, with the same error
 * handling. Rules are validated when the server is built ({@link validateAccessPolicy}): an
 * unknown key or a malformed pattern is a TypeError naming where it is, never a silent allow.
 *
 * @example Static rules, per-peer rules and a default deny
 * ```ts
 * import { type AccessRules, compileAccess, validateAccessPolicy } from "@echostream/core/security";
 *
 * const policy: AccessRules = {
 *   permissions: { request: { allow: [">"], deny: ["admin.secret"] } },
 *   perPeer: ({ principal }) => (principal === "d42" ? { event: ["telemetry.d42.>"] } : undefined),
 *   defaultDeny: true,
 * };
 * validateAccessPolicy(policy);
 * const who = { principal: "d42", remote: { host: "127.0.0.1", port: 4433 }, certificate: undefined, peerName: "sensor" };
 * const access = compileAccess(policy, who);
 * console.log(access.decide("request", "admin.users"), access.decide("request", "admin.secret")); // true false
 * console.log(access.decide("event", "telemetry.d42.temp"), access.decide("event", "telemetry.d43.temp")); // true false
 * console.log(access.decide("stream", "logs")); // false: no stream allow list, and defaultDeny
 * ```
 *
 * @module
 */

import type { PeerCertificate, SocketAddress } from "../transport/types.ts";
import { namePattern, patternProblem } from "./names.ts";

/** What is being accessed: `request` = a call to a handler; `event` = an emit to a listener; `stream` = a stream open. */
export type AccessKind = "request" | "event" | "stream";

/**
 * What one access decision looks at.
 *
 * @example
 * ```ts
 * import type { Access } from "@echostream/core/security";
 *
 * const access: Access = {
 *   principal: { user: "ada" },
 *   kind: "request",
 *   name: "math.add",
 *   remote: { host: "127.0.0.1", port: 50000 },
 *   certificate: undefined,
 *   peerName: "calculator-client",
 * };
 * console.log(access.kind, access.name); // request math.add
 * ```
 */
export interface Access {
  /** What the server's `authenticate` returned for this connection (on the client side: undefined). */
  principal: unknown;
  /** `request` = a call to a handler; `event` = an emit to a listener; `stream` = a stream open. */
  kind: AccessKind;
  /** The method, topic or stream name. */
  name: string;
  /** The peer's address. */
  remote: SocketAddress;
  /** The peer's TLS client certificate, when it presented one. */
  certificate: PeerCertificate | undefined;
  /** The name the peer gave in HELLO/WELCOME. */
  peerName: string;
}

/** Who a connection's peer is: what per-peer rules are computed from (once per connection). */
export type Who = Omit<Access, "kind" | "name">;

/**
 * A hook deciding one access: only `true` (or a Promise resolving to `true`) allows. Any other
 * value, a throw or a rejection denies.
 *
 * @example
 * ```ts
 * import type { AccessHook } from "@echostream/core/security";
 *
 * const onlyAdmins: AccessHook = ({ principal, name }) => !name.startsWith("admin.") || principal === "admin";
 * ```
 */
export type AccessHook = (access: Access) => boolean | Promise<boolean>;

/**
 * Name patterns for one kind. An array = an allow-only list (everything else of that kind is
 * denied, NATS style); an object = explicit `allow` and/or `deny` lists (deny wins).
 *
 * @example
 * ```ts
 * import type { NameRules } from "@echostream/core/security";
 *
 * const onlyMath: NameRules = ["math.*"];
 * const allButSecrets: NameRules = { allow: [">"], deny: ["admin.secret", "*.internal.>"] };
 * ```
 */
export type NameRules = readonly string[] | { readonly allow?: readonly string[]; readonly deny?: readonly string[] };

/**
 * Name rules for each kind; a kind left out has no rules of its own (see {@link AccessRules.defaultDeny}).
 *
 * @example
 * ```ts
 * import type { Permissions } from "@echostream/core/security";
 *
 * const device: Permissions = { event: ["telemetry.d42.>"], request: { deny: [">"] } };
 * ```
 */
export interface Permissions {
  /** Calls to handlers, by method name. */
  request?: NameRules;
  /** Emits to listeners, by topic. */
  event?: NameRules;
  /** Stream opens, by stream name. */
  stream?: NameRules;
}

/**
 * Pattern rules, per-peer rules and a final hook. `{}` allows everything.
 *
 * @example
 * ```ts
 * import type { AccessRules } from "@echostream/core/security";
 *
 * const rules: AccessRules = {
 *   permissions: { request: ["public.>"] },
 *   perPeer: ({ principal }) => (principal === "admin" ? { request: [">"] } : undefined),
 *   check: ({ name, remote }) => name !== "public.debug" || remote.host === "127.0.0.1",
 * };
 * ```
 */
export interface AccessRules {
  /** What every peer may do. */
  permissions?: Permissions;
  /**
   * More rules for one connection, computed once when it is accepted (merged with
   * `permissions`: allow lists and deny lists are each unioned). Returning undefined adds none.
   * A throw or an invalid result refuses the connection.
   */
  perPeer?: (who: Who) => Permissions | undefined;
  /** A kind with no allow list at all: deny everything of it. @default {false (allow)} */
  defaultDeny?: boolean;
  /** Runs last, only for what the patterns allowed: anything but `true` denies. Called for every such decision (never cached). */
  check?: AccessHook;
}

/**
 * Access rules, or a bare hook called for every decision.
 *
 * @example
 * ```ts
 * import type { AccessPolicy } from "@echostream/core/security";
 *
 * const readOnly: AccessPolicy = { permissions: { request: ["*.get", "*.list"] }, defaultDeny: true };
 * const hook: AccessPolicy = ({ principal }) => principal !== undefined;
 * ```
 */
export type AccessPolicy = AccessRules | AccessHook;

/**
 * A connection's compiled access decisions.
 *
 * @example
 * ```ts
 * import { compileAccess } from "@echostream/core/security";
 *
 * const who = { principal: undefined, remote: { host: "::1", port: 4433 }, certificate: undefined, peerName: "peer" };
 * const access = compileAccess({ permissions: { stream: ["audio.*"] } }, who);
 * console.log(access.decide("stream", "audio.mic"), access.decide("stream", "video.cam")); // true false
 * ```
 */
export interface PeerAccess {
  /**
   * true = allowed. Synchronous (a boolean) unless a hook is involved (then a Promise<boolean>
   * when the hook returns a Promise; a hook that returns synchronously gives a boolean). Never
   * throws: a hook that throws or rejects denies, and `onHookError` is called. An unknown kind
   * or a name that is not a string is denied.
   */
  decide(kind: AccessKind, name: string): boolean | Promise<boolean>;
}

// ---------------------------------------------------------------------------------------------
// Validation (and, in the same pass, a snapshot of the rules: what is validated is what is used)

const KINDS: readonly AccessKind[] = ["request", "event", "stream"];
const RULES_KEYS = ["permissions", "perPeer", "defaultDeny", "check"] as const;
const NAME_RULES_KEYS = ["allow", "deny"] as const;

/** One kind's merged lists: `allow` undefined = no allow list. */
interface KindLists {
  allow: readonly string[] | undefined;
  deny: readonly string[];
}
type Lists = Record<AccessKind, KindLists>;

/** A validated, copied AccessRules. */
interface Snapshot {
  lists: Lists;
  perPeer: ((who: Who) => Permissions | undefined) | undefined;
  defaultDeny: boolean;
  check: AccessHook | undefined;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)}`;
  if (typeof value === "object") {
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
    return typeof name === "string" && name !== "Object" ? `a ${name}` : "an object";
  }
  return typeof value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The closest allowed key sharing at least 3 leading characters with `key` (case-insensitive). */
function suggestion(key: string, allowed: readonly string[]): string {
  const k = key.toLowerCase();
  let best = "";
  let bestLength = 2;
  for (const a of allowed) {
    const l = a.toLowerCase();
    let n = 0;
    while (n < k.length && n < l.length && k[n] === l[n]) n++;
    if (n > bestLength) [best, bestLength] = [a, n];
  }
  return best ? `; did you mean "${best}"?` : "";
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], path: string, hint = (_key: string): string => ""): void {
  for (const key of Object.keys(obj)) {
    if (allowed.includes(key)) continue;
    const expected = allowed.length === 2 ? `${allowed[0]} or ${allowed[1]}` : `${allowed.slice(0, -1).join(", ")} or ${allowed[allowed.length - 1]}`;
    throw new TypeError(`${path}.${key}: unknown key (expected ${expected})${suggestion(key, allowed) || hint(key)}`);
  }
}

function patternList(value: unknown, path: string): string[] {
  if (typeof value === "string") {
    throw new TypeError(`${path}: a string is not a list of patterns; use an array: [${JSON.stringify(value)}]`);
  }
  if (!Array.isArray(value)) throw new TypeError(`${path}: must be an array of name patterns, received ${describe(value)}`);
  const out: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const p: unknown = value[i];
    const problem = patternProblem(p);
    if (problem !== undefined) throw new TypeError(`${path}[${i}]: ${problem}`);
    out.push(p as string);
  }
  return out;
}

function kindLists(value: unknown, path: string): KindLists {
  if (value === undefined) return { allow: undefined, deny: [] };
  if (typeof value === "string") {
    throw new TypeError(`${path}: a string is not a list of patterns; use an array: [${JSON.stringify(value)}] (or { allow: [...], deny: [...] })`);
  }
  if (Array.isArray(value)) return { allow: patternList(value, path), deny: [] };
  if (!isPlainObject(value)) {
    throw new TypeError(`${path}: must be an array of name patterns or { allow?: [...], deny?: [...] }, received ${describe(value)}`);
  }
  checkKeys(value, NAME_RULES_KEYS, path);
  return {
    allow: value.allow === undefined ? undefined : patternList(value.allow, `${path}.allow`),
    deny: value.deny === undefined ? [] : patternList(value.deny, `${path}.deny`),
  };
}

function permissionLists(value: unknown, path: string): Lists {
  if (!isPlainObject(value)) {
    throw new TypeError(`${path}: must be an object { request?, event?, stream? } of name rules, received ${describe(value)}`);
  }
  checkKeys(value, KINDS, path);
  return {
    request: kindLists(value.request, `${path}.request`),
    event: kindLists(value.event, `${path}.event`),
    stream: kindLists(value.stream, `${path}.stream`),
  };
}

const NO_LISTS: Lists = {
  request: { allow: undefined, deny: [] },
  event: { allow: undefined, deny: [] },
  stream: { allow: undefined, deny: [] },
};

function topLevelHint(key: string): string {
  if (key === "allow" || key === "deny" || (KINDS as readonly string[]).includes(key)) {
    return "; name rules go under permissions, e.g. { permissions: { request: { allow: [...], deny: [...] } } }";
  }
  return "";
}

function snapshot(policy: Record<string, unknown>, where: string): Snapshot {
  checkKeys(policy, RULES_KEYS, where, topLevelHint);
  const { permissions, perPeer, defaultDeny, check } = policy;
  const lists = permissions === undefined ? NO_LISTS : permissionLists(permissions, `${where}.permissions`);
  if (perPeer !== undefined && typeof perPeer !== "function") {
    throw new TypeError(`${where}.perPeer: must be a function (who) => Permissions | undefined, received ${describe(perPeer)}`);
  }
  if (defaultDeny !== undefined && typeof defaultDeny !== "boolean") {
    throw new TypeError(`${where}.defaultDeny: must be a boolean, received ${describe(defaultDeny)}`);
  }
  if (check !== undefined && typeof check !== "function") {
    throw new TypeError(`${where}.check: must be a function (access) => boolean | Promise<boolean>, received ${describe(check)}`);
  }
  return {
    lists,
    perPeer: perPeer as Snapshot["perPeer"],
    defaultDeny: defaultDeny === true,
    check: check as AccessHook | undefined,
  };
}

/**
 * Throws a TypeError with a clear message when `policy` is not a valid {@link AccessPolicy}; call
 * it when the server is built. Rules: a function (a hook) or a plain object with only the keys
 * `permissions`, `perPeer`, `defaultDeny` and `check`; `permissions` a plain object with only
 * `request`, `event` and `stream`; each of those an array of valid patterns or a plain object
 * with only `allow` and/or `deny`, each an array of valid patterns; `perPeer` and `check`
 * functions; `defaultDeny` a boolean. An optional key set to undefined counts as left out.
 * What `perPeer` returns is checked the same way by {@link compileAccess}.
 *
 * @param policy What to check.
 * @param where The path every message starts with. @default {"accessControl"}
 * @throws {TypeError} Naming the path and the reason, e.g.
 *   `accessControl.permissions.request.allow[2]: pattern "a.>.b": ">" may only be the last token`.
 *
 * @example
 * ```ts
 * import { validateAccessPolicy } from "@echostream/core/security";
 *
 * validateAccessPolicy({ permissions: { request: ["math.*"] } }); // fine
 * try {
 *   validateAccessPolicy({ permissions: { request: "math.*" } });
 * } catch (e) {
 *   console.log((e as Error).message); // accessControl.permissions.request: a string is not a list of patterns; use an array: ["math.*"] …
 * }
 * ```
 */
export function validateAccessPolicy(policy: unknown, where: string = "accessControl"): asserts policy is AccessPolicy {
  if (typeof policy === "function") return;
  if (!isPlainObject(policy)) {
    throw new TypeError(`${where}: must be an access hook (a function) or an object of access rules, received ${describe(policy)}`);
  }
  snapshot(policy, where);
}

// ---------------------------------------------------------------------------------------------
// Compilation

/** Decides the pattern part for one kind. */
type Decider = (name: string) => boolean;
type Deciders = Record<AccessKind, Decider>;

/** At most this many cached decisions per set of deciders (all kinds together); then the caches are emptied. */
const CACHE_LIMIT = 4096;
/** Longer names are decided but not cached (names come from the network: keep memory bounded). */
const MAX_CACHED_NAME = 512;

const ALLOW: Decider = () => true;
const DENY: Decider = () => false;

interface CacheBudget {
  size: number;
  readonly maps: Map<string, boolean>[];
}

function cached(compute: Decider, budget: CacheBudget): Decider {
  const map = new Map<string, boolean>();
  budget.maps.push(map);
  return (name) => {
    const hit = map.get(name);
    if (hit !== undefined) return hit;
    const decision = compute(name);
    if (name.length <= MAX_CACHED_NAME) {
      if (budget.size >= CACHE_LIMIT) {
        for (const m of budget.maps) m.clear();
        budget.size = 0;
      }
      map.set(name, decision);
      budget.size++;
    }
    return decision;
  };
}

function kindDecider(own: KindLists, extra: KindLists | undefined, defaultDeny: boolean, budget: CacheBudget, what: string): Decider {
  const allowList = own.allow === undefined && extra?.allow === undefined ? undefined : [...(own.allow ?? []), ...(extra?.allow ?? [])];
  const denyList = extra === undefined ? own.deny : [...own.deny, ...extra.deny];
  if (denyList.length === 0) {
    if (allowList === undefined) return defaultDeny ? DENY : ALLOW;
    if (allowList.length === 0) return DENY;
  }
  const deny = denyList.length > 0 ? namePattern(denyList, `${what} deny`) : undefined;
  const allow = allowList === undefined ? undefined : namePattern(allowList, `${what} allow`);
  const otherwise = !defaultDeny;
  return cached((name) => (deny !== undefined && deny(name) ? false : allow !== undefined ? allow(name) : otherwise), budget);
}

function deciders(own: Lists, extra: Lists | undefined, defaultDeny: boolean): Deciders {
  const budget: CacheBudget = { size: 0, maps: [] };
  return {
    request: kindDecider(own.request, extra?.request, defaultDeny, budget, "request"),
    event: kindDecider(own.event, extra?.event, defaultDeny, budget, "event"),
    stream: kindDecider(own.stream, extra?.stream, defaultDeny, budget, "stream"),
  };
}

/** Per rules object: its snapshot, and the deciders for connections that `perPeer` adds nothing to (shared, with one cache). */
interface CompiledRules {
  snap: Snapshot;
  shared: Deciders | undefined;
}
const compiledRules = new WeakMap<object, CompiledRules>();

function compiled(rules: AccessRules): CompiledRules {
  let c = compiledRules.get(rules);
  if (c === undefined) {
    if (!isPlainObject(rules)) {
      throw new TypeError(`accessControl: must be an access hook (a function) or an object of access rules, received ${describe(rules)}`);
    }
    c = { snap: snapshot(rules, "accessControl"), shared: undefined };
    compiledRules.set(rules, c);
  }
  return c;
}

function reportHookError(onHookError: ((error: unknown) => void) | undefined, error: unknown): false {
  try {
    onHookError?.(error);
  } catch {
    // The reporter failing must not turn a deny into a throw.
  }
  return false;
}

/** Runs a hook: only `true` allows; a throw or a rejection denies and is reported. Never throws. */
function runHook(hook: AccessHook, access: Access, onHookError: ((error: unknown) => void) | undefined): boolean | Promise<boolean> {
  try {
    const result: unknown = hook(access);
    if (result === true) return true;
    if ((typeof result === "object" && result !== null) || typeof result === "function") {
      if (typeof (result as { then?: unknown }).then === "function") {
        return Promise.resolve(result as PromiseLike<unknown>).then((v) => v === true, (e) => reportHookError(onHookError, e));
      }
    }
    return false;
  } catch (e) {
    return reportHookError(onHookError, e);
  }
}

function accessOf(who: Who, kind: AccessKind, name: string): Access {
  return { principal: who.principal, kind, name, remote: who.remote, certificate: who.certificate, peerName: who.peerName };
}

function pick(d: Deciders, kind: AccessKind): Decider | undefined {
  switch (kind) {
    case "request":
      return d.request;
    case "event":
      return d.event;
    case "stream":
      return d.stream;
    default:
      return undefined;
  }
}

/**
 * Compiles `policy` for one connection: calls `perPeer` once, validates what it returned,
 * and merges it with the static `permissions` (allow lists unioned, deny lists unioned).
 *
 * Decisions without a hook are synchronous booleans, cached per (kind, name) in caches bounded
 * to 4096 entries in all (emptied when full; names over 512 characters are not cached).
 * With a `check` hook only the pattern part is cached and `check` runs each time the patterns
 * allow; a bare-function policy is called for every decision.
 *
 * @param policy A validated policy (see {@link validateAccessPolicy}); a static rules object is validated and compiled once.
 * @param who The connection's peer: handed to `perPeer` and, with `kind` and `name`, to hooks.
 * @param onHookError Told about a hook that threw or rejected (the access is denied either way).
 * @throws {TypeError} (fail closed: refuse the connection) When `perPeer` throws, returns a
 *   Promise or returns something that is not valid Permissions (path `accessControl.perPeer(...)`),
 *   or when `policy` itself is not valid.
 *
 * @example
 * ```ts
 * import { compileAccess } from "@echostream/core/security";
 *
 * const who = { principal: { device: "d42" }, remote: { host: "10.0.0.7", port: 5000 }, certificate: undefined, peerName: "d42" };
 * const access = compileAccess({
 *   perPeer: ({ principal }) => ({ event: [`telemetry.${(principal as { device: string }).device}.>`] }),
 *   check: ({ name }) => name !== "telemetry.d42.blocked",
 * }, who, (e) => console.error("access hook failed:", e));
 * console.log(access.decide("event", "telemetry.d42.temp"), access.decide("event", "telemetry.d43.temp")); // true false
 * ```
 */
export function compileAccess(policy: AccessPolicy, who: Who, onHookError?: (error: unknown) => void): PeerAccess {
  if (typeof policy === "function") {
    const hook = policy;
    return {
      decide(kind: AccessKind, name: string): boolean | Promise<boolean> {
        if (typeof name !== "string" || !(KINDS as readonly unknown[]).includes(kind)) return false;
        return runHook(hook, accessOf(who, kind, name), onHookError);
      },
    };
  }
  const c = compiled(policy);
  const { snap } = c;
  let extra: Lists | undefined;
  if (snap.perPeer !== undefined) {
    let given: unknown;
    try {
      given = snap.perPeer(who);
    } catch (e) {
      throw new TypeError(`accessControl.perPeer(...): threw: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if ((typeof given === "object" && given !== null) || typeof given === "function") {
      const then = (given as { then?: unknown }).then;
      if (typeof then === "function") {
        Promise.resolve(given as PromiseLike<unknown>).then(undefined, () => {}); // a rejection would be unhandled otherwise
        throw new TypeError("accessControl.perPeer(...): returned a Promise; perPeer must return Permissions (or undefined) synchronously");
      }
    }
    if (given !== undefined) extra = permissionLists(given, "accessControl.perPeer(...)");
  }
  const d = extra === undefined ? (c.shared ??= deciders(snap.lists, undefined, snap.defaultDeny)) : deciders(snap.lists, extra, snap.defaultDeny);
  const check = snap.check;
  if (check === undefined) {
    return {
      decide(kind: AccessKind, name: string): boolean {
        if (typeof name !== "string") return false;
        const decider = pick(d, kind);
        return decider !== undefined && decider(name);
      },
    };
  }
  return {
    decide(kind: AccessKind, name: string): boolean | Promise<boolean> {
      if (typeof name !== "string") return false;
      const decider = pick(d, kind);
      if (decider === undefined || !decider(name)) return false;
      return runHook(check, accessOf(who, kind, name), onHookError);
    },
  };
}
