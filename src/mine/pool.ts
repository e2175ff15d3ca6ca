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
