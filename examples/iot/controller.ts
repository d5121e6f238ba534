// The IoT controller: devices authenticate with a token and stream telemetry to it; it lists
// devices as they come and go and sends them commands. Access control keeps each party to its
// own names: a device may only open the "telemetry" stream (operators may call "fleet.*"), and
// each device lets the controller call only its own "cmd.<id>.*" (device.ts).

import { type Context, handler, type Peer, RpcError, RpcServer, streamHandler } from "../../mod.ts";

/** Who authenticated: a device or an operator. */
export interface Principal {
  id: string;
  role: "device" | "operator";
}

/** What the controller knows about one device. */
export interface DeviceState {
  id: string;
  online: boolean;
  frames: number;
  lastTempC: number | undefined;
  peer: Peer | undefined;
}

/** Options of {@link startController}. */
export interface ControllerOptions {
  /** Token → principal (a provisioning database in real life). */
  tokens: Record<string, Principal>;
  /** Where the controller says what happens. */
  log?: (line: string) => void;
  /** Called when a device comes online (its telemetry stream opened) or goes offline. */
  onChange?: (d: DeviceState) => void;
}

/** Starts a controller on a free loopback port. */
export async function startController(opts: ControllerOptions) {
  const log = opts.log ?? console.log;
  const devices = new Map<string, DeviceState>();
  const principal = (ctx: Context) => ctx.principal as Principal;
  const server = RpcServer.builder()
    .name("iot-controller")
    .bind("127.0.0.1:0")
    .log(() => {})
    .onError(() => {})
    .authenticate(({ auth }) => {
      const p = opts.tokens[String(auth)];
      if (!p) throw new RpcError("UNAUTHENTICATED", "unknown token");
      return p;
    })
    .accessControl({
      defaultDeny: true,
      // Once per connection, from who authenticated.
      perPeer: ({ principal: p }) =>
        (p as Principal).role === "operator" ? { request: ["fleet.>", "$echostream.reflect"] } : { stream: ["telemetry"] },
    })
    .streamHandler(streamHandler("telemetry", async (ctx, s) => {
      const id = principal(ctx).id;
      const d = devices.get(id) ?? { id, online: false, frames: 0, lastTempC: undefined, peer: undefined };
      devices.set(id, Object.assign(d, { online: true, peer: ctx.peer }));
      opts.onChange?.(d);
      try {
        for await (const f of s) {
          const r = JSON.parse(new TextDecoder().decode(f)) as { tempC: number };
          d.frames++;
          d.lastTempC = r.tempC;
        }
      } finally {
        d.online = false;
        d.peer = undefined;
        opts.onChange?.(d);
      }
    }, { description: "A device's readings: JSON frames { tempC, at }" }))
    .handler(handler("fleet.list", () => [...devices.values()].map(({ id, online, frames, lastTempC }) => ({ id, online, frames, lastTempC })), {
      description: "Every device seen, online or not (operators only)",
      idempotent: true,
    }))
    .build();
  await server.start();
  log(`[controller] listening on ${server.address}`);
  return {
    server,
    devices,
    /** Calls `cmd.<id>.<name>` on an online device. */
    command(id: string, name: string, input?: unknown): Promise<unknown> {
      const peer = devices.get(id)?.peer;
      if (!peer) return Promise.reject(new RpcError("UNAVAILABLE", `${id} is offline`));
      return peer.request(`cmd.${id}.${name}`, input, { timeoutMs: 3000 });
    },
    close: () => server.close({ graceMs: 500 }),
  };
}
