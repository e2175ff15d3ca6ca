/**
 * A query searched against one part of its group's pool (a pool-part worker of a
 * distributed run), and how the parts of one query are combined and finished exactly as
 * the one-process run finishes it: false-negative counts add; candidate lists merge by
 * score, then pool order; the duplicate rules, selection and padding then run on the
 * merged list through {@link finishQuery}, the one-process code.
 *
 * What a part keeps is what finishing can need: without duplicate rules, its best
 * `searchKeep` candidates (the whole pool's best that many are among the parts' bests);
 * with them, its ranking down to the candidate where its own walk of the duplicate rules
 * stops, with each candidate's verdict. The global walk stops no later than the earliest
 * part's stop, so every candidate it looks at is in a part's list.
 */
import { HardnegError } from '../errors.js'
import type { DuplicateRule } from './duplicates.js'
import { finishQuery, searchGroup, searchKeep, serveWithDuplicates, type FinishedQuery, type FinishOptions, type MineGroupOptions, type SearchedQuery } from './negatives.js'
import type { CandidatePool, PoolEntry } from './pool.js'
import type { SearchResult } from './search/topk.js'
import type { SelectOptions } from './select.js'

/** One query from one pool part: its search and the candidates' pool entries (and verdicts of the duplicate rules). */
export interface PartialQuery extends SearchedQuery {
  entries: Map<number, PoolEntry> // pool entry of every candidate listed in `result` (and `result.filtered`), by pool index
  duplicates?: Map<number, DuplicateRule | null> // runs with images: each listed candidate's duplicate verdict (null = none)
}

/** What finishing a group's queries needs besides their parts: FinishOptions without the pool and the duplicate check, which the parts carry. */
export interface PartialGroup {
  poolRows: number // the group's whole pool
  rules: FinishOptions['rules']
  select: SelectOptions
  keepFiltered: number
  images: boolean
  duplicates: boolean // the run applies the duplicate rules
}

/** The settings of `options` a merge needs to finish the group's queries. */
export function partialGroupOf(options: MineGroupOptions): PartialGroup {
  return {
    poolRows: options.pool.entries.length,
    rules: options.rules,
    select: options.select,
    keepFiltered: options.keepFiltered ?? 0,
    images: options.images ?? false,
    duplicates: options.duplicates !== undefined,
  }
}

/**
 * Searches a group's queries against the pool rows `options.poolVectors` holds (from
 * `options.poolOffset` on) and hands each query's part to `emit`, in query order.
 */
export async function searchPoolPart(options: MineGroupOptions, emit: (query: PartialQuery) => Promise<void>): Promise<void> {
  const { pool, duplicates } = options
  // With a floor, the one-process deepening stops at the first list reaching below it, at a depth no part can tell alone.
  if (duplicates && options.select.minScore !== undefined) {
    throw new HardnegError('E_BAD_OPTION', 'minScore with a split pool in a run with images, expected one of the two: the duplicate rules fetch deeper until the floor, which only the whole pool decides')
  }
  for await (const [query, deeper] of searchGroup(options)) {
    let result = query.result
    let verdicts: Map<number, DuplicateRule | null> | undefined
    if (duplicates) {
      const walk = await serveWithDuplicates(query, deeper, { pool, select: options.select, duplicates })
      result = prefix(walk.ranked, walk.walked)
      verdicts = new Map()
      for (const c of result.index) verdicts.set(c, duplicates(query.pair, pool.entries[c] as PoolEntry) ?? null)
    }
    const entries = new Map<number, PoolEntry>()
    for (const c of [...result.index, ...(result.filtered?.index ?? [])]) entries.set(c, pool.entries[c] as PoolEntry)
    await emit({ ...query, result, entries, ...(verdicts ? { duplicates: verdicts } : {}) })
  }
}

/**
 * Combines one query's parts (one per pool part, any order) and finishes it as the
 * one-process run would. Throws when the parts are not of one query.
 */
export async function finishPartials(parts: readonly PartialQuery[], group: PartialGroup): Promise<FinishedQuery & { searched: SearchedQuery }> {
  const first = parts[0]
  if (!first) throw new Error('finishPartials: no parts')
  for (const p of parts) if (p.pair.row !== first.pair.row) throw new Error(`finishPartials: parts of rows ${first.pair.row} and ${p.pair.row}`)
  const merged = combineResults(parts.map((p) => p.result), group.keepFiltered)
  // The one pool, as far as finishing looks at it: the listed candidates, at their pool indices.
  const entries: PoolEntry[] = []
  const verdicts = new Map<PoolEntry, DuplicateRule | null>()
  for (const p of parts) {
    for (const [c, entry] of p.entries) {
      entries[c] = entry
      const verdict = p.duplicates?.get(c)
      if (verdict !== undefined) verdicts.set(entry, verdict)
    }
  }
  entries.length = group.poolRows
  const pool: CandidatePool = { group: first.pair.group, entries, indexOf: new Map(), identify: () => '' }
  const options: FinishOptions = {
    pool,
    rules: group.rules,
    select: group.select,
    keepFiltered: group.keepFiltered,
    images: group.images,
    ...(group.duplicates
      ? {
          duplicates: (_pair, entry) => {
            const verdict = verdicts.get(entry)
            if (verdict === undefined) throw new Error(`finishPartials: row ${first.pair.row}: no duplicate verdict for candidate ${entry.id}`)
            return verdict ?? undefined
          },
        }
      : {}),
  }
  const keep = searchKeep({ pool, select: group.select, ...(options.duplicates ? { duplicates: options.duplicates } : {}) })
  // The one-process search returns the best `keep`, and the best `n` when asked for more: prefixes of the merged ranking.
  const query: SearchedQuery = { ...first, result: prefix(merged, keep) }
  const finished = await finishQuery(query, async (n) => prefix(merged, n), options)
  return { ...finished, searched: query }
}

/** Search results of disjoint pool parts as one: counts add, candidate lists merge (score, then pool order). */
export function combineResults(results: readonly SearchResult[], keepRemoved: number): SearchResult {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(results[0] ?? {})) {
    if (key === 'index' || key === 'score' || key === 'filtered') continue
    if (typeof value === 'number') out[key] = results.reduce((sum, r) => sum + (r[key as keyof SearchResult] as number), 0)
    else if (value instanceof Int32Array) {
      const sum = new Int32Array(value.length)
      for (const r of results) (r[key as keyof SearchResult] as Int32Array).forEach((v, i) => (sum[i] = (sum[i] as number) + v))
      out[key] = sum
    } else throw new Error(`combineResults: no rule to combine SearchResult.${key}`)
  }
  const ranked = mergeRanked(results.map((r) => ({ index: r.index, score: r.score, tag: [] })), Infinity)
  const merged = { ...out, index: ranked.index, score: ranked.score } as unknown as SearchResult
  if (results.some((r) => r.filtered)) {
    const removed = mergeRanked(results.map((r) => ({ index: r.filtered?.index ?? new Int32Array(0), score: r.filtered?.score ?? new Float32Array(0), tag: r.filtered?.rule ?? [] })), keepRemoved)
    merged.filtered = { index: removed.index, score: removed.score, rule: removed.tag }
  }
  return merged
}

/** Sorted lists (score descending, pool index ascending) as one, at most `keep` long. */
function mergeRanked<T>(lists: readonly { index: Int32Array; score: Float32Array; tag: readonly T[] }[], keep: number): { index: Int32Array; score: Float32Array; tag: T[] } {
  const all: { index: number; score: number; tag: T | undefined }[] = []
  for (const l of lists) l.index.forEach((index, j) => all.push({ index, score: l.score[j] as number, tag: l.tag[j] }))
  all.sort((a, b) => b.score - a.score || a.index - b.index)
  const top = all.slice(0, Math.min(keep, all.length))
  return { index: Int32Array.from(top, (c) => c.index), score: Float32Array.from(top, (c) => c.score), tag: top.map((c) => c.tag as T) }
}

/** The first `n` candidates of a result (counts and removed lists unchanged). */
function prefix(result: SearchResult, n: number): SearchResult {
  if (result.index.length <= n) return result
  return { ...result, index: result.index.subarray(0, n), score: result.score.subarray(0, n) }
}
