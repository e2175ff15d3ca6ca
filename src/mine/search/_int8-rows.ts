/**
 * The int8 kernel's per-query work on one block's outputs: what the integer pass settles,
 * what it leaves to exact rescoring, and the running lists across blocks. Private to search/.
 */
import type { EmbeddingMatrix } from '../../types.js'
import { dotRows } from './hnsw.js'
import type { BlockContext, OutputView } from './_int8.js'
import { MASKED_BELOW } from './_int8-graph.js'
import { scoreInterval, type QuantizedRows } from './_quantize.js'
import type { QueryBatch, SearchResult } from './topk.js'

/** A candidate with its exact score. */
export interface Scored {
  index: number // pool index
  score: number // exact score (float32 value)
}

/** One query's state across the pool blocks of a search. */
export class RowState {
  kept: Scored[] = [] // best kept candidates so far, best first (ties to the lower pool index)
  removedList: Scored[] = [] // best removed candidates so far, same order
  removed = 0 // candidates above the ceiling
  margin = 0 // candidates above the margin rule's own ceiling (with splitMargin)
  sweep: Int32Array // per sweep ceiling, candidates above it
  rescored = 0 // exact dot products computed
  ceilingBand = 0 // candidates whose interval straddled the ceiling

  constructor(sweeps: number) {
    this.sweep = new Int32Array(sweeps)
  }

  /** The query's result, shaped as the fp32 kernel's. */
  result(splitMargin: boolean, sweeps: boolean, ranked: boolean): SearchResult {
    const r: SearchResult = {
      index: Int32Array.from(this.kept, (c) => c.index),
      score: Float32Array.from(this.kept, (c) => c.score),
      removed: this.removed,
      removedByMargin: splitMargin ? this.margin : this.removed,
      ...(sweeps ? { sweepRemoved: this.sweep } : {}),
    }
    if (ranked) {
      r.filtered = {
        index: Int32Array.from(this.removedList, (c) => c.index),
        score: Float32Array.from(this.removedList, (c) => c.score),
        rule: this.removedList.map(() => 'ceiling' as const),
      }
    }
    return r
  }
}

/** Merges `add` (any order) into `list` (best first), keeping `keep`: higher score first, then the lower pool index. */
export function mergeExact(list: Scored[], add: Scored[], keep: number): Scored[] {
  if (add.length === 0) return list
  const byRank = (a: Scored, b: Scored): number => b.score - a.score || a.index - b.index
  return list.concat(add).sort(byRank).slice(0, keep)
}

/** Everything {@link processRow} reads. */
export interface RowArgs {
  blocks: readonly { ctx: BlockContext; view: OutputView }[] // the session's blocks: thresholds and this call's outputs
  r: number // the row's position in this call's outputs
  i: number // the row in the batch
  k: number // this call's first-ranking size (per block, at most its columns)
  kr: number // this call's removed-ranking size (the same)
  keep: number // kept candidates wanted
  keepRemoved: number // removed candidates wanted (0 = none)
  state: RowState // the row's running state (changed only when this returns true)
  q: QuantizedRows // the batch's quantised queries
  stats: QuantizedRows // the pool's quantisation numbers
  pool: EmbeddingMatrix // the pool's float32 vectors, for exact scores
  batch: QueryBatch // the batch
}

/** Up to this keep, the floor below which candidates need no exact score rises with every one scored. */
const PROGRESSIVE_KEEP = 64

/** One listed candidate: its pool index and the interval holding its exact score. */
interface Listed {
  index: number
  lo: number
  hi: number
}

/** A block's listing of one ranking, and the highest exact score an unlisted candidate could have (-Infinity: none that matters is unlisted). */
interface Listing {
  listed: Listed[]
  unlisted: number
}

/** One block's exclusions for the row: local columns (each once) and where their G sits in `excl_g`. */
interface Skips {
  cols: Set<number>
  at: number[]
}

/**
 * Settles one query against the blocks of one session. Returns false, changing nothing,
 * when some block's ranking was too short to be sure that every candidate that could
 * matter was listed; the caller then asks again with longer ones.
 */
export function processRow(a: RowArgs): boolean {
  const { blocks, r, i, k, kr, keep, keepRemoved, state, q, stats, batch } = a
  const alpha = q.scale[i] as number
  const cap = batch.caps[i] as number
  const iv = new Float64Array(2)
  const skips: Skips[] = blocks.map(({ ctx }) => {
    const out: Skips = { cols: new Set(), at: [] }
    for (let j = 0; j < ctx.e; j++) {
      const local = Number(ctx.excl[i * ctx.e + j])
      if (local >= 0 && !out.cols.has(local)) {
        out.cols.add(local)
        out.at.push(r * ctx.e + j)
      }
    }
    return out
  })
  // Block `blk`'s ranking (highest G first) down to the first candidate whose exact score could not reach `stop`.
  const list = (blk: number, g: Float32Array, index: BigInt64Array, want: number, stop: number, keepIf: (lo: number, hi: number) => boolean, into: Listed[]): number => {
    const { ctx } = blocks[blk] as { ctx: BlockContext }
    const width = Math.min(want, ctx.block.n)
    const bound = ctx.bound[i] as number
    const skip = (skips[blk] as Skips).cols
    for (let t = 0; t < width; t++) {
      const v = g[r * width + t] as number
      if (v < MASKED_BELOW) return -Infinity
      const sHat = alpha * v
      // This one and all after it score below `stop`.
      if (sHat + bound < stop) return -Infinity
      const col = Number(index[r * width + t])
      if (skip.has(col)) continue
      const pj = ctx.block.cols[col] as number
      scoreInterval(sHat, q, i, stats, pj, iv)
      if (keepIf(iv[0] as number, iv[1] as number)) into.push({ index: pj, lo: iv[0] as number, hi: iv[1] as number })
    }
    // Everything unlisted has G <= the last value listed.
    return width >= ctx.block.n ? -Infinity : alpha * (g[r * width + width - 1] as number) + bound
  }
  const nth = (xs: number[], n: number): number => (xs.length >= n ? (xs.sort((x, y) => y - x)[n - 1] as number) : -Infinity)

  // The candidates not certainly removed, by G: enough of them to hold the top `keep`?
  const runFloor = state.kept.length >= keep ? (state.kept[keep - 1] as Scored).score : -Infinity
  const top: Listed[] = []
  const topUnlisted = blocks.map(({ view }, blk) => list(blk, view.topG, view.topIndex, k, runFloor, () => true, top))
  let floor = Math.max(runFloor, nth(top.filter((c) => c.hi <= cap).map((c) => c.lo), keep))
  // floor <= ceiling, so complete lists also hold every candidate near the ceiling.
  if (topUnlisted.some((u) => u !== -Infinity && !(u < floor))) return false

  const rem: Listed[] = []
  let remFloor = -Infinity
  if (keepRemoved > 0) {
    if (state.removedList.length >= keepRemoved) remFloor = (state.removedList[keepRemoved - 1] as Scored).score
    const stop = remFloor
    const remUnlisted = blocks.map(({ view }, blk) => list(blk, view.remG as Float32Array, view.remIndex as BigInt64Array, kr, stop, (_, hi) => hi > cap, rem))
    remFloor = Math.max(remFloor, nth(rem.filter((c) => c.lo > cap).map((c) => c.lo), keepRemoved))
    if (remUnlisted.some((u) => u !== -Infinity && !(u < remFloor))) return false
  }

  const cache = new Map<number, number>()
  const exact = (index: number): number => {
    let s = cache.get(index)
    if (s === undefined) {
      s = dotRows(batch.queries, i, a.pool.data, index, batch.dim)
      cache.set(index, s)
    }
    return s
  }
  let removed = 0
  blocks.forEach(({ ctx, view }, blk) => {
    removed += view.removed[r] as number
    for (const at of (skips[blk] as Skips).at) if ((view.exclG[at] as number) > (ctx.hi[i] as number)) removed--
  })
  // The best exact scores met so far, to raise the floor as rescoring goes (small keeps only).
  const best = keep <= PROGRESSIVE_KEEP ? state.kept.map((c) => c.score) : undefined
  const meet = (score: number): void => {
    if (!best || (best.length >= keep && score <= (best[keep - 1] as number))) return
    let at = best.length
    while (at > 0 && (best[at - 1] as number) < score) at--
    best.splice(at, 0, score)
    if (best.length > keep) best.pop()
    if (best.length >= keep) floor = Math.max(floor, best[keep - 1] as number)
  }
  const add: Scored[] = []
  const need: Listed[] = []
  for (const c of top) {
    if (c.lo > cap) removed++
    else need.push(c)
  }
  // Exact scores four at a time, most promising first; the floor rises between groups.
  need.sort((x, y) => y.hi - x.hi)
  const group: Listed[] = []
  const cols = new Int32Array(4)
  const scores = new Float64Array(4)
  for (let x = 0; x < need.length; ) {
    group.length = 0
    while (x < need.length && group.length < 4) {
      const c = need[x++] as Listed
      if (c.hi <= cap && c.hi < floor) continue
      group.push(c)
    }
    if (group.length === 0) break
    for (let g = 0; g < 4; g++) cols[g] = (group[Math.min(g, group.length - 1)] as Listed).index
    dot4(batch.queries, i, a.pool.data, cols, batch.dim, scores)
    for (const [g, c] of group.entries()) {
      const score = scores[g] as number
      cache.set(c.index, score)
      if (c.hi > cap) {
        state.ceilingBand++
        if (score > cap) {
          removed++
          continue
        }
      }
      add.push({ index: c.index, score })
      meet(score)
    }
  }
  state.removed += removed
  state.kept = mergeExact(state.kept, add, keep)

  blocks.forEach((b, blk) => {
    if (b.ctx.counts > 0) countCeilings(a, b.ctx, b.view, skips[blk] as Skips, exact)
  })

  if (keepRemoved > 0) {
    const addRemoved: Scored[] = []
    for (const c of rem) {
      if (c.hi < remFloor) continue
      const s = exact(c.index)
      if (s > cap) addRemoved.push({ index: c.index, score: s })
    }
    state.removedList = mergeExact(state.removedList, addRemoved, keepRemoved)
  }
  state.rescored += cache.size
  return true
}

/** The further ceilings' counts (margin split, sweep) in one block: the graph's certain ones, its band settled here. */
function countCeilings(a: RowArgs, ctx: BlockContext, view: OutputView, skips: Skips, exact: (index: number) => number): void {
  const { r, i, q, stats, state } = a
  const c = ctx.counts
  const certain = Array.from({ length: c }, (_, t) => view.cntCertain?.[r * c + t] as number)
  for (const at of skips.at) {
    for (let t = 0; t < c; t++) if ((view.exclG[at] as number) > (ctx.cntHi[i * c + t] as number)) certain[t]!--
  }
  const start = view.bandStart as Int32Array
  const cols = view.bandCol as BigInt64Array
  const gs = view.bandG as Float32Array
  const iv = new Float64Array(2)
  const alpha = q.scale[i] as number
  for (let x = start[r] as number; x < (start[r + 1] as number); x++) {
    const col = Number(cols[x])
    if (skips.cols.has(col)) continue
    const g = gs[x] as number
    const index = ctx.block.cols[col] as number
    let bounded = false
    for (let t = 0; t < c; t++) {
      if (g > (ctx.cntHi[i * c + t] as number) || !(g > (ctx.cntLo[i * c + t] as number))) continue
      if (!bounded) {
        scoreInterval(alpha * g, q, i, stats, index, iv)
        bounded = true
      }
      const ceiling = ctx.countCaps[i * c + t] as number
      if ((iv[0] as number) > ceiling || ((iv[1] as number) > ceiling && exact(index) > ceiling)) certain[t]!++
    }
  }
  const offset = ctx.splitMargin ? 1 : 0
  if (ctx.splitMargin) state.margin += certain[0] as number
  for (let t = 0; t < state.sweep.length; t++) state.sweep[t]! += certain[offset + t] as number
}

/**
 * Four exact scores at once: row `qi` of `queries` against pool rows `cols`, each the same
 * float64 sum in the same order as `dotRows` (so bit-identical to it), rounded to float32;
 * four independent sums hide the latency of each add.
 */
function dot4(queries: Float32Array, qi: number, pool: Float32Array, cols: Int32Array, dim: number, out: Float64Array): void {
  const qo = qi * dim
  const o0 = (cols[0] as number) * dim
  const o1 = (cols[1] as number) * dim
  const o2 = (cols[2] as number) * dim
  const o3 = (cols[3] as number) * dim
  let s0 = 0
  let s1 = 0
  let s2 = 0
  let s3 = 0
  for (let j = 0; j < dim; j++) {
    const x = queries[qo + j] as number
    s0 += x * (pool[o0 + j] as number)
    s1 += x * (pool[o1 + j] as number)
    s2 += x * (pool[o2 + j] as number)
    s3 += x * (pool[o3 + j] as number)
  }
  out[0] = Math.fround(s0)
  out[1] = Math.fround(s1)
  out[2] = Math.fround(s2)
  out[3] = Math.fround(s3)
}
