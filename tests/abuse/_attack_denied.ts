// Attack (8): a peer that keeps calling what the policy denies. One RpcClient: `calls` requests to
// "secret.key", `events` emits to "secret.tick", `streams` opens of "secret.stream", with an
// allowed "echo" after every `allowedEvery` denied calls. Each denied request and stream open
// must answer PERMISSION_DENIED, the connection must stay open, and the allowed calls must work.

import { RpcClient } from "../../src/rpc/client.ts";
import type { RpcError } from "../../src/protocol/rpc_error.ts";
import type { CloseInfo } from "../../src/transport/types.ts";
import { attack, sleep } from "./_raw.ts";

interface Params {
  calls: number;
  events: number;
  streams: number;
  allowedEvery: number;
}

const codeOf = (e: unknown) => String((e as RpcError)?.code ?? (e as Error)?.message ?? e);
const tally = (into: Record<string, number>, k: string) => void (into[k] = (into[k] ?? 0) + 1);

await attack<Params, Record<string, unknown>>(async ({ address, ca, params: p }) => {
  const client = await RpcClient.connect(address, { ca, timeoutMs: 5000, clockSync: false });
  let closedEarly: CloseInfo | undefined;
  client.peer.closed.then((i) => (closedEarly = i));
  const calls: Record<string, number> = {};
  const streams: Record<string, number> = {};
  const allowed = { made: 0, ok: 0, failed: [] as string[] };
  const checkAllowed = async (i: number) => {
    allowed.made++;
    try {
      if ((await client.request("echo", i, { timeoutMs: 3000 })) === i) allowed.ok++;
      else allowed.failed.push("wrong answer");
    } catch (e) {
      allowed.failed.push(codeOf(e));
    }
  };
  for (let i = 0; i < p.calls; i++) {
    try {
      await client.request("secret.key", i, { timeoutMs: 3000 });
      tally(calls, "ANSWERED");
    } catch (e) {
      tally(calls, codeOf(e));
    }
    if ((i + 1) % p.allowedEvery === 0) await checkAllowed(i);
  }
  let emitted = 0;
  const emitErrors: Record<string, number> = {};
  for (let i = 0; i < p.events; i++) {
    try {
      await client.emit("secret.tick", i);
      emitted++;
    } catch (e) {
      tally(emitErrors, codeOf(e));
    }
  }
  for (let i = 0; i < p.streams; i++) {
    try {
      const s = await client.createStream("secret.stream").timeout(3000);
      tally(streams, "OPENED");
      await s.end().catch(() => {});
    } catch (e) {
      tally(streams, codeOf(e));
    }
    if ((i + 1) % p.allowedEvery === 0) await checkAllowed(i);
  }
  // An allowed event after the denied ones (counted by the server's "tick" listener), and a
  // last allowed call: the connection is still usable.
  await client.emit("tick", 1);
  await sleep(200);
  await checkAllowed(-1);
  const early = closedEarly ?? null;
  const open = early === null && client.connected;
  await client.close();
  return { calls, streams, emitted, emitErrors, allowed, connectionOpen: open, closedEarly: early };
});
