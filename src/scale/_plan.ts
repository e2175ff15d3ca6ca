/**
 * The share plan of a distributed run: which queries, and which pool rows, each worker
 * mines. Deterministic (every worker computes it alone from the same inputs) and
 * balanced by work. Private to scale/.
 *
 * - Rows are taken in the run's output order (groups in order of first appearance,
 *   members in input order). Row r of group g costs w_g = max(1, pool rows of g): its
 *   search scores every pool row. The N / M query shares are contiguous ranges of that
 *   sequence, share s starting at the first row whose cost before it reaches s / S of the
 *   total (exact integer arithmetic), so that concatenating the shares in order gives the
 *   one-process row order back.
 * - With M pool parts, group g's pool is split into m_g = min(M, max(1, floor(P_g / 1024)))
 *   even, contiguous parts: never narrower than the exact searcher's smallest pool block,
 *   so that every score is computed on the same sgemm path as in one process. Worker i
 *   mines share floor(i / M) against part i mod M; workers whose part number is m_g or
 *   more have nothing of that group.
 */
import { HardnegError } from '../errors.js'
import type { GroupShare, GroupSize } from '../mine/role.js'
import { MIN_POOL_BLOCK } from '../mine/search/exact.js'

/** What one worker mines, per group (undefined = nothing of that group). */
export type WorkerShares = (GroupShare | undefined)[]

/** The whole plan: per worker, per group. */
export interface RunPlan {
  workers: number // N
  poolParts: number // M
  shares: number // N / M query shares
  partsOf: number[] // per group: pool parts m_g
  byWorker: WorkerShares[] // per worker index
}

/** Plans `count` workers (`poolParts` pool parts each query share) over `groups`. */
export function planRun(groups: readonly GroupSize[], count: number, poolParts: number): RunPlan {
  const shares = count / poolParts
  if (!Number.isInteger(shares) || shares < 1) throw new HardnegError('E_BAD_OPTION', `${count} workers with ${poolParts} pool parts, expected a worker count divisible by the pool parts`)
  const S = BigInt(shares)
  const cost = groups.map((g) => BigInt(Math.max(1, g.poolRows)))
  let total = 0n
  groups.forEach((g, i) => (total += BigInt(g.rows) * (cost[i] as bigint)))
  // cuts[s]: first global row of share s; the cost before it is the first to reach s/S of the total.
  const cuts: number[] = [0]
  let before = 0n
  let position = 0
  let s = 1
  groups.forEach((g, i) => {
    const w = cost[i] as bigint
    const after = before + BigInt(g.rows) * w
    while (s < shares && S * after >= BigInt(s) * total) {
      const need = BigInt(s) * total - S * before
      const r = need <= 0n ? 0n : (need + S * w - 1n) / (S * w)
      cuts.push(position + Number(r))
      s++
    }
    before = after
    position += g.rows
  })
  while (cuts.length <= shares) cuts.push(position)
  const partsOf = groups.map((g) => Math.min(poolParts, Math.max(1, Math.floor(g.poolRows / MIN_POOL_BLOCK))))
  const byWorker: WorkerShares[] = []
  for (let worker = 0; worker < count; worker++) {
    const share = Math.floor(worker / poolParts)
    const part = worker % poolParts
    const [lo, hi] = [cuts[share] as number, cuts[share + 1] as number]
    let start = 0
    byWorker.push(
      groups.map((g, i) => {
        const from = Math.max(lo, start) - start
        const to = Math.min(hi, start + g.rows) - start
        start += g.rows
        const m = partsOf[i] as number
        if (to <= from || part >= m) return undefined
        return { rows: [from, to], pool: [Math.floor((part * g.poolRows) / m), Math.floor(((part + 1) * g.poolRows) / m)] }
      }),
    )
  }
  return { workers: count, poolParts, shares, partsOf, byWorker }
}
