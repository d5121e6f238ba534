// The server calls back into the client: a handler uses ctx.peer to request from the client,
// which serves its own handler. Run: bun examples/callback.ts

import { handler, RpcClient, RpcServer } from "../mod.ts";

/** Runs the example; returns what happened. */
export async function callbackExample(log: (line: string) => void = console.log): Promise<void> {
  const server = RpcServer.builder()
    .bind("127.0.0.1:0")
    .log(() => {})
    .handler(handler("job.run", async (ctx, job: string) => {
      // Ask the caller for a confirmation before running the job.
      const ok = await ctx.peer.request<boolean>("ui.confirm", `run "${job}"?`, { timeoutMs: 1000 });
      return ok ? `job ${job} done` : `job ${job} skipped`;
    }))
    .build();
  await server.start();
  const client = await RpcClient.connect(server.address, { ca: server.trust.ca });
  client.handle(handler("ui.confirm", (_ctx, question: string) => {
    log(`[client] server asks: ${question} -> yes`);
    return true;
  }));
  log(`[client] job.run("backup") -> ${await client.request("job.run", "backup")}`);
  await client.close();
  await server.close();
}

if (import.meta.main) await callbackExample();
