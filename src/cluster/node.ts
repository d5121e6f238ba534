/**
 * One server instance's part of a cluster: presence (which peer is connected where), broadcast,
 * groups, and events and calls to a peer on another instance, over any {@link ClusterAdapter}.
 * Without an adapter it is the same minus the bus: groups and peer lookups by id work inside one
 * process. The server (src/rpc/server.ts) owns one and tells it about its peers; the node calls
 * back through {@link LocalPeers} to reach them. docs/CLUSTER.md describes the protocol.
 *
 * Subjects, under `echostream.<namespace>`:
 * - `.all`: broadcasts; `.g.<group, base64url>`: group emits (subscribed while a local peer is
 *   in the group, so a group's traffic reaches only instances with members);
 * - `.hb`: heartbeats, hello/bye, and presence changes (`up` = upsert, `down`), each with the
 *   origin's presence version: a gap or a mismatch makes the receiver ask for the whole list;
 * - `.n.<instance>`: one instance's inbox: calls, emits, joins to its peers, replies, syncs.
 *
 * A message is `[u32 header length][header JSON][payload bytes]`; the payload is the server's
 * payload codec's (or raw bytes, flag RAW), so values cross the bus as they cross QUIC.
 *
 * @module
 */

import { FrameFlag, type Metadata } from "../protocol/frame.ts";
import type { PayloadCodec } from "../protocol/payload_codec.ts";
import { ErrorCode, RpcError } from "../protocol/rpc_error.ts";
import { decodePayload, encodePayload } from "../wire/payload.ts";
import { logger } from "../observe/log.ts";
import type {
  ClusterAdapter,
  ClusterEmitOptions,
  ClusterInstance,
  ClusterOptions,
  ClusterStats,
  ClusterView,
  PresenceEntry,
  PresenceEvent,
} from "./types.ts";

const log = logger("cluster");
/** The wire version of cluster messages; a message of another version is dropped (counted as malformed). */
export const CLUSTER_PROTOCOL = 1;

/** How the node reaches this instance's peers (the server implements it). */
export interface LocalPeers {
  /** Emits to local peer `id`; undefined when it is not connected here. */
  emit(id: string, topic: string, payload: unknown, metadata: Metadata): Promise<void> | undefined;
  /**
   * Frames an event once for many local peers from its encoded payload (the bytes the bus
   * carries too); undefined when that cannot be shared (then each peer gets `emit`).
   */
  prepare(topic: string, encoded: { flags: number; payload: Uint8Array }, metadata: Metadata): unknown;
  /** Sends what `prepare` made to local peer `id`; undefined when it is not connected here. */
  emitPrepared(id: string, prepared: unknown): Promise<void> | undefined;
  /** Calls local peer `id`; undefined when it is not connected here. */
  request(id: string, method: string, input: unknown, options: { timeoutMs: number; metadata: Metadata }): Promise<unknown> | undefined;
}

/** What a broadcast or group emit did here: local deliveries, and whether it went on the bus. */
export interface EmitResult {
  /** Local peers it reached. */
  delivered: number;
  /** Local peers it failed to reach (closing, or a slow consumer). */
  failed: number;
  /** Whether it was published to the other instances (false without a bus, or when the bus is down). */
  published: boolean;
}

interface Header {
  v: number;
  /** Type. */
  t: string;
  /** Origin instance. */
  o: string;
  [k: string]: unknown;
}

interface Remote {
  version: number;
  lastSeen: number;
  peers: Map<string, PresenceEntry>;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: RpcError) => void;
  timer: ReturnType<typeof setTimeout>;
  instance: string;
}

const NAMESPACE = /^[A-Za-z0-9_-]+$/;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** `group` as one subject token: base64url of its UTF-8 (NATS tokens cannot hold `.`, `*`, `>` or spaces). */
function token(group: string): string {
  let s = "";
  for (const b of enc.encode(group)) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

function jsonSafe(v: unknown): unknown {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(JSON.stringify(v));
  } catch {
    return undefined;
  }
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new TypeError(`cluster: ${name} must be a positive number of ms, received ${String(v)}`);
  return v;
}

/** Most presence events one `watch()` holds for a consumer that is not reading. */
export const WATCH_QUEUE_MAX = 4096;

/**
 * A queue an async iterator drains: `watch()`'s. Bounded: past `max` unread items it is emptied
 * and the next read throws `failure` (the consumer fell behind; a partial event stream cannot
 * rebuild the view, so it must re-read it and watch again).
 */
class EventQueue<T> {
  #items: T[] = [];
  #head = 0;
  #wake: (() => void) | undefined;
  #ended = false;
  #failed: Error | undefined;
  constructor(readonly max: number, readonly failure: () => Error) {}
  /** @returns false when this push overflowed the queue (it has failed and ended). */
  push(item: T): boolean {
    if (this.#ended) return true;
    if (this.#items.length - this.#head >= this.max) {
      this.#failed = this.failure();
      this.#items = [];
      this.#head = 0;
      this.end();
      return false;
    }
    this.#items.push(item);
    this.#wake?.();
    return true;
  }
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }
  async *drain(): AsyncGenerator<T> {
    while (true) {
      if (this.#head < this.#items.length) {
        const item = this.#items[this.#head++];
        if (this.#head === this.#items.length) {
          this.#items = [];
          this.#head = 0;
        }
        yield item;
        continue;
      }
      if (this.#failed) throw this.#failed;
      if (this.#ended) return;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
  }
}

/** One instance of a cluster (or a lone server: no bus). */
export class ClusterNode implements ClusterView {
  readonly instanceId: string;
  readonly #bus: ClusterAdapter | undefined;
  readonly #codec: PayloadCodec;
  readonly #peers: LocalPeers;
  readonly #prefix: string;
  readonly #heartbeatMs: number;
  readonly #deadAfterMs: number;
  readonly #requestTimeoutMs: number;
  /** This instance's peers, and the version of that list (bumped on every change). */
  readonly #local = new Map<string, PresenceEntry>();
  #version = 0;
  readonly #remote = new Map<string, Remote>();
  /** Local members of each group. */
  readonly #groups = new Map<string, Set<string>>();
  readonly #pending = new Map<string, Pending>();
  readonly #watchers = new Set<EventQueue<PresenceEvent>>();
  #nextCall = 0;
  #up = false;
  #started = false;
  #closed = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #stats = { published: 0, received: 0, publishFailed: 0, malformed: 0, instancesExpired: 0, watchersDropped: 0 };

  constructor(bus: ClusterAdapter | undefined, options: ClusterOptions, codec: PayloadCodec, peers: LocalPeers) {
    const ns = options.namespace ?? "default";
    if (!NAMESPACE.test(ns)) throw new TypeError(`cluster: namespace must match [A-Za-z0-9_-]+, received ${JSON.stringify(ns)}`);
    this.#bus = bus;
    this.#codec = codec;
    this.#peers = peers;
    this.#prefix = `echostream.${ns}`;
    this.#heartbeatMs = positive("heartbeatMs", options.heartbeatMs, 2000);
    this.#deadAfterMs = positive("deadAfterMs", options.deadAfterMs, 3 * this.#heartbeatMs);
    this.#requestTimeoutMs = positive("requestTimeoutMs", options.requestTimeoutMs, 10_000);
    this.instanceId = options.instanceId ?? crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    if (!NAMESPACE.test(this.instanceId)) throw new TypeError(`cluster: instanceId must match [A-Za-z0-9_-]+, received ${JSON.stringify(this.instanceId)}`);
  }

  get bus(): string {
    return this.#bus?.kind ?? "none";
  }

  get connected(): boolean {
    return !this.#bus || this.#up;
  }

  /** Connects to the bus and announces this instance. Without a bus, nothing to do. */
  async start(): Promise<void> {
    if (!this.#bus || this.#started) return;
    this.#started = true;
    try {
      await this.#bus.connect({
        message: (subject, data) => this.#receive(subject, data),
        state: (up, detail) => this.#state(up, detail),
      });
      for (const s of [`${this.#prefix}.all`, `${this.#prefix}.hb`, this.#inbox(this.instanceId)]) await this.#bus.subscribe(s);
      for (const g of this.#groups.keys()) await this.#bus.subscribe(this.#groupSubject(g));
    } catch (e) {
      this.#started = false; // start() may be retried
      await this.#bus.close().catch(() => {});
      throw e;
    }
    this.#up = true;
    this.#timer = setInterval(() => this.#tick(), this.#heartbeatMs);
    await this.#send(`${this.#prefix}.hb`, { t: "hello", pv: this.#version });
    log.info("cluster instance {instance} joined over {bus}", { instance: this.instanceId, bus: this.#bus.kind });
  }

  /** Says goodbye (others drop this instance's peers at once), fails waiting calls, disconnects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const q of this.#watchers) q.end();
    this.#failPending(() => true, "the server is closing");
    await this.#leaveBus();
  }

  /**
   * Undoes a `start()` whose server then failed to listen: leaves the bus (with a goodbye), and
   * `start()` may be called again.
   */
  async abortStart(): Promise<void> {
    await this.#leaveBus();
  }

  async #leaveBus(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (!this.#bus || !this.#started) return;
    if (this.#up) await this.#send(`${this.#prefix}.hb`, { t: "bye" }).catch(() => {});
    this.#up = false;
    this.#started = false;
    await this.#bus.close().catch((e) => log.warn("closing the {bus} bus failed: {error}", { bus: this.#bus!.kind, error: e }));
  }

  // ---- what the server tells the node ----

  /** A peer connected here. */
  peerUp(entry: Omit<PresenceEntry, "instance" | "groups">): void {
    const e: PresenceEntry = { ...entry, principal: jsonSafe(entry.principal), instance: this.instanceId, groups: [] };
    this.#local.set(e.id, e);
    this.#changed("up", e);
  }

  /** A peer connected here left: it leaves its groups too. */
  peerDown(id: string): void {
    const e = this.#local.get(id);
    if (!e) return;
    this.#local.delete(id);
    for (const g of e.groups) this.#dropMember(g, id);
    this.#changed("down", e);
  }

  // ---- the API (RpcServer's methods call these) ----

  presence(): PresenceEntry[] {
    const out = [...this.#local.values()];
    for (const r of this.#remote.values()) out.push(...r.peers.values());
    return out.map((e) => ({ ...e, groups: [...e.groups] }));
  }

  /** Where peer `id` is, if anywhere. */
  locate(id: string): PresenceEntry | undefined {
    const l = this.#local.get(id);
    if (l) return l;
    for (const r of this.#remote.values()) {
      const e = r.peers.get(id);
      if (e) return e;
    }
    return undefined;
  }

  instances(): ClusterInstance[] {
    const now = Date.now();
    const out: ClusterInstance[] = [{ id: this.instanceId, self: true, peers: this.#local.size, lastSeenMs: 0 }];
    for (const [id, r] of this.#remote) out.push({ id, self: false, peers: r.peers.size, lastSeenMs: now - r.lastSeen });
    return out;
  }

  watch(signal?: AbortSignal): AsyncIterable<PresenceEvent> {
    const q = new EventQueue<PresenceEvent>(
      WATCH_QUEUE_MAX,
      () => new RpcError(ErrorCode.RESOURCE_EXHAUSTED, `cluster watch fell behind: more than ${WATCH_QUEUE_MAX} presence events unread; read presence() and watch again`),
    );
    const watchers = this.#watchers;
    const stop = () => {
      watchers.delete(q);
      q.end();
    };
    if (this.#closed || signal?.aborted) q.end();
    else {
      watchers.add(q);
      signal?.addEventListener("abort", stop, { once: true });
    }
    // A consumer that stops iterating (break, return, throw) stops the queue too: no events pile
    // up for nobody.
    return (async function* () {
      try {
        yield* q.drain();
      } finally {
        stop();
        signal?.removeEventListener("abort", stop);
      }
    })();
  }

  stats(): ClusterStats {
    let peers = this.#local.size;
    for (const r of this.#remote.values()) peers += r.peers.size;
    return { bus: this.bus, connected: this.connected, instances: 1 + this.#remote.size, peers, ...this.#stats };
  }

  /** Every peer of every instance. */
  broadcast(topic: string, payload: unknown, options: ClusterEmitOptions = {}): Promise<EmitResult> {
    return this.#fanOut(`${this.#prefix}.all`, { t: "b" }, [...this.#local.keys()], topic, payload, options);
  }

  /** Every member of `group`, wherever it is connected. */
  async emitToGroup(group: string, topic: string, payload: unknown, options: ClusterEmitOptions = {}): Promise<EmitResult> {
    checkGroup(group);
    return await this.#fanOut(this.#groupSubject(group), { t: "g", g: group }, [...(this.#groups.get(group) ?? [])], topic, payload, options);
  }

  /** Puts peer `id` (here or on another instance) in `group`. */
  join(id: string, group: string): Promise<void> {
    return this.#membership("join", id, group);
  }

  /** Takes peer `id` (here or on another instance) out of `group`. */
  leave(id: string, group: string): Promise<void> {
    return this.#membership("leave", id, group);
  }

  /** Emits to peer `id`, here or on another instance. */
  async emitTo(id: string, topic: string, payload: unknown, metadata: Metadata = {}): Promise<void> {
    const local = this.#peers.emit(id, topic, payload, metadata);
    if (local) return await local;
    const at = this.#where(id);
    await this.#send(this.#inbox(at), { t: "emit", p: id, topic, m: metadata }, { value: payload }, `emit "${topic}" to peer ${id}`);
  }

  /** Calls peer `id`, here or on another instance. */
  async request(id: string, method: string, input: unknown, options: { timeoutMs?: number; metadata?: Metadata } = {}): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.#requestTimeoutMs;
    const local = this.#peers.request(id, method, input, { timeoutMs, metadata: options.metadata ?? {} });
    if (local) return await local;
    return await this.#call(this.#where(id), { t: "call", p: id, method, m: options.metadata ?? {}, ms: timeoutMs }, { value: input }, timeoutMs, `"${method}" on peer ${id}`);
  }

  /** Groups peer `id` is in (local peers only; others' through presence()). */
  groupsOf(id: string): string[] {
    return [...(this.#local.get(id)?.groups ?? [])];
  }

  // ---- internals ----

  #inbox(instance: string): string {
    return `${this.#prefix}.n.${instance}`;
  }

  #groupSubject(group: string): string {
    return `${this.#prefix}.g.${token(group)}`;
  }

  /** The instance peer `id` is connected to. @throws {RpcError} NOT_FOUND when none is. */
  #where(id: string): string {
    const e = this.locate(id);
    if (!e) throw new RpcError(ErrorCode.NOT_FOUND, `no peer ${id} is connected to the cluster`);
    return e.instance;
  }

  async #fanOut(subject: string, head: { t: string; g?: string }, members: string[], topic: string, payload: unknown, options: ClusterEmitOptions): Promise<EmitResult> {
    const metadata = options.metadata ?? {};
    const except = options.except ?? [];
    // Encoded first: a payload the codec refuses fails the call before anything is sent.
    const p = encodePayload(payload, this.#codec);
    // Published (queued on the bus connection, in call order) and delivered locally at once: the
    // local peers do not wait for the bus's round trip.
    let publishing: Promise<boolean> = Promise.resolve(false);
    if (this.#bus) {
      if (this.#up) {
        publishing = this.#publish(subject, { ...head, topic, m: metadata, x: except.length ? except : undefined }, p).then(() => true, (e) => {
          this.#stats.publishFailed++;
          log.warn("could not publish {what} to the other instances (local peers still get it): {error}", { what: `"${topic}"`, error: e });
          return false;
        });
      } else {
        this.#stats.publishFailed++;
      }
    }
    const [{ delivered, failed }, published] = await Promise.all([this.#deliver(members, except, topic, p, payload, metadata), publishing]);
    return { delivered, failed, published };
  }

  /**
   * Delivers an event to the local peers `ids` (but `except`): framed once from `encoded`, the
   * payload bytes already made for the bus (or received from it), unless that cannot be shared;
   * then each peer's `emit` encodes `value` itself.
   */
  async #deliver(ids: Iterable<string>, except: readonly string[], topic: string, encoded: { flags: number; payload: Uint8Array }, value: unknown, metadata: Metadata): Promise<{ delivered: number; failed: number }> {
    const skip = new Set(except);
    const targets = [...ids].filter((id) => !skip.has(id));
    if (targets.length === 0) return { delivered: 0, failed: 0 };
    const prepared = this.#peers.prepare(topic, encoded, metadata);
    const sends: Promise<void>[] = [];
    for (const id of targets) {
      const s = prepared === undefined ? this.#peers.emit(id, topic, value, metadata) : this.#peers.emitPrepared(id, prepared);
      if (s) sends.push(s);
    }
    const results = await Promise.allSettled(sends);
    const failed = results.filter((r) => r.status === "rejected").length;
    return { delivered: results.length - failed, failed };
  }

  async #membership(op: "join" | "leave", id: string, group: string): Promise<void> {
    checkGroup(group);
    const e = this.#local.get(id);
    if (e) {
      const has = e.groups.includes(group);
      if (op === "join" && !has) {
        e.groups.push(group);
        let members = this.#groups.get(group);
        if (!members) {
          this.#groups.set(group, (members = new Set()));
          if (this.#bus && this.#started) await this.#bus.subscribe(this.#groupSubject(group)).catch((err) => log.warn("subscribing to group {group} failed: {error}", { group, error: err }));
        }
        members.add(id);
        this.#changed("up", e);
      } else if (op === "leave" && has) {
        e.groups.splice(e.groups.indexOf(group), 1);
        this.#dropMember(group, id);
        this.#changed("up", e);
      }
      return;
    }
    await this.#call(this.#where(id), { t: op, p: id, g: group }, undefined, this.#requestTimeoutMs, `${op} ${group} for peer ${id}`);
  }

  #dropMember(group: string, id: string): void {
    const members = this.#groups.get(group);
    if (!members) return;
    members.delete(id);
    if (members.size === 0) {
      this.#groups.delete(group);
      if (this.#bus && this.#started && !this.#closed) this.#bus.unsubscribe(this.#groupSubject(group)).catch(() => {});
    }
  }

  /** This instance's presence changed: tell the others (best effort; heartbeats repair losses). */
  #changed(type: "up" | "down", e: PresenceEntry): void {
    this.#version++;
    this.#notify({ type, peer: { ...e, groups: [...e.groups] } });
    if (this.#bus && this.#up) {
      const body = type === "up" ? { t: "up", pv: this.#version, e } : { t: "down", pv: this.#version, id: e.id };
      this.#send(`${this.#prefix}.hb`, body).catch(() => {});
    }
  }

  #notify(ev: PresenceEvent): void {
    for (const q of this.#watchers) {
      if (!q.push(ev)) {
        this.#watchers.delete(q);
        this.#stats.watchersDropped++;
      }
    }
  }

  #tick(): void {
    const now = Date.now();
    for (const [id, r] of this.#remote) {
      if (now - r.lastSeen > this.#deadAfterMs) {
        this.#stats.instancesExpired++;
        log.warn("cluster instance {instance} missed its heartbeats for {ms} ms: its {peers} peers leave the presence view", { instance: id, ms: now - r.lastSeen, peers: r.peers.size });
        this.#dropInstance(id, `instance ${id} stopped answering`);
      }
    }
    if (this.#up) this.#send(`${this.#prefix}.hb`, { t: "hb", pv: this.#version }).catch(() => {});
  }

  #dropInstance(id: string, why: string): void {
    const r = this.#remote.get(id);
    if (!r) return;
    this.#remote.delete(id);
    for (const e of r.peers.values()) this.#notify({ type: "down", peer: e });
    this.#failPending((p) => p.instance === id, why);
  }

  #failPending(which: (p: Pending) => boolean, why: string): void {
    for (const [k, p] of this.#pending) {
      if (!which(p)) continue;
      this.#pending.delete(k);
      clearTimeout(p.timer);
      p.reject(new RpcError(ErrorCode.UNAVAILABLE, why));
    }
  }

  #state(up: boolean, detail?: string): void {
    if (this.#closed) return;
    if (!up) {
      if (this.#up) log.warn("the {bus} bus is down ({detail}): broadcasts reach local peers only, calls to other instances fail with UNAVAILABLE", { bus: this.bus, detail: detail ?? "connection lost" });
      this.#up = false;
      this.#failPending(() => true, `the ${this.bus} bus is down`);
      return;
    }
    if (!this.#up) log.info("the {bus} bus is back: resynchronising presence", { bus: this.bus });
    this.#up = true;
    // What was published meanwhile is lost: announce again, and every instance sends its list.
    this.#send(`${this.#prefix}.hb`, { t: "hello", pv: this.#version }).catch(() => {});
  }

  async #call(instance: string, head: Omit<Header, "v" | "o" | "r">, input: { value: unknown } | undefined, timeoutMs: number, what: string): Promise<unknown> {
    if (!this.#bus) throw new RpcError(ErrorCode.NOT_FOUND, `${what}: not connected here, and this server has no cluster`);
    if (!this.#up) throw new RpcError(ErrorCode.UNAVAILABLE, `${what}: the ${this.bus} bus is down`);
    const r = `${this.instanceId}-${++this.#nextCall}`;
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(r);
        reject(new RpcError(ErrorCode.DEADLINE_EXCEEDED, `${what}: no answer from instance ${instance} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(r, { resolve, reject, timer, instance });
    });
    try {
      await this.#send(this.#inbox(instance), { ...head, r }, input, what);
    } catch (e) {
      const p = this.#pending.get(r);
      if (p) {
        this.#pending.delete(r);
        clearTimeout(p.timer);
      }
      answer.catch(() => {});
      throw e;
    }
    return await answer;
  }

  /**
   * Encodes and publishes `head`, with `payload.value` through the payload codec when given; a
   * bus failure becomes UNAVAILABLE (with `what` in the message).
   */
  async #send(subject: string, head: Record<string, unknown>, payload?: { value: unknown }, what?: string): Promise<void> {
    if (!this.#bus) return;
    if (!this.#up) throw new RpcError(ErrorCode.UNAVAILABLE, `${what ?? "cluster message"}: the ${this.bus} bus is down`);
    const p = payload ? encodePayload(payload.value, this.#codec) : undefined; // a codec error is the caller's
    try {
      await this.#publish(subject, head as Header, p);
    } catch (e) {
      if (e instanceof RpcError) throw e;
      throw new RpcError(ErrorCode.UNAVAILABLE, `${what ?? "cluster message"}: publishing on the ${this.bus} bus failed: ${(e as Error)?.message ?? e}`, undefined, { cause: e });
    }
  }

  async #publish(subject: string, head: Omit<Header, "v" | "o">, p: { flags: number; payload: Uint8Array } | undefined): Promise<void> {
    const h = enc.encode(JSON.stringify({ ...head, v: CLUSTER_PROTOCOL, o: this.instanceId, f: p?.flags }));
    const body = p?.payload ?? new Uint8Array(0);
    const msg = new Uint8Array(4 + h.length + body.length);
    new DataView(msg.buffer).setUint32(0, h.length);
    msg.set(h, 4);
    msg.set(body, 4 + h.length);
    await this.#bus!.publish(subject, msg);
    this.#stats.published++;
  }

  #receive(subject: string, data: Uint8Array): void {
    if (this.#closed) return;
    let h: Header;
    let body: Uint8Array;
    try {
      const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
      if (4 + n > data.length) throw new Error("header longer than the message");
      h = JSON.parse(dec.decode(data.subarray(4, 4 + n)));
      if (h?.v !== CLUSTER_PROTOCOL || typeof h.t !== "string" || typeof h.o !== "string") throw new Error(`not a version ${CLUSTER_PROTOCOL} message`);
      body = data.subarray(4 + n);
    } catch (e) {
      this.#stats.malformed++;
      log.warn("dropped a malformed cluster message on {subject}: {error}", { subject, error: e });
      return;
    }
    if (h.o === this.instanceId) return; // our own, echoed by the bus: local peers already have it
    this.#stats.received++;
    try {
      this.#handle(h, body);
    } catch (e) {
      this.#stats.malformed++;
      log.warn("dropped a cluster message {type} from {instance}: {error}", { type: h.t, instance: h.o, error: e });
    }
  }

  #value(h: Header, body: Uint8Array): unknown {
    return decodePayload(payloadFlags(h), body, this.#codec);
  }

  #handle(h: Header, body: Uint8Array): void {
    const from = h.o;
    switch (h.t) {
      case "b":
      case "g": {
        const ids = h.t === "b" ? this.#local.keys() : (this.#groups.get(String(h.g)) ?? []);
        // Decoded to check it (a payload the codec refuses is dropped as malformed), then sent
        // on as the bytes that came: no second encoding. Copied, since the frame is written
        // later and the bus client may reuse its buffer.
        const encoded = { flags: payloadFlags(h), payload: body.slice() };
        const value = decodePayload(encoded.flags, encoded.payload, this.#codec);
        void this.#deliver(ids, Array.isArray(h.x) ? h.x.map(String) : [], String(h.topic), encoded, value, (h.m ?? {}) as Metadata);
        return;
      }
      case "hello":
        // A new (or reconnected) instance: it gets our list, and we ask for its.
        this.#seen(from);
        this.#sendSync(from);
        this.#send(this.#inbox(from), { t: "sync?" }).catch(() => {});
        return;
      case "hb": {
        const r = this.#seen(from);
        if (r.version !== h.pv) this.#send(this.#inbox(from), { t: "sync?" }).catch(() => {});
        return;
      }
      case "up":
      case "down": {
        const r = this.#seen(from);
        if (r.version + 1 !== h.pv) {
          // A change we missed (or a new instance): the whole list repairs it.
          this.#send(this.#inbox(from), { t: "sync?" }).catch(() => {});
          return;
        }
        r.version = Number(h.pv);
        if (h.t === "up") {
          const e = h.e as PresenceEntry;
          r.peers.set(e.id, e);
          this.#notify({ type: "up", peer: e });
        } else {
          const e = r.peers.get(String(h.id));
          r.peers.delete(String(h.id));
          if (e) this.#notify({ type: "down", peer: e });
        }
        return;
      }
      case "bye":
        this.#dropInstance(from, `instance ${from} closed`);
        return;
      case "sync?":
        this.#sendSync(from);
        return;
      case "sync":
        this.#applySync(from, Number(h.pv), (h.peers ?? []) as PresenceEntry[]);
        return;
      case "emit": {
        const s = this.#peers.emit(String(h.p), String(h.topic), this.#value(h, body), (h.m ?? {}) as Metadata);
        s?.catch(() => {});
        return;
      }
      case "call":
      case "join":
      case "leave":
        void this.#serveCall(h, body);
        return;
      case "res":
      case "err": {
        const p = this.#pending.get(String(h.r));
        if (!p) return; // timed out already
        this.#pending.delete(String(h.r));
        clearTimeout(p.timer);
        if (h.t === "res") p.resolve(this.#value(h, body));
        else p.reject(new RpcError(String(h.code) as ErrorCode, String(h.message), h.details));
        return;
      }
      default:
        throw new Error(`unknown message type ${JSON.stringify(h.t)}`);
    }
  }

  async #serveCall(h: Header, body: Uint8Array): Promise<void> {
    const reply = (head: Record<string, unknown>, value?: { value: unknown }) =>
      this.#send(this.#inbox(h.o), { ...head, r: h.r }, value).catch((e) =>
        log.warn("could not answer instance {instance}: {error}", { instance: h.o, error: e })
      );
    try {
      const id = String(h.p);
      let out: unknown;
      if (h.t === "call") {
        const call = this.#peers.request(id, String(h.method), this.#value(h, body), { timeoutMs: Number(h.ms) || this.#requestTimeoutMs, metadata: (h.m ?? {}) as Metadata });
        if (!call) throw new RpcError(ErrorCode.NOT_FOUND, `no peer ${id} is connected to instance ${this.instanceId}`);
        out = await call;
      } else {
        if (!this.#local.has(id)) throw new RpcError(ErrorCode.NOT_FOUND, `no peer ${id} is connected to instance ${this.instanceId}`);
        await this.#membership(h.t as "join" | "leave", id, String(h.g));
      }
      await reply({ t: "res" }, { value: out });
    } catch (e) {
      const err = e instanceof RpcError ? e : new RpcError(ErrorCode.INTERNAL, `the call failed on instance ${this.instanceId}`);
      await reply({ t: "err", code: err.code, message: err.message, details: jsonSafe(err.details) });
    }
  }

  #seen(id: string): Remote {
    let r = this.#remote.get(id);
    if (!r) this.#remote.set(id, (r = { version: -1, lastSeen: Date.now(), peers: new Map() }));
    r.lastSeen = Date.now();
    return r;
  }

  #sendSync(to: string): void {
    const peers = [...this.#local.values()];
    this.#send(this.#inbox(to), { t: "sync", pv: this.#version, peers }).catch(() => {});
  }

  #applySync(from: string, version: number, peers: PresenceEntry[]): void {
    const r = this.#seen(from);
    const next = new Map(peers.map((e) => [e.id, e]));
    for (const [id, e] of r.peers) if (!next.has(id)) this.#notify({ type: "down", peer: e });
    for (const [id, e] of next) {
      const before = r.peers.get(id);
      if (!before || JSON.stringify(before) !== JSON.stringify(e)) this.#notify({ type: "up", peer: e });
    }
    r.peers = next;
    r.version = version;
  }
}

/** The payload flags a message's header carries: only RAW (bytes, not codec output) means anything. */
function payloadFlags(h: Header): number {
  return typeof h.f === "number" ? h.f & FrameFlag.RAW : 0;
}

function checkGroup(group: string): void {
  if (typeof group !== "string" || group.length === 0 || group.length > 256) throw new RpcError(ErrorCode.INVALID_ARGUMENT, `a group name is a string of 1 to 256 characters, received ${JSON.stringify(group)}`);
}
