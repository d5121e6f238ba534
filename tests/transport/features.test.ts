// Development certificates by default, 0-RTT resumption and mutual TLS over real QUIC, on Bun
// and on Deno, each in its own process (features_check.ts).

import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { run, tool } from "../support/process.ts";

const CHECK = join(import.meta.dir, "features_check.ts");

for (const rt of ["bun", "deno"] as const) {
  describe(`transport features on ${rt}`, () => {
    let r: Record<string, unknown>;
    beforeAll(async () => {
      const cmd = rt === "bun" ? [tool("bun"), CHECK] : [tool("deno"), "run", "--unstable-net", "-A", CHECK];
      const out = await run(cmd, { timeoutMs: 60_000 });
      r = JSON.parse(out.stdout.trim().split("\n").pop()!);
    }, 70_000);

    test("no tls: a development certificate is served, logged, and trusted by CA or pinned fingerprint", () => {
      expect(r.devCert).toEqual({ hasCa: true, logged: true, byCa: "ca", byPin: "pin" });
    });

    test("0-RTT: the first connection is a full handshake, later ones resume and carry early data", () => {
      const rounds = r.zeroRtt as { resumed: boolean; earlyDataAccepted?: boolean; echo: string }[];
      expect(rounds.map((x) => x.echo)).toEqual(["early 0", "early 1", "early 2"]);
      expect(rounds.map((x) => x.resumed)).toEqual([false, true, true]);
      // Bun reports acceptance; Deno does not say (undefined).
      if (rt === "bun") expect(rounds.map((x) => x.earlyDataAccepted)).toEqual([false, true, true]);
      else expect(rounds.slice(1).map((x) => x.earlyDataAccepted)).toEqual([undefined, undefined]);
    });

    test("0-RTT to an IPv6 server after an IPv4 one: both connections answer, the second resumed", () => {
      expect(r.zeroRttV6).toEqual([{ resumed: false, echo: "v6 0" }, { resumed: true, echo: "v6 1" }]);
    });

    if (rt === "bun") {
      test("mutual TLS: a client certificate from the client CA is required and seen by the server", () => {
        expect(r.mtlsWithCert).toBe("mtls");
        expect(r.mtlsPeer).toEqual({ subject: "CN=client-1", fingerprint: r.clientFingerprint });
        expect(r.mtlsWithoutCert).toBe("TLS_VERIFICATION");
      });
    } else {
      test("mutual TLS: Deno's server cannot verify client certificates, so clientCa is refused", () => {
        expect(r.mtls).toBe("UNSUPPORTED");
      });
    }
  });
}
