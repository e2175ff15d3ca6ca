/**
 * Seeded row samples for `--sample` and `--rescore`: which rows of a file set are
 * checked, the same for the same seed and row count. Private to the validate files.
 */
import { mulberry32 } from '../random.js'

/**
 * `n` distinct row indices drawn uniformly from [0, total), sorted ascending; all rows
 * when `n >= total`. Depends only on `total`, `n` and `seed`.
 */
export function sampleRows(total: number, n: number, seed: number): Int32Array {
  if (n >= total) return Int32Array.from({ length: total }, (_, i) => i)
  const next = mulberry32(seed ^ 0x5bd1e995)
  // Partial Fisher-Yates over a virtual identity array: only swapped slots are stored.
  const swapped = new Map<number, number>()
  const out = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(next() * (total - i))
    const vi = swapped.get(i) ?? i
    out[i] = swapped.get(j) ?? j
    swapped.set(j, vi)
  }
  return out.sort()
}

/** Index of the first element of sorted `rows` that is >= `value`. */
export function lowerBound(rows: Int32Array, value: number): number {
  let lo = 0
  let hi = rows.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (rows[mid]! < value) lo = mid + 1
    else hi = mid
  }
  return lo
}
