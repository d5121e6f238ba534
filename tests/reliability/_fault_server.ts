// Fault-test server (child process, killed and restarted by the tests). Prints
// {"event":"listening","port"} once up; stdin "counts <tag>" answers {"event":"counts", tag, …
// server.stats() live counts, running: handlers not yet returned, signals: ctx.signal fired}.
//
//   _fault_server.ts '{"bind":"127.0.0.1:0","certDir":"/tmp/x","gen":1[,"handshakeTimeoutMs":2000,"idleTimeoutMs":3000]}'

import { readFileSync } from "node:fs";
import process from "node:process";
import { handler, listener, RpcServer, streamHandler } from "../../mod.ts";
import { ErrorCode, RpcError } from "../../src/protocol/rpc_error.ts";
import type { Context } from "../../src/rpc/context.ts";
import { args, commands, emit, serverCounts, sleep } from "./_soak_common.ts";

const cfg = JSON.parse(args()[0]) as { bind: string; certDir: string; gen?: number; handshakeTimeoutMs?: number; idleTimeoutMs?: number };
let running = 0;
let signals = 0;
let events = 0;
let handlerErrors = 0;

/** Counts a handler as running until it returns, and notes when its signal fires. */
function tracked<A extends unknown[], R>(fn: (ctx: Context, ...a: A) => Promise<R> | R) {
  return async (ctx: Context, ...a: A): Promise<R> => {
    running++;
    ctx.signal.addEventListener("abort", () => signals++, { once: true });
    try {
      return await fn(ctx, ...a);
    } finally {
      running--;
    }
  };
}

const never = () => new Promise<never>(() => {});

const builder = RpcServer.builder()
  .bind(cfg.bind)
  .tls({ cert: readFileSync(`${cfg.certDir}/cert.pem`, "utf8"), key: readFileSync(`${cfg.certDir}/key.pem`, "utf8") })
  .log(() => {})
  .onError(() => void handlerErrors++)
  .handler(handler("gen", () => cfg.gen ?? 1))
  .handler(handler("echo", (_ctx, x: unknown) => x))
  // Honours the deadline: the sleep ends when ctx.signal fires.
  .handler(handler("sleep", tracked((ctx, ms: number) => sleep(ms, ctx.signal).then(() => ms))))
  // Ignores its signal and never returns: what may the server still hold for it?
  .handler(handler("hang", tracked(() => never())))
  // Ignores its signal but returns after `ms`.
  .handler(handler("sleep-ignore", tracked(async (_ctx, ms: number) => (await sleep(ms), ms))))
  .handler(handler("throw", tracked(() => {
    throw new Error("handler failed on purpose");
  })))
  .handler(handler("throw-rpc", tracked(() => {
    throw new RpcError(ErrorCode.PERMISSION_DENIED, "refused on purpose");
  })))
  .listener(listener("ev", () => void events++))
  .streamHandler(streamHandler("echo", tracked(async (_ctx, stream) => {
    for await (const chunk of stream) await stream.send(chunk);
    await stream.end();
  })))
  // Never reads its stream; returns once its signal fires (the client went away).
  .streamHandler(streamHandler("noread", tracked((ctx) => new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r(), { once: true })))))
  // Never reads and never returns.
  .streamHandler(streamHandler("noread-forever", tracked(() => never())))
  // Time-synced: every released frame is echoed, re-stamped.
  .streamHandler(streamHandler("sync", tracked(async (_ctx, stream) => {
    for (let f = await stream.recvAligned(); f; f = await stream.recvAligned()) {
      await stream.sendWithTimestamp(f.data, stream.now()).catch(() => {});
    }
    await stream.end();
  })));
if (cfg.handshakeTimeoutMs) builder.handshakeTimeout(cfg.handshakeTimeoutMs);
if (cfg.idleTimeoutMs) builder.idleTimeout(cfg.idleTimeoutMs);
const server = builder.build();

await server.start();
emit("listening", { port: Number(server.address.split(":").pop()) });

commands((line) => {
  const [cmd, tag] = line.split(" ");
  if (cmd === "counts") return emit("counts", { tag, ...serverCounts(server), running, signals, events, handlerErrors, rss: process.memoryUsage().rss });
  emit("error", { tag, message: `unknown command ${cmd}` });
});
