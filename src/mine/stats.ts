/**
 * Run statistics: counts per group and overall, and score distributions for the
 * end-of-run summary and the manifest.
 */
import type { SelectOutcome } from './select.js'
import type { FalseNegativeCounts, MinedRow } from '../types.js'

/** Counts for one group (or for the whole run). */
export interface GroupCounts {
  rowsIn: number // pairs read
  rowsOut: number // rows written
  falseNegatives: number // pool candidates removed by the rules, summed over queries
  falseNegativesByRule: FalseNegativeCounts // the same, by the rule that removed them
  queriesWithFalseNegatives: number // queries with at least one candidate removed
  padded: number // rows padded to k by repeating negatives
  short: number // rows kept with fewer than k negatives (--pad none)
  dropped: number // rows dropped for having fewer than k negatives
  badImageRows: number // rows dropped before mining for a missing or undecodable image (--on-bad-image skip)
  multiPositiveQueries: number // queries (rows sharing a query identity) with two or more distinct labeled positives
  siblingPositivesExcluded: number // labeled positives of sibling rows left out of a row's pool besides its own, summed over rows
  sweep?: SweepPoint[] // with --sweep-thresholds: the margin rule's false negatives at each threshold, in the order given
}

/** One threshold of a sweep: what the margin rule alone would remove at it. */
export interface SweepPoint {
  threshold: number // the margin β
  falseNegatives: number // candidates above pos + β, summed over queries (counted like falseNegatives: the whole pool in exact mode)
  queriesWithFalseNegatives: number // queries with at least one
  falseNegativeQueryShare: number // UniME's FalseNeg% at this β: queriesWithFalseNegatives over the queries mined, 0..1
}

/** Percentiles of a score distribution (null when it is empty). */
export interface ScoreSummary {
  count: number // scores summarised
  mean: number | null // arithmetic mean
  p1: number | null // 1st percentile (nearest rank)
  p5: number | null
  p25: number | null
  p50: number | null
  p75: number | null
  p95: number | null
  p99: number | null
}

/** What a run's summary says. */
export interface MineSummary extends GroupCounts {
  falseNegativeQueryShare: number // UniME's FalseNeg%: share of mined queries with a false negative filtered, 0..1
  positiveScores: ScoreSummary // sim(query, positive) over written rows
  negativeScores: ScoreSummary // sim(query, negative) over distinct chosen negatives
  groups: Record<string, GroupCounts> // per group, by name ('' = global)
}

/** Counts of a group with nothing recorded yet. */
export function emptyGroupCounts(): GroupCounts {
  return {
    rowsIn: 0,
    rowsOut: 0,
    falseNegatives: 0,
    falseNegativesByRule: { margin: 0, other: 0, imageDuplicate: 0, textDuplicate: 0, rescore: 0 },
    queriesWithFalseNegatives: 0,
    padded: 0,
    short: 0,
    dropped: 0,
    badImageRows: 0,
    multiPositiveQueries: 0,
    siblingPositivesExcluded: 0,
  }
}

/** A growable float32 list; summaries need every score for exact percentiles. */
class ScoreList {
  private data = new Float32Array(1024)
  length = 0
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float32Array(this.data.length * 2)
      next.set(this.data)
      this.data = next
    }
    this.data[this.length++] = v
  }
  summarise(): ScoreSummary {
    const n = this.length
    if (n === 0) return { count: 0, mean: null, p1: null, p5: null, p25: null, p50: null, p75: null, p95: null, p99: null }
    const sorted = this.data.slice(0, n).sort()
    let sum = 0
    for (let i = 0; i < n; i++) sum += sorted[i] as number
    const at = (p: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] as number
    return { count: n, mean: sum / n, p1: at(1), p5: at(5), p25: at(25), p50: at(50), p75: at(75), p95: at(95), p99: at(99) }
  }
}

/** Accumulates counts and scores while a run streams its rows. */
export class MiningStats {
  private readonly total: GroupCounts
  private readonly groups = new Map<string, GroupCounts>()
  private readonly pos = new ScoreList()
  private readonly neg = new ScoreList()

  /** `sweep`: the thresholds of a sweep to count (default: none). */
  constructor(private readonly sweep: readonly number[] = []) {
    this.total = this.emptyCounts()
  }

  /**
   * Records one query's outcome; `row` is null when the row was dropped. `query` adds
   * the sibling positives left out and the sweep's counts (one per threshold).
   */
  record(group: string, row: MinedRow | null, outcome: SelectOutcome, byRule: FalseNegativeCounts, query?: { siblingPositives: number; sweep?: readonly number[] }): void {
    const falseNegatives = byRule.margin + byRule.other + byRule.imageDuplicate + byRule.textDuplicate + (byRule.rescore ?? 0)
    for (const c of [this.total, this.group(group)]) {
      c.siblingPositivesExcluded += query?.siblingPositives ?? 0
      if (c.sweep) {
        for (const [i, point] of c.sweep.entries()) {
          const n = query?.sweep?.[i] ?? 0
          point.falseNegatives += n
          if (n > 0) point.queriesWithFalseNegatives++
        }
      }
      c.rowsIn++
      c.falseNegatives += falseNegatives
      c.falseNegativesByRule.margin += byRule.margin
      c.falseNegativesByRule.other += byRule.other
      c.falseNegativesByRule.imageDuplicate += byRule.imageDuplicate
      c.falseNegativesByRule.textDuplicate += byRule.textDuplicate
      c.falseNegativesByRule.rescore = (c.falseNegativesByRule.rescore ?? 0) + (byRule.rescore ?? 0)
      if (falseNegatives > 0) c.queriesWithFalseNegatives++
      if (outcome === 'padded') c.padded++
      else if (outcome === 'short') c.short++
      else if (outcome === 'dropped') c.dropped++
      if (row) c.rowsOut++
    }
    if (!row) return
    this.pos.push(row.posScore)
    for (let i = 0; i < row.nValid; i++) this.neg.push(row.negScores[i] as number)
  }

  /** Records the queries of a group that have several labeled positives. */
  recordMultiPositive(group: string, queries: number): void {
    for (const c of [this.total, this.group(group)]) c.multiPositiveQueries += queries
  }

  /** Records a pair dropped before mining because one of its images is bad; it counts as read. */
  recordBadImage(group: string): void {
    for (const c of [this.total, this.group(group)]) {
      c.rowsIn++
      c.badImageRows++
    }
  }

  private group(name: string): GroupCounts {
    let g = this.groups.get(name)
    if (!g) this.groups.set(name, (g = this.emptyCounts()))
    return g
  }

  private emptyCounts(): GroupCounts {
    const c = emptyGroupCounts()
    if (this.sweep.length > 0) c.sweep = this.sweep.map((threshold) => ({ threshold, falseNegatives: 0, queriesWithFalseNegatives: 0, falseNegativeQueryShare: 0 }))
    return c
  }

  /** The summary so far. */
  summarise(): MineSummary {
    const mined = this.total.rowsIn - this.total.badImageRows
    for (const c of [this.total, ...this.groups.values()]) {
      const searched = c.rowsIn - c.badImageRows
      for (const point of c.sweep ?? []) point.falseNegativeQueryShare = searched === 0 ? 0 : point.queriesWithFalseNegatives / searched
    }
    return {
      ...this.total,
      // Over the queries mined: rows dropped for a bad image were never searched.
      falseNegativeQueryShare: mined === 0 ? 0 : this.total.queriesWithFalseNegatives / mined,
      positiveScores: this.pos.summarise(),
      negativeScores: this.neg.summarise(),
      groups: Object.fromEntries(this.groups),
    }
  }
}
