/**
 * What a connection's time-synced streams have seen of transit, so that a new stream's jitter
 * buffer starts from it instead of a fixed guess (issue 15 §3).
 *
 * A jitter buffer learns its playout latency D from its own frames and uses `initialLatencyMs`
 * (80 ms) until 50 have arrived: a second at 50 fps, fifty seconds at 1 fps. On a connection whose
 * other streams already know the path, that guess is needlessly late on a LAN (a few ms would
 * do) and too early on a slow path (the first frames are dropped as late). So every time-synced
 * stream of a connection feeds the transit of each frame it receives (arrival − timestamp mapped
 * through the clock model, what its jitter buffer measures) into one shared estimate of the
 * transit's 0.99 quantile, and a stream's buffer takes that estimate plus the buffer's margin as
 * its initial latency: when it is created, and again at each of its first 50 frames whenever the
 * estimate moved (a stream opened before the connection knew its path, or whose path slowed
 * meanwhile; `TimeSyncReceiver`). From its 50th frame its own frames take over as before.
 *
 * The estimate is a frugal streaming quantile (Ma, Muthukrishnan and Sandler, 2013): one number,
 * raised by a step for a sample above it and lowered by the step × 0.01 / 0.99 for one below, so
 * it settles where 1% of the samples lie above. The step is {@link STEP_MS}, or 1% of the estimate
 * once that is larger (above 50 ms): a slow path is tracked to within a percent or two, and a
 * start-up burst of hundreds of ms is followed up and back down in a few thousand samples rather
 * than tens of thousands. A few comparisons and an addition per frame, no memory; below 50 ms it
 * follows a rise within a few dozen samples and a fall at about 0.5 ms per hundred samples (a
 * connection carrying 1,000 streams at 50 fps: 250 ms per second).
 *
 * @module
 */

/** Least step (ms) of the estimate for a sample above it; below, 1/99 of the step (the 0.99 quantile). */
const STEP_MS = 0.5;
/** The step as a fraction of the estimate, when that is more than STEP_MS. */
const STEP_FRACTION = 0.01;
const QUANTILE = 0.99;
const DOWN = (1 - QUANTILE) / QUANTILE;
/** Samples before the estimate is used (it starts from the first one and has to climb). */
const MIN_SAMPLES = 100;
/** An estimate older than this (no sample since, ms) is not used: the path may have changed. */
const MAX_AGE_MS = 30_000;
/** Added to the estimate, as the jitter buffer adds its `marginMs` (default 2) to its own. */
const MARGIN_MS = 2;

/** @internal One per connection: the transit its time-synced streams see. */
export class LatencyPrior {
  #q = 0;
  #n = 0;
  #last = -Infinity;

  /** One frame's transit (ms) seen at local time `now`. */
  observe(transitMs: number, now: number): void {
    if (!Number.isFinite(transitMs)) return;
    const q = this.#q;
    const step = q * STEP_FRACTION > STEP_MS ? q * STEP_FRACTION : STEP_MS;
    if (this.#n === 0) this.#q = transitMs;
    else if (transitMs > q) this.#q = q + step;
    else if (transitMs < q) this.#q = q - step * DOWN;
    this.#n++;
    this.#last = now;
  }

  /** Samples seen so far. */
  get samples(): number {
    return this.#n;
  }

  /** The estimate of the transit's 0.99 quantile (ms); NaN before the first sample. */
  get quantileMs(): number {
    return this.#n === 0 ? NaN : this.#q;
  }

  /**
   * The initial latency (ms) for a stream created at local time `now`: the estimate plus the
   * margin, at least 0; undefined when there are too few samples or none for too long.
   */
  initialLatencyMs(now: number): number | undefined {
    if (this.#n < MIN_SAMPLES || now - this.#last > MAX_AGE_MS) return undefined;
    return Math.max(0, this.#q + MARGIN_MS);
  }
}
