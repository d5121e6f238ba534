/**
 * Type tests for the typed API (issue 13 §1). Nothing here runs: `tsc -p tests/types` and
 * `deno check tests/types/typed_api.ts` (both in CI) must accept every line. `@ts-expect-error`
 * lines must fail to type-check (the compilers report an unused directive otherwise), and the
 * `Equal` assertions pin inferred types exactly.
 */
import {
  type ApiOf,
  type Context,
  handler,
  type HandlerDefinition,
  listener,
  type Peer,
  RpcClient,
  RpcServer,
  type StandardSchema,
  streamHandler,
} from "../../mod.ts";

type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2) ? true : false;
function assert<_ extends true>(): void {}

type Session = { user: string; token: string };

// A Standard Schema that parses a string into a number (input string, output number), as zod's
// z.string().transform(Number) declares it.
declare const numberFromString: StandardSchema<number, string>;

// ---- what the client serves (the server calls it back through ctx.peer)
const clientDefs = [
  handler("ui.confirm", (_ctx, question: string) => question.length > 0),
  listener("job.progress", (_ctx, _percent: number) => {}),
  streamHandler("screen.frames", async () => {}),
];
type ClientApi = ApiOf<typeof clientDefs>;
assert<Equal<ClientApi["requests"]["ui.confirm"], { readonly input: string; readonly output: boolean }>>();
assert<Equal<ClientApi["events"]["job.progress"], number>>();

// ---- what the server serves
const login = handler("user.login", (_ctx, name: string): Promise<Session> => Promise.resolve({ user: name, token: "t" }));
const add = handler("math.add", (_ctx, [a, b]: [number, number]) => a + b);
const ping = handler("ping", () => "pong");
const double = handler("math.double", (_ctx, n) => n * 2, { input: numberFromString });
const job = handler("job.run", async (ctx: Context<ClientApi>, steps: number) => {
  const ok: boolean = await ctx.peer.request("ui.confirm", "start?");
  for (let i = 0; i < steps; i++) await ctx.peer.emit("job.progress", i);
  await ctx.peer.createStream("screen.frames");
  // @ts-expect-error the client serves no "ui.nope"
  await ctx.peer.request("ui.nope", "x");
  // @ts-expect-error ui.confirm takes a string
  await ctx.peer.request("ui.confirm", 1);
  // @ts-expect-error job.progress carries a number
  await ctx.peer.emit("job.progress", "50%");
  // @ts-expect-error the client serves no stream "screen.frame"
  ctx.peer.createStream("screen.frame");
  return ok;
});
const stopped = listener("audio.stopped", (_ctx, _payload: null) => {});
const volume = listener("audio.volume", (_ctx, level) => {
  level satisfies number;
}, { input: numberFromString });
const audio = streamHandler("audio.stream", async (_ctx, stream) => {
  for await (const frame of stream) frame satisfies Uint8Array;
});

const server = RpcServer.builder<ClientApi>()
  .bind("127.0.0.1:0")
  .handler(login)
  .handler(add)
  .handler(ping)
  .handler(double)
  .handler(job)
  .listener(stopped)
  .listener(volume)
  .streamHandler(audio)
  .build();
type ServerApi = ApiOf<typeof server>;
assert<Equal<ServerApi["requests"]["user.login"]["output"], Session>>();
assert<Equal<ServerApi["requests"]["math.double"], { readonly input: string; readonly output: number }>>();
assert<Equal<keyof ServerApi["requests"], "user.login" | "math.add" | "ping" | "math.double" | "job.run">>();
assert<Equal<ServerApi["events"], { readonly "audio.stopped": null; readonly "audio.volume": string }>>();
assert<Equal<keyof ServerApi["streams"], "audio.stream">>();

export async function typedClient(): Promise<void> {
  const client = await RpcClient.connect<typeof server>(server.address);
  const session = await client.request("user.login", "alice", { timeoutMs: 100 });
  assert<Equal<typeof session, Session>>();
  assert<Equal<Awaited<ReturnType<typeof client.request<unknown, "math.add">>>, number>>();
  const pong: string = await client.request("ping");
  const doubled: number = await client.request("math.double", "21");
  const confirmed: boolean = await client.request("job.run", 3);
  void [pong, doubled, confirmed];
  await client.emit("audio.stopped", null);
  await client.createStream("audio.stream").withTimeSync();
  // @ts-expect-error misspelt method
  await client.request("user.lgoin", "alice");
  // @ts-expect-error wrong input type
  await client.request("user.login", 42);
  // @ts-expect-error missing input
  await client.request("user.login");
  // @ts-expect-error the schema's input is a string, not the handler's number
  await client.request("math.double", 21);
  // @ts-expect-error wrong output type
  const wrong: number = await client.request("ping");
  void wrong;
  // @ts-expect-error misspelt topic
  await client.emit("audio.stoped", null);
  // @ts-expect-error wrong payload
  await client.emit("audio.stopped", "now");
  await client.emit("audio.volume", "11");
  // @ts-expect-error the schema's input is a string
  await client.emit("audio.volume", 11);
  // @ts-expect-error unknown stream
  client.createStream("audio.strem");
  // The client serves its definitions; the server's view of it is typed by ClientApi.
  client.handle(...clientDefs);
  for (const peer of server.peers) await peer.emit("job.progress", 50);
  await server.broadcast("job.progress", 100);
  // @ts-expect-error the clients listen to no "job.done"
  await server.broadcast("job.done", 100);
}

export async function otherSources(): Promise<void> {
  // From an array of definitions, an object of definitions, or a hand-written API.
  const fromArray = await RpcClient.connect<[typeof login, typeof add]>("127.0.0.1:1");
  const sum: number = await fromArray.request("math.add", [1, 2]);
  const fromObject = await RpcClient.connect<{ login: typeof login; stopped: typeof stopped }>("127.0.0.1:1");
  await fromObject.emit("audio.stopped", null);
  interface Handwritten {
    requests: { "clock.now": { input: undefined; output: number } };
    events: Record<never, never>;
    streams: Record<never, never>;
  }
  const fromInterface = await RpcClient.connect<Handwritten>("127.0.0.1:1");
  const now: number = await fromInterface.request("clock.now");
  void [sum, now];
  // A decorated service adds untyped names; the typed ones keep their types.
  const mixed = RpcServer.builder().handler(login).service(new (class {})()).build();
  const m = await RpcClient.connect<typeof mixed>("127.0.0.1:1");
  const s = await m.request("user.login", "alice");
  assert<Equal<typeof s, Session>>();
  await m.request("anything.else", { any: "input" });
}

export async function untypedStaysUnchanged(): Promise<void> {
  const client = await RpcClient.connect("127.0.0.1:1");
  const session = await client.request<Session>("user.login", "alice", { timeoutMs: 2000 });
  assert<Equal<typeof session, Session>>();
  const anything = await client.request("whatever");
  assert<Equal<typeof anything, unknown>>();
  await client.request("with.input", { a: 1 });
  await client.emit("any.topic");
  await client.emit("any.topic", { any: 1 }, { metadata: {} });
  client.createStream("any.stream");
  // A typed peer is still a Peer: helpers written for Peer take it.
  const usePeer = (p: Peer): Peer => p;
  const typed = await RpcClient.connect<typeof server>("127.0.0.1:1");
  usePeer(typed.peer);
  const untypedHandler = handler<number, string>("legacy", (_ctx, n) => String(n));
  assert<Equal<typeof untypedHandler, HandlerDefinition<number, string>>>();
}
