#!/usr/bin/env node
// The `echostream` binary of package.json (`npx echostream`, `bunx echostream`). Bun and Deno run
// the TypeScript source; Node (which cannot) runs dist/node/cli.mjs, the bundle `npm install`
// builds (the "prepare" script: `npm run build:node`). docs/CLI.md says how to run it each way.
import process from "node:process";

const typeScriptRuntime = "Bun" in globalThis || "Deno" in globalThis;
const entry = typeScriptRuntime ? "../src/cli/main.ts" : "../dist/node/cli.mjs";
let cli;
try {
  cli = await import(entry);
} catch (error) {
  if (typeScriptRuntime || error?.code !== "ERR_MODULE_NOT_FOUND" || !String(error.message).includes("cli.mjs")) throw error;
  process.stderr.write(
    "echostream: the Node build (dist/node/cli.mjs) is missing. Build it with `npm run build:node` " +
      "(it needs bun, a devDependency), or run the CLI with bun or deno instead (docs/CLI.md).\n",
  );
  process.exit(1);
}
await cli.runCli(process.argv.slice(2));
