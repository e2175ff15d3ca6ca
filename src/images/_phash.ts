/**
 * Perceptual hashes of grayscale rasters, and their Hamming distances. Pure math:
 * decoding and the first resize happen in _decode.ts (sharp). A hash is a
 * Uint8Array of bits, the first bit the most significant bit of byte 0.
 */

/**
 * The summed-area table of a `width` x `height` raster: (width + 1) x (height + 1)
 * values, entry (x, y) the sum of the pixels left of x and above y. Every crop's box
 * filter reads it.
 */
export function integralImage(pixels: ArrayLike<number>, width: number, height: number): Float64Array {
  if (pixels.length !== width * height) throw new RangeError(`integralImage: ${pixels.length} pixels, expected ${width * height}`)
  const w = width + 1
  const sat = new Float64Array(w * (height + 1))
  for (let y = 0; y < height; y++) {
    let row = 0
    for (let x = 0; x < width; x++) {
      row += pixels[y * width + x] as number
      sat[(y + 1) * w + x + 1] = (sat[y * w + x + 1] as number) + row
    }
  }
  return sat
}

/**
 * Box-filters the centred region of a `width` x `height` raster that leaves `crop` of
 * the width and of the height off each border (0 = the whole raster, 0.1 = the middle
 * 80 %) down to `nx` x `ny`, ignoring aspect: every output pixel is the mean of the input
 * area it covers, partial pixels weighted by the part covered. `sat` is the raster's
 * {@link integralImage}; between grid points it is interpolated bilinearly, which is
 * exact for the integral of a piecewise-constant image.
 */
export function cropResample(sat: Float64Array, width: number, height: number, crop: number, nx: number, ny: number = nx): Float64Array {
  const w = width + 1
  if (sat.length !== w * (height + 1)) throw new RangeError(`cropResample: table of ${sat.length}, expected ${w * (height + 1)}`)
  const xs = gridLine(crop * width, width - crop * width, nx, width)
  const ys = gridLine(crop * height, height - crop * height, ny, height)
  // The integral up to every box corner, then each box as a difference of four corners.
  const corners = new Float64Array((nx + 1) * (ny + 1))
  for (let q = 0; q <= ny; q++) {
    const j = ys.cell[q] as number
    const fy = ys.frac[q] as number
    for (let p = 0; p <= nx; p++) {
      const i = xs.cell[p] as number
      const fx = xs.frac[p] as number
      const top = (sat[j * w + i] as number) * (1 - fx) + (sat[j * w + i + 1] as number) * fx
      const bottom = (sat[(j + 1) * w + i] as number) * (1 - fx) + (sat[(j + 1) * w + i + 1] as number) * fx
      corners[q * (nx + 1) + p] = top * (1 - fy) + bottom * fy
    }
  }
  const area = (width * (1 - 2 * crop) * height * (1 - 2 * crop)) / (nx * ny)
  const out = new Float64Array(nx * ny)
  for (let q = 0; q < ny; q++) {
    for (let p = 0; p < nx; p++) {
      const c = q * (nx + 1) + p
      const d = c + nx + 1
      out[q * nx + p] = ((corners[d + 1] as number) - (corners[d] as number) - (corners[c + 1] as number) + (corners[c] as number)) / area
    }
  }
  return out
}

/** n + 1 evenly spaced points from lo to hi, each as a cell index (< size) and a fraction within it. */
function gridLine(lo: number, hi: number, n: number, size: number): { cell: Int32Array; frac: Float64Array } {
  const cell = new Int32Array(n + 1)
  const frac = new Float64Array(n + 1)
  for (let k = 0; k <= n; k++) {
    const at = k === n ? hi : lo + ((hi - lo) * k) / n
    const i = Math.min(Math.floor(at), size - 1)
    cell[k] = i
    frac[k] = at - i
  }
  return { cell, frac }
}

/**
 * pHash (Zauner 2010; phash.org's `ph_dct_imagehash`): the 2-D DCT-II of an `n` x `n`
 * grayscale raster; the `b` x `b` block of lowest frequencies without the DC row and
 * column (coefficients [1..b] x [1..b]); one bit per coefficient, set when it is above
 * the block's median. `b * b` bits, which must be a multiple of 8.
 */
export function dctHash(pixels: ArrayLike<number>, n: number, b: number): Uint8Array {
  if (pixels.length !== n * n) throw new RangeError(`dctHash: ${pixels.length} pixels, expected ${n * n}`)
  if (b + 1 > n || (b * b) % 8 !== 0) throw new RangeError(`dctHash: block ${b} of a ${n}x${n} raster`)
  const m = b + 1
  const basis = cosineBasis(n, m)
  // Rows first, keeping only the m lowest horizontal frequencies: n * m values, not n * n.
  // Stored transposed (u-major) so both passes read memory in order.
  const rows = new Float64Array(m * n)
  for (let y = 0; y < n; y++) {
    const base = y * n
    for (let u = 1; u < m; u++) {
      const bu = u * n
      let sum = 0
      for (let x = 0; x < n; x++) sum += (pixels[base + x] as number) * (basis[bu + x] as number)
      rows[u * n + y] = sum
    }
  }
  const block = new Float64Array(b * b)
  for (let v = 1; v < m; v++) {
    const bv = v * n
    for (let u = 1; u < m; u++) {
      const ru = u * n
      let sum = 0
      for (let y = 0; y < n; y++) sum += (rows[ru + y] as number) * (basis[bv + y] as number)
      block[(v - 1) * b + (u - 1)] = sum
    }
  }
  return thresholdBits(block, median(block))
}

/**
 * dHash (Krawetz 2013): a `w + 1` x `h` grayscale raster; one bit per horizontally
 * adjacent pair, set when the left pixel is brighter. `w * h` bits, a multiple of 8.
 */
export function differenceHash(pixels: ArrayLike<number>, w: number, h: number): Uint8Array {
  if (pixels.length !== (w + 1) * h) throw new RangeError(`differenceHash: ${pixels.length} pixels, expected ${(w + 1) * h}`)
  if ((w * h) % 8 !== 0) throw new RangeError(`differenceHash: ${w * h} bits, expected a multiple of 8`)
  const diffs = new Float64Array(w * h)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) diffs[y * w + x] = (pixels[y * (w + 1) + x] as number) - (pixels[y * (w + 1) + x + 1] as number)
  }
  return thresholdBits(diffs, 0)
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, i) => {
  let bits = 0
  for (let x = i; x > 0; x >>= 1) bits += x & 1
  return bits
})

/** Differing bits between `length` bytes of `a` from `aStart` and of `b` from `bStart`. */
export function hamming(a: Uint8Array, b: Uint8Array, aStart = 0, bStart = 0, length = a.length - aStart): number {
  let bits = 0
  for (let i = 0; i < length; i++) bits += POPCOUNT[(a[aStart + i] as number) ^ (b[bStart + i] as number)] as number
  return bits
}

/**
 * Distance between two crop sets: hashes of the whole image (slot 0) and of centred crops
 * (slots 1..), `bytes` bytes each. The smallest distance of whole against whole, a's
 * crops against b's whole, and a's whole against b's crops: if b is a centred crop of a
 * at one of the levels, b's whole hash matches that crop of a, and the other way round.
 */
export function cropSetDistance(a: Uint8Array, b: Uint8Array, bytes: number): number {
  if (a.length !== b.length || a.length % bytes !== 0) throw new RangeError(`hash lengths ${a.length} and ${b.length} bytes, expected equal multiples of ${bytes}`)
  let best = hamming(a, b, 0, 0, bytes)
  for (let s = bytes; s < a.length && best > 0; s += bytes) {
    best = Math.min(best, hamming(a, b, s, 0, bytes), hamming(a, b, 0, s, bytes))
  }
  return best
}

const bases = new Map<string, Float64Array>()

/** cos(pi (2x + 1) u / 2n) for u < m, x < n, row-major by u; cached per shape. */
function cosineBasis(n: number, m: number): Float64Array {
  const key = `${n}:${m}`
  let basis = bases.get(key)
  if (basis === undefined) {
    basis = new Float64Array(m * n)
    for (let u = 0; u < m; u++) for (let x = 0; x < n; x++) basis[u * n + x] = Math.cos((Math.PI * (2 * x + 1) * u) / (2 * n))
    bases.set(key, basis)
  }
  return basis
}

function median(values: Float64Array): number {
  const sorted = Float64Array.from(values).sort()
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

function thresholdBits(values: Float64Array, threshold: number): Uint8Array {
  const out = new Uint8Array(values.length >> 3)
  for (let i = 0; i < values.length; i++) if ((values[i] as number) > threshold) out[i >> 3]! |= 0x80 >> (i & 7)
  return out
}

/**
 * The crop set of a `width` x `height` raster: one {@link dctHash} (`n`, `b`) per crop
 * level of {@link cropResample}, concatenated in the order of `crops`, whose first level
 * must be 0 (the whole image) for {@link cropSetDistance}.
 */
export function cropSetHash(raster: ArrayLike<number>, width: number, height: number, crops: readonly number[], n: number, b: number): Uint8Array {
  const bytes = (b * b) >> 3
  const out = new Uint8Array(bytes * crops.length)
  const sat = integralImage(raster, width, height)
  for (const [i, crop] of crops.entries()) out.set(dctHash(cropResample(sat, width, height, crop, n), n, b), i * bytes)
  return out
}
