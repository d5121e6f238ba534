// Run by tests/runtime/load.test.ts under Deno (no permission flags) and under Node 20 (bundled
// by `bun build`): loads the WASM core and round-trips every vector through both cores.
// Prints one JSON line.

import vectors from "../vectors/frames.json" with { type: "json" };
import { createFrameCodec } from "../../src/protocol/mod.ts";
import { WASM_SOURCE_HASH } from "../../wasm/generated.ts";

function unhex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}
function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
let roundTrips = 0;
for (const impl of ["wasm", "ts"] as const) {
  const codec = createFrameCodec({ impl, limits: vectors.limits });
  for (const v of vectors.frames) {
    const again = hex(codec.encode(codec.decode(unhex(v.hex))));
    if (again !== v.hex) throw new Error(`${impl} ${v.name}: ${again} != ${v.hex}`);
    roundTrips++;
  }
}
console.log(JSON.stringify({ runtime, roundTrips, sourceHash: WASM_SOURCE_HASH }));
