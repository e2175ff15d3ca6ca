/**
 * How a run takes part in a distributed job: the hooks `runMining` calls where a
 * one-process run would open its output, mine every row and write shards and a manifest.
 * `src/scale/` implements them (a worker writes a part; the merge writes the run); a
 * one-process run has no role. Kept as data-free hooks so that mining itself has one
 * code path, whoever drives it.
 */
import type { ManifestHead } from '../output/manifest.js'
import type { OutputFormat, RowLayout } from '../output/formats.js'
import type { MineGroupOptions, SearchMethod } from './negatives.js'
import type { MiningStats, MineSummary } from './stats.js'
import type { KernelLogState } from './kernels.js'
import type { MinedRow } from '../types.js'

/** One group as a plan sees it, in the run's group order. */
export interface GroupSize {
  name: string // group name ('' = the global group)
  rows: number // queries (pairs) in the group
  poolRows: number // candidates in its pool
  method: SearchMethod // how it is searched
}

/** What one worker mines of one group: a contiguous range of its queries, against a contiguous range of its pool. */
export interface GroupShare {
  rows: [number, number] // queries [start, end) of the group, in input order
  pool: [number, number] // pool indices [start, end) scored (the whole pool, unless the pool is split into parts)
}

/** A group's mining as a pool-part worker gets it: the options mineGroup would get, its pool restricted to `share.pool`. */
export interface PoolPartJob {
  group: number // index of the group in the run's group order
  share: GroupShare // what is mined
  options: MineGroupOptions // as for mineGroup; `poolVectors` (and `owners`) hold the rows of `share.pool` only
}

/** The hooks; see `runMining`. */
export interface RunRole<R> {
  /** Instead of opening the output: check `out` and prepare this worker's files. */
  open(out: string, overwrite: boolean): Promise<void>
  /** Once the groups are known: what this process mines of each (undefined = nothing of that group). */
  plan(groups: readonly GroupSize[]): (GroupShare | undefined)[]
  /** The run's statistics: a MiningStats built from `args` that also records every call made to it. */
  stats(args: ConstructorParameters<typeof MiningStats>): MiningStats
  /** Mining enters group `index` (before its pool is built) ... */
  enterGroup(index: number): void
  /** ... and query `row` (before its outcome is recorded). */
  enterQuery(row: number): void
  /** Instead of writing shards: the rows as `writeRowsAs(format, rows, layout)` would get them. */
  writeRows(rows: AsyncIterable<MinedRow>, format: OutputFormat, layout: RowLayout): Promise<void>
  /** With a split pool, instead of mineGroup: one group's queries searched against part of its pool. */
  minePoolPart(job: PoolPartJob): Promise<void>
  /** Instead of writing the manifest: what the worker returns. */
  finish(head: ManifestHead, summary: MineSummary, timings: Record<string, number>, kernels: KernelLogState): Promise<R>
  /** After a failure, instead of abandoning the staging directory. */
  abandon(): Promise<void>
}
