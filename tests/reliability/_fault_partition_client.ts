// Partition-test clients (child process, in the namespace across the veth from the server).
// "steady": idle timeout 10 s, longer than the partition: it must ride it out. "fragile": idle
// timeout 2 s, with reconnect: it must be declared dead during the partition and come back.
// Prints {"event":"ready"}; then on stdin "partitioned" it starts calls into the partition, and
// on "healed" it waits for both to work again and prints {"event":"result", …}.
//
//   _fault_partition_client.ts <addr> <caFile>

import { readFileSync } from "node:fs";
import process from "node:process";
import { RpcClient } from "../../src/rpc/client.ts";
import { args, clientCounts, commands, emit, sleep } from "./_soak_common.ts";

const [addr, caFile] = args();
const ca = readFileSync(caFile, "utf8");
const DEADLINE = 1000;
const base = { ca, serverName: "localhost", timeoutMs: 5000 };
const steady = await RpcClient.connect(addr, { ...base, name: "steady", idleTimeoutMs: 10_000 });
let fragileDeadAt: number | undefined;
const fragile = await RpcClient.connect(addr, { ...base, name: "fragile", idleTimeoutMs: 2000, reconnect: { minDelayMs: 100, maxDelayMs: 500 } });
await steady.clock.ready;
await fragile.clock.ready;
const watchFragile = () => fragile.peer.closed.then(() => (fragileDeadAt ??= performance.now()));
watchFragile();

// The clock starts before the call is made: a deadline counts from inside `request()`, so a start
// taken after it returned (as this once did) made a call that failed exactly on time look up to
// a scheduling hiccup early (998.8 ms for a 1,000 ms deadline, seen under load).
const outcome = (call: () => Promise<unknown>) => {
  const t = performance.now();
  const p = call();
  return p.then((value) => ({ ok: true, value, ms: performance.now() - t }), (e) => ({ ok: false, code: (e as { code?: string }).code, message: String(e), ms: performance.now() - t }));
};

let partitionedAt = 0;
let deadlineCalls: Promise<unknown>[] = [];
let noDeadline: Promise<unknown> | undefined;
let fragileCall: Promise<unknown> | undefined;
let emitted = 0;
let emitFailures = 0;

emit("ready");
commands(async (line) => {
  if (line === "partitioned") {
    partitionedAt = performance.now();
    // Calls with deadlines, one after another: each must fail at its deadline.
    deadlineCalls = [(async () => {
      const out = [];
      for (let i = 0; i < 3; i++) out.push(await outcome(() => steady.request("echo", i, { timeoutMs: DEADLINE })));
      return out;
    })()];
    // A call without a deadline on the steady client: answered once the network is back.
    noDeadline = outcome(() => steady.request("echo", "across"));
    // Events during the partition: retransmitted afterwards, all of them, in order.
    for (let i = 0; i < 20; i++) steady.emit("ev", i).then(() => emitted++, () => emitFailures++);
    // A call without a deadline on the fragile client: it fails when its connection is declared dead.
    fragileCall = outcome(() => fragile.request("echo", "lost"));
    emit("started");
  } else if (line === "healed") {
    const healedAt = performance.now();
    const deadline = await Promise.all(deadlineCalls);
    const across = await noDeadline;
    const lost = await fragileCall;
    for (let i = 0; i < 200 && !fragile.connected; i++) await sleep(50);
    const afterSteady = await outcome(() => steady.request("echo", "steady after", { timeoutMs: 5000 }));
    const afterFragile = await outcome(() => fragile.request("echo", "fragile after", { timeoutMs: 5000 }));
    emit("result", {
      deadline: deadline[0],
      deadlineMs: DEADLINE,
      across,
      lost,
      emitted,
      emitFailures,
      fragileDeadAfterMs: fragileDeadAt === undefined ? null : fragileDeadAt - partitionedAt,
      partitionMs: healedAt - partitionedAt,
      steady: { connected: steady.connected, reconnects: steady.stats().reconnects, counts: clientCounts(steady), after: afterSteady },
      fragile: { connected: fragile.connected, reconnects: fragile.stats().reconnects, counts: clientCounts(fragile), after: afterFragile },
    });
  } else if (line === "close") {
    await Promise.all([steady.close(), fragile.close()]);
    emit("closed");
    process.exit(0);
  }
});
