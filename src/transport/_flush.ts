// A connection's record of its streams' last write, and the short wait `close()` makes after a
// recent one. A QUIC close is abrupt: CONNECTION_CLOSE ends every stream at once. Data written
// just before it can be lost two ways, both reproduced (docs/TRANSPORT.md "Close right after a
// write"): Deno's own close discards what quinn has buffered but not sent; and a Deno (quinn)
// server that receives the data and the close in one flight drops the streams its accept loop
// had not taken yet, which loses events a Node (@matrixai/quic) client emitted just before
// closing. Waiting a moment lets the data leave and the peer accept its streams first.

/**
 * How long `close()` waits after a recent write (ms). 1 ms was enough on loopback; 25 leaves
 * room for a busy event loop on either side.
 */
export const FLUSH_BEFORE_CLOSE_MS = 25;
/** Writes older than this are taken as delivered: `close()` does not wait for them (ms). */
export const RECENT_WRITE_MS = 1000;

/** When a connection's streams last wrote (`performance.now()`), for `close()`. */
export interface WriteClock {
  at: number;
}

/** Waits {@link FLUSH_BEFORE_CLOSE_MS} when `clock` saw a write in the last {@link RECENT_WRITE_MS}. */
export async function flushBeforeClose(clock: WriteClock): Promise<void> {
  if (performance.now() - clock.at < RECENT_WRITE_MS) await new Promise((r) => setTimeout(r, FLUSH_BEFORE_CLOSE_MS));
}
