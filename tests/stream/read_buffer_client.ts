// A receiver in its own process (Deno or Bun, run by read_buffer.test.ts): asks the server for
// small frames sent one at a time, keeps every payload (as a jitter buffer or a queue would) and
// prints how many bytes of memory each kept payload holds alive (`payload.buffer.byteLength`),
// then the same for a bulk run of 1 KiB frames, then checks that datagram payloads it keeps stay
// intact. Usage: read_buffer_client.ts <host:port>, with
// {"ca": "..."} on stdin.

import { RpcClient } from "../../mod.ts";
import { childInput, childRuntime } from "../support/child.ts";

const { args: [address], input: { ca } } = await childInput<{ ca: string }>();
const client = await RpcClient.connect(address, { ca });

/** Receives the server's frames for `mode`; returns what the kept payloads pin, and their bytes. */
async function run(mode: "paced" | "bulk"): Promise<{ frames: number; bytes: number; pinned: number; intact: boolean }> {
  const s = await client.createStream(mode);
  await s.end();
  const kept: Uint8Array[] = [];
  for await (const f of s) kept.push(f);
  // Distinct backing buffers, counted once each: what stays in memory while the payloads live.
  const buffers = new Set(kept.map((f) => f.buffer));
  let pinned = 0;
  for (const b of buffers) pinned += b.byteLength;
  const intact = kept.every((f, i) => f.every((x) => x === (i & 0xff)));
  return { frames: kept.length, bytes: kept.reduce((n, f) => n + f.length, 0), pinned, intact };
}

/**
 * Datagrams: keeps every payload of an unreliable stream until the server has sent them all, then
 * checks none changed (a payload is a view of the datagram the stack handed over: a stack reusing
 * that buffer would overwrite kept payloads). Each frame is its index (4 bytes) and that index's
 * low byte repeated.
 */
async function datagrams(): Promise<{ frames: number; intact: boolean }> {
  const s = await client.createStream("dg").unreliable().build();
  await s.end();
  const kept: Uint8Array[] = [];
  for await (const f of s) kept.push(f);
  const intact = kept.every((f) => {
    const i = new DataView(f.buffer, f.byteOffset, 4).getUint32(0);
    return f.length === 900 && f.subarray(4).every((x) => x === (i & 0xff));
  });
  return { frames: kept.length, intact };
}

const paced = await run("paced");
const bulk = await run("bulk");
const dg = await datagrams();
console.log(JSON.stringify({ runtime: childRuntime, paced, bulk, dg }));
await client.close();
