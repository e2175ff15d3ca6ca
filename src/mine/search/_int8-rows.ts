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
  ctx: BlockContext // the block and the batch's thresholds for it
  view: OutputView // the block call's outputs
  r: number // the row's position in this call's outputs
  i: number // the row in the batch
  k: number // this call's first-ranking size
  kr: number // this call's removed-ranking size
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

/** One listed candidate: its block column and the interval holding its exact score. */
interface Listed {
  col: number
  lo: number
  hi: number
}

/**
 * Settles one query against one block. Returns false, changing nothing, when the block's
 * rankings were too short to be sure that every candidate that could matter was listed;
 * the caller then asks again with longer ones.
 */
export function processRow(a: RowArgs): boolean {
  const { ctx, view, r, i, k, kr, keep, keepRemoved, state, q, stats, batch } = a
  const { block, e } = ctx
  const alpha = q.scale[i] as number
  const cap = batch.caps[i] as number
  const bound = ctx.bound[i] as number
  const skip: number[] = []
  const skipAt: number[] = []
  for (let j = 0; j < e; j++) {
    const local = Number(ctx.excl[i * e + j])
    if (local >= 0 && !skip.includes(local)) {
      skip.push(local)
      skipAt.push(r * e + j)
    }
  }
  const iv = new Float64Array(2)
  // The listed candidates of a ranking (highest G first) down to the first whose exact score
  // could not reach `stop`, and the highest exact score an unlisted one could have
  // (-Infinity: none that matters is unlisted).
  const list = (g: Float32Array, index: BigInt64Array, width: number, stop: number, keepIf: (lo: number, hi: number) => boolean): { listed: Listed[]; unlisted: number } => {
    const listed: Listed[] = []
    for (let t = 0; t < width; t++) {
      const v = g[r * width + t] as number
      if (v < MASKED_BELOW) return { listed, unlisted: -Infinity }
      const sHat = alpha * v
      // This one and all after it score below `stop`.
      if (sHat + bound < stop) return { listed, unlisted: -Infinity }
      const col = Number(index[r * width + t])
      if (skip.includes(col)) continue
      scoreInterval(sHat, q, i, stats, block.cols[col] as number, iv)
      if (keepIf(iv[0] as number, iv[1] as number)) listed.push({ col, lo: iv[0] as number, hi: iv[1] as number })
    }
    // Everything unlisted has G <= the last value listed.
    return { listed, unlisted: width >= block.n ? -Infinity : alpha * (g[r * width + width - 1] as number) + bound }
  }

  // The candidates not certainly removed, by G: enough of them to hold the top `keep`?
  const runFloor = state.kept.length >= keep ? (state.kept[keep - 1] as Scored).score : -Infinity
  const top = list(view.topG, view.topIndex, k, runFloor, () => true)
  let floor = runFloor
  const keptLows = top.listed.filter((c) => c.hi <= cap).map((c) => c.lo).sort((x, y) => y - x)
  if (keptLows.length >= keep) floor = Math.max(floor, keptLows[keep - 1] as number)
  // floor <= ceiling, so a complete list also holds every candidate near the ceiling.
  if (top.unlisted !== -Infinity && !(top.unlisted < floor)) return false

  let rem: { listed: Listed[]; unlisted: number } | undefined
  let remFloor = -Infinity
  if (keepRemoved > 0 && view.remG && view.remIndex) {
    if (state.removedList.length >= keepRemoved) remFloor = (state.removedList[keepRemoved - 1] as Scored).score
    rem = list(view.remG, view.remIndex, kr, remFloor, (_, hi) => hi > cap)
    const removedLows = rem.listed.filter((c) => c.lo > cap).map((c) => c.lo).sort((x, y) => y - x)
    if (removedLows.length >= keepRemoved) remFloor = Math.max(remFloor, removedLows[keepRemoved - 1] as number)
    if (rem.unlisted !== -Infinity && !(rem.unlisted < remFloor)) return false
  }

  const cache = new Map<number, number>()
  const exact = (col: number): number => {
    let s = cache.get(col)
    if (s === undefined) {
      s = dotRows(batch.queries, i, a.pool.data, block.cols[col] as number, batch.dim)
      cache.set(col, s)
    }
    return s
  }
  let removed = view.removed[r] as number
  for (const at of skipAt) if ((view.exclG[at] as number) > (ctx.hi[i] as number)) removed--
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
  for (const c of top.listed) {
    if (c.lo > cap) removed++
    else need.push(c)
  }
  // Exact scores four at a time, in ranking order; the floor rises between groups.
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
    for (let g = 0; g < 4; g++) cols[g] = block.cols[(group[Math.min(g, group.length - 1)] as Listed).col] as number
    dot4(batch.queries, i, a.pool.data, cols, batch.dim, scores)
    for (const [g, c] of group.entries()) {
      const score = scores[g] as number
      cache.set(c.col, score)
      if (c.hi > cap) {
        state.ceilingBand++
        if (score > cap) {
          removed++
          continue
        }
      }
      add.push({ index: block.cols[c.col] as number, score })
      meet(score)
    }
  }
  state.removed += removed
  state.kept = mergeExact(state.kept, add, keep)

  if (ctx.counts > 0) countCeilings(a, skip, skipAt, exact)

  if (rem) {
    const addRemoved: Scored[] = []
    for (const c of rem.listed) {
      if (c.hi < remFloor) continue
      const s = exact(c.col)
      if (s > cap) addRemoved.push({ index: block.cols[c.col] as number, score: s })
    }
    state.removedList = mergeExact(state.removedList, addRemoved, keepRemoved)
  }
  state.rescored += cache.size
  return true
}

/** The further ceilings' counts (margin split, sweep): the graph's certain ones, its band settled here. */
function countCeilings(a: RowArgs, skip: readonly number[], skipAt: readonly number[], exact: (col: number) => number): void {
  const { ctx, view, r, i, q, stats, state } = a
  const c = ctx.counts
  const certain = Array.from({ length: c }, (_, t) => view.cntCertain?.[r * c + t] as number)
  for (const at of skipAt) {
    for (let t = 0; t < c; t++) if ((view.exclG[at] as number) > (ctx.cntHi[i * c + t] as number)) certain[t]!--
  }
  const start = view.bandStart as Int32Array
  const cols = view.bandCol as BigInt64Array
  const gs = view.bandG as Float32Array
  const iv = new Float64Array(2)
  const alpha = q.scale[i] as number
  for (let x = start[r] as number; x < (start[r + 1] as number); x++) {
    const col = Number(cols[x])
    if (skip.includes(col)) continue
    const g = gs[x] as number
    let bounded = false
    for (let t = 0; t < c; t++) {
      if (g > (ctx.cntHi[i * c + t] as number) || !(g > (ctx.cntLo[i * c + t] as number))) continue
      if (!bounded) {
        scoreInterval(alpha * g, q, i, stats, ctx.block.cols[col] as number, iv)
        bounded = true
      }
      const ceiling = ctx.countCaps[i * c + t] as number
      if ((iv[0] as number) > ceiling || ((iv[1] as number) > ceiling && exact(col) > ceiling)) certain[t]!++
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
