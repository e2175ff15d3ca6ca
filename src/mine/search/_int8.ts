/**
 * The int8 exact kernel: every (query, candidate) pair scored in exact integer arithmetic
 * (onnxruntime's u8 x s8 MatMulIntegerToFloat, every pool block's codes an initializer of
 * one session, packed once), every decision the integer score cannot certify made on the exact score
 * (a float64 sum of float32 products, rounded to float32: the `dotRows` of hnsw mode and
 * of `pos_score`). Results are therefore the exact definition's, whatever the CPU, thread
 * count or block sizes. Private to search/: `exact.ts` is its face.
 */
import os from 'node:os'
import * as ort from 'onnxruntime-node'
import { HardnegError } from '../../errors.js'
import type { EmbeddingMatrix } from '../../types.js'
import { buildInt8PoolGraph, STEP_FLOOR, type Int8Block } from './_int8-graph.js'
import { float32AtLeast, float32AtMost, POOL_LEVELS, QUERY_LEVELS, QUERY_ZERO, quantizeRows, SLACK, type QuantizedRows } from './_quantize.js'
import { checkCount, searchCounts, type QueryBatch, type SearchResult } from './topk.js'
import { processRow, RowState } from './_int8-rows.js'

/** Options of {@link createInt8Searcher}: the exact searcher's, without the similarity rules. */
export interface Int8SearchOptions {
  pool: EmbeddingMatrix // L2-normalised candidate vectors, in pool order
  keep: number // candidates to return per query, best first, after the rules (>= 1)
  keepRemoved?: number // removed candidates to return per query in `filtered` (default 0)
  splitMargin?: boolean // count the margin rule's removals apart (batches carry `marginCaps`) (default false)
  sweeps?: number // count the candidates above S further ceilings (batches carry `sweepCaps`) (default 0)
  poolBlockRows?: number // pool rows per block (default 16384); results do not depend on it
  threads?: number // intra-op threads (default: available cores); results do not depend on it
  maxSessionBytes?: number // pool codes per onnxruntime session at most (default SESSION_BYTES, 1 GiB); a larger pool gets several sessions, run one after another; results do not depend on it
}

/** Per query, how much exact rescoring the integer pass left (one entry per query searched). */
export interface RescoreCounts {
  rescored: number[] // exact dot products computed for the query (ranking, ceilings, removed list)
  ceilingBand: number[] // candidates whose interval straddled the query's ceiling (decided by rescoring)
}

/** An int8 searcher; `rescoreCounts()` reports the band sizes of the queries searched so far. */
export interface Int8Searcher {
  search(batch: QueryBatch, keep?: number): Promise<SearchResult[]>
  rescoreCounts(): RescoreCounts
  firstPassMisses(): number // rows whose first ranking was too short to settle them (asked again with longer ones), over all searches so far
  close(): Promise<void>
}

/** One pool block: what the bound needs about its columns. */
export interface Block {
  cols: Int32Array // block column -> pool index
  n: number // columns
  errMax: number // largest e_p of the block
  normMax: number // largest ‖p‖ of the block (rounded up)
}

/** One session: consecutive blocks in one graph, run once per query batch. */
interface Part {
  session: ort.InferenceSession
  blocks: number[] // indices into the searcher's blocks
}

/** Candidate slots beyond keep + exclusions in each block's first ranking (grows when rows need a second pass). */
const FIRST_SLACK = 16

/**
 * Codes per session at most: every block of a pool shares one session (one thread pool,
 * one call per query batch) unless the codes would pass this; protobuf's 2 GiB model
 * limit sits above it.
 */
const SESSION_BYTES = 2 ** 30

/**
 * Prepares an int8 searcher over `options.pool`: quantises it, orders it by quantisation
 * error (so that each block's error bound fits its columns) and packs the blocks' codes
 * into one session (several for pools past SESSION_BYTES of codes).
 */
export async function createInt8Searcher(options: Int8SearchOptions): Promise<Int8Searcher> {
  const { pool } = options
  const { keepRemoved, sweeps } = searchCounts(options)
  const splitMargin = options.splitMargin ?? false
  const counts = (splitMargin ? 1 : 0) + sweeps
  const { rows: total, dim } = pool
  const threads = options.threads ?? os.availableParallelism()
  const q8 = quantizeRows(pool.data, total, dim, POOL_LEVELS)
  // Blocks of similar quantisation error: the graph's per-block bound then fits each column.
  const order = Int32Array.from({ length: total }, (_, i) => i).sort((a, b) => (q8.err[a] as number) - (q8.err[b] as number) || a - b)
  const nBlocks = Math.max(1, Math.ceil(total / Math.max(1, options.poolBlockRows ?? 16384)))
  const blockRows = Math.ceil(total / nBlocks)
  const blockOf = new Int32Array(total)
  const localOf = new Int32Array(total)
  const blocks: Block[] = []
  const parts: Part[] = []
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  }
  try {
    let pending: Int8Block[] = []
    let pendingFirst = 0
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return
      const graph = buildInt8PoolGraph(pending, { counts, keepRemoved: keepRemoved > 0 })
      pending = [] // the model bytes hold the codes now
      parts.push({ session: await ort.InferenceSession.create(graph, sessionOptions), blocks: Array.from({ length: blocks.length - pendingFirst }, (_, j) => pendingFirst + j) })
      pendingFirst = blocks.length
    }
    for (let start = 0; start < total; start += blockRows) {
      const n = Math.min(blockRows, total - start)
      if ((pending.length + 1) * n * dim > (options.maxSessionBytes ?? SESSION_BYTES)) await flush()
      const cols = order.slice(start, start + n)
      const codes = new Int8Array(dim * n)
      const scale = new Float32Array(n)
      let errMax = 0
      let norm2Max = 0
      for (let j = 0; j < n; j++) {
        const c = cols[j] as number
        blockOf[c] = blocks.length
        localOf[c] = j
        scale[j] = q8.scale[c] as number
        errMax = Math.max(errMax, q8.err[c] as number)
        norm2Max = Math.max(norm2Max, q8.norm2[c] as number)
        const src = c * dim
        for (let k = 0; k < dim; k++) codes[k * n + j] = q8.codes[src + k] as number
      }
      pending.push({ codes, scale, dim, n })
      blocks.push({ cols, n, errMax, normMax: Math.sqrt(norm2Max) * (1 + 2 ** -30) })
    }
    await flush()
  } catch (err) {
    await Promise.allSettled(parts.map((p) => p.session.release()))
    throw err
  }
  // The codes live in the sessions now; the closures below keep this scope (and q8) alive.
  q8.codes = new Int8Array(0)
  const stats: QuantizedRows = q8
  const rescored: number[] = []
  const ceilingBand: number[] = []
  let slack = FIRST_SLACK
  let misses = 0

  async function search(batch: QueryBatch, keepOverride?: number): Promise<SearchResult[]> {
    const keep = keepOverride ?? options.keep
    checkCount('keep', keep, 1)
    if (batch.dim !== dim) throw new HardnegError('E_DIM_MISMATCH', `query dim ${batch.dim}, expected ${dim} (the pool's)`)
    const b = batch.rows
    const e = batch.excludeWidth
    const state = Array.from({ length: b }, () => new RowState(sweeps))
    if (b > 0 && total > 0) {
      const marginCaps = splitMargin ? batch.marginCaps ?? missing('marginCaps') : undefined
      const sweepCaps = sweeps > 0 ? batch.sweepCaps ?? missing('sweepCaps') : undefined
      // The further ceilings, per row: the margin rule's first, then the sweep's.
      const countCaps = new Float64Array(b * counts)
      for (let i = 0; i < b; i++) {
        if (marginCaps) countCaps[i * counts] = marginCaps[i] as number
        for (let t = 0; t < sweeps; t++) countCaps[i * counts + (splitMargin ? 1 : 0) + t] = sweepCaps?.[i * sweeps + t] as number
      }
      const q = quantizeRows(batch.queries, b, dim, QUERY_LEVELS, QUERY_ZERO)
      for (const part of parts) {
        const contexts = part.blocks.map((bi) => blockContext(blocks[bi] as Block, bi, blockOf, localOf, batch, q, countCaps, counts, splitMargin))
        const largest = Math.max(...contexts.map((c) => c.block.n))
        let rows = Array.from({ length: b }, (_, i) => i)
        let k = Math.min(largest, keep + e + slack)
        let kr = Math.min(largest, keepRemoved + e + slack)
        let first = true
        while (rows.length > 0) {
          const out = await part.session.run(feedsFor(contexts, rows, q.codes as Uint8Array, dim, k, kr, keepRemoved > 0))
          const views = contexts.map((ctx, blk) => ({ ctx, view: outputView(out, blk, rows.length, counts) }))
          const again: number[] = []
          rows.forEach((i, r) => {
            const done = processRow({ blocks: views, r, i, k, kr, keep, keepRemoved, state: state[i] as RowState, q, pool, stats, batch })
            if (!done) again.push(i)
          })
          // A wide band in many rows: give later batches more room in their first ranking.
          if (first && again.length * 100 > b) slack = Math.min(slack * 2, 4096)
          if (first) misses += again.length
          first = false
          rows = again
          k = Math.min(largest, k * 4)
          kr = Math.min(largest, kr * 4)
        }
      }
    }
    return state.map((s) => {
      rescored.push(s.rescored)
      ceilingBand.push(s.ceilingBand)
      return s.result(splitMargin, sweeps > 0, keepRemoved > 0)
    })
  }

  return {
    search,
    rescoreCounts: () => ({ rescored: [...rescored], ceilingBand: [...ceilingBand] }),
    firstPassMisses: () => misses,
    async close() {
      await Promise.allSettled(parts.map((p) => p.session.release()))
    },
  }
}

/** What every row's processing needs about one block and the batch. */
export interface BlockContext {
  block: Block
  bound: Float64Array // per row: the graph's error bound for every column of the block (Cauchy–Schwarz, block maxima)
  hi: Float32Array // per row: G above this is certainly above the ceiling
  lo: Float32Array // per row: G at most this is certainly not above the ceiling
  cntHi: Float32Array // rows x C: the same for each further ceiling
  cntLo: Float32Array // rows x C
  countCaps: Float64Array // rows x C: the further ceilings
  counts: number // C
  splitMargin: boolean // the first further ceiling is the margin rule's
  excl: BigInt64Array // rows x E: block columns of the row's exclusions (-1 = not in this block)
  e: number // E
}

function blockContext(
  block: Block,
  bi: number,
  blockOf: Int32Array,
  localOf: Int32Array,
  batch: QueryBatch,
  q: QuantizedRows,
  countCaps: Float64Array,
  counts: number,
  splitMargin: boolean,
): BlockContext {
  const b = batch.rows
  const e = Math.max(1, batch.excludeWidth)
  const ctx: BlockContext = {
    block,
    bound: new Float64Array(b),
    hi: new Float32Array(b),
    lo: new Float32Array(b),
    cntHi: new Float32Array(b * counts),
    cntLo: new Float32Array(b * counts),
    countCaps,
    counts,
    splitMargin,
    excl: new BigInt64Array(b * e).fill(-1n),
    e,
  }
  for (let i = 0; i < b; i++) {
    const alpha = q.scale[i] as number
    const bound = (((q.err[i] as number) * block.normMax + (q.codeNorm[i] as number) * block.errMax) * (1 + 2 ** -30)) + 2 * SLACK
    ctx.bound[i] = bound
    const cap = batch.caps[i] as number
    ctx.hi[i] = awayFromZero(float32AtLeast((cap + bound) / alpha))
    ctx.lo[i] = float32AtMost((cap - bound) / alpha)
    for (let t = 0; t < counts; t++) {
      const c = countCaps[i * counts + t] as number
      ctx.cntHi[i * counts + t] = float32AtLeast((c + bound) / alpha)
      ctx.cntLo[i * counts + t] = float32AtMost((c - bound) / alpha)
    }
    for (let j = 0; j < batch.excludeWidth; j++) {
      const g = batch.exclude[i * batch.excludeWidth + j] as number
      if (g >= 0 && g < blockOf.length && blockOf[g] === bi) ctx.excl[i * e + j] = BigInt(localOf[g] as number)
    }
  }
  return ctx
}

/** The feeds of one session call for the batch rows `rows` (all of them on the first call). */
function feedsFor(contexts: readonly BlockContext[], rows: readonly number[], codes: Uint8Array, dim: number, k: number, kr: number, ranked: boolean): Record<string, ort.Tensor> {
  const m = rows.length
  const all = m === (contexts[0]?.hi.length ?? 0)
  const pickRows = <A extends Float32Array | BigInt64Array | Uint8Array>(src: A, width: number, make: (n: number) => A): A => {
    if (all) return src
    const out = make(m * width)
    rows.forEach((i, r) => (out as Float32Array).set(src.subarray(i * width, (i + 1) * width) as Float32Array, r * width))
    return out
  }
  const feeds: Record<string, ort.Tensor> = {
    q: new ort.Tensor('uint8', pickRows(codes, dim, (n) => new Uint8Array(n)), [m, dim]),
  }
  contexts.forEach((ctx, blk) => {
    const c = ctx.counts
    feeds[`k_${blk}`] = new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.min(k, ctx.block.n))), [1])
    if (ranked) feeds[`kr_${blk}`] = new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.min(kr, ctx.block.n))), [1])
    feeds[`hi_${blk}`] = new ort.Tensor('float32', pickRows(ctx.hi, 1, (n) => new Float32Array(n)), [m, 1])
    feeds[`excl_${blk}`] = new ort.Tensor('int64', pickRows(ctx.excl, ctx.e, (n) => new BigInt64Array(n)), [m, ctx.e])
    if (c > 0) {
      feeds[`cnt_hi_${blk}`] = new ort.Tensor('float32', pickRows(ctx.cntHi, c, (n) => new Float32Array(n)), [m, c])
      feeds[`cnt_lo_${blk}`] = new ort.Tensor('float32', pickRows(ctx.cntLo, c, (n) => new Float32Array(n)), [m, c])
    }
    if (ranked) feeds[`lo_${blk}`] = new ort.Tensor('float32', pickRows(ctx.lo, 1, (n) => new Float32Array(n)), [m, 1])
  })
  return feeds
}

/** One block's outputs of a session call, typed, with the band's rows located. */
export interface OutputView {
  topG: Float32Array // rows x k
  topIndex: BigInt64Array // rows x k
  removed: Float32Array // rows
  exclG: Float32Array // rows x E
  cntCertain?: Float32Array // rows x C
  bandStart?: Int32Array // rows + 1: the band entries of output row r are [bandStart[r], bandStart[r + 1])
  bandCol?: BigInt64Array // band entries' block columns, row by row
  bandG?: Float32Array // band entries' G
  remG?: Float32Array // rows x kr
  remIndex?: BigInt64Array // rows x kr
}

/** Block blk's outputs of one session call. */
function outputView(out: ort.InferenceSession.ReturnType, blk: number, rows: number, counts: number): OutputView {
  const data = <A>(name: string): A => (out[`${name}_${blk}`] as ort.Tensor).data as A
  const view: OutputView = {
    topG: data('top_g'),
    topIndex: data('top_index'),
    removed: data('removed'),
    exclG: data('excl_g'),
  }
  if (counts > 0) {
    view.cntCertain = data('cnt_certain')
    const index = data<BigInt64Array>('band_index')
    const m = index.length / 2
    const start = new Int32Array(rows + 1)
    for (let x = 0; x < m; x++) start[Number(index[x]) + 1]!++
    for (let r = 0; r < rows; r++) start[r + 1]! += start[r] as number
    view.bandStart = start
    view.bandCol = index.subarray(m)
    view.bandG = data('band_g')
  }
  if (out[`rem_g_${blk}`]) {
    view.remG = data('rem_g')
    view.remIndex = data('rem_index')
  }
  return view
}

/** `hi` moved away from 0 to at least STEP_FLOOR (the same candidates lie above it). */
function awayFromZero(hi: number): number {
  // -0 is 0 here: G > -0 holds for positive G only, as G > STEP_FLOOR does.
  return Math.abs(hi) >= STEP_FLOOR ? hi : hi < 0 ? -STEP_FLOOR : STEP_FLOOR
}

function missing(what: string): never {
  throw new HardnegError('E_BAD_OPTION', `the searcher's rules need the batch's ${what}`)
}
