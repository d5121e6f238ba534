// `echostream discover` and service names as targets, over real multicast DNS between two
// network namespaces (the CLI's `serve --echo --advertise` in one, the CLI looking for it in the
// other, Bun and Deno). Needs root for the namespaces, like tests/discovery/multicast.test.ts.

import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { netnsUnavailableReason, runIn, spawnIn } from "../support/netns.ts";
import { runtimeCommand } from "../support/process.ts";
import { inTerminal, type Terminal } from "../support/terminal.ts";
import { waitFor } from "../support/wait.ts";
import { usePair } from "../discovery/_pair.ts";

const CLI = join(import.meta.dir, "../../src/cli/main.ts");
const reason = netnsUnavailableReason();
if (reason) console.log(`skipping tests/cli/discover.test.ts: ${reason}`);

describe.skipIf(!!reason)("echostream discover, and service names as targets (mDNS between namespaces)", () => {
  const net = usePair({ links: 1 });

  test("discover finds serve --advertise; call and list reach it by name; --watch sees it go down", async () => {
    const out = mkdtempSync(join(tmpdir(), "echostream-cli-mdns-"));
    const server = spawnIn(net.pair.a.name, runtimeCommand("bun", CLI, ["serve", "--echo", "--json", "--bind", "0.0.0.0:0", "--advertise", "CliEcho", "--out", out]));
    let watch: ReturnType<typeof spawnIn> | undefined;
    let tty: Terminal | undefined;
    try {
      const info = JSON.parse(await server.waitLine((l) => l.startsWith("{"), 15_000));
      expect(info.advertised).toBe("CliEcho");
      const port = Number(String(info.address).split(":").pop());

      const found = await runIn(net.pair.b.name, runtimeCommand("deno", CLI, ["discover", "CliEcho", "--json", "--timeout", "4000"]), { timeoutMs: 20_000 });
      expect(found.code).toBe(0);
      const svc = JSON.parse(found.stdout.trim().split("\n")[0]);
      expect(svc).toMatchObject({ instance: "CliEcho", name: "CliEcho", port, fingerprint: info.fingerprint, version: 1 });
      expect(svc.addresses.length).toBeGreaterThan(0);

      // By name: the advertised fingerprint is trusted only when asked to (--trust-advertised).
      const call = await runIn(net.pair.b.name, runtimeCommand("bun", CLI, ["call", "CliEcho", "echo", '"by name"', "--trust-advertised", "--json"]), { timeoutMs: 20_000 });
      expect({ code: call.code, out: call.stdout.trim() }).toEqual({ code: 0, out: '"by name"' });
      const noTrust = await runIn(net.pair.b.name, runtimeCommand("bun", CLI, ["call", "CliEcho", "echo", "1"]), { timeoutMs: 20_000 });
      expect(noTrust.code).toBe(2);
      expect(noTrust.stderr).toContain("--trust-advertised");
      const list = await runIn(net.pair.b.name, runtimeCommand("deno", CLI, ["list", "CliEcho", "--fingerprint", info.fingerprint, "--json"]), { timeoutMs: 20_000 });
      expect(list.code).toBe(0);
      expect(JSON.parse(list.stdout).server).toBe("echostream-echo");

      const nobody = await runIn(net.pair.b.name, runtimeCommand("bun", CLI, ["discover", "NobodyHere", "--timeout", "1000"]), { timeoutMs: 20_000 });
      expect(nobody.code).toBe(114);
      expect(nobody.stderr).toContain('no server advertising "NobodyHere"');
      const unreachable = await runIn(net.pair.b.name, runtimeCommand("bun", CLI, ["call", "NobodyHere", "echo", "--trust-advertised", "--timeout", "1500"]), { timeoutMs: 20_000 });
      expect(unreachable.code).toBe(114);

      // Live: up now, down once the server says goodbye. Once as JSON lines, and once in a
      // terminal as a user sees it (text, no --count, stopped with Ctrl-C).
      tty = await inTerminal("discover", ["ip", "netns", "exec", net.pair.b.name, ...runtimeCommand("deno", CLI, ["discover", "CliEcho", "--watch"])]);
      const upLine = new RegExp(`^up {3}CliEcho  \\S+:${port}\\b.*  v1  fp ${info.fingerprint.slice(0, 16)}…$`, "m");
      await waitFor(async () => upLine.test(await tty!.screen()), "the up line on the terminal", { timeoutMs: 15_000, everyMs: 100 });
      expect(await tty.screen()).toContain('watching for "CliEcho" (Ctrl-C to stop)');
      watch = spawnIn(net.pair.b.name, runtimeCommand("bun", CLI, ["discover", "CliEcho", "--watch", "--json", "--count", "2"]));
      const up = JSON.parse(await watch.waitLine((l) => l.includes('"type":"up"'), 15_000));
      expect(up.service.instance).toBe("CliEcho");
      server.kill("SIGTERM");
      expect(await server.exited).toBe(0);
      const down = JSON.parse(await watch.waitLine((l) => l.includes('"type":"down"'), 15_000));
      expect(down.service.instance).toBe("CliEcho");
      expect(await watch.exited).toBe(0);
      await waitFor(async () => /^down CliEcho {2}/m.test(await tty!.screen()), "the down line on the terminal", { timeoutMs: 15_000, everyMs: 100 });
      expect(await tty.screen()).not.toContain("[exit");
      await tty.keys("C-c");
      await waitFor(async () => (await tty!.screen()).includes("[exit 0]"), "discover --watch to exit 0 on Ctrl-C", { timeoutMs: 10_000, everyMs: 100 });
    } finally {
      await tty?.close();
      server.kill("SIGKILL");
      watch?.kill("SIGKILL");
    }
  }, 90_000);
});
