// Bounded waiting for the protocol fuzzer: nothing a live peer does may hang a case.

/** Resolves after `ms`, with `undefined`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `p`, or "timeout" after `ms` (the promise keeps running). */
export async function bounded<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<"timeout">((r) => (t = setTimeout(() => r("timeout"), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

/** Polls `pred` every 5 ms for up to `ms`; returns its last value. */
export async function waitFor(pred: () => boolean, ms: number): Promise<boolean> {
  const until = performance.now() + ms;
  while (!pred()) {
    if (performance.now() >= until) return false;
    await sleep(5);
  }
  return true;
}
