/**
 * Mining one group: score its queries against its pool, drop false negatives, pick k
 * hard negatives per query and pad. Yields output rows in the group's input order.
 */
import { HardnegError } from '../errors.js'
import type { DuplicateCheck, DuplicateRule } from './duplicates.js'
import { ceilingRule, scoreCeiling, type FalseNegativeRules } from './filters.js'
import { collectQueryPositives, EXCLUDE_WIDTH, exclusionsOf, type CandidatePool, type PoolEntry, type QueryPositives } from './pool.js'
import { createExactSearcher, type ExactKernel, type ExactSearcher, type KernelChoice, type RescoreCounts } from './search/exact.js'
import { createHnswSearcher, dotRows, type HnswSearcher } from './search/hnsw.js'
import type { QueryBatch, SearchResult } from './search/topk.js'
import { candidatesNeeded, eligibleCount, selectNegatives, type SelectOptions, type SelectOutcome } from './select.js'
import type { EmbeddingMatrix, FalseNegativeCounts, FilteredCandidate, MinedRow, PairRecord } from '../types.js'

/** How candidates are scored: exact blocked matrix multiply, or an HNSW graph. */
export type SearchMethod = 'exact' | 'hnsw'

/** HNSW parameters (used when search is 'hnsw'). */
export interface HnswParams {
  m: number // graph degree (default 16)
  ef: number // search list size (default 128)
  efConstruction: number // build list size (default 200)
}

/**
 * Which positive score a query's margin (and relative margin) is measured from: its own
 * positive's (UniME), or the lowest among all labeled positives of the query
 * (sentence-transformers, NeMo, NV-Retriever).
 */
export type MarginAnchor = 'own' | 'lowest'

/** What one query's mining left besides its row: counts the run's statistics gather. */
export interface QueryOutcome {
  removed: FalseNegativeCounts // false negatives by rule
  siblingPositives: number // labeled positives of sibling rows (same query) left out of this row's pool, besides its own
  sweep?: readonly number[] // with `sweepThresholds`: margin-rule false negatives at each threshold, aligned with it
}

/** Options of {@link mineGroup}. */
export interface MineGroupOptions {
  pairs: readonly PairRecord[] // the group's pairs, in input order
  queries: EmbeddingMatrix // L2-normalised query vectors, row i belongs to pairs[i]
  positives: EmbeddingMatrix // L2-normalised positive vectors, row i belongs to pairs[i]
  pool: CandidatePool // the group's candidates
  poolVectors: EmbeddingMatrix // L2-normalised candidate vectors, row j belongs to pool.entries[j]
  owners?: EmbeddingMatrix // per pool entry, its owning query's vector (NaN row for corpus); needed by rules.querySim
  rules: FalseNegativeRules // false-negative rules
  queryPositives?: QueryPositives // the labeled positives of each query (default: collected from `pairs` and `pool`)
  marginAnchor?: MarginAnchor // which positive score the margin is measured from (default 'own')
  sweepThresholds?: readonly number[] // also count, in the same pass, the margin rule's false negatives at each of these thresholds (default: none)
  duplicates?: DuplicateCheck // image and text duplicate rules of a run with images (default: none)
  images?: boolean // rows carry queryImage, positiveImage and negImages (default false)
  select: SelectOptions // k, sampling and pad policy
  keepFiltered?: number // removed candidates kept per row in `MinedRow.filtered`, highest score first (default 0: none, and `filtered` is absent)
  search: SearchMethod // exact or hnsw
  hnsw?: HnswParams // hnsw parameters (defaults above)
  threads?: number // onnxruntime threads for exact search (default: all cores); results do not depend on it
  exactKernel?: ExactKernel | 'auto' // exact search's kernel: 'fp32', 'int8' or 'auto' (by CPU and size, see chooseExactKernel) (default 'auto')
  onExactKernel?: (choice: KernelChoice, rescore: RescoreCounts | undefined) => void // exact search: the kernel the group ran, and (int8) its per-query rescoring counts, once the group is done
  queryBlockRows?: number // queries scored per call (default 512); results do not depend on it
  poolBlockRows?: number // pool rows scored per call in exact search (default 16384); results do not depend on it
  onRows?: (rows: number) => void // called after each block with the number of queries done in it
  onIndex?: (done: number, total: number) => void // hnsw: pool vectors inserted into the graph so far
  onOutcome?: (row: MinedRow | null, outcome: SelectOutcome, pair: PairRecord, removed: FalseNegativeCounts, query: QueryOutcome) => void // every query's outcome (row null when dropped), its false negatives by rule, and the rest of what mining it counted
  groupQueryRows?: number // the whole group's queries when `pairs` is a worker's share of them, so that the exact kernel is chosen as the one-process run chooses it (default pairs.length)
  poolOffset?: number // poolVectors (and owners) hold pool rows [poolOffset, poolOffset + poolVectors.rows) only: a pool-part worker's (default 0: the whole pool)
}

/** One query after its search, before its duplicates, selection and row: what {@link finishQuery} needs. */
export interface SearchedQuery {
  pair: PairRecord // the query's pair
  posScore: number // sim(query, positive)
  anchor: number // the positive score its margins are measured from (posScore, or the lowest sibling positive's with marginAnchor 'lowest')
  siblingPositives: number // labeled positives of sibling rows left out of its pool besides its own
  result: SearchResult // its candidates from the search, best first (pool indices of the whole pool)
}

/** How a searched query is finished: the part of {@link MineGroupOptions} that does not score. */
export type FinishOptions = Pick<MineGroupOptions, 'pool' | 'rules' | 'duplicates' | 'images' | 'select' | 'keepFiltered'>

/** A finished query: its row (null when dropped), what selection did, its false negatives by rule. */
export interface FinishedQuery {
  row: MinedRow | null
  outcome: SelectOutcome
  counts: FalseNegativeCounts
  query: QueryOutcome // the rest of what mining it counted
}

/** Searches the same query again, keeping `keep` candidates. */
export type SearchDeeper = (keep: number) => Promise<SearchResult>

/** Candidates fetched beyond those needed when duplicate rules may remove some: 2 x needed + this. */
const DUPLICATE_SLACK = 8

/**
 * Mines one group. Rows dropped by the pad policy are not yielded (see `onOutcome`).
 *
 * @example
 * for await (const row of mineGroup({ pairs, queries, positives, pool, poolVectors, rules, select, search: 'exact' })) {
 *   console.log(row.id, row.negatives)
 * }
 */
export async function* mineGroup(options: MineGroupOptions): AsyncGenerator<MinedRow> {
  for await (const [query, deeper] of searchGroup(options)) {
    const { row, outcome, counts, query: counted } = await finishQuery(query, deeper, options)
    options.onOutcome?.(row, outcome, query.pair, counts, counted)
    if (row) yield row
  }
}

/** Candidates each query's search keeps: what selection needs, more when duplicate rules may remove some; never more than the pool holds. */
export function searchKeep(options: Pick<MineGroupOptions, 'pool' | 'select' | 'duplicates'>): number {
  const needed = candidatesNeeded(options.select)
  return Math.max(1, Math.min(options.duplicates ? 2 * needed + DUPLICATE_SLACK : needed, options.pool.entries.length))
}

/**
 * The search half of {@link mineGroup}: each query of the group with its candidates, and
 * a way to search it deeper (valid until the next query is asked for).
 */
export async function* searchGroup(options: MineGroupOptions): AsyncGenerator<[SearchedQuery, SearchDeeper]> {
  const { pairs, queries, positives, pool, poolVectors, rules } = options
  const dim = queries.dim
  const keep = searchKeep(options)
  const splitMargin = rules.maxScore !== undefined || rules.relativeMargin !== undefined || rules.posSim !== undefined || rules.querySim !== undefined
  const keepFiltered = options.keepFiltered ?? 0
  const labeled = options.queryPositives ?? collectQueryPositives(pool, pairs)
  const lowest = (options.marginAnchor ?? 'own') === 'lowest'
  // The lowest anchor reads every sibling's positive vector, which a pool part may not hold.
  if (lowest && options.poolOffset !== undefined) throw new HardnegError('E_BAD_OPTION', "marginAnchor 'lowest' with a split pool, expected 'own': the anchor needs every sibling positive's vector")
  const sweep = options.sweepThresholds ?? []
  const common = {
    pool: poolVectors,
    keep,
    splitMargin,
    ...(keepFiltered > 0 ? { keepRemoved: keepFiltered } : {}),
    ...(rules.posSim !== undefined ? { posSimMax: rules.posSim } : {}),
    ...(rules.querySim !== undefined && options.owners ? { querySimMax: rules.querySim, owners: options.owners } : {}),
    ...(sweep.length > 0 ? { sweeps: sweep.length } : {}),
  }
  const whole: HnswSearcher | ExactSearcher =
    options.search === 'hnsw'
      ? await createHnswSearcher({ ...common, ...(options.hnsw ?? {}), ...(options.onIndex ? { onBuild: options.onIndex } : {}) })
      : await createExactSearcher({
          ...common,
          kernel: options.exactKernel ?? 'auto',
          queryRows: options.groupQueryRows ?? pairs.length,
          groupPoolRows: pool.entries.length,
          ...(options.poolOffset !== undefined ? { poolPart: true } : {}),
          ...(options.threads !== undefined ? { threads: options.threads } : {}),
          ...(options.poolBlockRows !== undefined ? { poolBlockRows: options.poolBlockRows } : {}),
        })
  const searcher = options.poolOffset ? offsetSearcher(whole, options.poolOffset, poolVectors.rows) : whole
  try {
    const blockRows = options.queryBlockRows ?? 512
    for (let start = 0; start < pairs.length; start += blockRows) {
      const rows = Math.min(blockRows, pairs.length - start)
      const excluded = pairs.slice(start, start + rows).map((pair) => exclusionsOf(pool, pair, labeled))
      // At least the width of a query without siblings, so that blocks without any search exactly as before.
      const width = Math.max(EXCLUDE_WIDTH, ...excluded.map((x) => x.indices.length))
      const batch: QueryBatch = {
        rows,
        dim,
        queries: queries.data.subarray(start * dim, (start + rows) * dim),
        positives: positives.data.subarray(start * dim, (start + rows) * dim),
        caps: new Float32Array(rows),
        ...(splitMargin ? { marginCaps: new Float32Array(rows) } : {}),
        ...(sweep.length > 0 ? { sweepCaps: new Float32Array(rows * sweep.length) } : {}),
        exclude: new Int32Array(rows * width).fill(-1),
        excludeWidth: width,
      }
      const posScores = new Float32Array(rows)
      const anchors = new Float32Array(rows) // the score each row's margins are measured from
      for (let i = 0; i < rows; i++) {
        posScores[i] = dotRows(queries.data, start + i, positives.data, start + i, dim)
        const own = excluded[i]?.own
        let anchor = posScores[i] as number
        if (lowest) {
          for (const c of labeled.positivesOf(pairs[start + i] as PairRecord)) {
            if (c !== own) anchor = Math.min(anchor, dotRows(queries.data, start + i, poolVectors.data, c, dim))
          }
        }
        anchors[i] = anchor
        batch.caps[i] = scoreCeiling(anchor, rules)
        if (batch.marginCaps) batch.marginCaps[i] = scoreCeiling(anchor, { threshold: rules.threshold })
        sweep.forEach((threshold, j) => {
          if (batch.sweepCaps) batch.sweepCaps[i * sweep.length + j] = scoreCeiling(anchor, { threshold })
        })
        batch.exclude.set(excluded[i]?.indices ?? [], i * width)
      }
      const results = await searcher.search(batch)
      for (let i = 0; i < rows; i++) {
        const query: SearchedQuery = {
          pair: pairs[start + i] as PairRecord,
          posScore: posScores[i] as number,
          anchor: anchors[i] as number,
          siblingPositives: excluded[i]?.siblings ?? 0,
          result: results[i] as SearchResult,
        }
        yield [query, async (deeper) => (await searcher.search(sliceBatch(batch, i), deeper))[0] as SearchResult]
      }
      options.onRows?.(rows)
    }
    if (options.search !== 'hnsw') {
      const exact = whole as ExactSearcher
      options.onExactKernel?.(exact.kernel, exact.rescoreCounts?.())
    }
  } finally {
    await searcher.close()
  }
}

/**
 * The finishing half of {@link mineGroup}: the duplicate rules (searching deeper when they
 * bite), selection, padding and the row. Also how the merge of a split pool finishes a
 * query from its parts' candidates.
 */
export async function finishQuery(query: SearchedQuery, deeper: SearchDeeper, options: FinishOptions): Promise<FinishedQuery> {
  const { pair, posScore } = query
  const { pool, rules, select } = options
  const keepFiltered = options.keepFiltered ?? 0
  let result = query.result
  const counts: FalseNegativeCounts = { margin: 0, other: 0, imageDuplicate: 0, textDuplicate: 0 }
  let duplicatesMet: Duplicate[] = []
  if (options.duplicates) {
    const served = await serveWithDuplicates(query, deeper, { ...options, duplicates: options.duplicates })
    result = served.result
    duplicatesMet = served.duplicates
    counts.imageDuplicate = served.duplicates.filter((d) => d.rule === 'image_duplicate').length
    counts.textDuplicate = served.duplicates.length - counts.imageDuplicate
  }
  counts.margin = result.removedByMargin
  counts.other = result.removed - result.removedByMargin
  const { picks, outcome } = selectNegatives(eligibleCount(result.score, select), pair.row, select)
  const row = outcome === 'dropped' ? null : toRow(pair, posScore, result, picks, pool, counts, options.images ?? false)
  if (row && keepFiltered > 0) row.filtered = filteredOf(result.filtered, duplicatesMet, query.anchor, rules, pool, keepFiltered, options.images ?? false)
  return {
    row,
    outcome,
    counts,
    query: { removed: counts, siblingPositives: query.siblingPositives, ...(result.sweepRemoved ? { sweep: Array.from(result.sweepRemoved) } : {}) },
  }
}

/**
 * The duplicate rules over one query's ranking: walked from the best candidate down to
 * the `needed`-th one they leave, searching deeper (4x, up to the whole pool) while the
 * list runs out first. `served` is the walk's survivors, `duplicates` what it removed,
 * and `ranked` the last ranking searched, of which the walk looked at the first `walked`.
 */
export async function serveWithDuplicates(
  query: SearchedQuery,
  deeper: SearchDeeper,
  options: Pick<FinishOptions, 'pool' | 'select'> & { duplicates: DuplicateCheck },
): Promise<{ result: SearchResult; duplicates: Duplicate[]; ranked: SearchResult; walked: number }> {
  const { pair } = query
  const { pool, duplicates } = options
  const needed = candidatesNeeded(options.select)
  const poolSize = pool.entries.length
  let fetched = searchKeep(options)
  let result = query.result
  let served = serveDistinct(result, pair, pool, needed, duplicates)
  // Duplicates ate into the list and the search may hold more: fetch deeper for this query alone.
  // Not when the floor cut the list short: what lies deeper scores lower still.
  while (served.result.index.length < needed && result.index.length >= fetched && eligibleCount(result.score, options.select) === result.index.length && fetched < poolSize) {
    fetched = Math.min(poolSize, fetched * 4)
    result = await deeper(fetched)
    served = serveDistinct(result, pair, pool, needed, duplicates)
  }
  return { result: served.result, duplicates: served.duplicates, ranked: result, walked: served.result.index.length + served.duplicates.length }
}

/** A searcher over pool rows [offset, offset + rows) that speaks in whole-pool indices. */
function offsetSearcher<S extends { search(batch: QueryBatch, keep?: number): Promise<SearchResult[]>; close(): Promise<void> }>(inner: S, offset: number, rows: number): S {
  const shift = (index: Int32Array): Int32Array => index.map((c) => c + offset)
  return {
    ...inner,
    async search(batch: QueryBatch, keep?: number): Promise<SearchResult[]> {
      const exclude = batch.exclude.map((g) => (g >= offset && g < offset + rows ? g - offset : -1))
      const results = await inner.search({ ...batch, exclude }, keep)
      return results.map((r) => ({ ...r, index: shift(r.index), ...(r.filtered ? { filtered: { ...r.filtered, index: shift(r.filtered.index) } } : {}) }))
    },
    close: () => inner.close(),
  }
}

/**
 * The ranked candidates with duplicates of the query or positive taken out, down to the
 * `needed`-th one served; duplicates further down are never looked at (they could not
 * be served) and not counted.
 */
function serveDistinct(
  result: SearchResult,
  pair: PairRecord,
  pool: CandidatePool,
  needed: number,
  isDuplicate: DuplicateCheck,
): { result: SearchResult; duplicates: Duplicate[] } {
  const index: number[] = []
  const score: number[] = []
  const duplicates: Duplicate[] = []
  for (let j = 0; j < result.index.length && index.length < needed; j++) {
    const c = result.index[j] as number
    const rule = isDuplicate(pair, pool.entries[c] as PoolEntry)
    if (rule !== undefined) duplicates.push({ index: c, score: result.score[j] as number, rule })
    else {
      index.push(c)
      score.push(result.score[j] as number)
    }
  }
  const served: SearchResult = { ...result, index: Int32Array.from(index), score: Float32Array.from(score) }
  return { result: served, duplicates }
}

/** A candidate a duplicate rule removed, with its score. */
export interface Duplicate {
  index: number // pool index
  score: number // sim(query, candidate)
  rule: DuplicateRule
}

/** Row `i` of a batch as a batch of its own. */
function sliceBatch(batch: QueryBatch, i: number): QueryBatch {
  const { dim, excludeWidth: e } = batch
  return {
    rows: 1,
    dim,
    queries: batch.queries.subarray(i * dim, (i + 1) * dim),
    ...(batch.positives ? { positives: batch.positives.subarray(i * dim, (i + 1) * dim) } : {}),
    caps: batch.caps.subarray(i, i + 1),
    ...(batch.marginCaps ? { marginCaps: batch.marginCaps.subarray(i, i + 1) } : {}),
    ...(batch.sweepCaps ? { sweepCaps: batch.sweepCaps.subarray(i * (batch.sweepCaps.length / batch.rows), (i + 1) * (batch.sweepCaps.length / batch.rows)) } : {}),
    exclude: batch.exclude.subarray(i * e, (i + 1) * e),
    excludeWidth: e,
  }
}

function toRow(
  pair: PairRecord,
  posScore: number,
  result: SearchResult,
  picks: number[],
  pool: CandidatePool,
  counts: FalseNegativeCounts,
  images: boolean,
): MinedRow {
  const negatives: string[] = []
  const negIds: string[] = []
  const negScores: number[] = []
  const negImages: string[] = []
  for (const p of picks) {
    const entry = pool.entries[result.index[p] as number]
    if (!entry) throw new Error(`pool index ${result.index[p]} out of range`)
    negatives.push(entry.text)
    negIds.push(entry.id)
    negScores.push(result.score[p] as number)
    negImages.push(entry.image)
  }
  return {
    id: pair.id,
    query: pair.query,
    positive: pair.positive,
    group: pair.group,
    posScore,
    negatives,
    negIds,
    negScores,
    nValid: new Set(picks).size,
    nFalseNegatives: counts.margin + counts.other + counts.imageDuplicate + counts.textDuplicate,
    carried: pair.carried,
    ...(images ? { queryImage: pair.queryImage, positiveImage: pair.positiveImage, negImages } : {}),
  }
}

/**
 * Removed candidates as a row stores them, each named by the first rule that removed it:
 * the score rules' (from the search) and the duplicate rules' (met while serving),
 * highest score first (ties to pool order), at most `keep`.
 */
function filteredOf(
  removed: SearchResult['filtered'],
  duplicates: readonly Duplicate[],
  posScore: number, // the score the row's margins are measured from (its own positive's, or the anchor)
  rules: FalseNegativeRules,
  pool: CandidatePool,
  keep: number,
  images: boolean,
): FilteredCandidate[] {
  const all: { index: number; score: number; rule: string }[] = duplicates.map((d) => ({ ...d }))
  if (removed) {
    removed.index.forEach((index, j) => {
      const score = removed.score[j] as number
      const by = removed.rule[j]
      all.push({ index, score, rule: by === 'ceiling' ? ceilingRule(score, posScore, rules) ?? 'margin' : by ?? 'margin' })
    })
  }
  all.sort((a, b) => b.score - a.score || a.index - b.index)
  return all.slice(0, keep).map(({ index, score, rule }) => {
    const entry = pool.entries[index]
    if (!entry) throw new Error(`pool index ${index} out of range`)
    return { text: entry.text, id: entry.id, score, rule, ...(images ? { image: entry.image } : {}) }
  })
}
