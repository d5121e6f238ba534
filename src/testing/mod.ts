/**
 * Test beds for EchoStream applications, exported as `@echostream/core/testing`. Today: a
 * userspace UDP relay that adds delay, jitter, loss, duplication and reordering between a QUIC
 * client and server, seeded and logged packet by packet (kernel netem is rarely available).
 *
 * @example Impair a connection
 * ```ts
 * import { startRelay } from "@echostream/core/testing";
 *
 * const relay = await startRelay({
 *   target: { host: "127.0.0.1", port: 5000 }, // the server
 *   seed: 7,
 *   toServer: { delayMs: 20, jitterMs: 5, loss: 0.02 },
 *   toClient: { delayMs: 20, jitterMs: 5 },
 * });
 * // Connect the client to relay.address instead of the server; relay.log is the ground truth.
 * console.log(relay.address, relay.log.length);
 * await relay.close();
 * ```
 *
 * @module
 */

export * from "./relay.ts";
export { seededRandom } from "./random.ts";
