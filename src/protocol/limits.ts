/**
 * Receive-side protocol limits, with their defaults in one place. Every limit is checked before
 * the bytes it guards are buffered.
 *
 * @module
 */

/** Limits applied to every frame read off (and written to) the wire. */
export interface ProtocolLimits {
  /**
   * Largest frame body in bytes (header fields plus payload). Checked on the length prefix,
   * before any of the body is buffered.
   * @default {16777216} (16 MiB)
   */
  maxFrameSize: number;
  /**
   * Longest method, topic, stream or peer name, and metadata key, in UTF-8 bytes.
   * @default {256}
   */
  maxNameLength: number;
  /**
   * Most metadata entries in one frame.
   * @default {64}
   */
  maxMetadataEntries: number;
  /**
   * Most metadata bytes (keys plus values) in one frame.
   * @default {8192}
   */
  maxMetadataBytes: number;
}

/** Hard ceiling on `maxFrameSize`, whatever the options say: 1 GiB. */
export const MAX_FRAME_SIZE_CEILING = 1 << 30;

/** The default limits. */
export const DEFAULT_LIMITS: Readonly<ProtocolLimits> = Object.freeze({
  maxFrameSize: 16 * 1024 * 1024,
  maxNameLength: 256,
  maxMetadataEntries: 64,
  maxMetadataBytes: 8192,
});

/**
 * Fills in defaults and checks each limit is a positive integer within its ceiling.
 *
 * @param limits Overrides; anything left out keeps its default.
 * @returns The complete, frozen limits.
 * @throws {RangeError} When a limit is not a positive safe integer or exceeds its ceiling.
 */
export function resolveLimits(limits: Partial<ProtocolLimits> = {}): Readonly<ProtocolLimits> {
  const out = { ...DEFAULT_LIMITS, ...limits };
  for (const [key, value] of Object.entries(out)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`limit ${key} must be a positive integer, received ${String(value)}`);
    }
  }
  if (out.maxFrameSize > MAX_FRAME_SIZE_CEILING) {
    throw new RangeError(
      `limit maxFrameSize must be at most ${MAX_FRAME_SIZE_CEILING}, received ${out.maxFrameSize}`,
    );
  }
  return Object.freeze(out);
}
