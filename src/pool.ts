/**
 * The candidate pool of one group: the distinct positive texts of its pairs, in order
 * of first appearance, then the external corpus. The first row that carries a text
 * supplies that text's embedding and id.
 */
import type { PairRecord } from './types.js'

/** One external corpus entry (from --corpus). */
export interface CorpusRecord {
  row: number // 0-based row in the corpus file; owns corpus embedding row `row`
  id: string // corpus id
  text: string // candidate text
}

/** One candidate of a pool. */
export interface PoolEntry {
  text: string // candidate text
  id: string // pair id of the first row carrying the text, or the corpus id
  source: 'pair' | 'corpus' // which embedding file holds its vector
  row: number // embedding row in that file (positive embeddings, or corpus embeddings)
  owner: number // pair row whose query owns this candidate; -1 for corpus entries
}

/** A group's candidate pool; `indexOf` maps a candidate text to its pool index. */
export interface CandidatePool {
  group: string // group name ('' = the global group)
  entries: PoolEntry[] // candidates in pool order (ties in ranking go to the lower index)
  indexOf: Map<string, number> // text -> pool index
}

/** Pool indices per query left out of its ranking: its own positive and its own query text. */
export const EXCLUDE_WIDTH = 2

/**
 * Builds the pool of one group from its pairs (in input order) and an optional corpus.
 *
 * @example
 * const pool = buildPool('', pairs, corpus)
 */
export function buildPool(group: string, pairs: readonly PairRecord[], corpus: readonly CorpusRecord[] = []): CandidatePool {
  const entries: PoolEntry[] = []
  const indexOf = new Map<string, number>()
  for (const p of pairs) {
    if (p.positive === '' || indexOf.has(p.positive)) continue
    indexOf.set(p.positive, entries.length)
    entries.push({ text: p.positive, id: p.id, source: 'pair', row: p.row, owner: p.row })
  }
  for (const c of corpus) {
    if (c.text === '' || indexOf.has(c.text)) continue
    indexOf.set(c.text, entries.length)
    entries.push({ text: c.text, id: c.id, source: 'corpus', row: c.row, owner: -1 })
  }
  return { group, entries, indexOf }
}

/**
 * Writes the pool indices `pair` leaves out (own positive text, own query text; -1 =
 * none) into `out` at `offset`.
 */
export function writeExclusions(pool: CandidatePool, pair: PairRecord, out: Int32Array, offset: number): void {
  out[offset] = pool.indexOf.get(pair.positive) ?? -1
  const q = pool.indexOf.get(pair.query) ?? -1
  out[offset + 1] = q === out[offset] ? -1 : q
}
