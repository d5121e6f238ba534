// A chat room: clients post with a request, the server broadcasts every message to all
// connected clients as an event. Run: bun examples/chat_broadcast.ts

import { handler, listener, RpcClient, RpcServer } from "../mod.ts";

/** Runs the example with three clients. */
export async function chatExample(log: (line: string) => void = console.log): Promise<void> {
  // The handler refers to `server`; it only runs once the server is built and started.
  const server: RpcServer = RpcServer.builder()
    .bind("127.0.0.1:0")
    .log(() => {})
    .authenticate(({ auth }) => ({ nick: String(auth) }))
    .handler(handler("chat.post", async (ctx, text: string) => {
      const from = (ctx.principal as { nick: string }).nick;
      return await server.broadcast("chat.message", { from, text });
    }))
    .build();
  await server.start();
  const nicks = ["ana", "bo", "cy"];
  const received: string[] = [];
  const clients = await Promise.all(nicks.map(async (nick) => {
    const c = await RpcClient.connect(server.address, { ca: server.trust.ca, auth: nick });
    c.handle(listener("chat.message", (_ctx, m: { from: string; text: string }) => void received.push(`${nick} saw ${m.from}: ${m.text}`)));
    return c;
  }));
  const r = await clients[0].request<{ delivered: number }>("chat.post", "hello room");
  log(`[ana] chat.post -> delivered to ${r.delivered} peers`);
  await new Promise((res) => setTimeout(res, 100));
  for (const line of received.sort()) log(`  ${line}`);
  await Promise.all(clients.map((c) => c.close()));
  await server.close();
}

if (import.meta.main) await chatExample();
