// The payloads a time-synced stream's jitter buffer holds, by sequence number.
//
// A Map did this before: set on every push, get and delete on every release. On Bun that was
// about a tenth of the receiving server's JavaScript samples at 1,500 streams × 50 fps (a
// per-stream hash table churned by ever-growing integer keys; docs/PERFORMANCE.md). The frames
// buffered at once have nearby sequence numbers, so a small ring indexed by `seq & mask` holds
// them without hashing or allocating per frame. Each payload keeps the local time it arrived
// (for `AlignedFrame.arrivedAt`), in a parallel array. Two live frames on one slot double the ring (up
// to MAX_SLOTS); past that the newcomer goes to a Map, so nothing is ever lost or overwritten.
//
// Small payloads (up to SLAB_MAX bytes, a voice or sensor frame) are copied into the ring's own
// slab and copied out again at `take`. The slab holds as many fixed-size cells as payloads are
// held at once (a free list; two at first, doubling): a stream at 1 frame/s holds one or two, so
// 10,000 of them do not each touch a 4 KiB page for a cell per slot. A payload as read is a view
// of the transport's chunk: held for the playout delay (tens to hundreds of ms), it outlived the
// young generation's collections and took its chunk (an ArrayBuffer and its backing store) into
// the old generation with it, which then grew by megabytes a second until a full collection,
// whose pause every stream's frames felt at once (docs/PERFORMANCE.md, "Held chunks made full
// collections long": longest pauses 44-144 ms, against 18-35 ms copied). Copied, the chunk dies
// young, and the copy handed out at release dies young too unless its taker keeps it. Larger
// payloads are kept as they came: a copy would cost more than the chunk around them.
//
// On Bun only. JavaScriptCore is where held chunks made full collections long; on V8 (Deno,
// Node) a typed array over 64 bytes gets its backing store off the heap, so each copy out costs an
// external allocation, and the copy made Deno's 1,000 × 50 run slower (per-stream transit p99
// 127/129 ms against 114/101 ms kept as views, two alternating pairs), so there views are kept.

/** Slots a ring starts with: 50 fps × 300 ms of buffering fits without growing. */
const START_SLOTS = 16;
/** Slots past which colliding frames go to the overflow map instead of doubling the ring. */
const MAX_SLOTS = 4096;
/** Payloads up to this many bytes are copied into the slab. */
export const SLAB_MAX = 1024;
/** The smallest slab cell (bytes). */
const MIN_CELL = 64;
/** Cells a slab starts with. */
const START_CELLS = 2;

/** A slot's `#lens` entry: empty. */
const EMPTY = -1;
/** A slot's `#lens` entry: the payload is kept as given, in `#views`. */
const VIEW = -2;

/** Whether rings copy small payloads by default: on Bun (JavaScriptCore), not on V8 (above). */
export const COPY_SMALL_BY_DEFAULT = "Bun" in globalThis;

/** @internal Payloads by sequence number, for one time-synced stream's receiver. */
export class PayloadRing {
  /** Payloads up to this many bytes are copied into the slab (−1: none are). */
  readonly #copyMax: number;
  #seqs: number[] = new Array(START_SLOTS).fill(-1);
  /** Per slot: the payload's length in the slab, or EMPTY, or VIEW. */
  #lens: number[] = new Array(START_SLOTS).fill(EMPTY);
  /** Per slot: a payload kept as given (larger than the copy limit). */
  #views: (Uint8Array | undefined)[] = new Array(START_SLOTS).fill(undefined);
  /** Per slot holding a slab payload: its cell. */
  #cells: number[] = new Array(START_SLOTS).fill(0);
  #arrivals: number[] = new Array(START_SLOTS).fill(0);
  /** Cell c's bytes are at c × #cell (made at the first small payload). */
  #slab: Uint8Array | undefined;
  /** Bytes per slab cell: a power of two ≥ MIN_CELL, grown to the largest small payload seen. */
  #cell = 0;
  /** Cells not holding a payload. */
  #free: number[] = [];
  #mask = START_SLOTS - 1;
  /** Frames whose slot was taken by another live frame with the ring at its largest. */
  #overflow: Map<number, { data: Uint8Array; arrival: number }> | undefined;
  /** The arrival time of the payload the last successful `take` returned. */
  arrival = 0;

  /** @param copySmall Copy payloads of up to SLAB_MAX bytes in (the default on Bun), or keep every payload as given. */
  constructor(copySmall = COPY_SMALL_BY_DEFAULT) {
    this.#copyMax = copySmall ? SLAB_MAX : -1;
  }

  /**
   * Keeps `data` for `seq`, arrived at local time `arrival` (replacing what `seq` had). When the
   * ring copies, a payload of up to SLAB_MAX bytes is copied: the caller's buffer is not retained.
   */
  set(seq: number, data: Uint8Array, arrival = 0): void {
    for (;;) {
      const i = seq & this.#mask;
      const had = this.#lens[i];
      if (had === EMPTY || this.#seqs[i] === seq) {
        if (had >= 0) this.#free.push(this.#cells[i]); // replaced: its cell is free again
        this.#seqs[i] = seq;
        this.#arrivals[i] = arrival;
        const n = data.length;
        if (n > this.#copyMax) {
          this.#lens[i] = VIEW;
          this.#views[i] = data;
        } else {
          if (n > this.#cell) this.#widen(n);
          const c = this.#free.length > 0 ? this.#free.pop()! : this.#moreCells();
          this.#slab!.set(data, c * this.#cell);
          this.#cells[i] = c;
          this.#lens[i] = n;
          this.#views[i] = undefined;
        }
        this.#overflow?.delete(seq);
        return;
      }
      if (this.#mask + 1 >= MAX_SLOTS) {
        (this.#overflow ??= new Map()).set(seq, { data: data.length > this.#copyMax ? data : data.slice(), arrival });
        return;
      }
      this.#grow();
    }
  }

  /** Removes and returns what `seq` had (undefined when nothing); its arrival time is then in `arrival`. */
  take(seq: number): Uint8Array | undefined {
    const i = seq & this.#mask;
    const n = this.#lens[i];
    if (n !== EMPTY && this.#seqs[i] === seq) {
      this.#lens[i] = EMPTY;
      this.arrival = this.#arrivals[i];
      if (n !== VIEW) {
        const c = this.#cells[i];
        this.#free.push(c);
        const at = c * this.#cell;
        return this.#slab!.slice(at, at + n);
      }
      const d = this.#views[i]!;
      this.#views[i] = undefined;
      return d;
    }
    const o = this.#overflow;
    if (o === undefined) return undefined;
    const v = o.get(seq);
    if (v === undefined) return undefined;
    o.delete(seq);
    this.arrival = v.arrival;
    return v.data;
  }

  /** How many payloads are held. */
  get size(): number {
    let n = this.#overflow?.size ?? 0;
    for (const l of this.#lens) if (l !== EMPTY) n++;
    return n;
  }

  /** Slots in the ring now (for tests). */
  get slots(): number {
    return this.#mask + 1;
  }

  /** Bytes per slab cell now, 0 before the first small payload (for tests). */
  get cellBytes(): number {
    return this.#cell;
  }

  /** Cells in the slab now, 0 before the first small payload (for tests). */
  get cellCount(): number {
    return this.#slab ? this.#slab.length / this.#cell : 0;
  }

  /** Drops everything (the ring keeps its size; the slab is let go). */
  clear(): void {
    this.#lens.fill(EMPTY);
    this.#views.fill(undefined);
    this.#slab = undefined;
    this.#cell = 0;
    this.#free = [];
    this.#overflow = undefined;
  }

  /** Makes every cell hold at least `n` bytes (at least START_CELLS of them), keeping what they hold. */
  #widen(n: number): void {
    let cell = Math.max(MIN_CELL, this.#cell);
    while (cell < n) cell *= 2;
    const old = this.#slab;
    if (old === undefined) {
      this.#slab = new Uint8Array(START_CELLS * cell);
      this.#cell = cell;
      for (let c = START_CELLS - 1; c >= 0; c--) this.#free.push(c);
      return;
    }
    const oldCell = this.#cell;
    const count = old.length / oldCell;
    const slab = new Uint8Array(count * cell);
    for (let i = 0; i <= this.#mask; i++) {
      const l = this.#lens[i];
      if (l > 0) {
        const c = this.#cells[i];
        slab.set(old.subarray(c * oldCell, c * oldCell + l), c * cell);
      }
    }
    this.#slab = slab;
    this.#cell = cell;
  }

  /** Doubles the slab's cells (every cell is taken); returns a free one. */
  #moreCells(): number {
    const old = this.#slab!;
    const count = old.length / this.#cell;
    const slab = new Uint8Array(count * 2 * this.#cell);
    slab.set(old);
    this.#slab = slab;
    for (let c = count * 2 - 1; c > count; c--) this.#free.push(c);
    return count;
  }

  /**
   * Doubles the ring, moving every held payload's entry to its slot there (the slab stays as it
   * is). Two entries never meet: held entries sit in different slots, so their sequence numbers
   * differ in the mask's bits, and so in the larger mask's too.
   */
  #grow(): void {
    const seqs = this.#seqs;
    const lens = this.#lens;
    const views = this.#views;
    const cells = this.#cells;
    const arrivals = this.#arrivals;
    const n = (this.#mask + 1) * 2;
    this.#mask = n - 1;
    this.#seqs = new Array(n).fill(-1);
    this.#lens = new Array(n).fill(EMPTY);
    this.#views = new Array(n).fill(undefined);
    this.#cells = new Array(n).fill(0);
    this.#arrivals = new Array(n).fill(0);
    for (let i = 0; i < lens.length; i++) {
      if (lens[i] === EMPTY) continue;
      const j = seqs[i] & this.#mask;
      this.#seqs[j] = seqs[i];
      this.#lens[j] = lens[i];
      this.#views[j] = views[i];
      this.#cells[j] = cells[i];
      this.#arrivals[j] = arrivals[i];
    }
  }
}
