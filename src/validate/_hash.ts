/**
 * Compact text identity for checks that must remember every row of a large file
 * (duplicate ids and pairs, group sizes, forbidden texts): a 64-bit hash per text kept
 * in an open-addressing table of typed arrays (12 bytes a slot, at most 60% full: 20-40
 * bytes per text), never
 * the strings themselves. Private to the validate files.
 */

/** A 64-bit hash as two unsigned 32-bit halves. */
export interface Hash64 {
  hi: number
  lo: number
}

// Not a UTF-16 code unit, so "ab" + "c" and "a" + "bc" hash apart.
const SEPARATOR = 0x10000

/**
 * The 64-bit hash of a sequence of strings (each followed by a separator). Two 32-bit
 * lanes with different multipliers and rotations, then murmur3's finaliser mixing both;
 * ~10x faster than `createHash('sha1')` per short string on Node 20, which matters at a
 * million rows. Not cryptographic: distinct texts collide with probability about
 * n^2 / 2^65 (3e-8 for a million texts), and a collision can only add a false duplicate.
 */
export function hashTexts(...texts: string[]): Hash64 {
  let h1 = 0x2545f491
  let h2 = 0x6a09e667
  for (const text of texts) {
    for (let i = 0; i <= text.length; i++) {
      const code = i < text.length ? text.charCodeAt(i) : SEPARATOR
      h1 ^= code
      h1 = Math.imul((h1 << 15) | (h1 >>> 17), 0x9e3779b1)
      h2 ^= code
      h2 = Math.imul((h2 << 13) | (h2 >>> 19), 0x85ebca77)
    }
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b)
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x85ebca6b)
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 0xc2b2ae35)
  h1 ^= h1 >>> 16
  h2 ^= h2 >>> 16
  return { hi: h2 >>> 0, lo: h1 >>> 0 }
}


/**
 * A map from 64-bit hashes to unsigned 32-bit values (a row, an ordinal), in typed
 * arrays: 12 bytes a slot, grown by doubling when 60% full.
 */
export class HashIndex64 {
  private hi: Uint32Array
  private lo: Uint32Array
  private values: Uint32Array
  private mask: number
  private count = 0

  constructor(capacity = 1024) {
    let size = 1024
    while (size < capacity) size *= 2
    this.hi = new Uint32Array(size)
    this.lo = new Uint32Array(size)
    this.values = new Uint32Array(size)
    this.mask = size - 1
  }

  /** Number of keys held. */
  get size(): number {
    return this.count
  }

  /** Bytes held by the table's arrays. */
  get bytes(): number {
    return this.hi.byteLength * 3
  }

  /** The value stored for `key`, or -1 when absent. */
  get(key: Hash64): number {
    const [hi, lo] = slotKey(key)
    for (let i = lo & this.mask; ; i = (i + 1) & this.mask) {
      if (this.hi[i] === 0 && this.lo[i] === 0) return -1
      if (this.hi[i] === hi && this.lo[i] === lo) return this.values[i]!
    }
  }

  /** Stores `value` for a new `key` and returns -1; for a key already held, returns its value and changes nothing. */
  putIfAbsent(key: Hash64, value: number): number {
    const [hi, lo] = slotKey(key)
    for (let i = lo & this.mask; ; i = (i + 1) & this.mask) {
      if (this.hi[i] === 0 && this.lo[i] === 0) {
        this.hi[i] = hi
        this.lo[i] = lo
        this.values[i] = value
        if (++this.count > (this.mask + 1) * 0.6) this.grow()
        return -1
      }
      if (this.hi[i] === hi && this.lo[i] === lo) return this.values[i]!
    }
  }

  private grow(): void {
    const { hi, lo, values } = this
    const size = hi.length * 2
    this.hi = new Uint32Array(size)
    this.lo = new Uint32Array(size)
    this.values = new Uint32Array(size)
    this.mask = size - 1
    for (let j = 0; j < hi.length; j++) {
      if (hi[j] === 0 && lo[j] === 0) continue
      let i = lo[j]! & this.mask
      while (this.hi[i] !== 0 || this.lo[i] !== 0) i = (i + 1) & this.mask
      this.hi[i] = hi[j]!
      this.lo[i] = lo[j]!
      this.values[i] = values[j]!
    }
  }
}

/** (0, 0) marks an empty slot, so that one hash is moved to (0, 1). */
function slotKey({ hi, lo }: Hash64): [number, number] {
  return hi === 0 && lo === 0 ? [0, 1] : [hi, lo]
}
