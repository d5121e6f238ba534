/**
 * A small seeded pseudo-random generator for reproducible tests and simulations.
 *
 * @module
 */

/**
 * mulberry32: floats in [0, 1) from a 32-bit seed; the same seed always gives the same sequence.
 *
 * @example Reproducible draws
 * ```ts
 * import { seededRandom } from "@echostream/core/testing";
 * const a = seededRandom(42), b = seededRandom(42);
 * console.log(a() === b()); // true
 * ```
 *
 * @param seed Any number (used as an unsigned 32-bit integer).
 * @returns A function returning the next float in [0, 1).
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
