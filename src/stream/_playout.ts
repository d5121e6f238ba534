/**
 * One timer for every time-synced stream in the process: a timing wheel of 1 ms slots keyed by
 * `performance.now()` time. Thousands of streams releasing 50 frames/s each would otherwise arm
 * thousands of timers. A wake-up is a hint: the stream asks its jitter buffer what is due at the
 * clock's current reading, so a timer that fires early never releases a frame early.
 *
 * The wheel (as in Varghese and Lauck's hashed timing wheels) makes arming, re-arming and
 * cancelling O(1): a wake-up sits in the array of its millisecond, and leaves it by swapping with
 * the array's last entry. The binary heap it replaced took a sift through log₂ n levels for
 * every release (each stream re-arms once per frame), each level a cache miss on another stream's
 * entry: with 10,000 streams on one server that was a few microseconds a frame (issue 15,
 * docs/PERFORMANCE.md). Wake-ups more than `SLOTS` ms ahead wait in a plain list until the wheel
 * comes within reach of them.
 *
 * Within a millisecond wake-ups are called in no particular order; across milliseconds in order.
 * The last millisecond is waited out with `setImmediate` polling when few wake-ups are pending
 * (a timer armed for the exact time fires up to ~1 ms late); under load the wheel always holds
 * something due within a millisecond and plain timers are used, so the loop never spins.
 *
 * There is no watchdog timer. The "lost wake-up" that once stalled streams under `bun test` was
 * not lost: `recvAligned()` spun in a microtask loop after the connection's clock was freed, so
 * the event loop never got a turn to run any timer or immediate (docs/REALTIME.md, "Playout
 * stalls: the microtask spin"; regression tests in tests/repro/playout_stall.test.ts).
 *
 * @module
 */

/** Not scheduled. */
const IDLE = -1;
/** Scheduled beyond the wheel's reach, in `far`. */
const FAR = -2;
/** Taken out of the wheel by `run`, to be called in this pass unless re-armed or cancelled first. */
const DUE = -3;

interface Entry {
  /** performance.now() time. */
  at: number;
  /** Called with the pass's `performance.now()` reading. */
  fn: (now: number) => void;
  /** The absolute slot (ms) it sits in, or IDLE, FAR, DUE. */
  slot: number;
  /** Its index in its slot's array (or in `far`). */
  idx: number;
}

/** A cancellable wake-up slot owned by one stream. */
export class Wakeup {
  readonly #e: Entry;
  /** @param fn Called at the wake-up with the `performance.now()` reading its pass was taken at. */
  constructor(fn: (now: number) => void) {
    this.#e = { at: 0, fn, slot: IDLE, idx: 0 };
  }
  /** Wakes at `performance.now()` time `at` (replacing any earlier request). */
  at(at: number): void {
    schedule(this.#e, at);
  }
  /** Cancels the pending wake-up. */
  cancel(): void {
    detach(this.#e);
  }
}

/** Slots (ms) in the wheel: how far ahead a wake-up can sit in it. */
const SLOTS = 2048;
const MASK = SLOTS - 1;
const wheel: Entry[][] = Array.from({ length: SLOTS }, () => []);
/** Every slot before this one (absolute ms) is empty. */
let cursor = 0;
/** Wake-ups in the wheel. */
let count = 0;
/** Wake-ups at or past `cursor + SLOTS` when they were armed. */
const far: Entry[] = [];
/** No wake-up in `far` is earlier than this (a bound: a cancelled one may have been the earliest). */
let farMin = Infinity;
/** What `run` took out of the wheel, called in order. */
const due: Entry[] = [];

let timer: ReturnType<typeof setTimeout> | undefined;
let timerAt = Infinity;
let polling = false;
/** `run` is calling wake-ups: re-arming waits until it has finished (it arms once, at the end). */
let running = false;
/** Below this many pending wake-ups the final millisecond is polled for precision. */
const POLL_BELOW = 64;

function place(e: Entry): void {
  let s = Math.floor(e.at);
  if (!(s >= cursor)) s = cursor; // past (or NaN): the current slot, called at the next pass
  if (s - cursor >= SLOTS) {
    e.slot = FAR;
    e.idx = far.length;
    far.push(e);
    if (e.at < farMin) farMin = e.at;
    return;
  }
  const b = wheel[s & MASK];
  e.slot = s;
  e.idx = b.length;
  b.push(e);
  count++;
}

function detach(e: Entry): void {
  const s = e.slot;
  if (s >= 0) {
    const b = wheel[s & MASK];
    const last = b.pop()!;
    if (last !== e) {
      b[e.idx] = last;
      last.idx = e.idx;
    }
    count--;
  } else if (s === FAR) {
    const last = far.pop()!;
    if (last !== e) {
      far[e.idx] = last;
      last.idx = e.idx;
    }
  }
  e.slot = IDLE; // a DUE entry stays in `due`, skipped
}

function schedule(e: Entry, at: number): void {
  if (at !== at) at = -Infinity; // NaN: at once, never lost
  if (e.slot >= 0) {
    if (e.at === at) return;
    const s = Math.floor(at);
    if (s === e.slot || (s < cursor && e.slot === cursor)) {
      // The same millisecond: only the time changes.
      e.at = at;
      if (at < timerAt) arm(at);
      return;
    }
    detach(e);
  } else if (e.slot !== IDLE) detach(e);
  // An empty wheel may have stood still for a long time: start it from now, not from then.
  if (count === 0 && !running) cursor = Math.floor(performance.now());
  e.at = at;
  place(e);
  if (at < timerAt) arm(at);
}

/** A timer (or a poll) for `at`, the earliest pending wake-up, unless one is set for earlier. */
function arm(at: number): void {
  if (polling || running || !(at < Infinity)) return; // a pending poll or `run` re-arms
  if (timer !== undefined && timerAt <= at) return;
  clearTimeout(timer);
  const precise = count + far.length < POLL_BELOW;
  const delay = Math.max(0, Math.floor(at - performance.now() - (precise ? 1 : 0)));
  timerAt = at;
  timer = setTimeout(run, delay);
}

/** Takes every wake-up due at `now` out of the wheel (and `far`) into `due`, and moves the cursor. */
function collect(now: number): void {
  const nowSlot = Math.floor(now);
  if (count > 0) {
    const last = nowSlot < cursor + SLOTS ? nowSlot : cursor + SLOTS - 1;
    for (let s = cursor; s <= last && count > 0; s++) {
      const b = wheel[s & MASK];
      const n = b.length;
      if (n === 0) continue;
      if (s < nowSlot) {
        // A past millisecond: all of it.
        for (let i = 0; i < n; i++) {
          const e = b[i];
          e.slot = DUE;
          due.push(e);
        }
        b.length = 0;
        count -= n;
      } else {
        // This millisecond: what is due by now; the rest stays.
        let j = 0;
        for (let i = 0; i < n; i++) {
          const e = b[i];
          if (e.at <= now) {
            e.slot = DUE;
            due.push(e);
          } else {
            b[j] = e;
            e.idx = j++;
          }
        }
        count -= n - j;
        b.length = j;
      }
    }
  }
  if (nowSlot > cursor) cursor = nowSlot;
  if (farMin < cursor + SLOTS) {
    // Some of `far` is now within reach: into the wheel, or straight to `due`.
    farMin = Infinity;
    for (let i = 0; i < far.length;) {
      const e = far[i];
      if (Math.floor(e.at) - cursor >= SLOTS) {
        if (e.at < farMin) farMin = e.at;
        i++;
        continue;
      }
      const last = far.pop()!;
      if (last !== e) {
        far[i] = last;
        last.idx = i;
      }
      if (e.at <= now) {
        e.slot = DUE;
        due.push(e);
      } else place(e);
    }
  }
}

/** The earliest pending wake-up time (Infinity when none). */
function earliest(): number {
  if (count > 0) {
    for (let s = cursor; s < cursor + SLOTS; s++) {
      const b = wheel[s & MASK];
      if (b.length === 0) continue;
      let at = b[0].at;
      for (let i = 1; i < b.length; i++) if (b[i].at < at) at = b[i].at;
      return at;
    }
  }
  if (far.length === 0) return Infinity;
  let at = Infinity;
  for (const e of far) if (e.at < at) at = e.at;
  return (farMin = at);
}

function run(): void {
  timer = undefined;
  timerAt = Infinity;
  const now = performance.now();
  running = true;
  // A wake-up armed by a callback for a time already past lands in the current slot and is
  // collected by the next round of the same pass.
  for (collect(now); due.length > 0; collect(now)) {
    for (let i = 0; i < due.length; i++) {
      const e = due[i];
      if (e.slot !== DUE) continue; // re-armed or cancelled since it was taken
      e.slot = IDLE;
      try {
        e.fn(now);
      } catch { /* a stream's release step never throws; keep the scheduler alive regardless */ }
    }
    due.length = 0;
  }
  running = false;
  const next = earliest();
  if (next === Infinity) return;
  if (count + far.length < POLL_BELOW && next - performance.now() < 1) {
    // Within a millisecond of the next wake-up: poll rather than trust a timer.
    polling = true;
    setImmediate(() => {
      polling = false;
      run();
    });
    return;
  }
  arm(next);
}
