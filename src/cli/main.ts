#!/usr/bin/env bun
/**
 * The `echostream` command line: poke at an EchoStream server the way grpcurl and the NATS CLI
 * poke at theirs. Runs on Bun and Deno (`deno run -A --unstable-net`); arguments are parsed by
 * `node:util` `parseArgs` (no dependency, the same on every runtime).
 *
 * ```text
 * echostream serve --echo [--bind host:port] [--out dir]   a throwaway server to try things against
 * echostream list <target>                                 what the server serves (reflection)
 * echostream call <target> <method> [json|-]               one request; "-": one per stdin line
 * echostream emit <target> <topic> [json]                  one event
 * echostream listen <target> <topic...> [--count N]        events as JSON lines
 * echostream clock <target> [--count N] [--interval ms]    clock offset, uncertainty, RTT, skew
 * echostream stream send <target> <name>                   stdin lines out as frames, frames back to stdout
 * echostream stream recv <target> <name> [--count N]       frames the stream handler sends, to stdout
 * echostream bench <target> <method> [json] [--count N] [--concurrency C]   latency and req/s
 * echostream discover <name> [--watch] [--count N]        servers advertising <name> on the LAN (mDNS)
 * echostream cert [--out dir] [--hosts h1,h2]              a development CA and leaf, as files
 * ```
 *
 * A target is "host:port" or the name of a discovered service. Trust: `--ca <file>` (PEM),
 * `--fingerprint <sha256 hex>`, or, for a discovered service, `--trust-advertised` (trust on
 * first use of the fingerprint its unauthenticated mDNS answer carries), or
 * `--insecure-skip-verify` (no verification at all: development only); `-H
 * key=value` adds request metadata; `--timeout <ms>` bounds each call; `--json` makes every
 * command print JSON lines. Exit codes: 0 success, 1 a failure that is not an RPC error, 2 bad
 * usage, 100 + the gRPC number of an RpcError's code (101 CANCELLED … 105 NOT_FOUND, 107
 * PERMISSION_DENIED, 114 UNAVAILABLE, 116 UNAUTHENTICATED; docs/CLI.md has the table).
 *
 * @example Running a command from code (what the binary does with its arguments)
 * ```ts
 * import { main } from "@echostream/core/cli";
 * const code = await main(["cert", "--out", "/tmp/echostream-certs"]);
 * console.log(code); // 0
 * ```
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ErrorCode, errorCodeNumber, RpcError } from "../protocol/rpc_error.ts";
import { handler, listener, streamHandler } from "../rpc/definitions.ts";
import { RpcClient } from "../rpc/client.ts";
import type { DiscoveredService } from "../discovery/types.ts";
import { RpcServer } from "../rpc/server.ts";
import { REFLECTION_METHOD, type ServiceDescription } from "../rpc/reflection.ts";
import { createDevCertificates } from "../security/dev_cert.ts";
import type { EchoStream } from "../stream/echo_stream.ts";

/** Where a command writes; tests and embedders pass their own. */
export interface CliIo {
  /** One line of output (no trailing newline). */
  out(line: string): void;
  /** One line of diagnostics. */
  err(line: string): void;
  /** Lines of standard input, for `call … -`. */
  lines(): AsyncIterable<string>;
  /** Resolves when the command should stop (Ctrl-C); `listen` and `serve` wait on it. */
  interrupted: Promise<void>;
  /** Draws `bench`'s progress (`done` of `total`; `final` once finished); absent: no progress shown. */
  progress?: (done: number, total: number, final?: boolean) => void;
}

/** Exit codes besides 100 + an RpcError's number. */
export const ExitCode = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

const USAGE = `Usage: echostream <command> [options]

Commands:
  serve --echo [--bind host:port] [--out dir] [--advertise name]
                                                a throwaway server to try things against
  list <target>                                 what the server serves (reflection)
  call <target> <method> [json|-]               one request; "-" reads one JSON value per stdin line
  emit <target> <topic> [json]                  one event
  listen <target> <topic...> [--count N]        print events as JSON lines
  clock <target> [--count N] [--interval ms]    clock offset, uncertainty, RTT and skew
  stream send <target> <name>                   stdin lines out as frames; frames back printed
  stream recv <target> <name> [--count N]       print the frames a stream handler sends
  bench <target> <method> [json] [--count N] [--concurrency C]
                                                latency percentiles and requests/s
  discover <name> [--watch] [--count N]         servers advertising <name> on the LAN (mDNS)
  cert [--out dir] [--hosts h1,h2]              write a development CA and leaf certificate

Options:
  --ca <file>            trust this CA certificate (PEM)
  --fingerprint <hex>    trust the server certificate with this SHA-256
  --trust-advertised     a service-name target: trust the fingerprint its mDNS answer carries (TOFU)
  --insecure-skip-verify accept any server certificate (development only; on Deno, run it with
                         --unsafely-ignore-certificate-errors)
  -H, --header k=v       request metadata (repeatable)
  --timeout <ms>         per call (default 10000)
  --json                 JSON lines output
  -h, --help             this text

A target is host:port or a service name (found by mDNS). Exit codes: 0 ok, 1 failure, 2 usage, 100 + gRPC code of an RpcError.`;

class UsageError extends Error {}

const OPTIONS = {
  ca: { type: "string" },
  fingerprint: { type: "string" },
  header: { type: "string", short: "H", multiple: true },
  timeout: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  echo: { type: "boolean" },
  bind: { type: "string" },
  out: { type: "string" },
  hosts: { type: "string" },
  count: { type: "string" },
  interval: { type: "string" },
  concurrency: { type: "string" },
  advertise: { type: "string" },
  watch: { type: "boolean" },
  "trust-advertised": { type: "boolean" },
  "insecure-skip-verify": { type: "boolean" },
} as const;

type Values = {
  ca?: string;
  fingerprint?: string;
  header?: string[];
  timeout?: string;
  json?: boolean;
  help?: boolean;
  echo?: boolean;
  bind?: string;
  out?: string;
  hosts?: string;
  count?: string;
  interval?: string;
  concurrency?: string;
  advertise?: string;
  watch?: boolean;
  "trust-advertised"?: boolean;
  "insecure-skip-verify"?: boolean;
};

function positiveInt(v: string | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name}: expected a positive integer, received ${JSON.stringify(v)}`);
  return n;
}

/** `--count` when given, else no limit. */
function countOption(v: Values): number {
  return v.count === undefined ? Infinity : positiveInt(v.count, "count", 1);
}

/** `--timeout`: the connect and per-call deadline (ms). */
function timeoutOption(v: Values): number {
  return positiveInt(v.timeout, "timeout", 10_000);
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${what}: not JSON (${(e as Error).message}): ${text.length > 80 ? text.slice(0, 80) + "…" : text}`);
  }
}

function metadata(headers: string[] | undefined): Record<string, string> | undefined {
  if (!headers?.length) return undefined;
  const out: Record<string, string> = {};
  for (const h of headers) {
    const i = h.indexOf("=");
    if (i <= 0) throw new UsageError(`-H: expected key=value, received ${JSON.stringify(h)}`);
    out[h.slice(0, i)] = h.slice(i + 1);
  }
  return out;
}

/** JSON text of a value; bytes become `{ "$base64": "…" }`. */
export function toJson(value: unknown, pretty = false): string {
  return JSON.stringify(
    value === undefined ? null : value,
    (_k, v) => {
      if (v instanceof Uint8Array) {
        let s = "";
        for (let i = 0; i < v.length; i++) s += String.fromCharCode(v[i]);
        return { $base64: btoa(s) };
      }
      return v;
    },
    pretty ? 2 : undefined,
  );
}

/** `{"error": {code, message, details}}` for an RpcError, `{"error": {message}}` for anything else. */
function errorJson(e: unknown): string {
  return toJson({ error: e instanceof RpcError ? { code: e.code, message: e.message, details: e.details } : { message: String((e as Error)?.message ?? e) } });
}

/** The exit code for an error: 100 + an RpcError's number, else 1 (2 for usage). */
export function exitCodeOf(e: unknown): number {
  if (e instanceof UsageError) return ExitCode.USAGE;
  if (e instanceof RpcError) return 100 + errorCodeNumber(e.code);
  return ExitCode.FAILURE;
}

const HOST_PORT = /^(?:\[[^\]]+\]|[^:\s]+):\d{1,5}$/;

async function connect(target: string | undefined, v: Values): Promise<RpcClient> {
  if (!target) throw new UsageError("missing <target> (host:port, or a service name)");
  const timeoutMs = timeoutOption(v);
  const byName = !HOST_PORT.test(target);
  // "Name" finds every instance of that service; "Name (2)" one instance of it.
  const service = target.replace(/ \(\d+\)$/, "");
  if (byName && /[:\s]/.test(service.replaceAll(" ", ""))) {
    throw new UsageError(`<target>: expected host:port or a service name, received ${JSON.stringify(target)}`);
  }
  const insecure = v["insecure-skip-verify"] === true;
  if (insecure && (v.ca || v.fingerprint || v["trust-advertised"])) {
    throw new UsageError("--insecure-skip-verify cannot be combined with --ca, --fingerprint or --trust-advertised");
  }
  if (!v.ca && !v.fingerprint && !insecure && !(byName && v["trust-advertised"])) {
    throw new UsageError(
      byName
        ? "no trust given: pass --ca <file>, --fingerprint <sha256 hex>, or --trust-advertised (trust the fingerprint the service advertises, on first use)"
        : "no trust given: pass --ca <file> (the server's CA, PEM) or --fingerprint <sha256 hex> (or --insecure-skip-verify, development only)",
    );
  }
  let ca: string | undefined;
  if (v.ca) {
    try {
      ca = await readFile(v.ca, "utf8");
    } catch (e) {
      throw new UsageError(`--ca: cannot read ${v.ca}: ${(e as Error).message}`);
    }
  }
  let address: string | DiscoveredService = target;
  let fingerprint = v.fingerprint;
  if (byName) {
    const found = await discoverOrUnavailable(service, Math.min(timeoutMs, 5000));
    const svc = found.find((s) => s.instance === target) ?? (service === target ? found[0] : undefined);
    if (!svc) throw new RpcError("UNAVAILABLE", `no server advertising "${target}" answered on the local network`);
    if (!ca && !fingerprint && !insecure) {
      if (!svc.fingerprint) throw new RpcError("UNAUTHENTICATED", `"${svc.instance}" advertises no fingerprint: pass --ca or --fingerprint`);
      fingerprint = svc.fingerprint;
    }
    address = svc;
  }
  return await RpcClient.connect(address, { ca, fingerprint, insecureSkipVerify: insecure || undefined, name: "echostream-cli", timeoutMs, onError: () => {} });
}

/** Connects to `target` (see {@link connect}), runs `fn` with the client, and closes it whatever happens. */
async function withClient<T>(target: string | undefined, v: Values, fn: (client: RpcClient) => Promise<T>): Promise<T> {
  const client = await connect(target, v);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** `RpcClient.discover`, with "multicast cannot work here" reported as UNAVAILABLE (exit 114). */
function discoverOrUnavailable(name: string, timeoutMs: number): Promise<DiscoveredService[]> {
  return RpcClient.discover(name, { timeoutMs }).catch((e) => {
    throw new RpcError("UNAVAILABLE", `cannot look for "${name}" on the local network: ${(e as Error)?.message ?? e}`);
  });
}

/** One discovered service, for `discover`'s output. */
function serviceInfo(s: DiscoveredService): Record<string, unknown> {
  return { instance: s.instance, name: s.name, host: s.host, port: s.port, addresses: s.addresses, fingerprint: s.fingerprint, version: s.version, txt: s.txt };
}

async function cmdDiscover(args: string[], v: Values, io: CliIo): Promise<number> {
  const [name] = args;
  if (!name) throw new UsageError("discover: missing <name> (the service name servers advertise)");
  const timeoutMs = positiveInt(v.timeout, "timeout", 3000);
  const line = (type: string | undefined, s: DiscoveredService) =>
    v.json
      ? io.out(toJson(type ? { type, service: serviceInfo(s) } : serviceInfo(s)))
      : io.out(`${type ? `${type.padEnd(4)} ` : ""}${s.instance}  ${s.addresses.map((a) => (a.includes(":") ? `[${a}]` : a) + `:${s.port}`).join(" ")}  v${s.version ?? "?"}  fp ${s.fingerprint?.slice(0, 16) ?? "-"}…`);
  if (!v.watch) {
    const found = await discoverOrUnavailable(name, timeoutMs);
    for (const s of found) line(undefined, s);
    if (found.length === 0 && !v.json) io.err(`no server advertising "${name}" answered within ${timeoutMs} ms`);
    return found.length ? ExitCode.OK : 100 + errorCodeNumber("UNAVAILABLE");
  }
  // Live: every up (appeared or changed) and down, until --count events or Ctrl-C.
  const count = countOption(v);
  const browser = RpcClient.browse(name);
  if (!v.json) io.err(`watching for "${name}" (Ctrl-C to stop)`);
  let seen = 0;
  void io.interrupted.then(() => browser.close()); // ends the iteration below
  try {
    for await (const e of browser) {
      line(e.type, e.service);
      if (++seen >= count) break;
    }
  } finally {
    await browser.close();
  }
  return ExitCode.OK;
}

function describe(d: ServiceDescription, io: CliIo): void {
  io.out(`${d.server} (protocol ${d.protocol})`);
  const section = (title: string, list: ServiceDescription["handlers"]) => {
    io.out(`${title}:`);
    if (list.length === 0) io.out("  (none)");
    for (const m of list) {
      const flags = m.idempotent ? " [idempotent]" : "";
      io.out(`  ${m.name}${flags}${m.description ? `  ${m.description}` : ""}`);
      if (m.inputSchema) io.out(`    input: ${toJson(m.inputSchema)}`);
    }
  };
  section("handlers", d.handlers);
  section("listeners", d.listeners);
  section("streams", d.streams);
}

async function cmdList(args: string[], v: Values, io: CliIo): Promise<number> {
  return await withClient(args[0], v, async (client) => {
    const d = await client.request<ServiceDescription>(REFLECTION_METHOD, undefined, { timeoutMs: timeoutOption(v) }).catch((e) => {
      if (e instanceof RpcError && e.code === "NOT_FOUND") {
        throw new RpcError("NOT_FOUND", "the server does not answer reflection (turn it on with RpcServerBuilder.reflection())");
      }
      throw e;
    });
    if (v.json) io.out(toJson(d));
    else describe(d, io);
    return ExitCode.OK;
  });
}

async function cmdCall(args: string[], v: Values, io: CliIo): Promise<number> {
  const [target, method, body] = args;
  if (!method) throw new UsageError("call: missing <method>");
  if (args.length > 3) throw new UsageError(`call: unexpected argument ${JSON.stringify(args[3])}`);
  const input = body === undefined || body === "-" ? undefined : parseJson(body, "call input");
  const opts = { timeoutMs: timeoutOption(v), metadata: metadata(v.header) };
  return await withClient(target, v, async (client) => {
    if (body !== "-") {
      const r = await client.request(method, input, opts);
      io.out(toJson(r, !v.json));
      return ExitCode.OK;
    }
    // One call per stdin line, in order; a failed call prints its error and the run goes on.
    let worst: number = ExitCode.OK;
    let n = 0;
    for await (const line of io.lines()) {
      n++;
      if (line.trim() === "") continue;
      try {
        const r = await client.request(method, parseJson(line, `stdin line ${n}`), opts);
        io.out(toJson(r));
      } catch (e) {
        const code = exitCodeOf(e);
        if (code === ExitCode.USAGE) throw e;
        worst = worst === ExitCode.OK ? code : worst;
        io.out(errorJson(e));
      }
    }
    return worst;
  });
}

async function cmdEmit(args: string[], v: Values, io: CliIo): Promise<number> {
  const [target, topic, body] = args;
  if (!topic) throw new UsageError("emit: missing <topic>");
  const payload = body === undefined ? undefined : parseJson(body, "emit payload");
  return await withClient(target, v, async (client) => {
    await client.emit(topic, payload, { metadata: metadata(v.header) });
    if (v.json) io.out(toJson({ emitted: topic }));
    return ExitCode.OK;
  });
}

async function cmdListen(args: string[], v: Values, io: CliIo): Promise<number> {
  const [target, ...topics] = args;
  if (topics.length === 0) throw new UsageError("listen: name at least one <topic>");
  const count = countOption(v);
  const unique = [...new Set(topics)];
  const client = await connect(target, v);
  let seen = 0;
  let done!: () => void;
  const enough = new Promise<void>((r) => (done = r));
  for (const topic of unique) {
    client.handle(listener(topic, (ctx, payload: unknown) => {
      if (seen >= count) return;
      seen++;
      io.out(toJson({ topic, payload, metadata: ctx.metadata, receivedAt: new Date().toISOString() }));
      if (seen >= count) done();
    }));
  }
  if (!v.json) io.err(`listening to ${unique.join(", ")} on ${target} (Ctrl-C to stop)`);
  const lost = client.closed.then(() => "closed" as const);
  const why = await Promise.race([enough.then(() => "count" as const), io.interrupted.then(() => "interrupted" as const), lost]);
  await client.close();
  if (why === "closed") throw new RpcError("UNAVAILABLE", "the connection closed");
  return ExitCode.OK;
}

async function cmdClock(args: string[], v: Values, io: CliIo): Promise<number> {
  const count = positiveInt(v.count, "count", 5);
  const interval = positiveInt(v.interval, "interval", 1000);
  return await withClient(args[0], v, async (client) => {
    await client.clock.ready;
    for (let i = 0; i < count; i++) {
      if (i > 0) {
        const stop = await Promise.race([new Promise((r) => setTimeout(() => r(false), interval)), io.interrupted.then(() => true)]);
        if (stop) break;
      }
      const s = client.clock.stats();
      if (v.json) {
        io.out(toJson({ offsetMs: s.offsetMs, uncertaintyMs: s.uncertaintyMs, rttMs: s.rttMs, skewPpm: s.skewPpm, samples: s.samples, transport: s.transport }));
      } else {
        io.out(
          `offset ${s.offsetMs.toFixed(3)} ms ± ${s.uncertaintyMs.toFixed(3)}  rtt ${s.rttMs.toFixed(3)} ms  skew ${s.skewPpm.toFixed(2)} ppm  ` +
            `(${s.samples} samples via ${s.transport})`,
        );
      }
    }
    return ExitCode.OK;
  });
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });
const ENCODER = new TextEncoder();

/** One received frame as a line: its UTF-8 text, or with `--json` `{ "text" }` / `{ "$base64" }`. */
function frameLine(f: Uint8Array, json: boolean | undefined): string {
  let text: string | undefined;
  try {
    text = UTF8.decode(f);
  } catch { /* not UTF-8 */ }
  if (!json && text !== undefined && !text.includes("\n")) return text;
  return text !== undefined ? toJson({ text }) : toJson(f);
}

async function cmdStream(args: string[], v: Values, io: CliIo): Promise<number> {
  const [mode, target, name] = args;
  if (mode !== "send" && mode !== "recv") throw new UsageError(`stream: expected "send" or "recv", received ${JSON.stringify(mode ?? "")}`);
  if (!name) throw new UsageError(`stream ${mode}: missing <name>`);
  const count = countOption(v);
  return await withClient(target, v, async (client) => {
    const s = await client.createStream(name).build();
    let got = 0;
    // Everything the handler sends, printed as it comes, until it ends its side (or --count).
    const printing = (async () => {
      for await (const f of s) {
        io.out(frameLine(f, v.json));
        if (++got >= count) return;
      }
    })();
    if (mode === "send") {
      for await (const line of io.lines()) await s.send(ENCODER.encode(line));
    }
    await s.end();
    const stop = await Promise.race([printing.then(() => false), io.interrupted.then(() => true)]);
    if (stop || got >= count) await s.abort().catch(() => {});
    return ExitCode.OK;
  });
}

/** Nearest-rank percentile of sorted `xs`. */
function percentile(xs: number[], q: number): number {
  return xs.length === 0 ? NaN : xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))];
}

async function cmdBench(args: string[], v: Values, io: CliIo): Promise<number> {
  const [target, method, body] = args;
  if (!method) throw new UsageError("bench: missing <method>");
  const input = body === undefined ? undefined : parseJson(body, "bench input");
  const total = positiveInt(v.count, "count", 1000);
  const concurrency = Math.min(total, positiveInt(v.concurrency, "concurrency", 1));
  const opts = { timeoutMs: timeoutOption(v), metadata: metadata(v.header) };
  return await withClient(target, v, async (client) => {
    await client.request(method, input, opts); // warm-up, and fail fast on a wrong method
    const lat: number[] = [];
    let next = 0, failed = 0, firstError: unknown;
    let interrupted = false;
    void io.interrupted.then(() => (interrupted = true));
    const progress = io.progress;
    const t0 = performance.now();
    let lastDraw = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < total && !interrupted) {
        next++;
        const t = performance.now();
        try {
          await client.request(method, input, opts);
          lat.push((performance.now() - t) * 1000);
        } catch (e) {
          failed++;
          firstError ??= e;
        }
        const now = performance.now();
        if (progress && now - lastDraw > 100) {
          lastDraw = now;
          progress(lat.length + failed, total);
        }
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    if (progress) progress(lat.length + failed, total, true);
    lat.sort((a, b) => a - b);
    const r = {
      method,
      calls: lat.length,
      failed,
      concurrency,
      seconds: Math.round(seconds * 1000) / 1000,
      reqPerSec: Math.round(lat.length / seconds),
      latencyUs: { p50: percentile(lat, 0.5), p90: percentile(lat, 0.9), p99: percentile(lat, 0.99), max: lat[lat.length - 1] ?? NaN },
    };
    if (v.json) io.out(toJson(r));
    else {
      const us = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${x.toFixed(0)} µs`);
      io.out(`${r.calls} calls of ${method} (${concurrency} in flight) in ${r.seconds} s: ${r.reqPerSec} req/s`);
      io.out(`latency p50 ${us(r.latencyUs.p50)}  p90 ${us(r.latencyUs.p90)}  p99 ${us(r.latencyUs.p99)}  max ${us(r.latencyUs.max)}`);
      if (failed) io.out(`${failed} failed; first: ${(firstError as Error)?.message ?? firstError}`);
    }
    return failed ? exitCodeOf(firstError) : ExitCode.OK; // the first failure's code
  });
}

async function cmdCert(v: Values, io: CliIo): Promise<number> {
  const dir = v.out ?? ".";
  const hosts = v.hosts ? v.hosts.split(",").map((h) => h.trim()).filter(Boolean) : undefined;
  const c = await createDevCertificates(hosts ? { hosts } : {});
  await mkdir(dir, { recursive: true });
  const files = { ca: join(dir, "ca.pem"), caKey: join(dir, "ca-key.pem"), cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
  await writeFile(files.ca, c.ca);
  await writeFile(files.caKey, c.caKey, { mode: 0o600 });
  await writeFile(files.cert, c.cert);
  await writeFile(files.key, c.key, { mode: 0o600 });
  if (v.json) io.out(toJson({ ...files, fingerprint: c.fingerprint, caFingerprint: c.caFingerprint, hosts: c.hosts }));
  else {
    io.out(`wrote ${files.ca}, ${files.caKey}, ${files.cert}, ${files.key}`);
    io.out(`hosts ${c.hosts.join(", ")}; leaf fingerprint ${c.fingerprint}`);
  }
  return ExitCode.OK;
}

async function cmdServe(v: Values, io: CliIo): Promise<number> {
  if (!v.echo) throw new UsageError("serve: only --echo is supported (a throwaway server to try things against)");
  const builder = RpcServer.builder()
    .name("echostream-echo")
    .bind(v.bind ?? "127.0.0.1:0")
    .log(() => {})
    .onError(() => {})
    .handler(handler("echo", (_ctx, input: unknown) => input, { description: "Answers its input", idempotent: true }))
    .handler(handler("time", () => Date.now(), { description: "The server's clock (ms since the epoch)", idempotent: true }))
    .handler(handler("fail", (_ctx, code: unknown) => {
      throw new RpcError(typeof code === "string" && code in ErrorCode ? code as ErrorCode : "FAILED_PRECONDITION", "failed on request");
    }, { description: "Fails with the error code it is given (default FAILED_PRECONDITION)" }))
    .listener(listener("echo", (ctx, payload: unknown) => {
      // Every event on "echo" goes to every connected client as "echoed".
      void server.broadcast("echoed", { from: ctx.peer.name, payload });
    }, { description: "Re-broadcast to every client as \"echoed\"" }))
    .streamHandler(streamHandler("echo", async (_ctx, s: EchoStream) => {
      for await (const f of s) await s.send(f);
    }, { description: "Sends back every frame" }))
    .streamHandler(streamHandler("ticks", async (ctx, s: EchoStream) => {
      // 50 frames of JSON text, 100 ms apart, whatever the client sends; stops if it goes away.
      for (let i = 1; i <= 50 && !ctx.signal.aborted; i++) {
        await s.send(new TextEncoder().encode(JSON.stringify({ tick: i, at: Date.now() })));
        await new Promise((r) => setTimeout(r, 100));
      }
      await s.end();
    }, { description: "50 JSON frames {tick, at}, 100 ms apart" }))
    .reflection();
  if (v.advertise) builder.enableDiscovery(v.advertise);
  const server = builder.build();
  await server.start();
  const info: Record<string, unknown> = { address: server.address, fingerprint: server.trust.fingerprint };
  if (v.advertise) info.advertised = server.discovery?.instanceName ?? v.advertise;
  if (server.trust.ca) {
    const dir = v.out ?? ".";
    await mkdir(dir, { recursive: true });
    const caFile = join(dir, "echostream-ca.pem");
    await writeFile(caFile, server.trust.ca);
    info.ca = caFile;
  }
  if (v.json) io.out(toJson(info));
  else {
    io.out(`echo server on ${info.address}; CA in ${info.ca} (fingerprint ${info.fingerprint})`);
    io.out(`try: echostream call ${info.address} echo '{"hello":1}' --ca ${info.ca}`);
  }
  await io.interrupted;
  await server.close({ graceMs: 500 });
  return ExitCode.OK;
}

/** Every command, by name. */
const COMMANDS: Record<string, (args: string[], v: Values, io: CliIo) => Promise<number>> = {
  list: cmdList,
  call: cmdCall,
  emit: cmdEmit,
  listen: cmdListen,
  clock: cmdClock,
  stream: cmdStream,
  bench: cmdBench,
  discover: cmdDiscover,
  cert: (_args, v, io) => cmdCert(v, io),
  serve: (_args, v, io) => cmdServe(v, io),
};

/**
 * Runs one command line (`argv` without the runtime and script) and resolves with its exit
 * code; it never throws and never exits the process.
 */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    io.err(`echostream: ${(e as Error).message}`);
    io.err("run `echostream --help` for usage");
    return ExitCode.USAGE;
  }
  const v = parsed.values as Values;
  const [command, ...args] = parsed.positionals;
  if (v.help || !command) {
    (command || v.help ? io.out : io.err)(USAGE);
    return v.help ? ExitCode.OK : ExitCode.USAGE;
  }
  try {
    const run = COMMANDS[command];
    if (!run) throw new UsageError(`unknown command ${JSON.stringify(command)} (${Object.keys(COMMANDS).join(", ")})`);
    return await run(args, v, io);
  } catch (e) {
    const code = exitCodeOf(e);
    if (v.json && code !== ExitCode.USAGE) {
      io.out(errorJson(e));
    }
    io.err(`echostream ${command}: ${e instanceof RpcError ? `${e.code}: ` : ""}${(e as Error)?.message ?? e}`);
    if (code === ExitCode.USAGE) io.err("run `echostream --help` for usage");
    return code;
  }
}

/** Standard output, standard error, standard input lines, and SIGINT/SIGTERM as `interrupted`. */
export function processIo(): CliIo {
  const interrupted = new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  return {
    out: (line) => void process.stdout.write(line + "\n"),
    err: (line) => void process.stderr.write(line + "\n"),
    lines: () => createInterface({ input: process.stdin, crlfDelay: Infinity }),
    interrupted,
    // A progress bar on stderr, redrawn in place, only when stderr is a terminal.
    progress: process.stderr.isTTY ? drawProgress : undefined,
  };
}

function drawProgress(done: number, total: number, final = false): void {
  const width = 30;
  const filled = Math.round((width * done) / Math.max(1, total));
  process.stderr.write(`\r[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}${final ? "\n" : ""}`);
}

/**
 * Bun prints node:quic's "ExperimentalWarning: quic is an experimental feature" on every run; a
 * command line's stderr is for its own diagnostics, so that one warning (and only it) is dropped.
 */
function quietQuicWarning(): void {
  const emit = process.emitWarning.bind(process) as (...a: unknown[]) => void;
  (process as { emitWarning: (...a: unknown[]) => void }).emitWarning = (warning: unknown, ...rest: unknown[]) => {
    const text = typeof warning === "string" ? warning : (warning as Error)?.message ?? "";
    const type = typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: string })?.type ?? (warning as Error)?.name;
    if (type === "ExperimentalWarning" && /\bquic\b/i.test(text)) return;
    emit(warning, ...rest);
  };
}

/**
 * What the `echostream` binary does: runs {@link main} on `argv` with the process's standard
 * streams, lets standard output drain, then exits the process with the command's code (a
 * listener or timer of the runtime must not hold it open). `bin/echostream.mjs` calls this on
 * Node (from the `dist/node/cli.mjs` build) and on Bun; `deno run` runs this module directly.
 *
 * @param argv The arguments after the runtime and the script.
 * @returns Never: the process exits.
 */
export async function runCli(argv: string[]): Promise<never> {
  quietQuicWarning();
  const code = await main(argv);
  return await new Promise<never>(() => process.stdout.write("", () => process.exit(code)));
}

if (import.meta.main) await runCli(process.argv.slice(2));
