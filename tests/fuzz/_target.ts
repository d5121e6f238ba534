// The live side's handlers, counted: each handler, listener and stream handler bumps `running`
// while it runs, so a case can check that everything a misbehaving peer started has finished
// once that peer is gone (a handler that never returns is a leak whatever the counters say).

import { ErrorCode, RpcError } from "../../src/protocol/rpc_error.ts";
import { type Definition, handler, listener, streamHandler } from "../../src/rpc/definitions.ts";
import type { Context } from "../../src/rpc/context.ts";
import type { EchoStream } from "../../src/stream/echo_stream.ts";
import { TransportError } from "../../src/transport/transport_error.ts";

/** Marks the error the "boom" handler throws on purpose (reported to onError as expected). */
export const BOOM = "boom on purpose";

/** Counters and error sinks of one live side. */
export class Instruments {
  running = 0;
  events = 0;
  readonly errors: { error: unknown; where: string }[] = [];

  /** onError for the live side: collects what it reports. */
  readonly onError = (error: unknown, where: string): void => {
    this.errors.push({ error, where });
  };

  /** onError reports that are bugs: anything but our own BOOM, an RpcError or a TransportError. */
  unexpectedErrors(): string[] {
    return this.errors
      .filter(({ error }) => !(error instanceof RpcError) && !(error instanceof TransportError) && (error as Error)?.message !== BOOM)
      .map(({ error, where }) => `onError(${where}): ${(error as Error)?.stack ?? String(error)}`);
  }

  async #count<T>(fn: () => Promise<T> | T): Promise<T> {
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
    }
  }

  /** Waits until `ms` passed or `signal` fired. */
  static pause(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** The definitions the live side registers (names match _gen_frames.ts METHODS/STREAMS/TOPICS). */
  definitions(): Definition[] {
    const drain = async (s: EchoStream) => {
      for await (const _ of s) { /* discard */ }
    };
    return [
      handler("echo", (_ctx: Context, v: unknown) => this.#count(() => v)),
      handler("slow", (ctx: Context) => this.#count(async () => (await Instruments.pause(150, ctx.signal), "slow"))),
      handler("fail", () => this.#count(() => Promise.reject(new RpcError(ErrorCode.FAILED_PRECONDITION, "fail on purpose", { why: "fuzz" })))),
      handler("boom", () => this.#count(() => Promise.reject(new Error(BOOM)))),
      // Calls back into the raw peer, which never answers properly: bounded by its deadline.
      handler("cb", (ctx: Context) => this.#count(() => ctx.peer.request("cb", 1, { timeoutMs: 200 }).catch((e) => (e as RpcError).code))),
      listener("ev", () => void this.events++),
      streamHandler("echo", (_ctx: Context, s: EchoStream) => this.#count(async () => {
        for await (const f of s) await s.send(f);
      })),
      streamHandler("sink", (_ctx: Context, s: EchoStream) => this.#count(() => drain(s))),
      streamHandler("talk", (_ctx: Context, s: EchoStream) => this.#count(async () => {
        for (let i = 0; i < 3; i++) await s.send(new Uint8Array([i]));
      })),
      // Reads nothing for a while (the window fills), then drains.
      streamHandler("stall", (ctx: Context, s: EchoStream) => this.#count(async () => {
        await Instruments.pause(200, ctx.signal);
        await drain(s);
      })),
    ];
  }
}
