// Test support: real message buses (Debian's nats-server and redis-server) on free loopback
// ports, never mocks: the cluster adapters are only as good as what they were tested against.
// Each server is a child process bound to 127.0.0.1; `restart()` brings it back on the same
// port so a test can watch clients reconnect, and every server still running when the test
// process exits is killed with it.

import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A running message-bus server on loopback, as the tests use it. */
export interface Bus {
  kind: "nats" | "redis";
  /** `nats://127.0.0.1:PORT` or `redis://127.0.0.1:PORT`. */
  url: string;
  port: number;
  /** Kills the server and waits for it to exit. */
  stop(): Promise<void>;
  /** Stops the server, then starts it again on the same port; resolves once it accepts connections. */
  restart(): Promise<void>;
}

type Kind = Bus["kind"];
type Proc = ReturnType<typeof Bun.spawn>;

const READY_TIMEOUT_MS = 10_000;
const POLL_MS = 20;
// Kept from each server's output, for the error when it dies or never gets ready.
const OUTPUT_LIMIT = 8192;

// Servers still running (with redis's scratch dir), killed when the test process exits: a
// failed test skips its afterAll.
const live = new Map<Proc, string | undefined>();
let exitHookInstalled = false;

function track(proc: Proc, dir: string | undefined): void {
  live.set(proc, dir);
  void proc.exited.then(() => live.delete(proc));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const [p, d] of live) {
      p.kill("SIGKILL");
      if (d) rmSync(d, { recursive: true, force: true });
    }
  };
  process.on("exit", killAll);
  // A signal ends the process without "exit" (Ctrl-C on a test run, a CI timeout's SIGTERM):
  // without these the servers would outlive it.
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(code);
    });
  }
}

// /usr/sbin is where Debian puts nats-server, and it is not on every user's PATH.
function binary(name: string): string {
  const path = Bun.which(name, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/usr/local/sbin:/usr/local/bin` });
  if (!path) throw new Error(`${name} is not installed (apt-get install ${name}; .ci/run installs it)`);
  return path;
}

/** Binds a TCP listener on 127.0.0.1:`port` (0: any free one), closes it, and returns the port. */
async function bindAndClose(port: number): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(port, "127.0.0.1", resolve);
  });
  const bound = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return bound;
}

/** A port nothing listens on right now (the OS picks it; the listener is closed at once). */
function freePort(): Promise<number> {
  return bindAndClose(0);
}

/**
 * Throws unless `port` is free on 127.0.0.1: a server already there would answer the readiness
 * probe while ours fails to bind and exits.
 */
async function assertFree(port: number): Promise<void> {
  await bindAndClose(port).catch((e) => {
    throw new Error(`port ${port} on 127.0.0.1 is already in use: ${(e as Error).message}`);
  });
}

/**
 * One readiness probe: connects, and for redis sends PING. True once the server said what a
 * ready server says (nats: its `INFO` line on connect; redis: `+PONG`), false on anything else.
 */
function probe(kind: Kind, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port });
    let got = "";
    const done = (ok: boolean) => {
      clearTimeout(t);
      sock.destroy();
      resolve(ok);
    };
    // A server that accepts but never answers is not ready either.
    const t = setTimeout(() => done(false), 1000);
    sock.once("error", () => done(false));
    sock.once("close", () => done(false));
    sock.once("connect", () => {
      if (kind === "redis") sock.write("PING\r\n");
    });
    sock.on("data", (chunk) => {
      got += chunk.toString("latin1");
      if (!got.includes("\r\n")) return;
      done(kind === "nats" ? got.startsWith("INFO ") : got.startsWith("+PONG"));
    });
  });
}

/** Appends everything `stream` produces to `out.text`, keeping the last OUTPUT_LIMIT characters. */
async function drain(stream: ReadableStream<Uint8Array>, out: { text: string }): Promise<void> {
  const decoder = new TextDecoder();
  // Read for the process's whole life: a pipe nobody empties would block a chatty server. (The
  // cast: Bun's ReadableStream is async iterable, tsc's DOM lib does not say so.)
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    out.text = (out.text + decoder.decode(chunk, { stream: true })).slice(-OUTPUT_LIMIT);
  }
}

class BusProcess implements Bus {
  readonly url: string;
  private proc: Proc | undefined;
  private dir: string | undefined;
  private output = { text: "" };

  constructor(readonly kind: Kind, readonly port: number) {
    this.url = `${kind}://127.0.0.1:${port}`;
  }

  /** Spawns the server and resolves once it answers a probe; throws (after killing it) if it never does. */
  async start(): Promise<void> {
    const bin = binary(this.kind === "nats" ? "nats-server" : "redis-server");
    await assertFree(this.port);
    let args: string[];
    if (this.kind === "redis") {
      // Its own scratch dir, no persistence: a restarted redis comes back empty, like a new one.
      this.dir = mkdtempSync(join(tmpdir(), "echostream-redis-"));
      args = [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--dir",
        this.dir,
      ];
    } else {
      args = ["-a", "127.0.0.1", "-p", String(this.port)];
    }
    this.output = { text: "" };
    const proc = Bun.spawn([bin, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    this.proc = proc;
    track(proc, this.dir);
    void drain(proc.stdout, this.output).catch(() => {});
    void drain(proc.stderr, this.output).catch(() => {});

    const end = performance.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        await this.halt();
        throw new Error(
          `${bin} exited (${
            proc.exitCode ?? proc.signalCode
          }) before accepting connections on port ${this.port}:\n${this.output.text}`,
        );
      }
      if (await probe(this.kind, this.port)) return;
      if (performance.now() > end) {
        await this.halt();
        throw new Error(
          `${bin} did not accept connections on port ${this.port} within ${READY_TIMEOUT_MS} ms:\n${this.output.text}`,
        );
      }
      await Bun.sleep(POLL_MS);
    }
  }

  /** Whether the last start's process exited before it was ready (e.g. its port was taken). */
  get died(): boolean {
    return this.proc !== undefined && (this.proc.exitCode !== null || this.proc.signalCode !== null);
  }

  async stop(): Promise<void> {
    await this.halt();
  }

  async restart(): Promise<void> {
    await this.halt();
    await this.start();
  }

  // SIGTERM (both shut down at once, closing their clients' connections), SIGKILL if it lingers.
  private async halt(): Promise<void> {
    const proc = this.proc;
    if (proc) {
      proc.kill();
      const t = setTimeout(() => proc.kill("SIGKILL"), 2000);
      await proc.exited;
      clearTimeout(t);
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}

async function startBus(k: Kind, port?: number): Promise<Bus> {
  // A port picked here can be taken by someone else before the server binds it: try another.
  for (let attempt = 1;; attempt++) {
    const bus = new BusProcess(k, port ?? (await freePort()));
    try {
      await bus.start();
      return bus;
    } catch (e) {
      if (port !== undefined || attempt >= 3 || !bus.died) throw e;
    }
  }
}

/**
 * Starts Debian's nats-server on 127.0.0.1 (`-a 127.0.0.1 -p PORT`, no monitoring port).
 * @param opts.port The port to listen on; default a free one.
 * @returns Once the server sent its `INFO` line to a connection.
 * @throws {Error} When nats-server is not installed, exits, or is not ready within 10 s (with its output).
 */
export async function startNats(opts: { port?: number } = {}): Promise<Bus> {
  return await startBus("nats", opts.port);
}

/**
 * Starts Debian's redis-server on 127.0.0.1, without persistence, in a temporary directory.
 * @param opts.port The port to listen on; default a free one.
 * @returns Once the server answered `PING` with `+PONG`.
 * @throws {Error} When redis-server is not installed, exits, or is not ready within 10 s (with its output).
 */
export async function startRedis(opts: { port?: number } = {}): Promise<Bus> {
  return await startBus("redis", opts.port);
}
