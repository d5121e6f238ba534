// Commands that run the discovery fixtures on Bun or on Deno with the least permissions (docs/DISCOVERY.md).

import { ROOT, tool } from "../support/netns.ts";

export type Rt = "bun" | "deno";

/** Deno, advertising: sockets and multicast, the `debug` package (ciao) reads the whole environment, interface list. */
export const DENO_ADVERTISE_PERMS: readonly string[] = ["--allow-net", "--allow-env", "--allow-sys=networkInterfaces"];
/** Deno, browsing only: port 5353 on the wildcard addresses and the two mDNS groups, interface list. */
export const DENO_BROWSE_PERMS: readonly string[] = [
  "--allow-net=0.0.0.0:5353,[::]:5353,224.0.0.251:5353,[ff02::fb]:5353",
  "--allow-sys=networkInterfaces",
];

const ADVERTISER = `${ROOT}tests/discovery/_advertiser.ts`;
const DISCOVERER = `${ROOT}tests/discovery/_discoverer.ts`;

function cmd(rt: Rt, perms: readonly string[], script: string, args: string[]): string[] {
  return rt === "bun"
    ? [tool("bun"), script, ...args]
    : [tool("deno"), "run", "--no-prompt", ...perms, script, ...args];
}

/** Runs _advertiser.ts with `opts` (AdvertiseOptions). */
export function advertiserCmd(rt: Rt, opts: Record<string, unknown>): string[] {
  return cmd(rt, DENO_ADVERTISE_PERMS, ADVERTISER, [JSON.stringify(opts)]);
}

/** Runs _discoverer.ts in `discover` or `browse` mode with `opts` (`name` plus options). */
export function discovererCmd(rt: Rt, mode: "discover" | "browse", opts: Record<string, unknown>): string[] {
  return cmd(rt, DENO_BROWSE_PERMS, DISCOVERER, [mode, JSON.stringify(opts)]);
}
