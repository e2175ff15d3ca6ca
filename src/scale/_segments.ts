/**
 * The records of a part's record file, in the order a worker writes them. Private to scale/.
 *
 * A worker's stream is its slice of the one-process run's sequence of events: counts
 * made before any group (`run`, worker 0 only), each group's own counts (`group`, by the
 * worker that mines its first query against the start of its pool), and per query the
 * counts made for it and the rows it produced (`query`). Concatenating the workers'
 * streams in worker order gives the one-process sequence back, which the merge replays
 * into a MiningStats and the shard writers. Of a split pool a worker can only search:
 * its `partial` records carry a query's candidates from its pool part, which the merge
 * combines and finishes.
 */
import type { OutputFormat, RowLayout } from '../output/formats.js'
import type { PartialGroup, PartialQuery } from '../mine/partial.js'
import type { MinedRow } from '../types.js'

/** One call made to the run's MiningStats: the method's name and its arguments. */
export type StatsCall = [method: string, args: unknown[]]

/** One record. */
export type PartRecord =
  | { k: 'setup'; stats: unknown[]; format: OutputFormat; layout: RowLayout } // first: how the MiningStats was made, how rows are written
  | { k: 'run'; calls: StatsCall[] } // counts made before any group
  | { k: 'group'; group: number; calls: StatsCall[] } // a group's counts made before its first query
  | { k: 'query'; group: number; row: number; calls: StatsCall[]; rows: MinedRow[] } // one query: its counts and its row (none when dropped)
  | { k: 'split'; group: number; settings: PartialGroup } // a group whose pool is split: how its queries are finished
  | { k: 'partial'; group: number; row: number; query: PartialQuery } // one query searched against one pool part
