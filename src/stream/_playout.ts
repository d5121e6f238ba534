/**
 * One timer for every time-synced stream in the process: a min-heap of wake-ups keyed by
 * `performance.now()` time. Thousands of streams releasing 50 frames/s each would otherwise arm
 * thousands of timers. A wake-up is a hint: the stream asks its jitter buffer what is due at the
 * clock's current reading, so a timer that fires early never releases a frame early.
 *
 * The last millisecond is waited out with `setImmediate` polling when few wake-ups are pending
 * (a timer armed for the exact time fires up to ~1 ms late); under load the heap always holds
 * something due within a millisecond and plain timers are used, so the loop never spins.
 *
 * There is no watchdog timer. The "lost wake-up" that once stalled streams under `bun test` was
 * not lost: `recvAligned()` spun in a microtask loop after the connection's clock was freed, so
 * the event loop never got a turn to run any timer or immediate (docs/REALTIME.md, "Playout
 * stalls: the microtask spin"; regression tests in tests/repro/playout_stall.test.ts).
 *
 * @module
 */

interface Entry {
  at: number; // performance.now() time
  fn: () => void;
  /** Index in the heap, -1 when not scheduled. */
  i: number;
  /** Bumped by every `schedule`: tells `run` whether the callback re-armed its own entry. */
  gen: number;
}

/** A cancellable wake-up slot owned by one stream. */
export class Wakeup {
  readonly #e: Entry;
  constructor(fn: () => void) {
    this.#e = { at: 0, fn, i: -1, gen: 0 };
  }
  /** Wakes at `performance.now()` time `at` (replacing any earlier request). */
  at(at: number): void {
    schedule(this.#e, at);
  }
  /** Cancels the pending wake-up. */
  cancel(): void {
    remove(this.#e);
  }
}

const heap: Entry[] = [];
let timer: ReturnType<typeof setTimeout> | undefined;
let timerAt = Infinity;
let polling = false;
/** `run` is calling wake-ups: re-arming waits until it has finished (it arms once, at the end). */
let running = false;
/** Below this many pending wake-ups the final millisecond is polled for precision. */
const POLL_BELOW = 64;

function swap(a: number, b: number): void {
  const x = heap[a];
  heap[a] = heap[b];
  heap[b] = x;
  heap[a].i = a;
  heap[b].i = b;
}

function up(i: number): void {
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (heap[p].at <= heap[i].at) break;
    swap(i, p);
    i = p;
  }
}

function down(i: number): void {
  const n = heap.length;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && heap[r].at < heap[l].at ? r : l;
    if (heap[i].at <= heap[c].at) break;
    swap(i, c);
    i = c;
  }
}

function remove(e: Entry): void {
  const i = e.i;
  if (i < 0) return;
  e.i = -1;
  const last = heap.pop()!;
  if (i < heap.length) {
    heap[i] = last;
    last.i = i;
    up(i);
    down(last.i);
  }
}

function schedule(e: Entry, at: number): void {
  e.gen++;
  if (e.i >= 0) {
    // Already in the heap (also while its own callback runs, see `run`): move it in place.
    if (e.at === at) return;
    const earlier = at < e.at;
    e.at = at;
    if (earlier) up(e.i);
    else down(e.i);
  } else {
    e.at = at;
    e.i = heap.length;
    heap.push(e);
    up(e.i);
  }
  arm();
}

function arm(): void {
  if (polling || running || heap.length === 0) return; // a pending poll or `run` re-arms
  const at = heap[0].at;
  if (timer !== undefined && timerAt <= at) return;
  clearTimeout(timer);
  const precise = heap.length < POLL_BELOW;
  const delay = Math.max(0, Math.floor(at - performance.now() - (precise ? 1 : 0)));
  timerAt = at;
  timer = setTimeout(run, delay);
}

function run(): void {
  timer = undefined;
  timerAt = Infinity;
  const now = performance.now();
  running = true;
  while (heap.length && heap[0].at <= now) {
    // The entry stays in the heap while its callback runs: a stream re-arming its wake-up (the
    // usual case, one release per frame) then moves it once instead of leaving and re-entering.
    const e = heap[0];
    const gen = e.gen;
    try {
      e.fn();
    } catch { /* a stream's release step never throws; keep the scheduler alive regardless */ }
    if (e.gen === gen) remove(e); // not re-armed (nor cancelled): this wake-up is done
  }
  running = false;
  if (heap.length === 0) return;
  if (heap.length < POLL_BELOW && heap[0].at - performance.now() < 1) {
    // Within a millisecond of the next wake-up: poll rather than trust a timer.
    polling = true;
    setImmediate(() => {
      polling = false;
      run();
    });
    return;
  }
  arm();
}
