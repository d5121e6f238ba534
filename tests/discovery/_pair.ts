// The namespace pair a discovery test file runs in: created before its tests, destroyed after
// them, and checked to leave no namespace of ours behind. Call inside the file's describe().

import { afterAll, beforeAll, expect } from "bun:test";
import { createNetnsPair, listOwnNamespaces, type NetnsPair } from "../support/netns.ts";

/** Registers the hooks; `pair` is set once beforeAll has run. */
export function usePair(opts: { links?: number } = {}): { readonly pair: NetnsPair } {
  const holder = { pair: undefined as unknown as NetnsPair };
  beforeAll(async () => {
    holder.pair = await createNetnsPair(opts);
  });
  afterAll(async () => {
    await holder.pair?.destroy();
    expect(await listOwnNamespaces()).toEqual([]);
  });
  return holder;
}
