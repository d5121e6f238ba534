// Stream credit (QUIC MAX_STREAMS) through the transport adapters only, no RPC. Runs under Bun
// (`bun stream_credit_repro.ts …`) or Deno (`deno run --unstable-net -A stream_credit_repro.ts …`),
// server and client in one process; prints one JSON line. Kept as the minimal reproduction of
// the stack behaviour docs/TRANSPORT.md describes ("Stream limits and credit").
//
//   hold <limit> <held> <churn>   The server allows <limit> concurrent streams. The client holds
//       <held> streams open (a byte each way, no FIN), then opens <churn> streams one after another,
//       each closed cleanly both ways. {completed}: churn streams that finished (5 s each at most).
//       Raw stacks return slots in batches: Bun once limit/2 streams closed, quinn once limit/8,
//       so with held > limit/2 (Bun) or > 7/8 limit (Deno) churn stops after limit - held streams.
//   gate <limit> <opened>         The client opens <opened> streams at once (byte + FIN, read to
//       FIN). {maxServed}: most streams the server's handler had at once; {completed}.
//   wait <limit> [aborts] [keep]  The client fills every stream slot the server's stack grants
//       (2 x limit with our adapters), then opens one more with a signal aborted after 100 ms
//       (<aborts> times, default 1); then frees all slots but <keep> (default 0) and opens again;
//       {aborted}: the error code; {reopened}, and
//       {seen}: streams the server saw (the aborted one must not reach it).
//   close <pattern> <limit> <waves> <perWave>   Waves of streams closed one way (see PATTERNS):
//       {completed} per wave; a wave short of <perWave> stalled (slots never came back).
//   suite                         The checks stream_credit.test.ts makes, in one run.

import { defaultTransport } from "../../src/transport/mod.ts";
import type { BidiStream, Connection, Listener } from "../../src/transport/mod.ts";
import { createDevCertificates } from "../../src/security/dev_cert.ts";

const D = (globalThis as { Deno?: { args: string[]; exit(c: number): never } }).Deno;
const args = D?.args ?? (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const exit = (c: number) => D ? D.exit(c) : (globalThis as unknown as { process: { exit(c: number): never } }).process.exit(c);
const ALPN = "echostream/1";
const ONE = new Uint8Array([42]);
const t = await defaultTransport();
const certs = await createDevCertificates({ hosts: ["localhost", "127.0.0.1"] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** `p`, or `fallback` after `ms`. */
function within<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms)))]).finally(() => clearTimeout(timer));
}

async function drain(s: BidiStream): Promise<void> {
  for await (const _ of s) { /* to FIN */ }
}
/** Reads one chunk, then leaves the iteration. */
async function firstChunk(s: BidiStream): Promise<void> {
  for await (const _ of s) return;
}
async function reply(s: BidiStream): Promise<void> {
  await s.write(ONE);
  await s.end();
}

/** How each side closes a stream: [client, server]. */
const PATTERNS: Record<string, [(s: BidiStream) => Promise<void>, (s: BidiStream) => Promise<void>]> = {
  // write+FIN, read to FIN / read to FIN, write, FIN
  clean: [async (s) => (await s.end(), await drain(s)), async (s) => (await drain(s), await reply(s))],
  // as clean, but the server never reads (the client's FIN stays unread)
  "server-unread": [async (s) => (await s.end(), await drain(s)), reply],
  // no client FIN; the server reads one chunk, replies, then stops the client's sending
  "server-stop": [drain, async (s) => (await firstChunk(s), await reply(s), s.stopSending(0))],
  // the client resets after reading the reply; the server reads one chunk and leaves the iteration
  "client-reset": [async (s) => (await drain(s), s.reset(0)), async (s) => (await firstChunk(s), await reply(s))],
  // the client stops the server's sending after one chunk
  "client-stop": [async (s) => (await s.end(), await firstChunk(s), s.stopSending(0)), async (s) => (await drain(s), await reply(s))],
};

async function pair(limit: number, serve: (s: BidiStream) => void): Promise<{ l: Listener; conn: Connection }> {
  const l = await t.listen({ host: "127.0.0.1", port: 0, alpn: ALPN, tls: certs, maxBidiStreams: limit }, (c) => c.handle({ bidi: serve }));
  const conn = await t.connect({ host: "127.0.0.1", port: l.address.port, alpn: ALPN, tls: { ca: certs.ca } });
  return { l, conn };
}

async function hold(limit: number, held: number, churn: number) {
  const { l, conn } = await pair(limit, (s) => void (async () => (await s.write(ONE), await drain(s), await s.end()))().catch(() => {}));
  const holders = await Promise.all(Array.from({ length: held }, async () => {
    const s = await conn.openBidi();
    await s.write(ONE);
    await s[Symbol.asyncIterator]().next(); // the server's byte: open on both sides
    return s;
  }));
  let completed = 0;
  for (; completed < churn; completed++) {
    const one = (async () => {
      const s = await conn.openBidi();
      await s.write(ONE);
      await PATTERNS.clean[0](s);
      return true;
    })();
    if (!(await within(one, 5000, false))) break;
  }
  for (const s of holders) await s.end().catch(() => {});
  return { l, conn, result: { held, churn, completed } };
}

async function gate(limit: number, opened: number) {
  let served = 0;
  let maxServed = 0;
  let delivered = 0;
  const { l, conn } = await pair(limit, (s) => {
    served++;
    delivered++;
    maxServed = Math.max(maxServed, served);
    void (async () => {
      await drain(s);
      // Hold the stream until `limit` were delivered, so a missing gate shows as maxServed > limit.
      for (let i = 0; i < 100 && delivered < Math.min(limit, opened); i++) await sleep(10);
      served--;
      await reply(s);
    })().catch(() => {});
  });
  const one = async () => {
    const s = await conn.openBidi();
    await s.write(ONE);
    await PATTERNS.clean[0](s);
  };
  let completed = 0;
  await within(Promise.all(Array.from({ length: opened }, () => one().then(() => void completed++))), 10_000, undefined);
  return { l, conn, result: { limit, opened, maxServed, completed } };
}

async function wait(limit: number, aborts = 1, keep = 0) {
  let seen = 0;
  const { l, conn } = await pair(limit, (s) => void (seen++, drain(s).then(() => reply(s)).catch(() => {})));
  // Fill every slot the stack grants: open until an open does not finish within 300 ms.
  const held: BidiStream[] = [];
  for (let i = 0; i < 8 * limit; i++) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 300);
    const s = await conn.openBidi({ signal: ac.signal }).catch(() => undefined);
    clearTimeout(timer);
    if (!s) break;
    await s.write(ONE);
    held.push(s);
  }
  let aborted = "";
  for (let i = 0; i < aborts; i++) {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    aborted = await within(conn.openBidi({ signal: ac.signal }).then(() => "opened", (e) => String(e?.code ?? e)), 5000, "no answer in 5 s");
  }
  for (const s of held.slice(keep)) await PATTERNS.clean[0](s).catch(() => {});
  const reopened = await within(conn.openBidi().then(async (s) => (await s.write(ONE), await PATTERNS.clean[0](s), "ok"), (e) => String(e)), 5000, "no answer in 5 s");
  await sleep(200);
  return { l, conn, result: { limit, held: held.length, aborted, reopened, seen } };
}

async function close(pattern: string, limit: number, waves: number, perWave: number) {
  const [client, server] = PATTERNS[pattern];
  const { l, conn } = await pair(limit, (s) => void server(s).catch(() => {}));
  const completed: number[] = [];
  for (let w = 0; w < waves && completed.at(-1) !== 0; w++) {
    let done = 0;
    const one = async () => {
      const s = await conn.openBidi();
      await s.write(ONE);
      await client(s);
      done++;
    };
    await within(Promise.all(Array.from({ length: perWave }, one)).catch(() => {}), 5000, undefined);
    completed.push(done);
    if (done < perWave) break; // stalled: later waves would only queue behind it
  }
  return { l, conn, result: { pattern, limit, perWave, completed } };
}

type Run = { l: Listener; conn: Connection; result: Record<string, unknown> };
async function finish({ l, conn, result }: Run): Promise<Record<string, unknown>> {
  await within(conn.close(0, "done"), 1000, undefined);
  await within(l.close(), 1000, undefined);
  return result;
}

const [mode, ...rest] = args;
const n = rest.map(Number);
let out: Record<string, unknown> | undefined;
if (mode === "hold") out = await finish(await hold(n[0], n[1], n[2]));
else if (mode === "gate") out = await finish(await gate(n[0], n[1]));
else if (mode === "wait") out = await finish(await wait(n[0], n[1], n[2]));
else if (mode === "close") out = await finish(await close(rest[0], n[1], n[2], n[3]));
else if (mode === "suite") {
  // What tests/transport/stream_credit.test.ts checks, in one process.
  out = {
    hold: await finish(await hold(64, 62, 200)),
    gate: await finish(await gate(8, 16)),
    wait: await finish(await wait(4, 4, 1)),
    clean: await finish(await close("clean", 64, 3, 60)),
    "client-reset": await finish(await close("client-reset", 64, 3, 60)),
    "client-stop": await finish(await close("client-stop", 64, 3, 60)),
  };
}
if (!out) {
  console.error("usage: stream_credit_repro.ts hold|gate|wait|close|suite …");
  exit(2);
}
console.log(JSON.stringify({ runtime: t.name, mode, ...out }));
exit(0);
