// The typed API at run time (issue 13 §1): a client typed with `ApiOf<typeof server>` and a
// server whose handler calls back into the client through a typed `ctx.peer`, over real QUIC.
// The compile-time half (misspelt names and wrong types rejected) is tests/types/typed_api.ts,
// checked by `tsc -p tests/types` and `deno check` in CI.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { type ApiOf, type Context, handler, listener, RpcClient, RpcServer, type StandardSchema, streamHandler } from "../../mod.ts";

/** A Standard Schema declaring different input and output types: a numeric string in, a number out. */
const numericString: StandardSchema<number, string> = {
  "~standard": {
    version: 1,
    vendor: "test",
    validate: (v) => (typeof v === "string" && /^\d+$/.test(v) ? { value: Number(v) } : { issues: [{ message: "expected digits" }] }),
  },
};

// What the client serves.
const progress: number[] = [];
let notified!: () => void;
const allProgress = new Promise<void>((r) => (notified = r));
const clientDefs = [
  handler("ui.confirm", (_ctx, question: string) => question.endsWith("?")),
  listener("job.progress", (_ctx, percent: number) => {
    progress.push(percent);
    if (percent === 100) notified();
  }),
];
type ClientApi = ApiOf<typeof clientDefs>;

const server = RpcServer.builder<ClientApi>()
  .bind("127.0.0.1:0")
  .log(() => {})
  .handler(handler("math.add", (_ctx, [a, b]: [number, number]) => a + b))
  .handler(handler("math.double", (_ctx, n) => n * 2, { input: numericString }))
  .handler(handler("job.run", async (ctx: Context<ClientApi>, steps: number) => {
    if (!(await ctx.peer.request("ui.confirm", `run ${steps} steps?`))) return "refused";
    for (let i = 1; i <= steps; i++) await ctx.peer.emit("job.progress", (100 * i) / steps);
    return "done";
  }))
  .streamHandler(streamHandler("echo", async (_ctx, stream) => {
    for await (const frame of stream) await stream.send(frame);
    await stream.end();
  }))
  .build();

let client: RpcClient<ApiOf<typeof server>>;
beforeAll(async () => {
  await server.start();
  client = await RpcClient.connect<typeof server>(server.address, { ca: server.trust.ca });
  client.handle(...clientDefs);
});
afterAll(async () => {
  await client?.close();
  await server.close();
});

test("typed requests return the handler's results", async () => {
  const sum: number = await client.request("math.add", [2, 3]);
  expect(sum).toBe(5);
});

test("a schema's input type is what the client sends; the handler gets its output", async () => {
  expect(await client.request("math.double", "21")).toBe(42);
  // The schema still guards the wire: input that fails validation is refused.
  await expect(client.request("math.double", "twenty")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
});

test("a typed ctx.peer calls back into the client: request, then events", async () => {
  const outcome: string = await client.request("job.run", 4);
  expect(outcome).toBe("done");
  await allProgress;
  expect(progress).toEqual([25, 50, 75, 100]);
});

test("typed streams open by name", async () => {
  const stream = await client.createStream("echo");
  await stream.send(new Uint8Array([1, 2, 3]));
  expect(await stream.recv()).toEqual(new Uint8Array([1, 2, 3]));
  await stream.end();
});

test("the server's typed peers and broadcast reach the client's listener", async () => {
  expect(server.peers.length).toBe(1);
  progress.length = 0;
  expect(await server.broadcast("job.progress", 7)).toEqual({ delivered: 1, failed: 0, published: false });
  await server.peers[0].emit("job.progress", 8);
  // Events on one connection arrive in order: once the last one is seen, the earlier ones were.
  const seen = new Promise<void>((r) => (notified = r));
  await server.peers[0].emit("job.progress", 100);
  await seen;
  expect(progress).toEqual([7, 8, 100]);
});

test("an unknown name still gets the run-time answer (types are not the only guard)", async () => {
  // Casting around the types reaches the wire; the server answers NOT_FOUND as for untyped calls.
  const untyped = client as unknown as RpcClient;
  await expect(untyped.request("math.sub", [1, 2])).rejects.toMatchObject({ code: "NOT_FOUND" });
});
