import { describe, expect, it } from 'vitest'
import { createExactSearcher } from '../src/mine/search/exact.js'
import { createHnswSearcher, dotRows } from '../src/mine/search/hnsw.js'
import type { QueryBatch, SearchResult } from '../src/mine/search/topk.js'
import { randomUnit } from './_helpers.js'

/** Brute force: float64 dot products rounded to float32, rules applied, ties to the lower index. */
function bruteForce(batch: QueryBatch, pool: { rows: number; dim: number; data: Float32Array }, keep: number, posSimMax?: number): SearchResult[] {
  const out: SearchResult[] = []
  for (let i = 0; i < batch.rows; i++) {
    const skip = Array.from(batch.exclude.subarray(i * batch.excludeWidth, (i + 1) * batch.excludeWidth))
    const kept: { index: number; score: number }[] = []
    let removed = 0
    let removedByMargin = 0
    const marginCap = batch.marginCaps?.[i] ?? (batch.caps[i] as number)
    for (let c = 0; c < pool.rows; c++) {
      if (skip.includes(c)) continue
      const s = dotRows(batch.queries, i, pool.data, c, pool.dim)
      const nearPos = posSimMax !== undefined && batch.positives ? dotRows(batch.positives, i, pool.data, c, pool.dim) > posSimMax : false
      if (s > marginCap) removedByMargin++
      if (s > (batch.caps[i] as number) || nearPos) removed++
      else kept.push({ index: c, score: s })
    }
    kept.sort((a, b) => b.score - a.score || a.index - b.index)
    const top = kept.slice(0, keep)
    out.push({ index: Int32Array.from(top, (t) => t.index), score: Float32Array.from(top, (t) => t.score), removed, removedByMargin })
  }
  return out
}

function makeBatch(rows: number, dim: number, seed: number, poolRows: number, cap: number): QueryBatch {
  const q = randomUnit(rows, dim, seed, 4)
  const exclude = new Int32Array(rows * 2).fill(-1)
  for (let i = 0; i < rows; i++) {
    exclude[i * 2] = (i * 7) % poolRows
    if (i % 3 === 0) exclude[i * 2 + 1] = (i * 13 + 1) % poolRows
  }
  return { rows, dim, queries: q.data, positives: randomUnit(rows, dim, seed + 1, 4).data, caps: new Float32Array(rows).fill(cap), exclude, excludeWidth: 2 }
}

describe('exact search', () => {
  const dim = 48
  const pool = randomUnit(3000, dim, 11, 4)
  const batch = makeBatch(40, dim, 12, pool.rows, 0.35)

  it('equals brute force: same candidates, order and false-negative counts', async () => {
    const searcher = await createExactSearcher({ pool, keep: 10, poolBlockRows: 700 })
    try {
      const got = await searcher.search(batch)
      const want = bruteForce(batch, pool, 10)
      expect(got.map((r) => r.removed)).toEqual(want.map((r) => r.removed))
      expect(got.some((r) => r.removed > 0)).toBe(true)
      for (let i = 0; i < batch.rows; i++) {
        expect(Array.from(got[i]!.index)).toEqual(Array.from(want[i]!.index))
        for (let j = 0; j < want[i]!.score.length; j++) expect(got[i]!.score[j]).toBeCloseTo(want[i]!.score[j]!, 5)
      }
    } finally {
      await searcher.close()
    }
  })

  it('equals brute force when some queries have far more false negatives than the fast list holds', async () => {
    // Ceilings from -0.2 (almost everything removed) to 0.9 (almost nothing): both the
    // fast top-k path and its masked fallback run, in the same blocks.
    const mixed = { ...batch, caps: Float32Array.from({ length: batch.rows }, (_, i) => -0.2 + (1.1 * i) / batch.rows) }
    const searcher = await createExactSearcher({ pool, keep: 8, poolBlockRows: 1024 })
    const got = await searcher.search(mixed)
    await searcher.close()
    const want = bruteForce(mixed, pool, 8)
    expect(got.map((r) => r.removed)).toEqual(want.map((r) => r.removed))
    expect(got.map((r) => Array.from(r.index))).toEqual(want.map((r) => Array.from(r.index)))
    expect(Math.max(...got.map((r) => r.removed))).toBeGreaterThan(1000)
  })

  it('never returns an excluded candidate or one above the ceiling', async () => {
    const searcher = await createExactSearcher({ pool, keep: 25 })
    const got = await searcher.search(batch)
    await searcher.close()
    for (let i = 0; i < batch.rows; i++) {
      const skip = [batch.exclude[i * 2], batch.exclude[i * 2 + 1]]
      for (const c of got[i]!.index) expect(skip).not.toContain(c)
      for (const s of got[i]!.score) expect(s).toBeLessThanOrEqual(batch.caps[i]!)
    }
  })

  it('applies the positive-similarity rule like brute force', async () => {
    const searcher = await createExactSearcher({ pool, keep: 8, posSimMax: 0.3 })
    const got = await searcher.search(batch)
    await searcher.close()
    const want = bruteForce(batch, pool, 8, 0.3)
    expect(got.map((r) => r.removed)).toEqual(want.map((r) => r.removed))
    expect(got.map((r) => Array.from(r.index))).toEqual(want.map((r) => Array.from(r.index)))
  })

  it('counts the margin rule apart from a lower cap and the positive-similarity rule', async () => {
    // The margin ceiling sits above the cap actually applied, as with --max-score.
    const split: QueryBatch = { ...batch, marginCaps: batch.caps, caps: batch.caps.map((c) => c - 0.05) }
    const searcher = await createExactSearcher({ pool, keep: 8, posSimMax: 0.3, splitMargin: true })
    const got = await searcher.search(split)
    const wider = await searcher.search(split, 30)
    await searcher.close()
    const want = bruteForce(split, pool, 8, 0.3)
    expect(got.map((r) => [r.removed, r.removedByMargin])).toEqual(want.map((r) => [r.removed, r.removedByMargin]))
    expect(got.some((r) => r.removedByMargin > 0 && r.removed > r.removedByMargin)).toBe(true)
    expect(wider.map((r) => Array.from(r.index))).toEqual(bruteForce(split, pool, 30, 0.3).map((r) => Array.from(r.index)))
  })

  it('gives bit-identical results across thread counts and block sizes', async () => {
    const runs: SearchResult[][] = []
    for (const [threads, poolBlockRows, queryRows] of [[1, 16384, 40], [2, 500, 40], [2, 1024, 7], [1, 333, 13]] as const) {
      const searcher = await createExactSearcher({ pool, keep: 12, threads, poolBlockRows })
      const results: SearchResult[] = []
      for (let s = 0; s < batch.rows; s += queryRows) {
        const rows = Math.min(queryRows, batch.rows - s)
        results.push(
          ...(await searcher.search({
            rows,
            dim,
            queries: batch.queries.subarray(s * dim, (s + rows) * dim),
            caps: batch.caps.subarray(s, s + rows),
            exclude: batch.exclude.subarray(s * 2, (s + rows) * 2),
            excludeWidth: 2,
          })),
        )
      }
      await searcher.close()
      runs.push(results)
    }
    const key = (rs: SearchResult[]): string => JSON.stringify(rs.map((r) => [Array.from(r.index), Array.from(r.score), r.removed]))
    for (const r of runs.slice(1)) expect(key(r)).toBe(key(runs[0]!))
  })

  it('breaks score ties by pool order, also across pool blocks', async () => {
    // Pool rows 0..5 are the same vector; the query sees them all at the same score.
    const dup = randomUnit(1, 8, 3)
    const other = randomUnit(6, 8, 4)
    const data = new Float32Array(12 * 8)
    for (let i = 0; i < 6; i++) data.set(dup.data, i * 8)
    data.set(other.data, 6 * 8)
    const tiePool = { rows: 12, dim: 8, data }
    const searcher = await createExactSearcher({ pool: tiePool, keep: 4, poolBlockRows: 4 })
    const [r] = await searcher.search({ rows: 1, dim: 8, queries: dup.data, caps: Float32Array.of(2), exclude: Int32Array.of(1, -1), excludeWidth: 2 })
    await searcher.close()
    expect(Array.from(r!.index)).toEqual([0, 2, 3, 4])
  })
})

/** Brute force of the removed candidates: the `keep` best-scoring, each with the first rule that removed it. */
function bruteRemoved(batch: QueryBatch, pool: { rows: number; dim: number; data: Float32Array }, keep: number, posSimMax?: number) {
  return Array.from({ length: batch.rows }, (_, i) => {
    const skip = Array.from(batch.exclude.subarray(i * batch.excludeWidth, (i + 1) * batch.excludeWidth))
    const removed: { index: number; score: number; rule: string }[] = []
    for (let c = 0; c < pool.rows; c++) {
      if (skip.includes(c)) continue
      const s = dotRows(batch.queries, i, pool.data, c, pool.dim)
      const nearPos = posSimMax !== undefined && batch.positives ? dotRows(batch.positives, i, pool.data, c, pool.dim) > posSimMax : false
      if (s > (batch.caps[i] as number)) removed.push({ index: c, score: s, rule: 'ceiling' })
      else if (nearPos) removed.push({ index: c, score: s, rule: 'pos_sim' })
    }
    removed.sort((a, b) => b.score - a.score || a.index - b.index)
    return removed.slice(0, keep)
  })
}

describe('removed candidates (keepRemoved)', () => {
  const dim = 48
  const pool = randomUnit(3000, dim, 11, 4)
  const batch = makeBatch(40, dim, 12, pool.rows, 0.35)

  it('exact search returns the best-scoring removed candidates with their rule, like brute force, across pool blocks', async () => {
    const want = bruteRemoved(batch, pool, 5, 0.3)
    for (const poolBlockRows of [1024, 16384]) {
      const searcher = await createExactSearcher({ pool, keep: 8, keepRemoved: 5, posSimMax: 0.3, poolBlockRows })
      const got = await searcher.search(batch)
      await searcher.close()
      expect(got.map((r) => Array.from(r.filtered!.index))).toEqual(want.map((w) => w.map((c) => c.index)))
      expect(got.map((r) => r.filtered!.rule)).toEqual(want.map((w) => w.map((c) => c.rule)))
      for (let i = 0; i < batch.rows; i++) {
        for (const [j, c] of want[i]!.entries()) expect(got[i]!.filtered!.score[j]).toBeCloseTo(c.score, 5)
        // Removed scores are the same float32 sgemm scores the ceiling was compared with.
        for (const [j, rule] of got[i]!.filtered!.rule.entries()) {
          if (rule === 'ceiling') expect(got[i]!.filtered!.score[j]!).toBeGreaterThan(batch.caps[i]!)
        }
      }
    }
    expect(want.flat().some((c) => c.rule === 'pos_sim')).toBe(true)
    expect(want.flat().some((c) => c.rule === 'ceiling')).toBe(true)
  })

  it('gives removed candidates the exact scores they have when nothing is removed', async () => {
    // Without rules every candidate is kept; with a ceiling of 0.35 the best ones are removed instead.
    const all = await createExactSearcher({ pool, keep: 5 })
    const removing = await createExactSearcher({ pool, keep: 5, keepRemoved: 5 })
    const kept = await all.search({ ...batch, caps: new Float32Array(batch.rows).fill(2) })
    const removed = await removing.search(batch)
    await all.close()
    await removing.close()
    for (let i = 0; i < batch.rows; i++) {
      if (removed[i]!.removed < 5) continue
      expect(Array.from(removed[i]!.filtered!.index)).toEqual(Array.from(kept[i]!.index))
      expect(Array.from(removed[i]!.filtered!.score)).toEqual(Array.from(kept[i]!.score))
    }
    expect(removed.filter((r) => r.removed >= 5).length).toBeGreaterThan(10)
  })

  it('leaves the kept candidates and counts unchanged, and never returns an excluded candidate as removed', async () => {
    const plain = await createExactSearcher({ pool, keep: 8, posSimMax: 0.3 })
    const withRemoved = await createExactSearcher({ pool, keep: 8, posSimMax: 0.3, keepRemoved: 50 })
    const a = await plain.search(batch)
    const b = await withRemoved.search(batch)
    await plain.close()
    await withRemoved.close()
    expect(a.every((r) => r.filtered === undefined)).toBe(true)
    expect(b.map((r) => [Array.from(r.index), Array.from(r.score), r.removed])).toEqual(a.map((r) => [Array.from(r.index), Array.from(r.score), r.removed]))
    for (let i = 0; i < batch.rows; i++) {
      const skip = [batch.exclude[i * 2], batch.exclude[i * 2 + 1]]
      for (const c of b[i]!.filtered!.index) expect(skip).not.toContain(c)
      expect(b[i]!.filtered!.index.length).toBe(Math.min(50, b[i]!.removed))
    }
  })

  it('hnsw returns the removed candidates among those it fetched, best first', async () => {
    // Only the ceiling rule: what it removes are the query's nearest neighbours, which the
    // graph fetches first (candidates near the positive need not be among them).
    const hnsw = await createHnswSearcher({ pool, keep: 8, keepRemoved: 5 })
    const got = await hnsw.search(batch)
    await hnsw.close()
    const want = bruteRemoved(batch, pool, 5)
    let same = 0
    for (let i = 0; i < batch.rows; i++) {
      const f = got[i]!.filtered!
      expect(f.index.length).toBeLessThanOrEqual(Math.min(5, got[i]!.removed))
      for (let j = 1; j < f.score.length; j++) expect(f.score[j]!).toBeLessThanOrEqual(f.score[j - 1]!)
      expect(f.rule.every((r) => r === 'ceiling')).toBe(true)
      if (JSON.stringify(Array.from(f.index)) === JSON.stringify(want[i]!.map((c) => c.index))) same++
    }
    expect(same / batch.rows).toBeGreaterThanOrEqual(0.9)
  })
})

describe('hnsw search', () => {
  it('reaches recall@8 >= 0.99 against exact on clustered data', async () => {
    const dim = 64
    const pool = randomUnit(5000, dim, 21, 20)
    const batch = makeBatch(200, dim, 22, pool.rows, 0.6)
    const exact = await createExactSearcher({ pool, keep: 8 })
    const hnsw = await createHnswSearcher({ pool, keep: 8, ef: 200 })
    const want = await exact.search(batch)
    const got = await hnsw.search(batch)
    await exact.close()
    await hnsw.close()
    let hit = 0
    let total = 0
    for (let i = 0; i < batch.rows; i++) {
      const truth = new Set(want[i]!.index)
      total += truth.size
      for (const c of got[i]!.index) if (truth.has(c)) hit++
    }
    expect(hit / total).toBeGreaterThanOrEqual(0.99)
  })

  it('widens the search when the rules remove most of what it fetched', async () => {
    const dim = 16
    const pool = randomUnit(2000, dim, 31)
    const q = randomUnit(3, dim, 32)
    // A ceiling below most scores: only far candidates survive, which the first fetch misses.
    const batch: QueryBatch = { rows: 3, dim, queries: q.data, caps: new Float32Array(3).fill(-0.5), exclude: new Int32Array(6).fill(-1), excludeWidth: 2 }
    const hnsw = await createHnswSearcher({ pool, keep: 8 })
    const got = await hnsw.search(batch)
    await hnsw.close()
    const want = bruteForce(batch, pool, 8)
    for (let i = 0; i < 3; i++) {
      expect(got[i]!.index.length).toBe(8)
      expect(Array.from(got[i]!.index)).toEqual(Array.from(want[i]!.index))
    }
  })
})
