/**
 * Mining one group: score its queries against its pool, drop false negatives, pick k
 * hard negatives per query and pad. Yields output rows in the group's input order.
 */
import { ceilingRule, scoreCeiling, type FalseNegativeRules } from './filters.js'
import { EXCLUDE_WIDTH, writeExclusions, type CandidatePool } from './pool.js'
import { createExactSearcher } from './search/exact.js'
import { createHnswSearcher, dotRows } from './search/hnsw.js'
import type { QueryBatch, SearchResult } from './search/_topk.js'
import { candidatesNeeded, selectNegatives, type SelectOptions, type SelectOutcome } from './select.js'
import type { EmbeddingMatrix, FilteredCandidate, MinedRow, PairRecord } from './types.js'

/** How candidates are scored: exact blocked matrix multiply, or an HNSW graph. */
export type SearchMethod = 'exact' | 'hnsw'

/** HNSW parameters (used when search is 'hnsw'). */
export interface HnswParams {
  m: number // graph degree (default 16)
  ef: number // search list size (default 128)
  efConstruction: number // build list size (default 200)
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
  select: SelectOptions // k, sampling and pad policy
  keepFiltered?: number // removed candidates kept per row in `MinedRow.filtered`, highest score first (default 0: none, and `filtered` is absent)
  search: SearchMethod // exact or hnsw
  hnsw?: HnswParams // hnsw parameters (defaults above)
  threads?: number // onnxruntime threads for exact search (default: all cores); results do not depend on it
  queryBlockRows?: number // queries scored per call (default 512); results do not depend on it
  poolBlockRows?: number // pool rows scored per call in exact search (default 16384); results do not depend on it
  onRows?: (rows: number) => void // called after each block with the number of queries done in it
  onIndex?: (done: number, total: number) => void // hnsw: pool vectors inserted into the graph so far
  onOutcome?: (row: MinedRow | null, outcome: SelectOutcome, pair: PairRecord, removed: number) => void // every query's outcome (row null when dropped) and its false-negative count
}

/**
 * Mines one group. Rows dropped by the pad policy are not yielded (see `onOutcome`).
 *
 * @example
 * for await (const row of mineGroup({ pairs, queries, positives, pool, poolVectors, rules, select, search: 'exact' })) {
 *   console.log(row.id, row.negatives)
 * }
 */
export async function* mineGroup(options: MineGroupOptions): AsyncGenerator<MinedRow> {
  const { pairs, queries, positives, pool, poolVectors, rules, select } = options
  const dim = queries.dim
  // Never more than the pool holds: keep sizes per-query buffers.
  const keep = Math.max(1, Math.min(candidatesNeeded(select), pool.entries.length))
  const keepFiltered = options.keepFiltered ?? 0
  const common = {
    pool: poolVectors,
    keep,
    ...(keepFiltered > 0 ? { keepRemoved: keepFiltered } : {}),
    ...(rules.posSim !== undefined ? { posSimMax: rules.posSim } : {}),
    ...(rules.querySim !== undefined && options.owners ? { querySimMax: rules.querySim, owners: options.owners } : {}),
  }
  const searcher =
    options.search === 'hnsw'
      ? await createHnswSearcher({ ...common, ...(options.hnsw ?? {}), ...(options.onIndex ? { onBuild: options.onIndex } : {}) })
      : await createExactSearcher({
          ...common,
          ...(options.threads !== undefined ? { threads: options.threads } : {}),
          ...(options.poolBlockRows !== undefined ? { poolBlockRows: options.poolBlockRows } : {}),
        })
  try {
    const blockRows = options.queryBlockRows ?? 512
    for (let start = 0; start < pairs.length; start += blockRows) {
      const rows = Math.min(blockRows, pairs.length - start)
      const batch: QueryBatch = {
        rows,
        dim,
        queries: queries.data.subarray(start * dim, (start + rows) * dim),
        positives: positives.data.subarray(start * dim, (start + rows) * dim),
        caps: new Float32Array(rows),
        exclude: new Int32Array(rows * EXCLUDE_WIDTH),
        excludeWidth: EXCLUDE_WIDTH,
      }
      const posScores = new Float32Array(rows)
      for (let i = 0; i < rows; i++) {
        posScores[i] = dotRows(queries.data, start + i, positives.data, start + i, dim)
        batch.caps[i] = scoreCeiling(posScores[i] as number, rules)
        writeExclusions(pool, pairs[start + i] as PairRecord, batch.exclude, i * EXCLUDE_WIDTH)
      }
      const results = await searcher.search(batch)
      for (let i = 0; i < rows; i++) {
        const pair = pairs[start + i] as PairRecord
        const result = results[i] as SearchResult
        const { picks, outcome } = selectNegatives(result.index.length, pair.row, select)
        const row = outcome === 'dropped' ? null : toRow(pair, posScores[i] as number, result, picks, pool)
        if (row && result.filtered) row.filtered = filteredOf(result.filtered, posScores[i] as number, rules, pool)
        options.onOutcome?.(row, outcome, pair, result.removed)
        if (row) yield row
      }
      options.onRows?.(rows)
    }
  } finally {
    await searcher.close()
  }
}

function toRow(pair: PairRecord, posScore: number, result: SearchResult, picks: number[], pool: CandidatePool): MinedRow {
  const negatives: string[] = []
  const negIds: string[] = []
  const negScores: number[] = []
  for (const p of picks) {
    const entry = pool.entries[result.index[p] as number]
    if (!entry) throw new Error(`pool index ${result.index[p]} out of range`)
    negatives.push(entry.text)
    negIds.push(entry.id)
    negScores.push(result.score[p] as number)
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
    nFalseNegatives: result.removed,
    carried: pair.carried,
  }
}

/** Removed candidates as a row stores them, each named by the first rule that removed it. */
function filteredOf(removed: NonNullable<SearchResult['filtered']>, posScore: number, rules: FalseNegativeRules, pool: CandidatePool): FilteredCandidate[] {
  return Array.from(removed.index, (index, j) => {
    const entry = pool.entries[index]
    if (!entry) throw new Error(`pool index ${index} out of range`)
    const score = removed.score[j] as number
    const by = removed.rule[j]
    const rule = by === 'ceiling' ? ceilingRule(score, posScore, rules) ?? 'margin' : by ?? 'margin'
    return { text: entry.text, id: entry.id, score, rule }
  })
}
