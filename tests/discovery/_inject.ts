// Test fixture: sends hostile mDNS traffic to 224.0.0.251:5353 from a raw UDP socket, then prints what it
// sent. Usage: _inject.ts <serviceName>

import { Buffer } from "node:buffer";
import { createSocket } from "node:dgram";
import { networkInterfaces } from "node:os";
import process from "node:process";
import { response, serviceRecords } from "./_packets.ts";

const name = process.argv[2] ?? "Target";
const iface = Object.values(networkInterfaces()).flat().find((i) => i && !i.internal && String(i.family) === "IPv4")!;
const counts = { malformed: 0, oversized: 0, wrongPort: 0, tooManyRecords: 0, invalid: 0, flood: 0 };

const open = (port: number) =>
  new Promise<ReturnType<typeof createSocket>>((resolve) => {
    const s = createSocket({ type: "udp4", reuseAddr: true });
    s.bind(port, "0.0.0.0", () => {
      s.setMulticastInterface(iface.address);
      resolve(s);
    });
  });
const mdns = await open(5353);
const other = await open(0);
const send = (s: ReturnType<typeof createSocket>, b: Uint8Array) =>
  new Promise<void>((r) => s.send(b, 5353, "224.0.0.251", () => r()));
const pace = () => new Promise((r) => setTimeout(r, 2));

// garbage, truncated and bit-flipped packets
const valid = response(serviceRecords({ name, instance: "Mutant" }));
for (let i = 0; i < 50; i++) {
  const junk = new Uint8Array(12 + (i * 37) % 500).map((_, j) => (j * 131 + i * 7) & 0xff);
  junk[2] = 0x84; // QR=1: claims to be a response
  await send(mdns, junk);
  await send(mdns, valid.subarray(0, 12 + (i % (valid.length - 12))));
  counts.malformed += 1; // truncations can decode; only the junk is sure to be malformed
  await pace();
}
// oversized (> 9000 bytes; the kernel fragments it)
await send(mdns, new Uint8Array(12000));
counts.oversized++;
// a valid-looking response from a port other than 5353 (RFC 6762 §6: ignore)
await send(other, response(serviceRecords({ name, instance: "WrongPort" })));
counts.wrongPort++;
// too many records
await send(
  mdns,
  response(Array.from({ length: 300 }, (_, i) => ({ type: "A", name: `x${i}.local`, ttl: 60, data: "10.9.9.9" }))),
);
counts.tooManyRecords++;
// huge TXT for an instance of ours, and a PTR of ours with the wrong class
const big = serviceRecords({
  name,
  instance: "HugeTxt",
  txt: Array.from({ length: 30 }, (_, i) => `k${i}=${"x".repeat(240)}`),
});
await send(mdns, response(big));
counts.invalid++;
const badClass = serviceRecords({ name, instance: "BadClass" });
badClass[0].class = "CH";
await send(mdns, response([badClass[0]]));
counts.invalid++;
// a flood of distinct instances, PTR only (never complete), beyond maxServices
for (let i = 0; i < 400; i++) {
  await send(mdns, response([serviceRecords({ name, instance: `Flood${i}` })[0]]));
  counts.flood++;
  if (i % 20 === 0) await pace();
}
console.log(JSON.stringify({ event: "sent", counts, bytes: Buffer.byteLength(JSON.stringify(counts)) }));
mdns.close();
other.close();
