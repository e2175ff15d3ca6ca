/**
 * The candidate pool of one group: the distinct positives of its pairs, in order of
 * first appearance, then the external corpus. The first row that carries a candidate
 * supplies its embedding and id. A text-only run identifies a candidate by its text; a
 * run with images by (normalised text, image content), so the same picture under two
 * paths is one candidate and one instruction text over many pictures is many.
 */
import type { CorpusRecord, PairRecord } from '../types.js'

export type { CorpusRecord } from '../types.js'

/** One candidate of a pool. */
export interface PoolEntry {
  text: string // candidate text ('' for an image-only candidate)
  image: string // image path as the first carrier wrote it ('' = none)
  id: string // pair id of the first row carrying the text, or the corpus id
  source: 'pair' | 'corpus' // which embedding file holds its vector
  row: number // embedding row in that file (positive embeddings, or corpus embeddings)
  owner: number // pair row whose query owns this candidate; -1 for corpus entries
}

/** A group's candidate pool; `indexOf` maps a candidate's identity ({@link CandidatePool.identify}) to its pool index. */
export interface CandidatePool {
  group: string // group name ('' = the global group)
  entries: PoolEntry[] // candidates in pool order (ties in ranking go to the lower index)
  indexOf: Map<string, number> // identity -> pool index
  identify: (text: string, image: string) => string // identity of a (text, image path) side
}

/** Options of {@link buildPool}. */
export interface PoolOptions {
  imageKey?: (path: string) => string // content key of an image path, e.g. its SHA-256; given = identify candidates by (normalised text, image key) (default: text only, images ignored)
}

/**
 * Text as hardneg compares it where wording, not bytes, matters (candidate identity in a
 * run with images, the text-duplicate rule, validation's contamination and
 * near-positive checks): Unicode NFKC, lower case, runs of whitespace as one space, no
 * leading or trailing space.
 */
export function normaliseText(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim()
}

/** Pool indices per query left out of its ranking: its own positive and its own query text. */
export const EXCLUDE_WIDTH = 2

/**
 * Builds the pool of one group from its pairs (in input order) and an optional corpus.
 *
 * @example
 * const pool = buildPool('', pairs, corpus)
 */
export function buildPool(group: string, pairs: readonly PairRecord[], corpus: readonly CorpusRecord[] = [], options: PoolOptions = {}): CandidatePool {
  const { imageKey } = options
  const identify = imageKey === undefined
    ? (text: string): string => text
    : (text: string, image: string): string => `${normaliseText(text)}\u0000${image === '' ? '' : imageKey(image)}`
  const entries: PoolEntry[] = []
  const indexOf = new Map<string, number>()
  const add = (text: string, image: string, entry: Omit<PoolEntry, 'text' | 'image'>): void => {
    const usable = text !== '' || (imageKey !== undefined && image !== '')
    if (!usable) return
    const key = identify(text, image)
    if (indexOf.has(key)) return
    indexOf.set(key, entries.length)
    entries.push({ text, image: imageKey === undefined ? '' : image, ...entry })
  }
  for (const p of pairs) add(p.positive, p.positiveImage, { id: p.id, source: 'pair', row: p.row, owner: p.row })
  for (const c of corpus) add(c.text, '', { id: c.id, source: 'corpus', row: c.row, owner: -1 })
  return { group, entries, indexOf, identify }
}

/**
 * Writes the pool indices `pair` leaves out (its own positive, its own query as a
 * candidate; -1 = none) into `out` at `offset`.
 */
export function writeExclusions(pool: CandidatePool, pair: PairRecord, out: Int32Array, offset: number): void {
  out[offset] = pool.indexOf.get(pool.identify(pair.positive, pair.positiveImage)) ?? -1
  const q = pool.indexOf.get(pool.identify(pair.query, pair.queryImage)) ?? -1
  out[offset + 1] = q === out[offset] ? -1 : q
}

/**
 * The labeled positives of each query of a group. Rows that share a query identity
 * (the exact query text in a text-only run; normalised text and image content in a run
 * with images, as candidates are identified) are siblings: every positive of every
 * sibling is a labeled positive of that query.
 */
export interface QueryPositives {
  positivesOf(pair: PairRecord): readonly number[] // pool indices of the positives of `pair`'s query, in order of first appearance (its own among them)
  multiPositiveQueries: number // queries with two or more distinct positives in the pool
}

/**
 * Groups a pool's pairs by query identity and collects each query's positives.
 *
 * @example
 * const labeled = collectQueryPositives(pool, pairs)
 * labeled.positivesOf(pairs[0]) // [0, 5]: row 0's positive and the positive of a later row with the same query
 */
export function collectQueryPositives(pool: CandidatePool, pairs: readonly PairRecord[]): QueryPositives {
  const byQuery = new Map<string, number[]>()
  const none: readonly number[] = []
  const keyOf = (pair: PairRecord): string | undefined =>
    pair.query === '' && pair.queryImage === '' ? undefined : pool.identify(pair.query, pair.queryImage)
  const seen = new Map<string, Set<number>>() // linear in the rows however many share a query
  for (const pair of pairs) {
    const key = keyOf(pair)
    const positive = pool.indexOf.get(pool.identify(pair.positive, pair.positiveImage))
    if (key === undefined || positive === undefined) continue
    const list = byQuery.get(key)
    if (list === undefined) {
      byQuery.set(key, [positive])
      seen.set(key, new Set([positive]))
    } else if (!seen.get(key)?.has(positive)) {
      list.push(positive)
      seen.get(key)?.add(positive)
    }
  }
  let multi = 0
  for (const list of byQuery.values()) if (list.length > 1) multi++
  return {
    positivesOf: (pair) => {
      const key = keyOf(pair)
      return (key === undefined ? undefined : byQuery.get(key)) ?? none
    },
    multiPositiveQueries: multi,
  }
}

/**
 * The pool indices `pair` leaves out of its ranking and counts: its own positive, its
 * own query as a candidate, then the other labeled positives of its query (`labeled`,
 * see {@link collectQueryPositives}), each once. `own` is its own positive's pool index
 * (-1 = not in the pool); `siblings` is how many of the indices are there only because a
 * sibling row labeled them.
 */
export function exclusionsOf(pool: CandidatePool, pair: PairRecord, labeled?: QueryPositives): { indices: number[]; own: number; siblings: number } {
  const own = pool.indexOf.get(pool.identify(pair.positive, pair.positiveImage))
  const query = pool.indexOf.get(pool.identify(pair.query, pair.queryImage))
  const indices: number[] = []
  if (own !== undefined) indices.push(own)
  if (query !== undefined && query !== own) indices.push(query)
  const base = indices.length
  for (const c of labeled?.positivesOf(pair) ?? []) if (c !== own && c !== query) indices.push(c)
  return { indices, own: own ?? -1, siblings: indices.length - base }
}
