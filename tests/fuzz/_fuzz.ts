// The fuzz driver shared by `bun test` (through tests/fuzz/_main.ts, in a child process) and
// bench/fuzz.ts: seeded fast-check runs of whole cases against a live server or client, each
// case bounded in time, with unhandled rejections and uncaught exceptions collected per case.

import fc from "fast-check";
import { Collector } from "./_check.ts";
import { caseArb } from "./_gen.ts";
import { KNOWN } from "./_known.ts";
import { type Case, type Finding, showCase } from "./_model.ts";
import { bounded, sleep } from "./_raw.ts";
import { runServerCase, startServerTarget } from "./_run_server.ts";
import { runClientCase, startClientTarget } from "./_run_client.ts";

/** Most a single case may take before it counts as a hang. */
const CASE_MS = 20_000;

export interface FuzzOptions {
  mode: "server" | "client";
  seed: number;
  /** Cases to run. */
  runs: number;
  /** Stop starting new cases after this long (ms). */
  timeLimitMs?: number;
  /**
   * Known, tracked bugs fail the run too (by default they are counted, not failed); a string:
   * only the tracked bug with that regression-test name does (to find a seed and path for it).
   */
  strict?: boolean | string;
  /** Shrink a failing case to a minimal one (slower). @default {true} */
  shrink?: boolean;
  /** Prints every case and its findings to stderr. */
  debug?: boolean;
  /** Replays one fast-check path (with the same seed) instead of exploring. */
  path?: string;
}

export interface FuzzReport {
  mode: "server" | "client";
  seed: number;
  /** Cases run (shrinking included). */
  cases: number;
  ms: number;
  failed: boolean;
  /** The minimal failing case, readable, and its fast-check replay path. */
  counterexample?: string;
  path?: string;
  findings: Finding[];
  /** Known bugs seen, by regression test name, with one example each. */
  known: Record<string, { count: number; example: string }>;
}

const collector = new Collector();

/** Marks the findings that match a tracked bug (see _known.ts). */
function classify(f: Finding): Finding {
  const k = KNOWN.find((k) => k.kind === f.kind && k.match.test(f.detail));
  return k ? { ...f, known: k.test } : f;
}

/** Runs the fuzzer; never throws for a finding (the report says). */
export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  collector.install();
  const start = performance.now();
  const known: FuzzReport["known"] = {};
  let cases = 0;
  let last: Finding[] = [];
  const target = o.mode === "server" ? await startServerTarget() : await startClientTarget();
  const runOne = async (c: Case): Promise<Finding[]> => {
    const n = ++cases;
    const mark = collector.seen.length;
    const t0 = performance.now();
    const r = await bounded(
      (o.mode === "server" ? runServerCase(target as never, c, n, o.strict === true) : runClientCase(target as never, c, n, o.strict === true)).catch((e): Finding[] => [
        { kind: "crash", detail: `the case threw: ${(e as Error)?.stack ?? e}` },
      ]),
      CASE_MS,
    );
    const found = r === "timeout" ? [{ kind: "hang" as const, detail: `the case did not finish within ${CASE_MS} ms` }] : r;
    await sleep(10); // late rejections from this case land before the next starts
    const all = [...found, ...collector.since(mark)].map(classify);
    if (o.debug) console.error(`case ${n}: ${Math.round(performance.now() - t0)} ms, ${all.length} finding(s)\n${showCase(c)}\n${all.map((f) => `  ! ${f.kind}${f.known ? ` (known: ${f.known})` : ""}: ${f.detail}`).join("\n")}`);
    return all;
  };
  const prop = fc.asyncProperty(caseArb(o.mode), async (c) => {
    const found = await runOne(c);
    for (const f of found) {
      if (!f.known) continue;
      known[f.known] ??= { count: 0, example: `${f.detail}\n${showCase(c)}` };
      known[f.known].count++;
    }
    const failing = found.filter((f) => !f.known || o.strict === true || o.strict === f.known);
    if (failing.length) last = failing; // the last failing run's findings (shrinking ends on passing ones)
    return failing.length === 0;
  });
  const details = await fc.check(prop, {
    seed: o.seed,
    numRuns: o.runs,
    path: o.path,
    endOnFailure: o.shrink === false,
    interruptAfterTimeLimit: o.timeLimitMs,
    markInterruptAsFailure: false,
  });
  const report: FuzzReport = { mode: o.mode, seed: o.seed, cases, ms: Math.round(performance.now() - start), failed: details.failed, findings: [], known };
  if (details.failed) {
    report.counterexample = details.counterexample ? showCase(details.counterexample[0]) : String(details.errorInstance);
    report.path = details.counterexamplePath ?? undefined;
    report.findings = last;
    // Re-run the minimal case for its findings; when it passes alone (state or timing left by
    // earlier cases), keep what its last failing run found, marked.
    const again = details.counterexample ? await runOne(details.counterexample[0]).catch(() => []) : [];
    report.findings = again.length ? again : last.map((f) => ({ ...f, detail: `${f.detail} (the minimal case passed when re-run alone)` }));
  }
  await target.close();
  return report;
}
