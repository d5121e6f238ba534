// IoT fleet on one machine: a controller and N device processes (each its own Bun or Deno
// process, like real devices). Devices stream telemetry and answer commands; the controller
// lists them as they come and go and sends each a command when it comes online; an operator
// reads the fleet; a device may not.
//
//   bun examples/iot/main.ts [devices=5] [seconds=3]
//   deno run -A --unstable-net examples/iot/main.ts [devices] [seconds]

import process from "node:process";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { RpcClient } from "../../mod.ts";
import { type Principal, startController } from "./controller.ts";

/** Runs the fleet; resolves with what was seen (and prints it through `log`). */
export async function iotExample(devices = 5, seconds = 3, log: (line: string) => void = console.log) {
  const tokens: Record<string, Principal> = { "op-secret": { id: "alice", role: "operator" } };
  const ids = Array.from({ length: devices }, (_, i) => `d${i + 1}`);
  for (const id of ids) tokens[`tok-${id}`] = { id, role: "device" };
  const seen: string[] = [];
  const commands: Promise<void>[] = [];
  const ctl = await startController({
    tokens,
    log,
    onChange: (d) => {
      seen.push(`${d.id} ${d.online ? "online" : "offline"}`);
      log(`[controller] ${d.id} ${d.online ? "online" : `offline after ${d.frames} readings (last ${d.lastTempC} °C)`}`);
      if (d.online) {
        // A command to each device as it arrives: its own name works.
        commands.push(ctl.command(d.id, "blink", 2).then((r) => log(`[controller] cmd.${d.id}.blink -> ${r}`)));
        // Another device's name on this device's connection: its policy refuses it.
        const wrong = `cmd.not-${d.id}.blink`;
        commands.push(d.peer!.request(wrong, 1).then(() => log(`[controller] ${wrong} on ${d.id} -> allowed (WRONG)`), (e) => log(`[controller] ${wrong} on ${d.id} -> ${e.code}`)));
      }
    },
  });

  // The device processes, on this same runtime.
  const deno = "Deno" in globalThis;
  const script = fileURLToPath(new URL("./device.ts", import.meta.url));
  const children = ids.map((id) => {
    const args = [...(deno ? ["run", "-A", "--unstable-net"] : []), script, ctl.server.address, id, `tok-${id}`, String(seconds)];
    const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
    child.stdin!.end(JSON.stringify(ctl.server.trust.ca) + "\n");
    let out = "", err = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (err += d)); // shown only if the device fails
    return new Promise<Record<string, unknown>[]>((resolve) =>
      child.on("exit", (code) => {
        const lines = out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
        if (code !== 0) log(`[${id}] exited with ${code}: ${err.trim()}`);
        resolve(lines);
      })
    );
  });

  // An operator, meanwhile: may read the fleet (devices may not: see their fleet.list lines).
  const allOnline = () => ids.every((id) => ctl.devices.get(id)?.online);
  for (const t0 = performance.now(); !allOnline() && performance.now() - t0 < seconds * 1000;) await new Promise((r) => setTimeout(r, 20));
  const operator = await RpcClient.connect(ctl.server.address, { ca: ctl.server.trust.ca, auth: "op-secret", onError: () => {} });
  const fleet = await operator.request<{ id: string; online: boolean }[]>("fleet.list");
  log(`[operator] fleet.list: ${fleet.filter((d) => d.online).length} of ${devices} online`);
  await operator.close();

  const reports = await Promise.all(children);
  await Promise.allSettled(commands);
  for (const [i, lines] of reports.entries()) {
    const done = lines.find((l) => l.event === "done");
    const denied = lines.find((l) => l.event === "fleet.list")?.result;
    log(`[${ids[i]}] sent ${done?.sent} readings, blinked ${done?.blinks}, fleet.list -> ${denied}`);
  }
  // The controller sees the last stream end a moment after the device exits.
  for (let t = 0; t < 50 && [...ctl.devices.values()].some((d) => d.online); t++) await new Promise((r) => setTimeout(r, 20));
  const offline = [...ctl.devices.values()].filter((d) => !d.online).length;
  log(`[controller] ${offline} of ${devices} devices offline at the end`);
  await ctl.close();
  return { seen, reports, fleet };
}

if (import.meta.main) {
  const [n, s] = ((globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2)).map(Number);
  await iotExample(n || 5, s || 3);
  process.exit(0);
}
