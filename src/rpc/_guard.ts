// One connection's defences: access decisions, rate limits, handler slots, the reset budget,
// the outgoing-event budget and the running-listener count. Kept out of Peer so each rule has
// one home; Peer and the serving code ask it before doing any work for the other side.

import { logger } from "../observe/log.ts";
import type { AccessKind, PeerAccess } from "../security/access.ts";
import type { PeerLimits } from "../security/limits.ts";
import type { ConnectionLimits as RateLimits } from "../security/rate_limit.ts";
import type { Rejections } from "./stats.ts";
import { ErrorCode, RpcError } from "../protocol/rpc_error.ts";

const securityLog = logger("security");

/** What a guard is built from. */
export interface GuardInit {
  limits: PeerLimits;
  /** The connection's compiled access policy; undefined: everything allowed. */
  access?: PeerAccess;
  /** The connection's rate limits; undefined: none. */
  rate?: RateLimits;
  /** Settles when the TLS handshake has completed (0-RTT data may arrive before). */
  handshake?: Promise<unknown>;
}

/** The outcome of checking an operation before any of its work is done. */
export type Verdict =
  | { ok: true }
  | { ok: false; why: "permissionDenied" }
  | { ok: false; why: "rateLimited"; retryAfterMs: number };

const OK: Verdict = { ok: true };
const DENIED: Verdict = { ok: false, why: "permissionDenied" };

export class PeerGuard {
  readonly limits: PeerLimits;
  readonly #access: PeerAccess | undefined;
  readonly #rate: RateLimits | undefined;
  readonly #rejected: Rejections;
  /** Whether the TLS handshake has completed: until then, data came as 0-RTT early data. */
  handshakeDone: boolean;
  readonly handshake: Promise<unknown>;
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  #waitHead = 0;
  #resetWindowStart = 0;
  #resets = 0;
  #outgoing = 0;
  #listeners = 0;

  constructor(init: GuardInit, rejected: Rejections) {
    this.limits = init.limits;
    this.#access = init.access;
    this.#rate = init.rate;
    this.#rejected = rejected;
    this.handshakeDone = init.handshake === undefined;
    this.handshake = init.handshake ?? Promise.resolve();
    init.handshake?.then(() => (this.handshakeDone = true), () => {});
  }

  /**
   * Undefined once the TLS handshake has completed; before that (what arrives is replayable 0-RTT
   * early data) the promise to wait on, and the hold is counted in `earlyDataHeld`.
   */
  holdEarly(): Promise<unknown> | undefined {
    if (this.handshakeDone) return undefined;
    this.#rejected.earlyDataHeld++;
    return this.handshake;
  }

  /**
   * Counts a frame the peer sent that was refused (`RpcError`): `DATA_LOSS` as malformed,
   * `RESOURCE_EXHAUSTED` as oversize unless the receive budget refused it (the budget counts those
   * itself). Returns whether `e` was such a refusal (the peer's doing, not an error of ours).
   */
  countRefusedFrame(e: unknown): boolean {
    if (!(e instanceof RpcError)) return false;
    if (e.code === ErrorCode.DATA_LOSS) this.#rejected.malformedFrames++;
    else if (e.code === ErrorCode.RESOURCE_EXHAUSTED) {
      if ((e.details as { maxBufferedBytes?: number } | undefined)?.maxBufferedBytes === undefined) this.#rejected.oversizeFrames++;
    } else return false;
    return true;
  }

  /**
   * Access policy, then rate limits, for one operation; counts a refusal. Synchronous unless the
   * policy has a hook. Nothing about the operation has been decoded when this runs.
   */
  check(kind: AccessKind, name: string): Verdict | Promise<Verdict> {
    const a = this.#access?.decide(kind, name) ?? true;
    if (a === true) return this.#limit(kind, name);
    if (a === false) return this.#deny(kind, name);
    return a.then((ok) => (ok === true ? this.#limit(kind, name) : this.#deny(kind, name)));
  }

  #deny(kind: AccessKind, name: string): Verdict {
    this.#rejected.permissionDenied++;
    securityLog.debug("denied {kind} {name}: access policy", { kind, name });
    return DENIED;
  }

  #limit(kind: AccessKind, name: string): Verdict {
    if (!this.#rate) return OK;
    const wait = this.#rate.admit(kind, name);
    if (wait === 0) return OK;
    this.#rejected.rateLimited++;
    securityLog.debug("rate limited {kind} {name}: retry after {retryAfterMs} ms", { kind, name, retryAfterMs: wait });
    return { ok: false, why: "rateLimited", retryAfterMs: wait };
  }

  /** For a stream named `name`: the delay before granting credit for bytes received, if limited. */
  streamBytes(name: string): ((bytes: number) => number) | undefined {
    return this.#rate?.streamBytes(name);
  }

  /**
   * Takes a handler slot: undefined when one was free, else a promise of one (the request
   * waits, counted in `handlerWaits`). Every take is paired with one `release()`.
   */
  acquireHandler(): Promise<void> | undefined {
    if (this.#running < this.limits.maxConcurrentHandlers) {
      this.#running++;
      return undefined;
    }
    this.#rejected.handlerWaits++;
    return new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  /** Gives a handler slot back (to the longest waiter first). */
  releaseHandler(): void {
    if (this.#waitHead < this.#waiting.length) {
      const next = this.#waiting[this.#waitHead];
      this.#waiting[this.#waitHead++] = undefined as unknown as () => void;
      if (this.#waitHead > 1024 && this.#waitHead * 2 > this.#waiting.length) {
        this.#waiting.splice(0, this.#waitHead);
        this.#waitHead = 0;
      }
      next(); // the slot passes straight to it
      return;
    }
    this.#running--;
  }

  /** Lets every waiter go (the connection is gone: they will find it closed). */
  releaseAll(): void {
    while (this.#waitHead < this.#waiting.length) this.#waiting[this.#waitHead++]();
  }

  /**
   * Counts one stream the peer cancelled or reset before it was answered. True when that puts
   * the peer over `maxResets` in the current window: the caller closes the connection.
   */
  countReset(now: number = performance.now()): boolean {
    if (now - this.#resetWindowStart >= this.limits.resetWindowMs) {
      this.#resetWindowStart = now;
      this.#resets = 0;
    }
    return ++this.#resets > this.limits.maxResets;
  }

  /** Counts `n` bytes queued toward the peer; true when that exceeds `maxOutgoingBytes`. */
  queueOutgoing(n: number): boolean {
    this.#outgoing += n;
    return this.#outgoing > this.limits.maxOutgoingBytes;
  }

  /** `n` queued bytes were handed to the transport (or dropped). */
  sentOutgoing(n: number): void {
    this.#outgoing -= n;
  }

  /** A listener call starts: false when the queue is full (the event is dropped and counted). */
  startListener(): boolean {
    if (this.#listeners >= this.limits.maxQueuedEvents) {
      this.#rejected.eventQueueFull++;
      return false;
    }
    this.#listeners++;
    return true;
  }

  /** A listener call finished. */
  endListener(): void {
    this.#listeners--;
  }
}
