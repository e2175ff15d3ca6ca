/**
 * Score histograms as fixed-width binned counts, so a report of any size keeps a few
 * hundred numbers per distribution instead of the scores. Private to the report files.
 */

/** A binned distribution, as the report data carries it. */
export interface Histogram {
  lo: number // left edge of the first bin
  hi: number // right edge of the last bin
  counts: number[] // values per bin; bin i covers [lo + i w, lo + (i + 1) w), the last bin also hi (w = (hi - lo) / counts.length)
  below: number // values under lo - EDGE_SLACK, not in any bin
  above: number // values over hi + EDGE_SLACK, not in any bin (e.g. ceilings pos_score + threshold above 1)
  total: number // values counted: in the bins, below and above (NaN is not counted)
  mean: number | null // exact mean of every counted value (null when there are none)
}

/** Values this close outside [lo, hi] (float32 scores a few ulps past 1) go into the edge bins. */
export const EDGE_SLACK = 1e-3

/** Accumulates values into `bins` equal bins over [lo, hi]. */
export class ScoreBins {
  readonly lo: number
  readonly hi: number
  private readonly counts: Float64Array
  private readonly scale: number
  private total = 0
  private below = 0
  private above = 0
  private sum = 0

  constructor(lo: number, hi: number, bins: number) {
    if (!(hi > lo) || !Number.isInteger(bins) || bins < 1) throw new RangeError(`bins over [${lo}, ${hi}] x ${bins}, expected lo < hi and bins >= 1`)
    this.lo = lo
    this.hi = hi
    this.counts = new Float64Array(bins)
    this.scale = bins / (hi - lo)
  }

  /** Counts one value; values a hair outside [lo, hi] (float rounding past 1) land in the edge bins. */
  add(value: number): void {
    if (Number.isNaN(value)) return
    this.total++
    this.sum += value
    if (value < this.lo - EDGE_SLACK) this.below++
    else if (value > this.hi + EDGE_SLACK) this.above++
    else {
      const i = Math.min(this.counts.length - 1, Math.max(0, Math.floor((value - this.lo) * this.scale)))
      this.counts[i] = (this.counts[i] as number) + 1
    }
  }

  /** The counts as plain data. */
  histogram(): Histogram {
    const mean = this.total === 0 ? null : this.sum / this.total
    return { lo: this.lo, hi: this.hi, counts: Array.from(this.counts), below: this.below, above: this.above, total: this.total, mean }
  }
}

/**
 * The value below which a share `q` (0..1) of a histogram's values fall, interpolated
 * linearly inside the bin that holds it: exact to within one bin width. -Infinity or
 * Infinity when it falls among the values outside the bins; null when there are none.
 */
export function binnedQuantile(h: Histogram, q: number): number | null {
  if (h.total === 0) return null
  const width = (h.hi - h.lo) / h.counts.length
  const target = Math.min(1, Math.max(0, q)) * h.total
  if (h.below > 0 && target <= h.below) return -Infinity
  let below = h.below
  for (const [i, c] of h.counts.entries()) {
    if (c > 0 && below + c >= target) return h.lo + width * (i + (target - below) / c)
    below += c
  }
  return h.above > 0 ? Infinity : h.hi
}

/** The bins [first, last] that hold any value across `histograms` (all with the same bins); null when all are empty. */
export function occupiedBins(histograms: readonly Histogram[]): [number, number] | null {
  let first = Infinity
  let last = -Infinity
  for (const h of histograms) {
    h.counts.forEach((c, i) => {
      if (c > 0) {
        first = Math.min(first, i)
        last = Math.max(last, i)
      }
    })
  }
  return Number.isFinite(first) ? [first, last] : null
}
