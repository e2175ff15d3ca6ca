/**
 * Exact top-k search: a blocked matrix multiply in onnxruntime (MLAS sgemm), one block
 * of queries against one block of the pool at a time, with the false-negative rules
 * applied as masks inside the graph and a running top-k merged across pool blocks.
 * Memory is one block pair, never a queries x pool matrix.
 */
import os from 'node:os'
import * as ort from 'onnxruntime-node'
import { HardnegError } from '../errors.js'
import type { EmbeddingMatrix } from '../types.js'
import { buildScoreGraph, buildTopKGraph } from './_graph.js'
import { mergeTopK, type QueryBatch, type SearchResult } from './_topk.js'

/** Options of {@link createExactSearcher}. */
export interface ExactSearchOptions {
  pool: EmbeddingMatrix // L2-normalised candidate vectors, in pool order
  owners?: EmbeddingMatrix // per pool entry, the L2-normalised vector of the query that owns it (rows = pool rows); needed for querySimMax
  keep: number // candidates to return per query, best first, after the rules (>= 1)
  posSimMax?: number // remove candidates whose similarity to the query's positive exceeds this (off when undefined)
  querySimMax?: number // remove candidates whose owning query's similarity to the query exceeds this (off when undefined)
  poolBlockRows?: number // pool rows scored per call (default 16384, at least 1024; the pool is split into even blocks); results do not depend on it
  threads?: number // intra-op threads for onnxruntime (default: available cores); results do not depend on it
}

/** An exact searcher over one pool; call `close()` when done. */
export interface ExactSearcher {
  search(batch: QueryBatch): Promise<SearchResult[]> // one result per query in the batch, in order
  close(): Promise<void>
}

/**
 * Prepares an exact searcher over `options.pool`.
 *
 * @example
 * const searcher = await createExactSearcher({ pool, keep: 10 })
 * try { const results = await searcher.search(batch) } finally { await searcher.close() }
 */
export async function createExactSearcher(options: ExactSearchOptions): Promise<ExactSearcher> {
  const { pool, keep } = options
  if (!Number.isInteger(keep) || keep < 1) throw new HardnegError('E_BAD_OPTION', `keep ${keep}, expected an integer >= 1`)
  const usePos = options.posSimMax !== undefined
  const useOwners = options.querySimMax !== undefined
  if (useOwners && (!options.owners || options.owners.rows !== pool.rows || options.owners.dim !== pool.dim)) {
    throw new HardnegError('E_BAD_OPTION', 'querySimMax needs owners with one row per pool row')
  }
  // MLAS picks a different sgemm path (another summation order) for a single query row
  // and for very narrow pool blocks. Keeping every call on the main path is what makes
  // scores bit-identical across batch sizes and thread counts: pool blocks are split
  // evenly and never narrower than MIN_POOL_BLOCK (or the whole pool), and a one-row
  // batch is padded to two.
  const nBlocks = Math.max(1, Math.ceil(pool.rows / Math.max(MIN_POOL_BLOCK, options.poolBlockRows ?? 16384)))
  const poolBlockRows = Math.ceil(pool.rows / nBlocks)
  const threads = options.threads ?? os.availableParallelism()
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  }
  const masked = await ort.InferenceSession.create(buildScoreGraph({ posSim: usePos, querySim: useOwners }), sessionOptions)
  // The similarity rules need their own matrix multiplies, so only the ceiling-only
  // configuration (the default) gets the fast path.
  const fast = usePos || useOwners ? undefined : await ort.InferenceSession.create(buildTopKGraph(), sessionOptions)
  let headroom = INITIAL_HEADROOM
  let fastStrikes = 0
  const dim = pool.dim
  const posMax = new ort.Tensor('float32', Float32Array.of(options.posSimMax ?? 0), [1])
  const queryMax = new ort.Tensor('float32', Float32Array.of(options.querySimMax ?? 0), [1])

  async function search(batch: QueryBatch): Promise<SearchResult[]> {
    const b = batch.rows
    if (batch.dim !== dim) {
      throw new HardnegError('E_DIM_MISMATCH', `query dim ${batch.dim}, expected ${dim} (the pool's)`)
    }
    const results: SearchResult[] = []
    for (let i = 0; i < b; i++) results.push({ index: new Int32Array(0), score: new Float32Array(0), removed: 0 })
    if (b === 0 || pool.rows === 0) return results
    const all = Array.from({ length: b }, (_, i) => i)
    const q = fast ? new ort.Tensor('float32', padRows(batch.queries, b, dim), [Math.max(2, b), dim]) : undefined
    for (let start = 0; start < pool.rows; start += poolBlockRows) {
      const n = Math.min(poolBlockRows, pool.rows - start)
      const p = new ort.Tensor('float32', pool.data.subarray(start * dim, (start + n) * dim), [n, dim])
      if (!fast || !q || fastStrikes >= MAX_STRIKES) {
        await runMasked(batch, all, start, n, p, results)
        continue
      }
      const overflow = await runFast(fast, batch, q, start, n, p, results)
      if (overflow.length > 0) {
        await runMasked(batch, overflow, start, n, p, results)
        // Blocks where many queries overflow want a longer list next time; a pool where
        // most queries have more false negatives than any list holds is left to the
        // masked path. Either way the results are the same, only the cost differs.
        if (overflow.length > b / 20) headroom = Math.min(MAX_HEADROOM, headroom * 2)
        if (overflow.length > b / 2) fastStrikes++
      }
    }
    return results
  }

  /**
   * The fast path: sgemm + TopK only. A query's list is complete when all its false
   * negatives fit in it (the last entry is under the ceiling) with `keep` survivors to
   * spare; the other queries are returned for the masked path.
   */
  async function runFast(
    session: ort.InferenceSession,
    batch: QueryBatch,
    q: ort.Tensor,
    start: number,
    n: number,
    p: ort.Tensor,
    results: SearchResult[],
  ): Promise<number[]> {
    const e = batch.excludeWidth
    const want = Math.min(n, keep + e + headroom)
    const out = await session.run({ q, p, k: new ort.Tensor('int64', BigInt64Array.of(BigInt(want)), [1]) })
    const topScores = out.top_scores?.data as Float32Array
    const topIndex = out.top_index?.data as BigInt64Array
    const keptScores = new Float32Array(want)
    const keptIndex = new Int32Array(want)
    const overflow: number[] = []
    for (let i = 0; i < batch.rows; i++) {
      const cap = batch.caps[i] as number
      const skip = localExclusions(batch, i, start, n)
      let removed = 0
      let kept = 0
      for (let j = 0; j < want; j++) {
        const local = Number(topIndex[i * want + j])
        if (skip.includes(local)) continue
        const score = topScores[i * want + j] as number
        if (score > cap) removed++
        else {
          keptScores[kept] = score
          keptIndex[kept++] = local
        }
      }
      const complete = want === n || ((topScores[i * want + want - 1] as number) <= cap && kept >= keep)
      if (!complete) {
        overflow.push(i)
        continue
      }
      const r = results[i] as SearchResult
      r.removed += removed
      mergeTopK(r, keptScores, keptIndex, 0, kept, start, [], keep)
    }
    return overflow
  }

  /** The masked path: every rule applied in the graph, counts over the whole block. */
  async function runMasked(batch: QueryBatch, rows: number[], start: number, n: number, p: ort.Tensor, results: SearchResult[]): Promise<void> {
    const e = batch.excludeWidth
    const m = rows.length
    const rowsIn = Math.max(2, m)
    // Rows are gathered into their own block; a single row is repeated (see padRows).
    const pick = (i: number): number => rows[Math.min(i, m - 1)] as number
    const q = new Float32Array(rowsIn * dim)
    const caps = new Float32Array(rowsIn)
    const excl = new BigInt64Array(rowsIn * e).fill(-1n)
    const positives = usePos ? new Float32Array(rowsIn * dim) : undefined
    for (let i = 0; i < rowsIn; i++) {
      const src = pick(i)
      q.set(batch.queries.subarray(src * dim, (src + 1) * dim), i * dim)
      caps[i] = batch.caps[src] as number
      if (positives) positives.set((batch.positives ?? missing('positives')).subarray(src * dim, (src + 1) * dim), i * dim)
      if (i < m) {
        for (let j = 0; j < e; j++) {
          const g = batch.exclude[src * e + j] ?? -1
          excl[i * e + j] = BigInt(g >= start && g < start + n ? g - start : -1)
        }
      }
    }
    const want = Math.min(keep + e, n)
    const feeds: Record<string, ort.Tensor> = {
      q: new ort.Tensor('float32', q, [rowsIn, dim]),
      p,
      cap: new ort.Tensor('float32', caps, [rowsIn, 1]),
      k: new ort.Tensor('int64', BigInt64Array.of(BigInt(want)), [1]),
      excl: new ort.Tensor('int64', excl, [rowsIn, e]),
    }
    if (positives) Object.assign(feeds, { pos: new ort.Tensor('float32', positives, [rowsIn, dim]), pos_max: posMax })
    if (useOwners && options.owners) {
      feeds.owners = new ort.Tensor('float32', options.owners.data.subarray(start * dim, (start + n) * dim), [n, dim])
      feeds.query_max = queryMax
    }
    const out = await masked.run(feeds)
    const topScores = out.top_scores?.data as Float32Array
    const topIndex = out.top_index?.data as BigInt64Array
    const removed = out.removed?.data as Float32Array
    const exclRemoved = out.excl_removed?.data as Float32Array
    for (let i = 0; i < m; i++) {
      const r = results[rows[i] as number] as SearchResult
      let removedHere = removed[i] ?? 0
      const skip: number[] = []
      for (let j = 0; j < e; j++) {
        const local = Number(excl[i * e + j])
        if (local < 0 || skip.includes(local)) continue
        skip.push(local)
        removedHere -= exclRemoved[i * e + j] ?? 0
      }
      r.removed += removedHere
      mergeTopK(r, topScores, topIndex, i * want, want, start, skip, keep)
    }
  }

  return {
    search,
    async close() {
      await masked.release()
      await fast?.release()
    },
  }
}

/** Extra list length the fast path fetches beyond keep + exclusions, at first. */
const INITIAL_HEADROOM = 24
/** Longest extra list length before a block is left to the masked path anyway. */
const MAX_HEADROOM = 128
/** Blocks where most queries overflow before the fast path is given up. */
const MAX_STRIKES = 3

/** Pool indices, local to the block at `start` of `n` rows, that query `i` leaves out. */
function localExclusions(batch: QueryBatch, i: number, start: number, n: number): number[] {
  const out: number[] = []
  for (let j = 0; j < batch.excludeWidth; j++) {
    const g = batch.exclude[i * batch.excludeWidth + j] ?? -1
    if (g >= start && g < start + n) out.push(g - start)
  }
  return out
}

/** Smallest pool block scored in one call, unless the pool itself is smaller. */
export const MIN_POOL_BLOCK = 1024

/** A one-row block repeated to two rows (see the note on sgemm paths); others as they are. */
function padRows(data: Float32Array, rows: number, width: number): Float32Array {
  if (rows !== 1) return data
  const out = new Float32Array(2 * width)
  out.set(data.subarray(0, width))
  out.set(data.subarray(0, width), width)
  return out
}

function missing(what: string): never {
  throw new HardnegError('E_BAD_OPTION', `posSimMax needs the batch's ${what}`)
}
