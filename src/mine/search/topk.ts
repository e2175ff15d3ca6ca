/**
 * The query batch and result shapes shared by the searchers, and the running top-k
 * merge: the searchers' contract with `negatives.ts`.
 */
import { HardnegError } from '../../errors.js'
import { REMOVED_BELOW, RULE_BITS } from './_graph.js'

/** A block of queries to search, with what the rules need per query. */
export interface QueryBatch {
  rows: number // queries in this batch
  dim: number // vector dimension
  queries: Float32Array // rows x dim, L2-normalised
  positives?: Float32Array // rows x dim, L2-normalised; needed by the positive-similarity rule
  caps: Float32Array // per query: the highest score a candidate may have (the margin rule and absolute caps folded in)
  marginCaps?: Float32Array // per query: the margin rule's ceiling alone (pos + threshold), to count its removals apart; omit when `caps` is it and no other rule is on
  sweepCaps?: Float32Array // rows x S: per query, the margin rule's ceiling at each of the S thresholds of a sweep, counted in `sweepRemoved` (searchers created with `sweeps: S`)
  exclude: Int32Array // rows x excludeWidth pool indices left out of ranking and counts (-1 = none)
  excludeWidth: number // pool indices per query in `exclude`
}

/** Candidates for one query, best first; ties go to the lower pool index. */
export interface SearchResult {
  index: Int32Array // pool indices
  score: Float32Array // similarity to the query, aligned with `index`
  removed: number // pool candidates the rules removed (exact: over the whole pool; hnsw: over those fetched)
  removedByMargin: number // of those, the ones above the margin rule's ceiling (= removed when only the margin rule is on)
  sweepRemoved?: Int32Array // with a sweep: per threshold, the candidates above that margin ceiling (counted like `removed`)
  filtered?: RemovedCandidates // with keepRemoved > 0: the best-scoring removed candidates (exact: of the whole pool; hnsw: of those fetched)
}

/** Which rule removed a candidate: the folded score ceiling, or one of the similarity rules (the first in this order). */
export type RemovedBy = 'ceiling' | 'pos_sim' | 'query_sim'

/** Removed candidates for one query, best first; ties go to the lower pool index. Own positive and query texts are never among them. */
export interface RemovedCandidates {
  index: Int32Array // pool indices
  score: Float32Array // similarity to the query, aligned with `index`
  rule: RemovedBy[] // the rule that removed each, aligned with `index`
}

/** A running list for {@link mergeTopK}: candidates best first, with an optional byte tag each. */
export interface RankedList {
  index: Int32Array // pool indices
  score: Float32Array // scores, aligned with `index`
  tag?: Uint8Array // per candidate, carried along when the merge is given `tags`
}

/**
 * Merges one block's sorted candidates (`scores`/`indices` from `offset`, `count`
 * entries, indices local to the block starting at pool row `base`) into `r`, keeping
 * `keep`. A score below REMOVED_BELOW marks a candidate masked out of this ranking;
 * `skip` holds local indices to leave out. With `tags` (aligned with `scores`), each
 * candidate's tag is kept in `r.tag`.
 */
export function mergeTopK(
  r: RankedList,
  scores: Float32Array,
  indices: BigInt64Array | Int32Array,
  offset: number,
  count: number,
  base: number,
  skip: ReadonlySet<number>,
  keep: number,
  tags?: Float32Array,
): void {
  // Sized by what can arrive, not by keep: keep may be far larger than the pool.
  const size = Math.min(keep, r.index.length + count)
  const outIndex = new Int32Array(size)
  const outScore = new Float32Array(size)
  const outTag = tags ? new Uint8Array(size) : undefined
  let n = 0
  let a = 0
  let b = 0
  const aLen = r.index.length
  while (n < size) {
    let bScore = -Infinity
    let bIndex = -1
    while (b < count) {
      const s = scores[offset + b] as number
      const local = Number(indices[offset + b])
      if (s < REMOVED_BELOW) {
        b = count
        break
      }
      if (skip.has(local)) { b++; continue }
      bScore = s
      bIndex = base + local
      break
    }
    const haveA = a < aLen
    const haveB = bIndex >= 0
    if (!haveA && !haveB) break
    // Earlier blocks hold lower pool indices, so on a tie the running list wins.
    if (haveA && (!haveB || (r.score[a] as number) >= bScore)) {
      outIndex[n] = r.index[a] as number
      outScore[n] = r.score[a] as number
      if (outTag) outTag[n] = r.tag?.[a] ?? 0
      a++
    } else {
      outIndex[n] = bIndex
      outScore[n] = bScore
      if (outTag) outTag[n] = tags?.[offset + b] ?? 0
      b++
    }
    n++
  }
  r.index = outIndex.subarray(0, n)
  r.score = outScore.subarray(0, n)
  if (outTag) r.tag = outTag.subarray(0, n)
}

/** The rule a RULE_BITS code names: the lowest set bit, in rule order. */
export function removedBy(code: number): RemovedBy {
  if (code & RULE_BITS.ceiling) return 'ceiling'
  if (code & RULE_BITS.posSim) return 'pos_sim'
  return 'query_sim'
}

/** A searcher's counts checked: keep >= 1, and keepRemoved and sweeps (default 0) >= 0. */
export function searchCounts(options: { keep: number; keepRemoved?: number; sweeps?: number }): { keepRemoved: number; sweeps: number } {
  checkCount('keep', options.keep, 1)
  const keepRemoved = options.keepRemoved ?? 0
  checkCount('keepRemoved', keepRemoved, 0)
  const sweeps = options.sweeps ?? 0
  checkCount('sweeps', sweeps, 0)
  return { keepRemoved, sweeps }
}

/** Checks a searcher's candidate count (keep, keepRemoved): an integer >= `min`; E_BAD_OPTION naming it. */
export function checkCount(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) throw new HardnegError('E_BAD_OPTION', `${name} ${value}, expected an integer >= ${min}`)
}
