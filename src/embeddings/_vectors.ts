/**
 * The one normalisation rule every embedding reader applies, and its bad-vector errors:
 * rows are widened to float32, their sum of squares taken left to right in float64, and
 * each value divided by the square root. Private to `src/embeddings/`.
 */

import { HardnegError } from '../errors.js'

/** Element types an embedding file may store; all widen to float32 exactly. */
export type EmbeddingDtype = 'float32' | 'float16' | 'bfloat16'

/**
 * A row that cannot be normalised, as `onBadVector` reports it: the first non-finite
 * value, or an all-zero row (reported only when normalising).
 */
export interface BadVector {
  file: string // path as the user gave it
  row: number // 0-based row in the file
  problem: 'NaN' | 'Inf' | '-Inf' | 'zero' // what the row holds
  column: number // 0-based column of the first non-finite value; -1 for a zero row
}

/** How finished rows are checked and scaled. */
export interface RowRule {
  file: string // path as the user gave it, for messages
  dim: number // values per row
  normalize: boolean // scale rows to unit length
  onBadVector: ((bad: BadVector) => void) | undefined // report bad rows instead of throwing
}

/**
 * Given `sum`, the float64 sum of squares of `data[at .. at + dim - 1]`, rejects a
 * non-finite row and, when normalising, a zero row (or hands it to `onBadVector` and
 * leaves it as stored); then scales the row to unit length. `row` is the 0-based file row.
 */
export function finishRow(rule: RowRule, sum: number, data: Float32Array, at: number, row: number): void {
  const { file, dim } = rule
  const place = { file, row: row + 1 }
  if (!Number.isFinite(sum)) {
    let i = at
    while (Number.isFinite(data[i]!)) i++
    const x = data[i]!
    const what = Number.isNaN(x) ? 'NaN' : x > 0 ? 'Inf' : '-Inf'
    if (rule.onBadVector !== undefined) return rule.onBadVector({ file, row, problem: what, column: i - at })
    throw new HardnegError('E_BAD_VECTOR',
      `embedding row ${row} (0-based) contains ${what} at column ${i - at}; expected finite values`, place)
  }
  if (!rule.normalize) return
  if (sum === 0) {
    if (rule.onBadVector !== undefined) return rule.onBadVector({ file, row, problem: 'zero', column: -1 })
    throw new HardnegError('E_BAD_VECTOR', `embedding row ${row} (0-based) is all zeros; expected a non-zero vector`, place)
  }
  const norm = Math.sqrt(sum)
  for (let i = at; i < at + dim; i++) data[i] = data[i]! / norm
}

/** Sum of squares of `data[at .. at + dim - 1]`, left to right in float64. */
export function sumSquares(data: Float32Array, at: number, dim: number): number {
  let sum = 0
  for (let i = at; i < at + dim; i++) {
    const x = data[i]!
    sum += x * x
  }
  return sum
}

/** Decodes one float16 row into `out` and returns its sum of squares (as {@link sumSquares}). */
export function decodeHalfRow(table: Float32Array, src: Uint16Array, from: number, out: Float32Array, at: number, dim: number): number {
  let sum = 0
  for (let i = 0; i < dim; i++) {
    const x = table[src[from + i]!]!
    out[at + i] = x
    sum += x * x
  }
  return sum
}

/**
 * Decodes one bfloat16 row into `out` (whose bits `outBits` views) and returns its sum of
 * squares. bfloat16 is the upper half of a float32, so widening is a 16-bit shift.
 */
export function decodeBf16Row(src: Uint16Array, from: number, out: Float32Array, outBits: Uint32Array, at: number, dim: number): number {
  let sum = 0
  for (let i = 0; i < dim; i++) {
    outBits[at + i] = src[from + i]! << 16
    const x = out[at + i]!
    sum += x * x
  }
  return sum
}

/** Copies one float32 row into `out` and returns its sum of squares. */
export function copyRow(src: Float32Array, from: number, out: Float32Array, at: number, dim: number): number {
  out.set(src.subarray(from, from + dim), at)
  return sumSquares(out, at, dim)
}

/** Positions 0 .. n - 1 of `selection`, ordered by the row each selects (ties in position order). */
export function sortedOrder(selection: ArrayLike<number>): Uint32Array {
  const n = selection.length
  const order = new Uint32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  let sorted = true
  for (let i = 1; i < n && sorted; i++) sorted = selection[i - 1]! <= selection[i]!
  if (!sorted) order.sort((a, b) => selection[a]! - selection[b]! || a - b)
  return order
}
