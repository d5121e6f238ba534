// Child-process entry of the protocol fuzzer: `bun tests/fuzz/_main.ts '<json options>'` runs
// fuzz() (see _fuzz.ts) and prints the report as one JSON line. A child of its own because
// `bun test` intercepts unhandled rejections before process listeners see them, and the
// fuzzer must see them to tie each to the case that caused it.

import { fuzz, type FuzzOptions } from "./_fuzz.ts";

const opts = JSON.parse(process.argv[2] ?? "{}") as FuzzOptions;
const report = await fuzz(opts);
console.log(JSON.stringify(report));
process.exit(0);
