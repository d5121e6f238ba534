// An IoT-style device: an EchoStream server that advertises itself on the LAN with DNS-SD over
// multicast DNS, so controllers find it with no configuration (see controller.ts).
//
// Run:  bun examples/discovery/device.ts [ServiceName]
//       deno run --unstable-net --allow-net --allow-env --allow-sys=networkInterfaces examples/discovery/device.ts
// Several devices may use the same service name: the second becomes "SmartLamp (2)", and so on.

import process from "node:process";
import { handler, RpcServer } from "../../mod.ts";

/** A running device: its server (`server.discovery` is its advertisement). */
export interface Device {
  server: RpcServer;
  /** The instance name published (`name`, or `name (2)`… after a conflict). */
  instanceName: string;
  /** Says goodbye on the network, then stops the server. */
  close(): Promise<void>;
}

/** Starts a lamp on an ephemeral UDP port of every interface and advertises it as `name`. */
export async function startDevice(name = "SmartLamp"): Promise<Device> {
  let on = false;
  const server = RpcServer.builder()
    .bind("0.0.0.0:0")
    .handler(handler("device.info", () => ({ kind: "lamp", on })))
    .handler(handler("device.toggle", () => (on = !on)))
    .enableDiscovery(name) // advertised once listening, with TXT fp = the certificate's fingerprint
    .log((m) => console.log(`[device] ${m}`)) // no .tls(): a development certificate
    .build();
  await server.start();
  if (!server.discovery) {
    await server.close();
    throw new Error("multicast DNS is not available here: the device cannot be advertised");
  }
  return { server, instanceName: server.discovery.instanceName, close: () => server.close() };
}

if (import.meta.main) {
  const device = await startDevice(process.argv[2]);
  console.log(
    `[device] "${device.instanceName}" on UDP port ${device.server.address.split(":").pop()}, fingerprint ${
      device.server.trust.fingerprint.slice(0, 16)
    }…`,
  );
  console.log("[device] advertised; SIGINT or SIGTERM stops it");
  const stop = async () => {
    await device.close();
    console.log("[device] goodbye sent, stopped");
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
