// The abuse server's configuration, shared by the server child (_server.ts), the attackers and
// the assertions (abuse.test.ts, bench/abuse.ts): what the tests expect is read from the same
// numbers the server was built with.

/** Limits of the abuse server: production-shaped, tightened so each attack hits them quickly. */
export const LIMITS = {
  /** No HELLO (or a hung authenticate) for this long: the connection is closed with 0x105. */
  handshakeTimeoutMs: 2000,
  /** Slowloris and silent streams are ended after this long without a complete first frame. */
  firstFrameTimeoutMs: 1500,
  /** A subscriber not reading its events is closed with 0x108 past this many queued bytes. */
  maxOutgoingBytes: 1024 * 1024,
  /** Rapid reset: more than this many cancels/resets per window closes the connection with 0x107. */
  maxResets: 100,
  resetWindowMs: 10_000,
  /** Connection admission (every test process connects from 127.0.0.1: one address). */
  maxConnectionsPerAddress: 64,
  maxPendingHandshakes: 32,
  /** Frames larger than this are refused (RESOURCE_EXHAUSTED, counted as oversizeFrames). */
  maxFrameSize: 64 * 1024,
} as const;

/** The event rate limit, per connection. */
export const EVENT_RATE = { perSecond: 2000, burst: 500 } as const;

/** What the access policy allows and denies. */
export const POLICY = {
  request: { allow: ["echo", "slow", "stats", "gc", "bcast.*"], deny: ["secret.>"] },
  event: { allow: ["tick"], deny: ["secret.>"] },
  stream: { allow: ["echo"], deny: ["secret.>"] },
} as const;

/** Application close codes (src/protocol/version.ts CloseCode), spelled out for the assertions. */
export const CLOSE = {
  HANDSHAKE_TIMEOUT: 0x105,
  CONNECTION_LIMIT: 0x106,
  TOO_MANY_RESETS: 0x107,
  SLOW_CONSUMER: 0x108,
} as const;

/** What the server's "stats" handler answers. */
export interface ServerSnapshot {
  runtime: "bun" | "deno";
  /** Resident set size of the server process, bytes. */
  rss: number;
  /** The JS heap in use and memory held outside it (buffers), bytes. */
  heapUsed: number;
  external: number;
  /** `server.stats()`. */
  stats: {
    connections: number;
    handshaking: number;
    inFlight: number;
    openStreams: number;
    eventsReceived: number;
    requestsServed: number;
    rejected: Record<string, number>;
    [k: string]: unknown;
  };
  /** The application's own counters (handlers that ran). */
  app: {
    echo: number;
    ticks: number;
    secretCalls: number;
    secretEvents: number;
    secretStreams: number;
    slow: { started: number; running: number; peak: number; completed: number; cancelled: number };
    bcast: { sent: number; failed: number; active: boolean };
    errors: Record<string, number>;
    lastErrors: string[];
  };
}
