// The server calls back into the client, typed both ways: a handler uses ctx.peer to request
// from the client, which serves its own handler. The client is typed by the server's API and the
// handler's ctx.peer by the client's, so a misspelt name or a wrong argument on either side is a
// compile error (docs/TYPED_API.md). Run: bun examples/callback.ts

import { type ApiOf, type Context, handler, listener, RpcClient, RpcServer } from "../mod.ts";

/** Runs the example; logs what happened. */
export async function callbackExample(log: (line: string) => void = console.log): Promise<void> {
  // What the client serves: the server's handlers see it as ClientApi.
  const clientDefinitions = [
    handler("ui.confirm", (_ctx, question: string) => {
      log(`[client] server asks: ${question} -> yes`);
      return true;
    }),
    listener("job.progress", (_ctx, percent: number) => log(`[client] progress ${percent}%`)),
  ];
  type ClientApi = ApiOf<typeof clientDefinitions>;

  const server = RpcServer.builder<ClientApi>()
    .bind("127.0.0.1:0")
    .log(() => {})
    .handler(handler("job.run", async (ctx: Context<ClientApi>, job: string) => {
      // Ask the caller for a confirmation before running the job; `ok` is a boolean, no cast.
      const ok = await ctx.peer.request("ui.confirm", `run "${job}"?`, { timeoutMs: 1000 });
      if (!ok) return `job ${job} skipped`;
      for (const percent of [50, 100]) await ctx.peer.emit("job.progress", percent);
      return `job ${job} done`;
    }))
    .build();
  await server.start();
  // Typed by the server's API: "job.run" takes a string and returns a string.
  const client = await RpcClient.connect<typeof server>(server.address, { ca: server.trust.ca });
  client.handle(...clientDefinitions);
  const outcome: string = await client.request("job.run", "backup");
  log(`[client] job.run("backup") -> ${outcome}`);
  await client.close();
  await server.close();
}

if (import.meta.main) await callbackExample();
