// The payloads a time-synced stream's jitter buffer holds, by sequence number.
//
// A Map did this before: set on every push, get and delete on every release. On Bun that was
// about a tenth of the receiving server's JavaScript samples at 1,500 streams × 50 fps (a
// per-stream hash table churned by ever-growing integer keys; docs/PERFORMANCE.md). The frames
// buffered at once have nearby sequence numbers, so a small ring indexed by `seq & mask` holds
// them without hashing or allocating per frame. Each payload keeps the local time it arrived
// (for `AlignedFrame.arrivedAt`), in a parallel array. Two live frames on one slot double the ring (up
// to MAX_SLOTS); past that the newcomer goes to a Map, so nothing is ever lost or overwritten.

/** Slots a ring starts with: 50 fps × 300 ms of buffering fits without growing. */
const START_SLOTS = 16;
/** Slots past which colliding frames go to the overflow map instead of doubling the ring. */
const MAX_SLOTS = 4096;

/** @internal Payloads by sequence number, for one time-synced stream's receiver. */
export class PayloadRing {
  #seqs: number[] = new Array(START_SLOTS).fill(-1);
  #data: (Uint8Array | undefined)[] = new Array(START_SLOTS).fill(undefined);
  #arrivals: number[] = new Array(START_SLOTS).fill(0);
  #mask = START_SLOTS - 1;
  /** Frames whose slot was taken by another live frame with the ring at its largest. */
  #overflow: Map<number, { data: Uint8Array; arrival: number }> | undefined;
  /** The arrival time of the payload the last successful `take` returned. */
  arrival = 0;

  /** Keeps `data` for `seq`, arrived at local time `arrival` (replacing what `seq` had). */
  set(seq: number, data: Uint8Array, arrival = 0): void {
    for (;;) {
      const i = seq & this.#mask;
      if (this.#data[i] === undefined || this.#seqs[i] === seq) {
        this.#seqs[i] = seq;
        this.#data[i] = data;
        this.#arrivals[i] = arrival;
        this.#overflow?.delete(seq);
        return;
      }
      if (this.#mask + 1 >= MAX_SLOTS) {
        (this.#overflow ??= new Map()).set(seq, { data, arrival });
        return;
      }
      this.#grow();
    }
  }

  /** Removes and returns what `seq` had (undefined when nothing); its arrival time is then in `arrival`. */
  take(seq: number): Uint8Array | undefined {
    const i = seq & this.#mask;
    const d = this.#data[i];
    if (d !== undefined && this.#seqs[i] === seq) {
      this.#data[i] = undefined;
      this.arrival = this.#arrivals[i];
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
    for (const d of this.#data) if (d !== undefined) n++;
    return n;
  }

  /** Slots in the ring now (for tests). */
  get slots(): number {
    return this.#mask + 1;
  }

  /** Drops everything (the ring keeps its size). */
  clear(): void {
    this.#data.fill(undefined);
    this.#overflow = undefined;
  }

  /** Doubles the ring, moving every held payload to its slot there. */
  #grow(): void {
    const seqs = this.#seqs;
    const data = this.#data;
    const arrivals = this.#arrivals;
    const n = (this.#mask + 1) * 2;
    this.#seqs = new Array(n).fill(-1);
    this.#data = new Array(n).fill(undefined);
    this.#arrivals = new Array(n).fill(0);
    this.#mask = n - 1;
    for (let i = 0; i < data.length; i++) {
      const d = data[i];
      if (d !== undefined) this.set(seqs[i], d, arrivals[i]);
    }
  }
}
