// Test support: a private dbus-daemon and avahi-daemon inside one network namespace.
// The system bus socket lives in a temporary folder (DBUS_SYSTEM_BUS_ADDRESS points the Avahi tools at
// it), and avahi-daemon gets a tmpfs on /run inside the namespace's private mount namespace (`ip netns
// exec` makes one), so its pid file and socket never touch the host's.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Child, runIn, spawnIn } from "../support/netns.ts";

/** Why the Avahi tests cannot run here, or undefined. */
export function avahiUnavailableReason(): string | undefined {
  for (const bin of ["avahi-daemon", "avahi-browse", "avahi-publish-service", "dbus-daemon"]) {
    if (spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0) {
      return `needs ${bin} (apt-get install -y avahi-daemon avahi-utils dbus)`;
    }
  }
  return undefined;
}

export interface Avahi {
  /** Environment for avahi-browse / avahi-publish-service run in the same namespace. */
  env: Record<string, string>;
  daemon: Child;
  stop(): Promise<void>;
}

/** Starts dbus-daemon and avahi-daemon in `ns`, Avahi limited to `iface`; resolves once Avahi is running. */
export async function startAvahi(ns: string, iface: string, hostName: string): Promise<Avahi> {
  const dir = mkdtempSync(join(tmpdir(), "esd-avahi-"));
  const bus = `unix:path=${dir}/system_bus_socket`;
  writeFileSync(
    join(dir, "dbus.conf"),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>${bus}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`,
  );
  writeFileSync(
    join(dir, "avahi.conf"),
    `[server]
host-name=${hostName}
use-ipv4=yes
use-ipv6=yes
allow-interfaces=${iface}
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
`,
  );
  const env = { DBUS_SYSTEM_BUS_ADDRESS: bus };
  const dbus = spawnIn(ns, [
    "dbus-daemon",
    `--config-file=${dir}/dbus.conf`,
    "--nofork",
    "--nopidfile",
    "--print-address",
  ]);
  let daemon: Child | undefined;
  const stop = async () => {
    await daemon?.stop();
    await dbus.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await dbus.waitLine((l) => l.startsWith("unix:"), 5000);
    daemon = spawnIn(ns, [
      "sh",
      "-c",
      `mount -t tmpfs tmpfs /run && mkdir -p /run/avahi-daemon && exec avahi-daemon -f ${dir}/avahi.conf --no-drop-root --no-chroot --no-rlimits --no-proc-title`,
    ], { env });
    // "Server startup complete" is logged to stderr once the host name is established
    for (let i = 0; i < 100 && !daemon.stderr.includes("Server startup complete"); i++) {
      if (daemon.proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!daemon.stderr.includes("Server startup complete")) {
      throw new Error(`avahi-daemon did not start: ${daemon.stderr}`);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { env, daemon, stop };
}

/** `avahi-browse -rpt <type>` in `ns`: resolved ("=") lines split on ";". */
export async function avahiBrowse(ns: string, env: Record<string, string>, type: string): Promise<string[][]> {
  const r = await runIn(ns, ["avahi-browse", "-rpt", type], { env, timeoutMs: 10_000 });
  return r.stdout.split("\n").filter((l) => l.startsWith("=")).map((l) => l.split(";"));
}
