// Quick start: a server with a handler, an event listener and a stream handler, and a client
// that uses all three. Run: bun examples/quickstart.ts  (or: deno run --unstable-net -A …)

import { handler, listener, RpcClient, type RpcError, RpcServer, streamHandler } from "../mod.ts";

/** Starts the server of the quick start; returns it (call `close()` when done). */
export async function startServer(log: (line: string) => void = console.log): Promise<RpcServer> {
  const play = handler("audio.play", (_ctx, file: string) => ({ playing: file }));
  const onStopped = listener("audio.stopped", (ctx) => log(`[server] event audio.stopped from ${ctx.peer.name}`));
  const onAudio = streamHandler("audio.stream", async (_ctx, stream) => {
    let frames = 0;
    let bytes = 0;
    for await (const frame of stream) {
      frames++;
      bytes += frame.length;
    }
    log(`[server] audio.stream ended after ${frames} frames, ${bytes} bytes`);
  });
  const server = RpcServer.builder()
    .bind("127.0.0.1:0") // port 0: any free port; server.address tells which
    .handler(play)
    .listener(onStopped)
    .streamHandler(onAudio)
    .log((m) => log(`[server] ${m.slice(0, 100)}…`)) // no .tls(): a development certificate
    .build();
  await server.start();
  return server;
}

/** The client side of the quick start. */
export async function runClient(address: string, ca: string | undefined, log: (line: string) => void = console.log): Promise<void> {
  const client = await RpcClient.connect(address, { ca, name: "quickstart-client" });
  const result = await client.request("audio.play", "intro.ogg", { timeoutMs: 2000 });
  log(`[client] audio.play("intro.ogg") -> ${JSON.stringify(result)}`);
  const stream = await client.createStream("audio.stream");
  for (let i = 0; i < 10; i++) await stream.send(new Uint8Array(160)); // 10 × 20 ms of audio
  await stream.end();
  await client.emit("audio.stopped", null);
  const missing = (await client.request("audio.pause").catch((e) => e)) as RpcError;
  log(`[client] audio.pause -> ${missing.code}: ${missing.message}`);
  await new Promise((r) => setTimeout(r, 100)); // let the server log the stream's end
  await client.close();
}

if (import.meta.main) {
  const server = await startServer();
  await runClient(server.address, server.trust.ca);
  await server.close();
}
