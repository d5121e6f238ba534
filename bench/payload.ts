// Payload codec benchmark: msgpackr, cbor-x and JSON on typical EchoStream payloads (call
// arguments, records, telemetry batches, game state, error details, binary inside a structure):
// encode and decode ops/s, encoded size, round-trip correctness. Runs under Bun and Deno
// (`bun bench/payload.ts`, `deno run -A bench/payload.ts`) and prints one JSON object.
// `bun bench/payload.ts --all` runs it on both runtimes and writes bench/results/payload.{json,md}.

// "cbor-x/encode" is the pure-JS build: the native cbor-extract that "cbor-x" loads is compiled
// against the V8 C++ API here, and aborts Bun and kills Deno on some malformed input.
import { Encoder } from "cbor-x/encode";
import { isNativeAccelerationEnabled, Packr } from "msgpackr";
import { cborCodec, jsonCodec, msgpackCodec } from "../src/protocol/payload_codec.ts";
import { seededRandom } from "../src/testing/random.ts"; // the same seed gives every runtime the same payloads


/** The payload shapes, generated from a fixed seed. */
export function shapes(seed = 7): Record<string, unknown> {
  const rnd = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const word = (n: number) => Array.from({ length: n }, () => String.fromCharCode(97 + int(0, 25))).join("");
  const tags = ["cpu", "mem", "disk", "net.rx", "net.tx", "temp"];
  return {
    "a1 string arg": "alice@example.com",
    "a2 number arg": 1234.5678,
    "a3 short array": ["alice", 42, true],
    "b record (8 fields)": {
      id: 918273,
      user: "alice",
      email: "alice@example.com",
      admin: false,
      score: 97.25,
      roles: ["reader", "writer", "ops"],
      session: { token: word(32), createdAt: 1.7e12 + int(0, 1e9), ttlMs: 3_600_000 },
      lastSeen: null,
    },
    "c telemetry x100": Array.from({ length: 100 }, (_, i) => ({
      ts: 1.7e12 + i * 10 + rnd(),
      id: int(1, 5000),
      value: rnd() * 1000,
      tag: tags[int(0, tags.length - 1)],
    })),
    "d game state x50": {
      tick: 48213,
      entities: Array.from({ length: 50 }, (_, i) => ({
        id: i + 1,
        x: rnd() * 2000 - 1000,
        y: rnd() * 200,
        z: rnd() * 2000 - 1000,
        hp: int(0, 100),
        name: `${word(5)}_${i}`,
      })),
    },
    "e error details": {
      code: "INVALID_ARGUMENT",
      message: "field 'email' must be a valid address",
      details: { field: "email", reason: "format" },
    },
    "f 1 KiB binary in object": {
      stream: "audio.frames",
      seq: 1234,
      codec: "opus",
      data: Uint8Array.from({ length: 1024 }, () => int(0, 255)),
    },
  };
}

/** Deep equality that treats any Uint8Array (Buffer included) by its bytes. */
export function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length && a.every((x, i) => x === b[i]);
  }
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && Object.is(+a, +b);
  if (a instanceof Map || b instanceof Map) {
    return a instanceof Map && b instanceof Map && a.size === b.size && [...a].every(([k, v]) => same(v, b.get(k)));
  }
  if (a instanceof Set || b instanceof Set) {
    return a instanceof Set && b instanceof Set && a.size === b.size && [...a].every((v) => b.has(v));
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length &&
    ka.every((k) => k in b && same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

type Raw = { encode(v: unknown): Uint8Array; decode(b: Uint8Array): unknown };
const te = new TextEncoder();
const td = new TextDecoder();
const mpStd = new Packr({ useRecords: false });
const mpRecEnc = new Packr(); // default: records extension on
const mpRecDec = new Packr(); // a separate instance, as an independent peer would have
const cbStd = new Encoder({ useRecords: false, tagUint8Array: false });
const cbRecEnc = new Encoder();
const cbRecDec = new Encoder();

/** Raw library settings, then the wrapped codecs from src/protocol/payload_codec.ts. */
export const CODECS: Record<string, Raw> = {
  "msgpackr": { encode: (v) => mpStd.pack(v), decode: (b) => mpStd.unpack(b) },
  "msgpackr records": { encode: (v) => mpRecEnc.pack(v), decode: (b) => mpRecDec.unpack(b) },
  "cbor-x": { encode: (v) => cbStd.encode(v), decode: (b) => cbStd.decode(b) },
  "cbor-x records": { encode: (v) => cbRecEnc.encode(v), decode: (b) => cbRecDec.decode(b) },
  "json": { encode: (v) => te.encode(JSON.stringify(v)), decode: (b) => JSON.parse(td.decode(b)) },
  "msgpackCodec()": msgpackCodec(),
  "cborCodec()": cborCodec(),
  "jsonCodec": jsonCodec,
};

/** Values outside the shapes that tell codecs apart: what survives a round trip. */
function specials(): Record<string, unknown> {
  return {
    "Uint8Array in object": { b: new Uint8Array([1, 2, 3]) },
    "undefined": undefined,
    "undefined property": { a: undefined },
    "Map": new Map<unknown, unknown>([["k", 1], [2, "v"]]),
    "Set": new Set([1, "two"]),
    "Date": new Date(1.7e12),
    "bigint 2^60": 2n ** 60n,
    "bigint 2^70": 2n ** 70n,
    "-0": -0,
    "NaN": NaN,
    "function property": { f: () => 1 },
    "symbol": Symbol("s"),
  };
}

/** Median ops/s of `fn` over `runs` timed runs of at least `minMs` each, after a warm-up. */
function measure(fn: () => void, runs = 5, minMs = 50): number {
  const t0 = performance.now();
  while (performance.now() - t0 < 60) fn();
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    let n = 0;
    const start = performance.now();
    let now = start;
    while (now - start < minMs) {
      for (let i = 0; i < 16; i++) fn();
      n += 16;
      now = performance.now();
    }
    rates.push((n * 1000) / (now - start));
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)];
}

function outcome(codec: Raw, value: unknown): string {
  let bytes: Uint8Array;
  try {
    bytes = codec.encode(value);
  } catch (e) {
    return `encode throws ${(e as Error).name}`;
  }
  try {
    const back = codec.decode(bytes);
    if (same(value, back)) return "ok";
    const d = back instanceof Map ? "Map" : back instanceof Set ? "Set" : Array.isArray(back) ? "array" : typeof back;
    return `lossy (${d}${typeof back === "object" && back !== null && !(back instanceof Map) ? ` ${String(JSON.stringify(back, (_k, v) => typeof v === "bigint" ? `${v}n` : v)).slice(0, 40)}` : typeof back === "number" || typeof back === "bigint" ? ` ${String(back)}` : ""})`;
  } catch (e) {
    return `decode throws ${(e as Error).name}`;
  }
}

function runtimeInfo(): { runtime: string; version: string } {
  const g = globalThis as unknown as { Deno?: { version: { deno: string } }; Bun?: { version: string }; process?: { version: string } };
  if (g.Deno) return { runtime: "deno", version: g.Deno.version.deno };
  if (g.Bun) return { runtime: "bun", version: g.Bun.version };
  return { runtime: "node", version: g.process?.version ?? "?" };
}

/** One runtime's measurements. */
export function run(): Record<string, unknown> {
  const inputs = shapes();
  const results: Record<string, Record<string, { encodeOps: number; decodeOps: number; bytes: number; roundTrip: string }>> = {};
  let sink = 0;
  for (const [shape, value] of Object.entries(inputs)) {
    results[shape] = {};
    for (const [name, codec] of Object.entries(CODECS)) {
      let bytes: Uint8Array;
      try {
        bytes = codec.encode(value);
      } catch (e) {
        results[shape][name] = { encodeOps: 0, decodeOps: 0, bytes: 0, roundTrip: `encode throws ${(e as Error).name}` };
        continue;
      }
      const roundTrip = outcome(codec, value);
      const encodeOps = measure(() => {
        sink += codec.encode(value).length;
      });
      const decodeOps = measure(() => {
        if (codec.decode(bytes) === sink) sink++;
      });
      results[shape][name] = { encodeOps, decodeOps, bytes: bytes.length, roundTrip };
    }
  }
  const roundTrips: Record<string, Record<string, string>> = {};
  for (const [what, value] of Object.entries(specials())) {
    roundTrips[what] = {};
    for (const [name, codec] of Object.entries(CODECS)) roundTrips[what][name] = outcome(codec, value);
  }
  if (sink === 0.5) console.error(sink);
  return { ...runtimeInfo(), msgpackrNative: isNativeAccelerationEnabled, results, roundTrips };
}

// ---- driver: run on both runtimes, write bench/results/payload.{json,md} ----

const fmt = (n: number) => n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : n.toFixed(0);
const ratio = (a: number, b: number) => b > 0 && a > 0 ? `${(a / b).toFixed(2)}×` : "–";

type Run = {
  runtime: string;
  version: string;
  msgpackrNative: boolean;
  results: Record<string, Record<string, { encodeOps: number; decodeOps: number; bytes: number; roundTrip: string }>>;
  roundTrips: Record<string, Record<string, string>>;
};

function table(runs: Run[], machine: string): string {
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}; ops/s = median of 5 runs of ≥ 50 ms; ` +
    `ratios are this codec ÷ JSON (ops/s: higher is faster; size: lower is smaller). ` +
    `"records" = the library's default records extension (non-standard, decoded here by a separate instance); ` +
    `\`msgpackCodec()\`, \`cborCodec()\`, \`jsonCodec\` = src/protocol/payload_codec.ts (with its error checks).`,
    "",
    "cbor-x is measured through its pure-JS entry (`cbor-x/encode`), as `cborCodec()` uses it: the native cbor-extract that plain `cbor-x` loads was built here against the V8 C++ API and aborts Bun / kills Deno on some malformed input. Default codec: standard MessagePack (`msgpackCodec()`); see the JSDoc in src/protocol/payload_codec.ts.",
    "",
  ];
  for (const r of runs) {
    lines.push(`### ${r.runtime} ${r.version} (msgpackr native string extractor: ${r.msgpackrNative ? "yes" : "no"})`, "");
    lines.push("| shape | codec | encode ops/s | decode ops/s | bytes | enc ÷ JSON | dec ÷ JSON | size ÷ JSON | round trip |");
    lines.push("|---|---|---|---|---|---|---|---|---|");
    for (const [shape, byCodec] of Object.entries(r.results)) {
      const j = byCodec["json"];
      for (const [name, m] of Object.entries(byCodec)) {
        lines.push(
          `| ${shape} | ${name} | ${m.encodeOps ? fmt(m.encodeOps) : "–"} | ${m.decodeOps ? fmt(m.decodeOps) : "–"} | ${m.bytes || "–"} | ` +
            `${ratio(m.encodeOps, j.encodeOps)} | ${ratio(m.decodeOps, j.decodeOps)} | ${ratio(m.bytes, j.bytes)} | ${m.roundTrip} |`,
        );
      }
    }
    lines.push("");
  }
  const names = Object.keys(runs[0].roundTrips[Object.keys(runs[0].roundTrips)[0]]);
  lines.push(`### Round trips of other values (${runs.map((r) => r.runtime).join(", ")}${runs.every((r) => JSON.stringify(r.roundTrips) === JSON.stringify(runs[0].roundTrips)) ? ": identical" : ": first runtime shown"})`, "");
  lines.push(`| value | ${names.join(" | ")} |`, `|---|${names.map(() => "---").join("|")}|`);
  for (const [what, by] of Object.entries(runs[0].roundTrips)) lines.push(`| ${what} | ${names.map((n) => by[n]).join(" | ")} |`);
  return lines.join("\n") + "\n";
}

async function all(): Promise<void> {
  const { execFileSync } = await import("node:child_process");
  const { writeFileSync } = await import("node:fs");
  const { cpus } = await import("node:os");
  const { fileURLToPath } = await import("node:url");
  const root = fileURLToPath(new URL("..", import.meta.url));
  const bin = (b: string) => `${root}node_modules/.bin/${b}`;
  const runs: Run[] = [];
  for (const argv of [[bin("bun"), "bench/payload.ts"], [bin("deno"), "run", "-A", "bench/payload.ts"]]) {
    console.error(`running: ${argv.join(" ")}`);
    const out = execFileSync(argv[0], argv.slice(1), { cwd: root, encoding: "utf8" });
    runs.push(JSON.parse(out.trim().split("\n").pop()!));
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}`;
  writeFileSync(`${root}bench/results/payload.json`, JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, machine, runs }, null, 2) + "\n");
  writeFileSync(`${root}bench/results/payload.md`, table(runs, machine));
  console.error("wrote bench/results/payload.json and bench/results/payload.md");
}

if (import.meta.main) {
  const g = globalThis as unknown as { Deno?: { args: string[] }; process?: { argv: string[] } };
  const args = g.Deno?.args ?? g.process?.argv.slice(2) ?? [];
  if (args.includes("--all")) await all();
  else console.log(JSON.stringify(run()));
}
