// UTF-8 helpers shared by both codec implementations.

const decoder = new TextDecoder();
export const utf8Encoder: TextEncoder = new TextEncoder();

/** Decodes already-validated UTF-8; short ASCII (most names) skips TextDecoder's call cost. */
export function utf8Decode(buf: Uint8Array, off: number, len: number): string {
  if (len === 0) return "";
  if (len <= 24) {
    let s = "";
    for (let i = off; i < off + len; i++) {
      const c = buf[i];
      if (c >= 0x80) return decoder.decode(buf.subarray(off, off + len));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return decoder.decode(buf.subarray(off, off + len));
}

/** Whether `buf[off..off+len]` is well-formed UTF-8; returns -1, or the offset of the first bad byte. */
export function utf8Invalid(buf: Uint8Array, off: number, len: number): number {
  const end = off + len;
  let i = off;
  while (i < end) {
    const c = buf[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else return i;
    if (i + n >= end) return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const cc = buf[i + k];
      if ((cc & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

/** An empty, frozen, null-prototype metadata object shared by frames without metadata. */
export const EMPTY_METADATA: Record<string, string> = Object.freeze(Object.create(null));

const SLAB_SIZE = 64 * 1024;
const SLAB_MAX = 4096;
let slab = new ArrayBuffer(SLAB_SIZE);
let slabUsed = 0;

/**
 * A new byte array of `n` bytes. Small ones are carved from a shared 64 KiB slab (as Node's
 * Buffer pool does): a small typed array of its own costs about a microsecond on V8 and about
 * 300 ns on Bun, far more than encoding a frame or making a view (about 70 ns). A result keeps
 * its slab alive while it lives; larger ones get a buffer of their own.
 */
export function allocBytes(n: number): Uint8Array {
  if (n > SLAB_MAX) return new Uint8Array(n);
  if (slabUsed + n > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  slabUsed += (n + 7) & ~7;
  return out;
}

/** A new byte array holding a copy of `src`, from {@link allocBytes} (a large one: `slice`). */
export function copyBytes(src: Uint8Array): Uint8Array {
  if (src.length > SLAB_MAX) return src.slice();
  const out = allocBytes(src.length);
  out.set(src);
  return out;
}
