// A client the fault tests SIGKILL (child process). It sets up the state of `mode`, prints
// {"event":"ready"} and waits to be killed. Idle timeout 2 s: a killed client sends nothing,
// so the server finds out by the negotiated QUIC idle timeout (the smaller of the two sides').
//   stream     a reliable echo stream mid-transfer, a time-synced datagram stream sending
//   request    calls in flight: 5 × sleep(60 s), 5 × sleep(60 s) with a 60 s deadline
//   hello      QUIC up, half a HELLO frame written on the control stream, then nothing
//   handshake  16 connects started at once; "ready" as soon as the first one is up
//
//   _fault_victim.ts <mode> <port> <caFile>

import { readFileSync } from "node:fs";
import { RpcClient } from "../../src/rpc/client.ts";
import { createFrameCodec } from "../../src/protocol/codec.ts";
import { FrameType } from "../../src/protocol/frame.ts";
import { ALPN, PROTOCOL_VERSION } from "../../src/protocol/version.ts";
import { defaultTransport } from "../../src/transport/select.ts";
import { args, emit, sleep } from "./_soak_common.ts";

const [mode, port, caFile] = args();
const ca = readFileSync(caFile, "utf8");
const addr = `127.0.0.1:${port}`;
const connect = () => RpcClient.connect(addr, { ca, idleTimeoutMs: 2000, timeoutMs: 10_000 });

if (mode === "stream") {
  const client = await connect();
  const s = await client.createStream("echo");
  await s.send(new Uint8Array(32 * 1024));
  await s.recv();
  const synced = await client.createStream("sync").withTimeSync().unreliable().build();
  (async () => {
    for (;;) {
      await synced.sendWithTimestamp(new Uint8Array(100), synced.now());
      await s.send(new Uint8Array(4096));
      await sleep(10);
    }
  })().catch(() => {});
  await sleep(200);
  emit("ready");
} else if (mode === "request") {
  const client = await connect();
  for (let i = 0; i < 5; i++) {
    client.request("sleep", 60_000).catch(() => {});
    client.request("sleep", 60_000, { timeoutMs: 60_000 }).catch(() => {});
  }
  await client.request("echo", 1); // the calls above went out before this answer came back
  emit("ready");
} else if (mode === "hello") {
  const t = await defaultTransport();
  const conn = await t.connect({ host: "127.0.0.1", port: Number(port), alpn: ALPN, tls: { ca }, idleTimeoutMs: 2000 });
  const s = await conn.openBidi();
  const hello = createFrameCodec().encode({ type: FrameType.HELLO, flags: 0, version: PROTOCOL_VERSION, name: "victim", payload: new Uint8Array(64) });
  await s.write(hello.subarray(0, hello.length >> 1));
  await sleep(200);
  emit("ready");
} else if (mode === "handshake") {
  // "ready" at the first connection up: the others are somewhere in their handshakes then.
  const all = Array.from({ length: 16 }, () => connect());
  await Promise.any(all);
  emit("ready");
} else {
  throw new Error(`unknown mode ${mode}`);
}
await new Promise(() => {}); // wait for SIGKILL
