/**
 * Exact top-k search, by one of two kernels. fp32: a blocked matrix multiply in
 * onnxruntime (MLAS sgemm), one block of queries against one block of the pool at a time,
 * with the false-negative rules applied as masks inside the graph and a running top-k
 * merged across pool blocks. int8 (`_int8.ts`): integer scores with a proved error bound,
 * exact float64 rescoring of every candidate the bound leaves undecided. Memory is one
 * block pair plus the pool, never a queries x pool matrix.
 */
import os from 'node:os'
import * as ort from 'onnxruntime-node'
import { HardnegError } from '../../errors.js'
import type { EmbeddingMatrix } from '../../types.js'
import { cpuInt8, type CpuInt8 } from './_cpu.js'
import { buildScoreGraph } from './_graph.js'
import { createInt8Searcher, type Int8Searcher, type RescoreCounts } from './_int8.js'
import { checkCount, searchCounts, mergeTopK, removedBy, type QueryBatch, type RankedList, type SearchResult } from './topk.js'

/** Options of {@link createExactSearcher}. */
export interface ExactSearchOptions {
  pool: EmbeddingMatrix // L2-normalised candidate vectors, in pool order
  owners?: EmbeddingMatrix // per pool entry, the L2-normalised vector of the query that owns it (rows = pool rows); needed for querySimMax
  keep: number // candidates to return per query, best first, after the rules (>= 1)
  keepRemoved?: number // removed candidates to return per query in `filtered`, best first (default 0: none, and no second ranking is run)
  posSimMax?: number // remove candidates whose similarity to the query's positive exceeds this (off when undefined)
  querySimMax?: number // remove candidates whose owning query's similarity to the query exceeds this (off when undefined)
  splitMargin?: boolean // count the margin rule's removals apart; every batch then carries `marginCaps` (default false)
  sweeps?: number // count the candidates above S further ceilings; every batch then carries `sweepCaps` (rows x S) and results `sweepRemoved` (default 0: none)
  poolBlockRows?: number // pool rows scored per call (default 16384, at least 1024; the pool is split into even blocks); results do not depend on it
  threads?: number // intra-op threads for onnxruntime (default: available cores); results do not depend on it
  kernel?: ExactKernel | 'auto' // 'fp32', 'int8', or 'auto': see chooseExactKernel (default 'fp32'); int8 falls back to fp32 where it does not apply
  queryRows?: number // with kernel 'auto': how many queries will be searched, for the size rule (default: as many as the pool holds)
  groupPoolRows?: number // with kernel 'auto': the rows of the whole pool `pool` is a part of, for the size rule, so that every part of a split pool runs the kernel the whole would (default: pool.rows)
  poolPart?: boolean // `pool` is a part of a split pool: 'auto' cannot probe the whole, and refuses where it would (default false)
}

/** The two exact kernels: float32 sgemm scores, or integer scores with exact rescoring. */
export type ExactKernel = 'fp32' | 'int8'

/** Which kernel a searcher runs, and why. */
export interface KernelChoice {
  kernel: ExactKernel // the kernel used
  reason: string // why: the CPU, the size rule, a rule the int8 kernel does not apply, or that it was asked for
}

/** Per query, the exact rescoring the int8 kernel needed (see `createInt8Searcher`). */
export type { RescoreCounts }

/** This CPU's integer dot-product support, as the kernel choice sees it. */
export { cpuInt8, type CpuInt8 }

/** An exact searcher over one pool; call `close()` when done. */
export interface ExactSearcher {
  search(batch: QueryBatch, keep?: number): Promise<SearchResult[]> // one result per query in the batch, in order; `keep` overrides the searcher's for this call
  close(): Promise<void>
  kernel: KernelChoice // the kernel this searcher runs
  rescoreCounts?(): RescoreCounts // int8 kernel: per query searched so far, the candidates rescored exactly and those straddling the ceiling
}

/**
 * With kernel 'auto', the int8 kernel runs when the group's multiply needs at least this
 * many operations (2 x queries x pool x dim, ~31k x 31k x 1024): below it, quantising the
 * pool and the per-query rescoring cost about what the integer multiply saves (measured on
 * this project's AVX2 machine: parity at 20k x 20k x 1024, 1.26x at 60k, 1.5x at 273k).
 */
export const INT8_MIN_OPS = 2e12

/**
 * Picks the exact kernel for one pool. int8 does not apply the two similarity rules
 * (`posSimMax`, `querySimMax`: each is a second multiply with its own undecided band,
 * anywhere in the ranking), so those searches use fp32 whatever was asked. 'auto' takes
 * int8 on CPUs with a fast integer dot product (VNNI, Arm dot product, AVX2: measured
 * in docs/benchmarks.md) for multiplies of at least INT8_MIN_OPS whose band probe (given as
 * `probe`, see probeBand) left at most 5 % of its queries undecided, else fp32.
 */
export function chooseExactKernel(options: {
  requested: ExactKernel | 'auto' // what was asked
  similarityRules: boolean // posSimMax or querySimMax is on
  ops: number // 2 x queries x pool x dim
  cpu?: CpuInt8 // the CPU (default: this one)
  probe?: BandProbe // with 'auto': what the band probe found (see probeBand); none yet: decided without it
}): KernelChoice {
  const { requested } = options
  if (requested !== 'auto' && requested !== 'fp32' && requested !== 'int8') {
    throw new HardnegError('E_BAD_OPTION', `kernel: '${String(requested)}', expected 'auto', 'fp32' or 'int8'`)
  }
  if (requested === 'fp32') return { kernel: 'fp32', reason: 'asked for' }
  if (options.similarityRules) {
    return { kernel: 'fp32', reason: `${requested === 'int8' ? 'int8 asked for, but ' : ''}the pos-sim/query-sim rules run in the fp32 kernel only` }
  }
  if (requested === 'int8') return { kernel: 'int8', reason: 'asked for' }
  const cpu = options.cpu ?? cpuInt8()
  if (cpu.int8 === 'none') return { kernel: 'fp32', reason: `auto: no fast int8 dot product on this CPU (${cpu.arch}; flags: ${cpu.flags.join(' ') || 'none'})` }
  if (options.ops < INT8_MIN_OPS) return { kernel: 'fp32', reason: `auto: the group's multiply is under ${INT8_MIN_OPS.toExponential(0)} operations (2 x queries x pool x dim)` }
  const { probe } = options
  if (probe && probe.undecided * 100 > probe.queries * PROBE_MAX_UNDECIDED_PERCENT) {
    return { kernel: 'fp32', reason: `auto: a wide band (the int8 pass left ${probe.undecided} of ${probe.queries} probe queries undecided in its first ranking: scores crowd within the quantisation bound), where int8 is slower` }
  }
  return { kernel: 'int8', reason: `auto: ${cpu.int8} int8 dot product (${cpu.flags.join(' ')})` }
}

/** Probe queries: pool rows evenly spaced over the pool. */
const PROBE_QUERIES = 256
/** More probe queries undecided than this share (in percent) and 'auto' keeps fp32. */
const PROBE_MAX_UNDECIDED_PERCENT = 5

/** What {@link probeBand} found. */
export interface BandProbe {
  queries: number // probe queries searched
  undecided: number // of them, those the int8 pass could not settle from its first ranking
}

/**
 * How wide the int8 kernel's undecided band is on this data, from the data alone (no
 * timing, so a choice made on it is reproducible and the same in every worker of a query
 * split): pool rows evenly spaced over the pool serve as queries (each leaving itself out)
 * against the whole pool; counted are those the first ranking could not settle. Where
 * scores crowd within the quantisation bound (docs/benchmarks.md: MMEB-style subsets of
 * 50k), listing and rescoring cost more than the integer multiply saves.
 */
export async function probeBand(searcher: Pick<Int8Searcher, 'search' | 'firstPassMisses'>, pool: EmbeddingMatrix): Promise<BandProbe> {
  const { dim, rows } = pool
  const queries = Math.min(PROBE_QUERIES, rows)
  const at = Int32Array.from({ length: queries }, (_, j) => Math.floor((j * rows) / queries))
  const data = new Float32Array(queries * dim)
  at.forEach((r, j) => data.set(pool.data.subarray(r * dim, (r + 1) * dim), j * dim))
  const before = searcher.firstPassMisses()
  await searcher.search({ rows: queries, dim, queries: data, caps: new Float32Array(queries).fill(2), exclude: at, excludeWidth: 1 })
  return { queries, undecided: searcher.firstPassMisses() - before }
}

/**
 * Prepares an exact searcher over `options.pool`.
 *
 * @example
 * const searcher = await createExactSearcher({ pool, keep: 10 })
 * try { const results = await searcher.search(batch) } finally { await searcher.close() }
 */
export async function createExactSearcher(options: ExactSearchOptions): Promise<ExactSearcher> {
  const { pool } = options
  checkCount('keep', options.keep, 1)
  const asked = {
    requested: options.kernel ?? 'fp32',
    similarityRules: options.posSimMax !== undefined || options.querySimMax !== undefined,
    ops: 2 * (options.queryRows ?? pool.rows) * (options.groupPoolRows ?? pool.rows) * pool.dim,
  }
  let kernel = chooseExactKernel(asked)
  if (kernel.kernel === 'int8') {
    // auto with int8 in view probes the whole pool, which a pool part does not hold.
    if (asked.requested === 'auto' && options.poolPart) {
      throw new HardnegError('E_BAD_OPTION', "exact kernel 'auto' for a split pool whose size and CPU call for int8, expected 'int8' or 'fp32' (--exact-kernel): auto decides by a probe of the whole pool, which no pool part holds")
    }
    const int8 = await createInt8Searcher({
      pool,
      keep: options.keep,
      ...(options.keepRemoved !== undefined ? { keepRemoved: options.keepRemoved } : {}),
      ...(options.splitMargin !== undefined ? { splitMargin: options.splitMargin } : {}),
      ...(options.sweeps !== undefined ? { sweeps: options.sweeps } : {}),
      ...(options.poolBlockRows !== undefined ? { poolBlockRows: options.poolBlockRows } : {}),
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
    })
    if (asked.requested !== 'auto') return { ...int8, kernel }
    // Whether this data's band is narrow enough for int8 to pay; the probe's own counts are not the run's.
    let probe: BandProbe
    try {
      probe = await probeBand(int8, pool)
    } catch (err) {
      await int8.close()
      throw err
    }
    kernel = chooseExactKernel({ ...asked, probe })
    if (kernel.kernel === 'int8') {
      const skip = probe.queries
      const counts = (): RescoreCounts => {
        const all = int8.rescoreCounts()
        return { rescored: all.rescored.slice(skip), ceilingBand: all.ceilingBand.slice(skip) }
      }
      return { ...int8, rescoreCounts: counts, kernel }
    }
    await int8.close()
  }
  if (pool.rows > 0 && pool.rows < MIN_POOL_BLOCK) return padSmallPool(options, kernel)
  const splitMargin = options.splitMargin ?? false
  const { keepRemoved, sweeps } = searchCounts(options)
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
  const nBlocks = Math.max(1, Math.floor(pool.rows / Math.max(MIN_POOL_BLOCK, options.poolBlockRows ?? 16384)))
  const poolBlockRows = Math.ceil(pool.rows / nBlocks)
  const threads = options.threads ?? os.availableParallelism()
  const session = await ort.InferenceSession.create(buildScoreGraph({ posSim: usePos, querySim: useOwners, splitMargin, keepRemoved: keepRemoved > 0, sweeps: sweeps > 0 }), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  })
  const dim = pool.dim
  const posMax = new ort.Tensor('float32', Float32Array.of(options.posSimMax ?? 0), [1])
  const queryMax = new ort.Tensor('float32', Float32Array.of(options.querySimMax ?? 0), [1])

  async function search(batch: QueryBatch, keepOverride?: number): Promise<SearchResult[]> {
    const keep = keepOverride ?? options.keep
    checkCount('keep', keep, 1)
    const b = batch.rows
    if (batch.dim !== dim) {
      throw new HardnegError('E_DIM_MISMATCH', `query dim ${batch.dim}, expected ${dim} (the pool's)`)
    }
    const e = batch.excludeWidth
    const results: SearchResult[] = []
    const removedLists: RankedList[] = []
    for (let i = 0; i < b; i++) {
      results.push({ index: new Int32Array(0), score: new Float32Array(0), removed: 0, removedByMargin: 0, ...(sweeps > 0 ? { sweepRemoved: new Int32Array(sweeps) } : {}) })
      if (keepRemoved > 0) removedLists.push({ index: new Int32Array(0), score: new Float32Array(0), tag: new Uint8Array(0) })
    }
    if (b === 0 || pool.rows === 0) return withRemoved(results, removedLists)
    const rowsIn = Math.max(2, b)
    const q = new ort.Tensor('float32', padRows(batch.queries, b, dim), [rowsIn, dim])
    const cap = new ort.Tensor('float32', padRows(batch.caps, b, 1), [rowsIn, 1])
    const marginCap = splitMargin ? new ort.Tensor('float32', padRows(batch.marginCaps ?? missing('marginCaps'), b, 1), [rowsIn, 1]) : undefined
    const pos = usePos ? new ort.Tensor('float32', padRows(batch.positives ?? missing('positives'), b, dim), [rowsIn, dim]) : undefined
    const sweepCaps = sweeps > 0 ? batch.sweepCaps ?? missing('sweepCaps') : undefined
    // The lowest ceiling of each query (ceilings rise with the threshold; min keeps it exact whatever the order given).
    const sweepFloor = sweepCaps ? new ort.Tensor('float32', padRows(Float32Array.from({ length: b }, (_, i) => Math.min(...sweepCaps.subarray(i * sweeps, (i + 1) * sweeps))), b, 1), [rowsIn, 1]) : undefined
    const localExcl = new BigInt64Array(rowsIn * e).fill(-1n)
    for (let start = 0; start < pool.rows; start += poolBlockRows) {
      const n = Math.min(poolBlockRows, pool.rows - start)
      const want = Math.min(keep + e, n)
      const wantRemoved = Math.min(keepRemoved + e, n)
      for (let j = 0; j < b * e; j++) {
        const g = batch.exclude[j] ?? -1
        localExcl[j] = BigInt(g >= start && g < start + n ? g - start : -1)
      }
      const feeds: Record<string, ort.Tensor> = {
        q,
        p: new ort.Tensor('float32', pool.data.subarray(start * dim, (start + n) * dim), [n, dim]),
        cap,
        k: new ort.Tensor('int64', BigInt64Array.of(BigInt(want)), [1]),
        excl: new ort.Tensor('int64', localExcl, [rowsIn, e]),
      }
      if (keepRemoved > 0) feeds.kr = new ort.Tensor('int64', BigInt64Array.of(BigInt(wantRemoved)), [1])
      if (pos) Object.assign(feeds, { pos, pos_max: posMax })
      if (marginCap) feeds.margin_cap = marginCap
      if (sweepFloor) feeds.sweep_floor = sweepFloor
      if (useOwners && options.owners) {
        feeds.owners = new ort.Tensor('float32', options.owners.data.subarray(start * dim, (start + n) * dim), [n, dim])
        feeds.query_max = queryMax
      }
      const out = await session.run(feeds)
      const topScores = out.top_scores?.data as Float32Array
      const topIndex = out.top_index?.data as BigInt64Array
      const removed = out.removed?.data as Float32Array
      const exclRemoved = out.excl_removed?.data as Float32Array
      const marginRemoved = splitMargin ? (out.margin_removed?.data as Float32Array) : removed
      const exclMargin = splitMargin ? (out.excl_margin?.data as Float32Array) : exclRemoved
      const sweepRows = out.sweep_rows?.data as Float32Array | undefined
      const sweepScores = out.sweep_scores?.data as Float32Array | undefined
      const exclScores = out.excl_scores?.data as Float32Array | undefined
      let sweepAt = 0 // where query i's scores above its floor start in sweepScores
      for (let i = 0; i < b; i++) {
        const r = results[i] as SearchResult
        let removedHere = removed[i] ?? 0
        let marginHere = marginRemoved[i] ?? 0
        const skip = new Set<number>()
        const skipAt: number[] = [] // the excl column of each excluded candidate of this block, once each
        for (let j = 0; j < e; j++) {
          const local = Number(localExcl[i * e + j])
          if (local < 0 || skip.has(local)) continue
          skip.add(local)
          skipAt.push(i * e + j)
          removedHere -= exclRemoved[i * e + j] ?? 0
          marginHere -= exclMargin[i * e + j] ?? 0
        }
        if (sweepCaps && sweepRows && sweepScores && exclScores && r.sweepRemoved) {
          const over = sweepRows[i] ?? 0
          for (let t = 0; t < sweeps; t++) {
            const cap = sweepCaps[i * sweeps + t] as number
            let count = 0
            for (let j = sweepAt; j < sweepAt + over; j++) if ((sweepScores[j] as number) > cap) count++
            // Each excluded candidate once, by its score against this ceiling (the graph's float32 compare).
            for (const at of skipAt) if ((exclScores[at] as number) > cap) count--
            r.sweepRemoved[t] = (r.sweepRemoved[t] ?? 0) + count
          }
          sweepAt += over
        }
        r.removed += removedHere
        r.removedByMargin += marginHere
        mergeTopK(r, topScores, topIndex, i * want, want, start, skip, keep)
        const list = removedLists[i]
        if (list) {
          const scores = out.removed_scores?.data as Float32Array
          const indices = out.removed_index?.data as BigInt64Array
          const rules = out.removed_rule?.data as Float32Array
          mergeTopK(list, scores, indices, i * wantRemoved, wantRemoved, start, skip, keepRemoved, rules)
        }
      }
    }
    return withRemoved(results, removedLists)
  }

  return {
    search,
    async close() {
      await session.release()
    },
    kernel,
  }
}

/** Attaches each query's removed candidates (when they were ranked) to its result. */
function withRemoved(results: SearchResult[], lists: readonly RankedList[]): SearchResult[] {
  for (const [i, list] of lists.entries()) {
    const r = results[i] as SearchResult
    r.filtered = { index: list.index, score: list.score, rule: Array.from(list.tag ?? [], removedBy) }
  }
  return results
}

/** Smallest pool block scored in one call, unless the pool itself is smaller. */
export const MIN_POOL_BLOCK = 1024

/**
 * The fp32 kernel over a pool of fewer than MIN_POOL_BLOCK rows. On a pool of under ~150
 * rows MLAS sums in an order that depends on how many queries a call holds, so a small
 * group's scores would change with the query block size and with the number of workers
 * (measured on 90 SNLI rows). The pool is padded with zero rows to MIN_POOL_BLOCK, which
 * keeps every call on the main path, and the pad rows are excluded from every query's
 * ranking and counts like its own positive.
 */
async function padSmallPool(options: ExactSearchOptions, kernel: KernelChoice): Promise<ExactSearcher> {
  const { pool } = options
  const pad = MIN_POOL_BLOCK - pool.rows
  const padded = (m: EmbeddingMatrix): EmbeddingMatrix => {
    const data = new Float32Array((m.rows + pad) * m.dim)
    data.set(m.data)
    return { rows: m.rows + pad, dim: m.dim, data }
  }
  const inner = await createExactSearcher({ ...options, kernel: 'fp32', pool: padded(pool), ...(options.owners ? { owners: padded(options.owners) } : {}) })
  const widen = (batch: QueryBatch): QueryBatch => {
    const e = batch.excludeWidth
    const exclude = new Int32Array(batch.rows * (e + pad))
    for (let i = 0; i < batch.rows; i++) {
      exclude.set(batch.exclude.subarray(i * e, (i + 1) * e), i * (e + pad))
      for (let j = 0; j < pad; j++) exclude[i * (e + pad) + e + j] = pool.rows + j
    }
    return { ...batch, exclude, excludeWidth: e + pad }
  }
  return { ...inner, kernel, search: (batch, keep) => inner.search(widen(batch), keep) }
}

/** A one-row block repeated to two rows (see the note on sgemm paths); others as they are. */
function padRows(data: Float32Array, rows: number, width: number): Float32Array {
  if (rows !== 1) return data
  const out = new Float32Array(2 * width)
  out.set(data.subarray(0, width))
  out.set(data.subarray(0, width), width)
  return out
}

function missing(what: string): never {
  throw new HardnegError('E_BAD_OPTION', `the searcher's rules need the batch's ${what}`)
}
