/**
 * Approximate search with an HNSW graph (hnswlib-node). Fetches more neighbours than it
 * keeps, rescoring and filtering them exactly, and widens the search when the rules
 * leave fewer than it needs.
 */
import hnswlib from 'hnswlib-node'
import { HardnegError } from '../../errors.js'
import type { EmbeddingMatrix } from '../../types.js'
import { checkCount, searchCounts, type QueryBatch, type RemovedBy, type SearchResult } from './topk.js'

/** Options of {@link createHnswSearcher}. */
export interface HnswSearchOptions {
  pool: EmbeddingMatrix // L2-normalised candidate vectors, in pool order
  owners?: EmbeddingMatrix // per pool entry, the L2-normalised vector of its owning query (NaN row = no owner); needed for querySimMax
  keep: number // candidates to return per query, best first, after the rules (>= 1)
  keepRemoved?: number // removed candidates to return per query in `filtered`, best first, among those fetched (default 0: none)
  posSimMax?: number // remove candidates whose similarity to the query's positive exceeds this (off when undefined)
  querySimMax?: number // remove candidates whose owning query's similarity to the query exceeds this (off when undefined)
  sweeps?: number // count the fetched candidates above S further ceilings; every batch then carries `sweepCaps` (rows x S) and results `sweepRemoved` (default 0: none)
  m?: number // HNSW graph degree (default 16)
  efConstruction?: number // candidate list size while building (default 200)
  ef?: number // candidate list size while searching; raised to the fetch size when smaller (default 128)
  seed?: number // random seed of the graph's level draw (default 100)
  onBuild?: (done: number, total: number) => void // progress while inserting pool vectors
}

/** An HNSW searcher over one pool. */
export interface HnswSearcher {
  search(batch: QueryBatch, keep?: number): Promise<SearchResult[]> // one result per query in the batch, in order; `keep` overrides the searcher's for this call
  close(): Promise<void>
}

/** Dot product in float64 of two float32 rows, rounded to float32. */
export function dotRows(a: Float32Array, ai: number, b: Float32Array, bi: number, dim: number): number {
  let s = 0
  const ao = ai * dim
  const bo = bi * dim
  for (let j = 0; j < dim; j++) s += (a[ao + j] as number) * (b[bo + j] as number)
  return Math.fround(s)
}

/**
 * Builds an HNSW index over `options.pool` (inner-product space; vectors are unit length).
 *
 * @example
 * const searcher = await createHnswSearcher({ pool, keep: 10, ef: 256 })
 */
export async function createHnswSearcher(options: HnswSearchOptions): Promise<HnswSearcher> {
  const { pool } = options
  const { keepRemoved, sweeps } = searchCounts(options)
  const dim = pool.dim
  const index = new hnswlib.HierarchicalNSW('ip', dim)
  const n = pool.rows
  index.initIndex({ maxElements: Math.max(1, n), m: options.m ?? 16, efConstruction: options.efConstruction ?? 200, randomSeed: options.seed ?? 100 })
  for (let i = 0; i < n; i++) {
    index.addPoint(Array.from(pool.data.subarray(i * dim, (i + 1) * dim)), i)
    if (options.onBuild && (i % 4096 === 4095 || i === n - 1)) options.onBuild(i + 1, n)
  }
  const baseEf = options.ef ?? 128

  async function search(batch: QueryBatch, keepOverride?: number): Promise<SearchResult[]> {
    const keep = keepOverride ?? options.keep
    checkCount('keep', keep, 1)
    if (batch.dim !== dim) throw new HardnegError('E_DIM_MISMATCH', `query dim ${batch.dim}, expected ${dim} (the pool's)`)
    const results: SearchResult[] = []
    const e = batch.excludeWidth
    for (let i = 0; i < batch.rows; i++) {
      const query = Array.from(batch.queries.subarray(i * dim, (i + 1) * dim))
      const cap = batch.caps[i] as number
      const marginCap = batch.marginCaps?.[i] ?? cap
      const excluded = new Set(Array.from(batch.exclude.subarray(i * e, (i + 1) * e)).filter((x) => x >= 0))
      // The row's own exclusions, never the block's widest: what is fetched for a row must not
      // depend on which rows share its block (a query without siblings excludes up to 2).
      let fetch = Math.min(n, Math.max(2 * (keep + Math.max(2, excluded.size)), 32))
      for (;;) {
        index.setEf(Math.max(baseEf, fetch))
        const { neighbors } = index.searchKnn(query, fetch)
        const kept: { index: number; score: number }[] = []
        const removed: { index: number; score: number; rule: RemovedBy }[] = []
        let removedByMargin = 0
        const sweepRemoved = sweeps > 0 ? new Int32Array(sweeps) : undefined
        const sweepCaps = sweepRemoved ? (batch.sweepCaps ?? missingSweepCaps()).subarray(i * sweeps, (i + 1) * sweeps) : undefined
        for (const c of neighbors) {
          if (excluded.has(c)) continue
          const score = dotRows(batch.queries, i, pool.data, c, dim)
          if (score > marginCap) removedByMargin++
          if (sweepRemoved && sweepCaps) for (let t = 0; t < sweeps; t++) if (score > (sweepCaps[t] as number)) sweepRemoved[t]!++
          let rule: RemovedBy | undefined = score > cap ? 'ceiling' : undefined
          if (!rule && options.posSimMax !== undefined && batch.positives) {
            if (dotRows(batch.positives, i, pool.data, c, dim) > Math.fround(options.posSimMax)) rule = 'pos_sim'
          }
          if (!rule && options.querySimMax !== undefined && options.owners) {
            if (dotRows(batch.queries, i, options.owners.data, c, dim) > Math.fround(options.querySimMax)) rule = 'query_sim'
          }
          if (rule) removed.push({ index: c, score, rule })
          else kept.push({ index: c, score })
        }
        if (kept.length >= keep || fetch >= n) {
          const byScore = (a: { index: number; score: number }, b: { index: number; score: number }): number => b.score - a.score || a.index - b.index
          const top = kept.sort(byScore).slice(0, keep)
          const result: SearchResult = {
            index: Int32Array.from(top, (c) => c.index),
            score: Float32Array.from(top, (c) => c.score),
            removed: removed.length,
            removedByMargin,
            ...(sweepRemoved ? { sweepRemoved } : {}),
          }
          if (keepRemoved > 0) {
            const worst = removed.sort(byScore).slice(0, keepRemoved)
            result.filtered = { index: Int32Array.from(worst, (c) => c.index), score: Float32Array.from(worst, (c) => c.score), rule: worst.map((c) => c.rule) }
          }
          results.push(result)
          break
        }
        fetch = Math.min(n, fetch * 4)
      }
    }
    return results
  }

  return {
    search,
    async close() {},
  }
}

function missingSweepCaps(): never {
  throw new HardnegError('E_BAD_OPTION', "the searcher's sweep needs the batch's sweepCaps")
}
