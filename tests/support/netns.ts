// Test support: network namespaces joined by veth pairs, for real multicast between processes.
//
// Two namespaces A and B get `links` veth pairs (link i: A side 10.66.i.1/24 + fd66:0:0:i::1/64, B side .2/::2).
// Each namespace has its own addresses, so concurrent test runs never clash; names carry the pid of the
// test process, so a crashed run's leftovers are recognised and removed by the next run.

// Uses node:child_process only (no Bun globals), so bench/discovery.ts can use it under Bun and Deno.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** Repository root (children run there, so Deno finds deno.json). */
export const ROOT: string = fileURLToPath(new URL("../..", import.meta.url));

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `cmd` to completion (SIGKILLed after `timeoutMs`). */
export function run(
  cmd: string[],
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd[0], cmd.slice(1), { cwd: ROOT, env: { ...process.env, NO_COLOR: "1", ...opts.env } });
    let stdout = "";
    let stderr = "";
    p.stdout!.on("data", (d) => (stdout += d));
    p.stderr!.on("data", (d) => (stderr += d));
    const t = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
    p.on("error", (e) => {
      clearTimeout(t);
      resolve({ code: 127, stdout, stderr: stderr + String(e) });
    });
    p.on("close", (code, signal) => {
      clearTimeout(t);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** Path of a runtime installed by `npm install` (bun, deno), falling back to PATH. */
export function tool(name: "bun" | "deno"): string {
  const local = `${ROOT}node_modules/.bin/${name}`;
  return existsSync(local) ? local : name;
}

/** One side of a namespace pair. */
export interface Namespace {
  /** `ip netns` name. */
  name: string;
  /** Interfaces, one per link, in link order. */
  links: { veth: string; ipv4: string; ipv6: string }[];
}

/** Two namespaces joined by `links` veth pairs. */
export interface NetnsPair {
  a: Namespace;
  b: Namespace;
  /** Kills every process started with {@link spawnIn} in them, then deletes both namespaces. Idempotent. */
  destroy(): Promise<void>;
}

const PREFIX = "esd-";
const live = new Set<string>();
const children = new Set<Child>();
let counter = 0;
let exitHookInstalled = false;

/** Why namespace tests cannot run here, or undefined when they can (root and `ip` present). */
export function netnsUnavailableReason(): string | undefined {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return "needs root (ip netns add / veth pairs); run the tests as root to include them";
  }
  if (spawnSync("ip", ["-V"]).status !== 0) return "needs the `ip` command (iproute2)";
  return undefined;
}

async function ip(args: string[], ns?: string): Promise<string> {
  const cmd = ns ? ["ip", "netns", "exec", ns, ...args] : args;
  const r = await run(cmd, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/** Deletes namespaces left by earlier test processes that died before cleaning up. */
export async function sweepStaleNamespaces(): Promise<string[]> {
  const listed = await run(["ip", "netns", "list"], { timeoutMs: 5000 });
  const removed: string[] = [];
  for (const line of listed.stdout.split("\n")) {
    const name = line.split(" ")[0];
    const m = /^esd-(\d+)-/.exec(name ?? "");
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    await run(["ip", "netns", "del", name], { timeoutMs: 5000 });
    removed.push(name);
  }
  return removed;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a test forgets destroy() or the runner exits early: synchronous cleanup.
  process.on("exit", () => {
    for (const c of children) c.kill("SIGKILL");
    for (const ns of live) spawnSync("ip", ["netns", "del", ns]);
  });
}

/**
 * Creates namespaces A and B joined by `links` veth pairs, each side up with IPv4/IPv6 addresses (no DAD
 * delay) and the multicast route `224.0.0.0/4` (without it joining 224.0.0.251 fails with ENODEV).
 * On any failure everything made so far is removed before the error is thrown.
 */
export async function createNetnsPair(opts: { links?: number } = {}): Promise<NetnsPair> {
  const links = opts.links ?? 1;
  installExitHook();
  await sweepStaleNamespaces();
  const n = counter++;
  const tag = `${process.pid}-${n}`;
  const short = `${process.pid.toString(36)}${n.toString(36)}`;
  const mk = (side: "a" | "b"): Namespace => ({
    name: `${PREFIX}${tag}-${side}`,
    links: Array.from({ length: links }, (_, i) => ({
      // interface names are limited to 15 bytes
      veth: `e${short}${side}${i}`.slice(0, 15),
      ipv4: `10.66.${i + 1}.${side === "a" ? 1 : 2}`,
      ipv6: `fd66:0:0:${i + 1}::${side === "a" ? 1 : 2}`,
    })),
  });
  const a = mk("a");
  const b = mk("b");
  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    const mine = [...children].filter((c) => c.ns === a.name || c.ns === b.name);
    await Promise.all(mine.map((c) => c.stop()));
    for (const ns of [a, b]) {
      await run(["ip", "netns", "del", ns.name], { timeoutMs: 5000 });
      live.delete(ns.name);
    }
  };
  try {
    for (const ns of [a, b]) {
      await ip(["ip", "netns", "add", ns.name]);
      live.add(ns.name);
      await ip(["ip", "link", "set", "lo", "up"], ns.name);
      // link-local IPv6 addresses would otherwise stay "tentative" for ~1 s after the link comes up
      await ip(["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"], ns.name);
    }
    for (let i = 0; i < links; i++) {
      const la = a.links[i];
      const lb = b.links[i];
      await ip([
        "ip",
        "link",
        "add",
        la.veth,
        "netns",
        a.name,
        "type",
        "veth",
        "peer",
        "name",
        lb.veth,
        "netns",
        b.name,
      ]);
      for (const [ns, l] of [[a, la], [b, lb]] as const) {
        await ip(["ip", "addr", "add", `${l.ipv4}/24`, "dev", l.veth], ns.name);
        await ip(["ip", "-6", "addr", "add", `${l.ipv6}/64`, "dev", l.veth, "nodad"], ns.name);
        await ip(["ip", "link", "set", l.veth, "up"], ns.name);
      }
    }
    for (const ns of [a, b]) {
      // One multicast route is enough for joining; the group is joined per interface explicitly.
      await ip(["ip", "route", "add", "224.0.0.0/4", "dev", ns.links[0].veth], ns.name);
    }
    // Wait until the link-local IPv6 addresses exist (the kernel adds them asynchronously on link up).
    for (const ns of [a, b]) {
      for (let t = 0; t < 50; t++) {
        const out = await ip(["ip", "-6", "-o", "addr", "show", "scope", "link"], ns.name);
        if (ns.links.every((l) => out.includes(` ${l.veth} `) && !out.includes("tentative"))) break;
        await sleep(20);
      }
    }
  } catch (e) {
    await destroy();
    throw e;
  }
  return { a, b, destroy };
}

/** A process started inside a namespace, with its stdout split into lines. */
export class Child {
  readonly lines: string[] = [];
  stderr = "";
  /** Exit code (128 + n when killed by signal n… or 1), once the process and its pipes are closed. */
  readonly exited: Promise<number>;
  private waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];

  constructor(readonly ns: string, readonly proc: ChildProcess) {
    this.exited = new Promise((resolve) => {
      proc.on("error", (e) => {
        this.stderr += String(e);
        resolve(127);
      });
      proc.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    let buf = "";
    proc.stdout!.setEncoding("utf8");
    proc.stdout!.on("data", (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        this.onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    proc.stdout!.on("end", () => buf && this.onLine(buf));
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (d: string) => (this.stderr += d));
    children.add(this);
    this.exited.finally(() => children.delete(this));
  }

  private onLine(l: string) {
    this.lines.push(l);
    this.waiters = this.waiters.filter((w) => (w.pred(l) ? (w.resolve(l), false) : true));
  }

  /** The first stdout line (past or future) matching `pred`; rejects after `timeoutMs` or on exit. */
  waitLine(pred: (l: string) => boolean, timeoutMs: number): Promise<string> {
    const seen = this.lines.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      let settled = false;
      const w = {
        pred,
        resolve: (l: string) => {
          settled = true;
          clearTimeout(timer);
          resolve(l);
        },
      };
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`${why}; stdout:\n${this.lines.join("\n")}\nstderr:\n${this.stderr}`));
      };
      const timer = setTimeout(() => fail(`no matching line within ${timeoutMs} ms`), timeoutMs);
      this.waiters.push(w);
      this.exited.then((code) => setTimeout(() => fail(`process exited (${code}) first`), 50));
    });
  }

  /** The first JSON line whose `event` field is `event`, parsed. */
  async waitEvent<T = Record<string, unknown>>(event: string, timeoutMs: number): Promise<T> {
    const l = await this.waitLine((l) => l.startsWith("{") && JSON.parse(l).event === event, timeoutMs);
    return JSON.parse(l) as T;
  }

  /** Every JSON line printed so far, parsed. */
  events<T = Record<string, unknown>>(): T[] {
    return this.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as T);
  }

  /** Sends a signal. */
  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    try {
      this.proc.kill(signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 2000): Promise<number> {
    this.kill("SIGTERM");
    const t = setTimeout(() => this.kill("SIGKILL"), graceMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

/** Starts `cmd` inside namespace `ns` (`ip netns exec`). Stopped by the pair's destroy() at the latest. */
export function spawnIn(ns: string, cmd: string[], opts: { env?: Record<string, string> } = {}): Child {
  const proc = spawn("ip", ["netns", "exec", ns, ...cmd], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Child(ns, proc);
}

/** Runs `cmd` to completion inside namespace `ns`. */
export function runIn(
  ns: string,
  cmd: string[],
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(["ip", "netns", "exec", ns, ...cmd], opts);
}

/** Namespaces of this test process that still exist (for leak checks). */
export async function listOwnNamespaces(): Promise<string[]> {
  const r = await run(["ip", "netns", "list"], { timeoutMs: 5000 });
  return r.stdout.split("\n").map((l) => l.split(" ")[0]).filter((n) => n.startsWith(`${PREFIX}${process.pid}-`));
}

// ---------------------------------------------------------------------------------------------
// Packet loss and partitions with iptables, inside a namespace of ours. Rules live in the
// namespace's own tables, so deleting the namespace (destroy(), the exit hook, or the next run's
// stale-namespace sweep) removes them too: a crashed run cannot leave drop rules behind.

/** Why iptables rules cannot be used here (on top of {@link netnsUnavailableReason}), or undefined. */
export function iptablesUnavailableReason(): string | undefined {
  const why = netnsUnavailableReason();
  if (why) return why;
  if (spawnSync("iptables", ["--version"]).status !== 0) {
    return "needs iptables (Debian: apt-get install -y iptables; .ci/run must install it)";
  }
  return undefined;
}

/** Rules added by {@link dropUdp} / {@link dropPackets}; `remove()` deletes exactly those (idempotent). */
export interface DropRules {
  readonly ns: string;
  /** The rule specs, as given to `iptables -A`. */
  readonly specs: string[][];
  /**
   * Packet counts so far, one entry per chain the rules are on (`[INPUT, OUTPUT]` by default):
   * `seen` by the matching rules, of which `dropped`.
   * (Counted by rules of our own: iptables-nft keeps no policy counters.)
   */
  counters(): Promise<{ seen: number[]; dropped: number[] }>;
  remove(): Promise<void>;
}

const RULE_TAG = () => `esd-${process.pid}`;

/**
 * Drops UDP packets in namespace `ns`, each way: `-A INPUT` and `-A OUTPUT`, restricted to
 * `iface` when given (then the pair's veth: traffic through the namespace crosses each chain once
 * per direction, so `probability` is the loss each way). `probability` 1 drops everything (a
 * partition); below 1 it uses `-m statistic --mode random`. A counting rule (no target) ahead of
 * each drop rule sees every packet, for the loss rate actually applied.
 */
export function dropUdp(ns: string, opts: { probability: number; iface?: string }): Promise<DropRules> {
  return dropPackets(ns, { ...opts, protocol: "udp" });
}

/** {@link dropUdp} for TCP segments (tagged apart, so both can be on the same namespace at once). */
export function dropTcp(
  ns: string,
  opts: { probability: number; iface?: string; chains?: ("INPUT" | "OUTPUT")[] },
): Promise<DropRules> {
  return dropPackets(ns, { ...opts, protocol: "tcp" });
}

/**
 * {@link dropUdp} generalised: `protocol` "udp" (the default, tagged as dropUdp always was) or
 * "tcp" (tagged `…-tcp-seen` / `…-tcp-drop`), on `chains` (default both). INPUT alone, in
 * each namespace of a pair, drops each direction once on arrival, where the sender cannot see
 * it: a drop on OUTPUT fails the sender's own send (EPERM), which TCP answers by keeping the
 * segment queued and sending it again soon, not as a loss on the wire.
 */
export async function dropPackets(
  ns: string,
  opts: { probability: number; iface?: string; protocol?: "udp" | "tcp"; chains?: ("INPUT" | "OUTPUT")[] },
): Promise<DropRules> {
  const p = opts.probability;
  const proto = opts.protocol ?? "udp";
  const fn = proto === "udp" ? "dropUdp" : "dropTcp";
  if (!(p > 0 && p <= 1)) throw new RangeError(`${fn}: probability must be in (0, 1], received ${p}`);
  if (proto !== "udp" && proto !== "tcp") {
    throw new RangeError(`dropPackets: protocol must be "udp" or "tcp", received ${proto}`);
  }
  const chains = opts.chains ?? ["INPUT", "OUTPUT"];
  if (chains.length === 0 || chains.some((c) => c !== "INPUT" && c !== "OUTPUT")) {
    throw new RangeError(`${fn}: chains must be INPUT and/or OUTPUT, received ${chains.join(",")}`);
  }
  const match = p < 1 ? ["-m", "statistic", "--mode", "random", "--probability", String(p)] : [];
  const kind = proto === "udp" ? "" : `${proto}-`;
  const tag = (what: string) => ["-m", "comment", "--comment", `${RULE_TAG()}-${kind}${what}`];
  const on = (chain: string) => (opts.iface ? [chain === "INPUT" ? "-i" : "-o", opts.iface] : []);
  const specs = chains.flatMap((chain) => [
    [chain, ...on(chain), "-p", proto, ...tag("seen")],
    [chain, ...on(chain), "-p", proto, ...match, ...tag("drop"), "-j", "DROP"],
  ]);
  const added: string[][] = [];
  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    // -D with the same spec deletes one matching rule; a namespace already gone has none left.
    for (const s of added.reverse()) await run(["ip", "netns", "exec", ns, "iptables", "-w", "5", "-D", ...s], { timeoutMs: 10_000 });
  };
  try {
    for (const s of specs) {
      await ip(["iptables", "-w", "5", "-A", ...s], ns);
      added.push(s);
    }
  } catch (e) {
    await remove();
    throw e;
  }
  const counters = async () => {
    const seen: number[] = [];
    const dropped: number[] = [];
    for (const chain of chains) {
      const rows = (await ip(["iptables", "-w", "5", "-L", chain, "-v", "-x", "-n"], ns)).split("\n");
      const count = (what: string) =>
        Number(rows.find((l) => l.includes(`${RULE_TAG()}-${kind}${what} `))?.trim().split(/\s+/)[0] ?? NaN);
      seen.push(count("seen"));
      dropped.push(count("drop"));
    }
    return { seen, dropped };
  };
  return { ns, specs, counters, remove };
}

/** Rules of ours (tagged with this process's id) still in namespace `ns` (for leak checks). */
export async function listOwnRules(ns: string): Promise<string[]> {
  const r = await runIn(ns, ["iptables", "-w", "5", "-S"], { timeoutMs: 10_000 });
  return r.stdout.split("\n").filter((l) => l.includes(RULE_TAG()));
}

/**
 * Starts `cmd` with a stdin pipe (for commands such as "counts"), inside namespace `ns` or, with
 * `ns` undefined, in this one. Namespace children are stopped by the pair's destroy(); the exit
 * hook kills any child still running when this process exits.
 */
export function spawnPiped(ns: string | undefined, cmd: string[], opts: { env?: Record<string, string> } = {}): Child {
  installExitHook();
  const argv = ns ? ["ip", "netns", "exec", ns, ...cmd] : cmd;
  const proc = spawn(argv[0], argv.slice(1), {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...opts.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  proc.stdin!.on("error", () => {}); // a child that died mid-write: its exit code tells the story
  return new Child(ns ?? "", proc);
}

/** Resident set size of process `pid` in bytes (from /proc), or undefined once it is gone. */
export function rssOf(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}
