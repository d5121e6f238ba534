// Bugs the fuzzer found whose fix belongs to a file the fuzzer's owner does not own. Each has a
// regression test in tests/fuzz/regressions.test.ts that fails until it is fixed; the fuzz run
// counts these (FUZZ_STRICT=1 fails on them too) so it keeps looking for new ones meanwhile.
// Remove an entry when its fix lands.

import type { Finding } from "./_model.ts";

export interface KnownBug {
  /** The regression test that tracks it. */
  test: string;
  kind: Finding["kind"];
  /** Matches the finding's detail. */
  match: RegExp;
}

export const KNOWN: KnownBug[] = [];

/** Whether a finding detail is a tracked bug of `kind` (never, under FUZZ_STRICT semantics: `strict`). */
export function isKnown(kind: Finding["kind"], detail: string, strict = false): boolean {
  return !strict && KNOWN.some((k) => k.kind === kind && k.match.test(detail));
}

/** Bugs the fuzzer found and that are fixed (their regression tests pass). */
export const FIXED: { test: string; where: string; foundBy: string }[] = [
  {
    test: "a REQUEST whose deadline is beyond the timer range is served, not cancelled at once",
    where: "src/rpc/_serve.ts (no timer for a deadline above 2^31-1 ms, which setTimeout turns into 1 ms)",
    foundBy: "server mode, FUZZ_SEED=102 FUZZ_PATH=155:0:0:1:1:2:3:3:3:3:3:3 (before the fix)",
  },
  {
    test: "a call whose deadline passes at the callee is answered DEADLINE_EXCEEDED",
    where: "src/rpc/_serve.ts (was a bare FIN: a caller without its own timer learnt nothing)",
    foundBy: "server mode, FUZZ_SEED=101 FUZZ_PATH=69:0:0:2:2:2:2 (before the fix)",
  },
  {
    test: "a stream the server has answered or refused does not keep taking data",
    where: "src/rpc/_serve.ts (refused streams, and frames after a call's REQUEST/ERROR, are stopped with STOP_SENDING; Bun buffered 48-78 MB in 3 s per such stream)",
    foundBy: "long run, server mode, FUZZ_SEED=20261205 (13 MB flood on a refused stream; then the 4 MiB probe)",
  },
  {
    test: "DATA after the DATA+FIN that ended a direction is refused, not delivered",
    where: "src/stream/echo_stream.ts (#pump aborts with DATA_LOSS)",
    foundBy: "server mode, FUZZ_SEED=101 FUZZ_STRICT=1",
  },
  {
    test: "a stream aborted by the peer's ERROR, or for a protocol error, stops reading",
    where: "src/stream/echo_stream.ts (STOP_SENDING and cancel on abort; an ERROR frame tells the peer why)",
    foundBy: "server mode, FUZZ_SEED=101 FUZZ_STRICT=1",
  },
  {
    test: "a frame other than PING, PONG or GOAWAY on the control stream is a connection error",
    where: "src/rpc/_handshake.ts watchControl (GOAWAY DATA_LOSS, close 0x101)",
    foundBy: "server mode, FUZZ_SEED=101 FUZZ_PATH=12:0:2:1:1:1:1:1; client mode, FUZZ_PATH=5:0:1:1:1:1:1:1:1",
  },
  {
    test: "ending or cutting the control stream is a connection error",
    where: "src/rpc/_handshake.ts watchControl",
    foundBy: "server mode, FUZZ_SEED=101 FUZZ_PATH=22:0:2:1:1:1:1:1:1:1:1:1:1:1:1:1",
  },
  {
    test: "a HELLO whose body is not valid payload-codec data is a protocol error, not an authenticate failure",
    where: "src/rpc/_handshake.ts acceptPeer (decoded before authenticate, refused DATA_LOSS)",
    foundBy: "server mode, FUZZ_SEED=101 FUZZ_PATH=5:1:1:1",
  },
  {
    test: "a connection that closes before HELLO is counted out of server.stats().handshaking",
    where: "src/rpc/_handshake.ts acceptPeer (settled on conn.closed)",
    foundBy: "server mode, FUZZ_SEED=101 FUZZ_PATH=15:0:0",
  },
  {
    test: "Connection.close() completes after ending a unidirectional stream the peer stopped",
    where: "src/transport/bun.ts (a graceful close that takes over 1 s destroys the session; Bun stack bug)",
    foundBy: "long run, server mode, FUZZ_SEED=20261205 FUZZ_PATH=1121:0:1:0:3:3:3:3:3:1:1:1:1:1:1",
  },
  {
    test: "a request timeoutMs beyond the timer range does not fire at once",
    where: "src/rpc/peer.ts, src/rpc/_deadline.ts (no timer / clamped timer above 2^31-1 ms)",
    foundBy: "by reading, after the serve-side case",
  },
];
