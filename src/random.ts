/**
 * The seeded generator behind random sampling and validation subsets, shared by every
 * folder that samples (mine's select, validate, report).
 */

/** mulberry32: a small, well-known 32-bit generator; enough for choosing ranks. */
export function mulberry32(state: number): () => number {
  let s = state >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
