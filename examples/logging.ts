// Structured logs through LogTape: EchoStream never configures logging; the application does,
// for the categories it wants (["echostream"] is all of them; ["echostream", "security"] only
// denials, rate limits and abuse). Run: bun examples/logging.ts

import { configure, getTextFormatter, type LogRecord, reset } from "@logtape/logtape";
import { handler, RpcClient, RpcServer } from "../mod.ts";

/** Runs the example; each log line goes to `log`. */
export async function loggingExample(log: (line: string) => void = console.log): Promise<void> {
  const format = getTextFormatter({ timestamp: "none" });
  await configure({
    reset: true,
    sinks: { lines: (r: LogRecord) => log(format(r).trimEnd()) },
    loggers: [
      { category: ["echostream"], lowestLevel: "info", sinks: ["lines"] },
      { category: ["echostream", "security"], lowestLevel: "debug", sinks: ["lines"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  try {
    const server = RpcServer.builder()
      .bind("127.0.0.1:0")
      .accessControl({ permissions: { request: { deny: ["admin.>"] } } })
      .handler(handler("report", () => {
        throw new Error("disk full"); // logged with its stack; the caller gets INTERNAL
      }))
      .build(); // no .tls(): the development-certificate notice is logged too
    await server.start();
    const client = await RpcClient.connect(server.address, { ca: server.trust.ca, name: "demo-client" });
    await client.request("report").catch(() => {});
    await client.request("admin.wipe").catch(() => {});
    await client.close();
    await server.close();
  } finally {
    await reset();
  }
}

if (import.meta.main) await loggingExample();
