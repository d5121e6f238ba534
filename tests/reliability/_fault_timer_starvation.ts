// Runtime repro, not a test: how late timers run while a UDP socket has a backlog. A socket whose
// handler costs ~100 µs per datagram is flooded for 3 s by a child process; a 10 ms interval
// counts its ticks. Measured here: Bun 1.4.5 ran 20 of ~300 ticks (one 2.5 s late), Node 20 173
// (max 0.4 s late), Deno 2.9.6 207 (max 35 ms). The soak's server on Bun, starved of CPU with its
// QUIC socket overflowing, showed the same: per-connection clock PINGs not sent for over 5 s.
//
//   bun tests/reliability/_fault_timer_starvation.ts     (or: deno run -A …)
import dgram from "node:dgram";
import { spawn } from "node:child_process";
const sock = dgram.createSocket("udp4");
let got = 0;
sock.on("message", () => {
  got++;
  const t = performance.now();
  while (performance.now() - t < 0.1) { /* the handler's work */ }
});
await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
const port = sock.address().port;
const lates: number[] = [];
let last = performance.now();
const iv = setInterval(() => {
  const n = performance.now();
  lates.push(n - last - 10);
  last = n;
}, 10);
const child = spawn(process.execPath, ["-e", `
const d = require("node:dgram").createSocket("udp4"); const b = Buffer.alloc(100);
const end = Date.now() + 3000; (function go(){ for (let i=0;i<200;i++) d.send(b, ${port}, "127.0.0.1"); if (Date.now()<end) setImmediate(go); else setTimeout(()=>process.exit(0),100); })();`], { stdio: "inherit" });
await new Promise((r) => child.on("exit", r));
clearInterval(iv); sock.close();
lates.sort((a, b) => a - b);
console.log(JSON.stringify({ got, ticks: lates.length, expectedTicks: 300, p50: lates[lates.length >> 1]?.toFixed(1), max: lates.at(-1)?.toFixed(1) }));
