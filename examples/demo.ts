// `npm run demo`: what EchoStream can do so far, on loopback: the WASM core's self-check, a
// frame codec round trip, frames over real QUIC + TLS 1.3 (0-RTT included), the RPC layer, clock
// sync and time-synced audio, discovery, access control with rate limits, reflection and the CLI,
// the use-case examples, and two instances of a cluster over NATS.
// Runs on Bun (npm run demo) and on Deno (deno run --unstable-net -A examples/demo.ts).

import { ALPN, createFrameCodec, DecodeError, type Frame, FrameType, PROTOCOL_VERSION } from "../src/protocol/mod.ts";
import { createDevCertificates, formatFingerprint } from "../src/security/mod.ts";
import { defaultTransport } from "../src/transport/mod.ts";
import { runClient, startServer } from "./quickstart.ts";
import { callbackExample } from "./callback.ts";
import { chatExample } from "./chat_broadcast.ts";
import { secureIotExample } from "./secure_iot.ts";
import { loggingExample } from "./logging.ts";
import { WASM_SOURCE_HASH } from "../wasm/generated.ts";
import { startRelay } from "../src/testing/mod.ts";
import { type ReceiverReport, startReceiver } from "./audio_sync/receiver.ts";
import { sendAudio } from "./audio_sync/sender.ts";
import { DiscoveryError, type EchoStream, handler, REFLECTION_METHOD, RpcClient, RpcServer, type ServiceDescription, streamHandler } from "../mod.ts";
import { ABI_VERSION, wasmCore } from "../wasm/mod.ts";
import { main as cliMain } from "../src/cli/main.ts";
import { iotExample } from "./iot/main.ts";
import { gameExample } from "./game/main.ts";
import { remoteDesktopExample } from "./remote_desktop/main.ts";
import { clusterExample } from "./cluster/main.ts";
import { mkdtemp, writeFile } from "node:fs/promises";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";

const runtime = "Deno" in globalThis ? "Deno" : "Bun" in globalThis ? "Bun" : "Node";
const hex = (b: Uint8Array, max = 40) =>
  Array.from(b.subarray(0, max), (x) => x.toString(16).padStart(2, "0")).join("") + (b.length > max ? "…" : "");

console.log(`EchoStream demo on ${runtime}, protocol v${PROTOCOL_VERSION}\n`);

// 1. WASM self-check: the inlined module compiles, speaks our ABI and matches its varint vectors.
const t0 = performance.now();
const core = wasmCore();
const loadMs = performance.now() - t0;
const rfc = core.varintDecode(new Uint8Array([0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c]));
const ok = rfc?.value === 151288809941952652n;
console.log(`WASM core: ABI ${ABI_VERSION}, source sha256 ${WASM_SOURCE_HASH.slice(0, 16)}…, loaded in ${loadMs.toFixed(1)} ms`);
console.log(`  RFC 9000 varint sample c2197c5eff14e88c -> ${rfc?.value} ${ok ? "(ok)" : "(WRONG)"}`);
if (!ok) throw new Error("WASM self-check failed");

// 2. One frame of every type, through the WASM core and the TS reference: identical bytes.
const wasm = createFrameCodec({ impl: "wasm" });
const ts = createFrameCodec({ impl: "ts" });
const payload = new TextEncoder().encode("hello");
const frames: Frame[] = [
  { type: FrameType.HELLO, flags: 0, version: PROTOCOL_VERSION, name: "demo-client", payload: new Uint8Array([0x80]) },
  { type: FrameType.WELCOME, flags: 0, version: PROTOCOL_VERSION, name: "demo-server", payload: new Uint8Array([0x80]) },
  { type: FrameType.REQUEST, flags: 1, method: "audio.play", deadlineMs: 2000, metadata: { trace: "t-1" }, payload },
  { type: FrameType.RESPONSE, flags: 1, metadata: {}, payload },
  { type: FrameType.ERROR, flags: 0, code: 5, message: "method \"audio.pause\" not found", payload: new Uint8Array() },
  { type: FrameType.EVENT, flags: 0, topic: "audio.stopped", metadata: {}, payload: new Uint8Array([0xc0]) },
  { type: FrameType.OPEN, flags: 0, name: "audio.stream", metadata: { codec: "opus" }, payload: new Uint8Array([0x80]) },
  { type: FrameType.DATA, flags: 1, seq: 2 ** 32 + 1, timestamp: Date.now(), payload },
  { type: FrameType.DATA, flags: 1, streamId: 3, seq: 7, payload },
  { type: FrameType.PING, flags: 0, seq: 1, t1: performance.now() },
  { type: FrameType.PONG, flags: 0, seq: 1, t1: 1, t2: 2, t3: 3 },
  { type: FrameType.GOAWAY, flags: 0, code: 0, reason: "demo over", payload: new Uint8Array() },
];
const names = Object.fromEntries(Object.entries(FrameType).map(([k, v]) => [v, k]));
console.log("\nframe round trips (WASM bytes == TS bytes, decode(encode(f)) == f):");
for (const f of frames) {
  const a = wasm.encode(f);
  const b = ts.encode(f);
  const same = a.length === b.length && a.every((x, i) => x === b[i]);
  const back = wasm.decode(a);
  const again = ts.encode(back);
  const round = again.length === a.length && again.every((x, i) => x === a[i]);
  if (!same || !round) throw new Error(`round trip failed for ${names[f.type]}`);
  console.log(`  ${names[f.type].padEnd(8)} ${String(a.length).padStart(3)} B  ${hex(a)}`);
}

// 3. A byte stream cut at awkward points: every frame comes out once, in order.
const stream = wasm.encodeMany(frames);
const splitter = wasm.splitter();
let got = 0;
for (let i = 0; i < stream.length; i += 7) got += splitter.push(stream.subarray(i, i + 7)).length;
splitter.end();
console.log(`\nsplitter: ${stream.length} bytes in 7-byte chunks -> ${got} of ${frames.length} frames`);
if (got !== frames.length) throw new Error("splitter lost frames");

// 4. Bad input gets a clear error, and the decoder carries on.
for (const bad of [new Uint8Array([0x3f, 0, 0]), new Uint8Array([0x09, 0x01, 0xbf, 0xff, 0xff, 0xff])]) {
  try {
    wasm.decode(bad);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    console.log(`malformed ${hex(bad)} -> DecodeError ${e.code}: ${e.message}`);
  }
}
console.log(`after errors, decode still works: ${names[wasm.decode(wasm.encode(frames[9])).type]}`);

// 5. Real QUIC + TLS 1.3 on loopback with this runtime's own stack: development certificates
//    made on the fly, frames over a stream, a datagram, and a close code.
const transport = await defaultTransport().catch((e) => {
  console.log(`\nQUIC: skipped on ${runtime}: ${e.message}`);
  return undefined;
});
if (transport) {
  const certs = await createDevCertificates();
  console.log(`\nQUIC (${transport.name}): dev CA fingerprint ${formatFingerprint(certs.caFingerprint).slice(0, 23)}…, ` +
    `leaf pin ${formatFingerprint(certs.fingerprint).slice(0, 23)}…`);
  const codec = createFrameCodec();
  const listener = await transport.listen({ host: "127.0.0.1", port: 0, alpn: ALPN, tls: certs, earlyData: true }, (conn) => {
    conn.handle({
      bidi: async (s) => {
        const splitter = codec.splitter();
        for await (const chunk of s) {
          for (const f of splitter.push(chunk)) {
            if (f.type === FrameType.REQUEST) {
              await s.write(codec.encode({ type: FrameType.RESPONSE, flags: 1, metadata: {}, payload: f.payload.slice().reverse() }));
            }
          }
        }
        await s.end();
      },
      datagram: (d) => void conn.sendDatagram(d),
    });
  });
  const t1 = performance.now();
  const conn = await transport.connect({ host: "127.0.0.1", port: listener.address.port, alpn: ALPN, tls: { ca: certs.ca } });
  console.log(`  connected to 127.0.0.1:${listener.address.port} (ALPN ${conn.alpn}) in ${(performance.now() - t1).toFixed(1)} ms`);
  const s = await conn.openBidi();
  await s.write(codec.encode({ type: FrameType.REQUEST, flags: 1, method: "demo.reverse", deadlineMs: 1000, metadata: {}, payload: new TextEncoder().encode("olleh") }));
  await s.end();
  const splitter = codec.splitter();
  for await (const chunk of s) {
    for (const f of splitter.push(chunk)) {
      if (f.type === FrameType.RESPONSE) console.log(`  REQUEST demo.reverse("olleh") -> RESPONSE "${new TextDecoder().decode(f.payload)}"`);
    }
  }
  const echoed = new Promise<Uint8Array>((r) => conn.handle({ datagram: r }));
  await conn.sendDatagram(new TextEncoder().encode("ping"));
  console.log(`  datagram (limit ${conn.maxDatagramSize} B) echoed: "${new TextDecoder().decode(await echoed)}"`);
  const rtt = conn.stats().rttMs;
  if (rtt !== undefined) console.log(`  smoothed RTT ${rtt.toFixed(3)} ms`);
  // 0-RTT: a first connection stores a session ticket; the next one resumes, and its first
  // request (flags 3 = RAW | IDEMPOTENT: only idempotent calls may be replayed) goes as early data.
  for (let i = 0; i < 2; i++) {
    const t2 = performance.now();
    const c = await transport.connect({ host: "127.0.0.1", port: listener.address.port, alpn: ALPN, tls: { ca: certs.ca }, zeroRtt: true });
    const early = await c.openBidi(); // opened before the handshake is done: early data when resumed
    await early.write(codec.encode({ type: FrameType.REQUEST, flags: 3, method: "demo.reverse", deadlineMs: 1000, metadata: {}, payload: new TextEncoder().encode("ylrae") }));
    await early.end();
    for await (const _ of early) { /* the response */ }
    const { resumed, earlyDataAccepted } = await c.handshake;
    console.log(`  zeroRtt connect #${i + 1}: resumed=${resumed} earlyDataAccepted=${earlyDataAccepted ?? "(not reported)"} in ${(performance.now() - t2).toFixed(1)} ms`);
    await c.close();
    await new Promise((r) => setTimeout(r, 50));
  }
  await listener.close(0, "demo over");
  console.log(`  closed by the server: ${JSON.stringify(await conn.closed)}`);
}
// 6. RPC: the quick start (a handler, an event, a stream), the server calling back into the
//    client, and a broadcast to every connected client.
if (transport) {
  console.log("\nRPC quick start (examples/quickstart.ts):");
  const server = await startServer((l) => console.log(`  ${l}`));
  await runClient(server.address, server.trust.ca, (l) => console.log(`  ${l}`));
  {
    // Reflection: on by default with a development certificate (docs/PROTOCOL.md).
    const c = await RpcClient.connect(server.address, { ca: server.trust.ca });
    const d = await c.request<ServiceDescription>(REFLECTION_METHOD);
    const names = (l: { name: string; idempotent?: boolean }[]) => l.map((m) => m.name + (m.idempotent ? " (idempotent)" : "")).join(", ") || "none";
    console.log(`  reflection (${REFLECTION_METHOD}): handlers ${names(d.handlers)}; listeners ${names(d.listeners)}; streams ${names(d.streams)}`);
    await c.close();
    // The same through the command line (docs/CLI.md), run in-process: `echostream call … --json`.
    const caFile = join(await mkdtemp(join(tmpdir(), "echostream-demo-")), "ca.pem");
    await writeFile(caFile, server.trust.ca!);
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: () => {}, lines: async function* () {}, interrupted: new Promise<void>(() => {}) };
    const code = await cliMain(["call", server.address, "audio.play", '"cli.ogg"', "--ca", caFile, "--json"], io);
    console.log(`  echostream call ${server.address} audio.play '"cli.ogg"' --ca … --json -> ${lines.join(" ")} (exit ${code})`);
    // And as its own process on Node, through the package's bin (`npx echostream …`).
    const onNode = await runNodeCli(["call", server.address, "audio.play", '"node.ogg"', "--ca", caFile, "--json"]);
    console.log(`  node bin/echostream.mjs call … '"node.ogg"' --json -> ${onNode}`);
  }
  await server.close();
  console.log("RPC callback, server -> client, typed both ways (examples/callback.ts):");
  await callbackExample((l) => console.log(`  ${l}`));
  console.log("RPC broadcast to every client (examples/chat_broadcast.ts):");
  await chatExample((l) => console.log(`  ${l}`));
}
// 6b. Use case: an IoT fleet (examples/iot): a controller and device processes, commands into
//     the devices, per-device names guarded by access control both ways.
if (transport) {
  console.log("IoT fleet, 3 device processes for 1.5 s (examples/iot):");
  await iotExample(3, 1.5, (l) => console.log(`  ${l}`));
}
// 6c. Use case: a game (examples/game): 30 Hz snapshots over datagrams, reliable match events,
//     time-synced voice, one player behind a lossy relay.
if (transport) {
  console.log("Game, 30 Hz for 1.5 s, one player behind 10% loss (examples/game):");
  await gameExample(1.5, (l) => console.log(`  ${l}`));
}
// 6d. Use case: remote desktop (examples/remote_desktop): screen frames with backpressure, input
//     events down, audio the host opens to the viewer, all on one connection.
if (transport) {
  console.log("Remote desktop for 1.5 s, a busy viewer in the middle (examples/remote_desktop):");
  await remoteDesktopExample(1.5, (l) => console.log(`  ${l}`));
}
// 6e. Scale-out (examples/cluster): two instances behind a real NATS server, a client on each:
//     a broadcast, a room spanning both, a call to a client on the other instance, presence.
if (transport) {
  console.log("Cluster: two instances over NATS, a client on each (examples/cluster, docs/CLUSTER.md):");
  await clusterExample("nats", (l) => console.log(`  ${l}`)).catch((e) => {
    console.log(`  not run: ${(e as Error).message}`);
  });
}
// 7. Real time: clock sync against a server whose clock is shifted +1234.567 ms, then the
//    audio_sync example (50 fps time-synced stream) through the impairment relay.
if (transport) {
  console.log("\nClock sync (server clock shifted +1234.567 ms on purpose):");
  // Playout latency after each time-synced stream's 10th frame, by stream (see below).
  const startD = new Map<string, number>();
  const shifted = RpcServer.builder().bind("127.0.0.1:0").log(() => {})
    .clock(() => performance.timeOrigin + performance.now() + 1234.567)
    .streamHandler(streamHandler("demo.rt", async (ctx, s: EchoStream) => {
      let n = 0;
      for (let f = await s.recvAligned(); f; f = await s.recvAligned()) if (++n === 10) startD.set(ctx.metadata.which, s.stats().latencyMs);
    }))
    .build();
  await shifted.start();
  const c = await RpcClient.connect(shifted.address, { ca: shifted.trust.ca });
  await c.clock.ready;
  await new Promise((r) => setTimeout(r, 600));
  const st = c.clock.stats();
  console.log(`  client.clock: offset ${st.offsetMs.toFixed(3)} ms ± ${st.uncertaintyMs.toFixed(3)} (error ${((st.offsetMs - 1234.567) * 1000).toFixed(0)} µs),` +
    ` rtt ${st.rttMs.toFixed(3)} ms, skew ${st.skewPpm.toFixed(1)} ppm, ${st.samples} samples via ${st.transport}`);
  const sv = [...shifted.peers][0].clock;
  console.log(`  the server's view of this client: offset ${sv.offsetMs.toFixed(3)} ms ± ${sv.uncertaintyMs.toFixed(3)}`);
  // A jitter buffer learns its latency from its first 50 frames; before that it starts from what
  // the connection's other time-synced streams saw, or 80 ms on a connection with none yet.
  for (const [which, frames] of [["first", 120], ["second", 12]] as const) {
    const s = await c.createStream("demo.rt").withMetadata({ which }).withTimeSync().build();
    for (let i = 0; i < frames; i++) {
      await s.send(new Uint8Array(16));
      await new Promise((r) => setTimeout(r, 2));
    }
    await s.end();
    for (let i = 0; i < 100 && !startD.has(which); i++) await new Promise((r) => setTimeout(r, 20));
  }
  console.log(`  time-synced streams start from the connection's transit: latency after 10 frames ${startD.get("first")?.toFixed(1)} ms on the first stream` +
    ` (nothing known yet), ${startD.get("second")?.toFixed(1)} ms on the second`);
  await c.close();
  await shifted.close();

  console.log("Time-synced stream through the relay (examples/audio_sync, 20 ± 10 ms each way, 1% loss):");
  let report!: (r: ReceiverReport) => void;
  const done = new Promise<ReceiverReport>((r) => (report = r));
  const receiver = await startReceiver({ onDone: report, quiet: true });
  const relay = await startRelay({
    target: { host: "127.0.0.1", port: Number(receiver.address.split(":")[1]) },
    seed: 42,
    toServer: { delayMs: 20, jitterMs: 10, loss: 0.01 },
    toClient: { delayMs: 20, jitterMs: 10, loss: 0.01 },
  });
  await sendAudio(`127.0.0.1:${relay.address.port}`, receiver.trust, { seconds: 2, quiet: true });
  const r = await done;
  console.log(`  played ${r.frames} frames of 20 ms audio: late ${r.stats.late}, lost ${r.stats.lost}, release error p99 ${r.releaseErrorP99Ms.toFixed(2)} ms`);
  console.log(`  jitter buffer: latency ${r.stats.latencyMs.toFixed(1)} ms (target ${r.stats.targetLatencyMs.toFixed(1)}), transit p50/p99 ${r.stats.transitP50Ms.toFixed(1)}/${r.stats.transitP99Ms.toFixed(1)} ms, jitter ${r.stats.jitterMs.toFixed(2)} ms`);
  await receiver.close();
  await relay.close();
}
// 8. Discovery: the server advertises itself with DNS-SD over mDNS and this process finds it on
//    the network (not on loopback: mDNS answers for 127.0.0.1 are left out by default).
if (transport) {
  const name = `EchoDemo-${Math.floor(Math.random() * 1e6)}`;
  console.log(`\nDiscovery (DNS-SD over mDNS, service "${name}"):`);
  const logs: string[] = [];
  const lan = RpcServer.builder().bind("0.0.0.0:0").log((m) => logs.push(m))
    .handler(handler("demo.where", () => `hello from ${name}, reached by discovery`))
    .enableDiscovery(name).build();
  await lan.start();
  try {
    if (!lan.discovery) {
      console.log(`  multicast is not available here, so nothing was advertised (${logs.find((l) => l.includes("discovery")) ?? "no usable interface"})`);
    } else {
      const t3 = performance.now();
      const found = await RpcClient.discover(name, { timeoutMs: 3000 }).catch((e) => {
        if (e instanceof DiscoveryError) return e;
        throw e;
      });
      if (found instanceof DiscoveryError) {
        console.log(`  multicast is not available here: ${found.message}`);
      } else if (found.length === 0) {
        console.log(`  advertised as "${lan.discovery.instanceName}", but no answer came back within 3 s: multicast does not loop back on this network`);
      } else {
        const svc = found[0];
        console.log(`  found "${svc.instance}" in ${(performance.now() - t3).toFixed(0)} ms: ${svc.addresses.join(", ")} port ${svc.port}, v${svc.version}, fp ${svc.fingerprint?.slice(0, 16)}…`);
        const c = await RpcClient.connect(svc, { fingerprint: svc.fingerprint }); // trust on first use, explicitly
        console.log(`  connected to ${c.peer.remote.host}:${c.peer.remote.port} with the advertised fingerprint; demo.where -> "${await c.request("demo.where")}"`);
        await c.close();
      }
    }
  } finally {
    await lan.close();
  }
}
// 9. Security: per-device access rules, rate limits with retryAfterMs, and a device limiting
//    what the server may call on it.
if (transport) {
  console.log("\nAccess control and rate limits (examples/secure_iot.ts):");
  await secureIotExample((l) => console.log(`  ${l}`));
}
// 10. Structured logs: LogTape configured by the application (the library never does).
if (transport) {
  console.log("\nStructured logs through LogTape (examples/logging.ts):");
  await loggingExample((l) => console.log(`  ${l.split("\n")[0].slice(0, 150)}`));
}
console.log("\ndemo ok");

/** The CLI in a Node process (bin/echostream.mjs); its output and exit code as one line. */
function runNodeCli(args: string[]): Promise<string> {
  const bin = join(import.meta.dirname ?? ".", "../bin/echostream.mjs");
  return new Promise((resolve) =>
    execFile("node", [bin, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : String(error.code ?? error.message)) : 0;
      resolve(`${(stdout || stderr).trim() || "(no output)"} (exit ${code})`);
    })
  );
}
