import path from 'node:path'
import { describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import { loadEmbeddingMatrix, mineNegatives, readShards, type MinedRow } from '../src/index.js'
import { chooseExactKernel, createExactSearcher, probeBand, type ExactSearchOptions } from '../src/mine/search/exact.js'
import { cpuInt8 } from '../src/mine/search/_cpu.js'
import { dotRows } from '../src/mine/search/hnsw.js'
import { buildInt8PoolGraph } from '../src/mine/search/_int8-graph.js'
import { createInt8Searcher } from '../src/mine/search/_int8.js'
import { POOL_LEVELS, QUERY_LEVELS, QUERY_ZERO, quantizeRows, scoreInterval } from '../src/mine/search/_quantize.js'
import type { QueryBatch, SearchResult } from '../src/mine/search/topk.js'
import { randomUnit, rng, tempDir, writeCsv, writeNpy } from './_helpers.js'

async function rowsOf(dir: string): Promise<MinedRow[]> {
  const out: MinedRow[] = []
  for await (const r of readShards(dir)) out.push(r)
  return out
}

type Matrix = { rows: number; dim: number; data: Float32Array }

/**
 * The exact definition, by brute force: float64 sums of float32 products rounded to
 * float32, the ceiling strict, ties to the lower pool index, exclusions left out of
 * everything; margin and sweep counts; the best removed candidates.
 */
function exactDefinition(batch: QueryBatch, pool: Matrix, keep: number, keepRemoved = 0): SearchResult[] {
  const by = (a: { index: number; score: number }, b: { index: number; score: number }): number => b.score - a.score || a.index - b.index
  return Array.from({ length: batch.rows }, (_, i) => {
    const skip = new Set(Array.from(batch.exclude.subarray(i * batch.excludeWidth, (i + 1) * batch.excludeWidth)))
    const cap = batch.caps[i] as number
    const sweeps = batch.sweepCaps ? batch.sweepCaps.length / batch.rows : 0
    const kept: { index: number; score: number }[] = []
    const removed: { index: number; score: number }[] = []
    let margin = 0
    const sweep = new Int32Array(sweeps)
    for (let c = 0; c < pool.rows; c++) {
      if (skip.has(c)) continue
      const s = dotRows(batch.queries, i, pool.data, c, pool.dim)
      if (batch.marginCaps && s > (batch.marginCaps[i] as number)) margin++
      for (let t = 0; t < sweeps; t++) if (s > (batch.sweepCaps?.[i * sweeps + t] as number)) sweep[t]!++
      ;(s > cap ? removed : kept).push({ index: c, score: s })
    }
    kept.sort(by)
    removed.sort(by)
    const top = kept.slice(0, keep)
    const worst = removed.slice(0, keepRemoved)
    return {
      index: Int32Array.from(top, (c) => c.index),
      score: Float32Array.from(top, (c) => c.score),
      removed: removed.length,
      removedByMargin: batch.marginCaps ? margin : removed.length,
      ...(sweeps > 0 ? { sweepRemoved: sweep } : {}),
      ...(keepRemoved > 0 ? { filtered: { index: Int32Array.from(worst, (c) => c.index), score: Float32Array.from(worst, (c) => c.score), rule: worst.map(() => 'ceiling' as const) } } : {}),
    }
  })
}

/** Results as plain data, scores as their exact float32 values. */
function plain(results: SearchResult[]): unknown[] {
  return results.map((r) => ({
    index: Array.from(r.index),
    score: Array.from(r.score),
    removed: r.removed,
    removedByMargin: r.removedByMargin,
    sweep: r.sweepRemoved ? Array.from(r.sweepRemoved) : undefined,
    filtered: r.filtered ? { index: Array.from(r.filtered.index), score: Array.from(r.filtered.score), rule: r.filtered.rule } : undefined,
  }))
}

async function searchWith(pool: Matrix, batch: QueryBatch, options: Partial<ExactSearchOptions> & { keep: number }, keep?: number): Promise<SearchResult[]> {
  const searcher = await createExactSearcher({ pool, kernel: 'int8', ...options })
  try {
    expect(searcher.kernel.kernel).toBe('int8')
    return await searcher.search(batch, keep)
  } finally {
    await searcher.close()
  }
}

/** Query i's ceiling, margin ceiling and two sweep ceilings; exclusions (one repeated), as mining builds them. */
function batchOf(queries: Matrix, caps: Float32Array, poolRows: number): QueryBatch {
  const rows = queries.rows
  const exclude = new Int32Array(rows * 3).fill(-1)
  for (let i = 0; i < rows; i++) {
    exclude[i * 3] = (i * 7) % poolRows
    exclude[i * 3 + 1] = (i * 7) % poolRows
    if (i % 3 === 0) exclude[i * 3 + 2] = (i * 13 + 1) % poolRows
  }
  return {
    rows,
    dim: queries.dim,
    queries: queries.data,
    caps,
    marginCaps: caps.map((c) => Math.fround(c + 0.05)),
    sweepCaps: Float32Array.from({ length: rows * 2 }, (_, j) => Math.fround((caps[j >> 1] as number) + (j & 1 ? 0.1 : -0.1))),
    exclude,
    excludeWidth: 3,
  }
}

const ALL_PARTS = { splitMargin: true, sweeps: 2, keepRemoved: 5 }

describe('int8 exact kernel', () => {
  const dim = 48
  const pool = randomUnit(3000, dim, 11, 4)
  const queries = randomUnit(40, dim, 12, 4)
  // Ceilings from -0.2 (almost everything removed, negative scores decided) to 0.9.
  const caps = Float32Array.from({ length: 40 }, (_, i) => Math.fround(-0.2 + (1.1 * i) / 40))
  const batch = batchOf(queries, caps, pool.rows)

  it('equals the exact definition: ranking, scores, counts, margin split, sweep and removed list, for any blocks and threads', async () => {
    const want = plain(exactDefinition(batch, pool, 10, 5))
    for (const [poolBlockRows, threads] of [[16384, 2], [700, 1], [333, 2]] as const) {
      expect(plain(await searchWith(pool, batch, { keep: 10, ...ALL_PARTS, poolBlockRows, threads })), `blocks of ${poolBlockRows}`).toEqual(want)
    }
    expect(want.some((r) => (r as { removed: number }).removed > 1000)).toBe(true)
  })

  it('gives the same results when the pool\'s codes are spread over several sessions (pools past 1 GiB of codes)', async () => {
    // Blocks of 500 rows x 48 codes, at most two blocks a session: three sessions, searched one after another.
    const searcher = await createInt8Searcher({ pool, keep: 10, ...ALL_PARTS, poolBlockRows: 500, maxSessionBytes: 2 * 500 * dim })
    const got = await searcher.search(batch)
    await searcher.close()
    expect(plain(got)).toEqual(plain(exactDefinition(batch, pool, 10, 5)))
  })

  it('gives every query the same result in any batch, and a wider keep on request (to the whole pool)', async () => {
    const one = await searchWith(pool, { ...batch, rows: 1, queries: batch.queries.subarray(5 * dim, 6 * dim), caps: batch.caps.subarray(5, 6), marginCaps: batch.marginCaps?.subarray(5, 6), sweepCaps: batch.sweepCaps?.subarray(10, 12), exclude: batch.exclude.subarray(15, 18) }, { keep: 10, ...ALL_PARTS })
    expect(plain(one)).toEqual(plain(exactDefinition(batch, pool, 10, 5)).slice(5, 6))
    const { marginCaps: _m, sweepCaps: _s, ...plainBatch } = batch
    const all = await searchWith(pool, plainBatch, { keep: 10, poolBlockRows: 1000 }, pool.rows)
    expect(plain(all)).toEqual(plain(exactDefinition(plainBatch, pool, pool.rows)))
  })

  it('decides candidates within 1e-7 of the ceiling and of the k-th score exactly', async () => {
    // Around each query: candidates at cosine 0.7 + j * 3e-8 (the ceiling is 0.7) and at
    // 0.5 + j * 2e-8 (the 8th best of the rest), plus exact duplicates (ties by pool order).
    const r = rng(5)
    const d = 256
    const q = randomUnit(6, d, 21)
    const rows: number[][] = []
    const around = (qi: number, cos: number): number[] => {
      const u = Array.from({ length: d }, () => r() - 0.5)
      const qv = Array.from(q.data.subarray(qi * d, (qi + 1) * d))
      const dot = u.reduce((s, x, k) => s + x * (qv[k] as number), 0)
      const perp = u.map((x, k) => x - dot * (qv[k] as number))
      const n = Math.hypot(...perp)
      return qv.map((x, k) => cos * x + (Math.sqrt(1 - cos * cos) * (perp[k] as number)) / n)
    }
    for (let qi = 0; qi < 6; qi++) {
      for (let j = -12; j <= 12; j++) rows.push(around(qi, 0.7 + j * 3e-8))
      for (let j = -15; j <= 15; j++) rows.push(around(qi, 0.5 + j * 2e-8))
      const dup = around(qi, 0.5)
      rows.push(dup, dup, dup)
    }
    for (let j = 0; j < 400; j++) rows.push(around(j % 6, 0.3 * r()))
    const data = new Float32Array(rows.length * d)
    rows.forEach((v, j) => {
      const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0))
      v.forEach((x, k) => (data[j * d + k] = Math.fround(x / n)))
    })
    const tight = { rows: rows.length, dim: d, data }
    const capsAt = new Float32Array(6).fill(Math.fround(0.7))
    const nearBatch = batchOf(q, capsAt, tight.rows)
    const want = exactDefinition(nearBatch, tight, 8, 5)
    expect(plain(await searchWith(tight, nearBatch, { keep: 8, ...ALL_PARTS, poolBlockRows: 128 }))).toEqual(plain(want))
    // The construction does what it says: removals decided at the ulp, the 8th place among near-ties.
    const scores = want.flatMap((w) => Array.from(w.score))
    expect(Math.max(...scores) - Math.fround(0.7)).toBeLessThan(4e-7)
    expect(want.every((w) => w.removed >= 8 && w.removed <= 16)).toBe(true)
  })

  it('stays exact when outlier dimensions make some vectors\' codes coarse', async () => {
    // A tenth of the pool and of the queries carry one very large component: their scale,
    // and so their bound, is ~3x coarser than the others'.
    const base = randomUnit(2000, 64, 31, 8)
    const qs = randomUnit(30, 64, 32, 8)
    for (const m of [base, qs]) {
      for (let i = 0; i < m.rows; i += 10) {
        const o = i * 64
        m.data[o + (i % 64)] = 6
        let n = 0
        for (let k = 0; k < 64; k++) n += (m.data[o + k] as number) ** 2
        for (let k = 0; k < 64; k++) m.data[o + k] = Math.fround((m.data[o + k] as number) / Math.sqrt(n))
      }
    }
    const outBatch = batchOf(qs, Float32Array.from({ length: 30 }, (_, i) => Math.fround(0.2 + i / 60)), base.rows)
    const searcher = await createExactSearcher({ pool: base, keep: 8, kernel: 'int8', ...ALL_PARTS, poolBlockRows: 500 })
    const got = await searcher.search(outBatch)
    const counts = searcher.rescoreCounts?.()
    await searcher.close()
    expect(plain(got)).toEqual(plain(exactDefinition(outBatch, base, 8, 5)))
    const q8 = quantizeRows(qs.data, qs.rows, 64, QUERY_LEVELS, QUERY_ZERO)
    expect((q8.err[0] as number) / (q8.err[1] as number)).toBeGreaterThan(2.5)
    const rescored = counts?.rescored ?? []
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
    expect(mean(rescored.filter((_, i) => i % 10 === 0))).toBeGreaterThan(mean(rescored.filter((_, i) => i % 10 !== 0)))
  })

  it('agrees with the fp32 kernel except where two scores, or a score and the ceiling, are within float32 rounding', async () => {
    const fp32 = await createExactSearcher({ pool, keep: 10, splitMargin: true, sweeps: 2, keepRemoved: 5 })
    const a = await fp32.search(batch)
    await fp32.close()
    const b = await searchWith(pool, batch, { keep: 10, ...ALL_PARTS })
    const NEAR = 1e-6
    let differing = 0
    for (let i = 0; i < batch.rows; i++) {
      const ra = a[i] as SearchResult
      const rb = b[i] as SearchResult
      for (const [j, s] of rb.score.entries()) expect(Math.abs(s - (ra.score[j] ?? s))).toBeLessThan(NEAR)
      if (JSON.stringify(plain([ra]).map((x) => ({ ...(x as object), score: 0, filtered: 0 }))) === JSON.stringify(plain([rb]).map((x) => ({ ...(x as object), score: 0, filtered: 0 })))) continue
      differing++
      // Every difference sits at a near-tie: a candidate near the ceiling, or two near each other at the cut.
      const exactScores = [...ra.index, ...rb.index].map((c) => dotRows(batch.queries, i, pool.data, c, dim))
      const cap = batch.caps[i] as number
      const cut = rb.score[rb.score.length - 1] as number
      expect(exactScores.some((s) => Math.abs(s - cap) < NEAR || Math.abs(s - cut) < NEAR)).toBe(true)
    }
    expect(differing).toBeLessThanOrEqual(2)
  })

  it('keeps integer scores exact at the extreme codes (no int16 saturation on AVX2)', async () => {
    // Every query code at its extreme (0 or 128 stored, -64 or 64 meant), every pool code
    // ±127, with the same signs: pairs of products reach 2 * 64 * 127 in magnitude.
    const d = 64
    const n = 3
    const codes = new Int8Array(d * n)
    for (let k = 0; k < d; k++) for (let j = 0; j < n; j++) codes[k * n + j] = (j === 1 ? -1 : 1) * (k % 2 === 0 || j === 2 ? 127 : -127)
    const session = await ort.InferenceSession.create(buildInt8PoolGraph([{ codes, scale: new Float32Array(n).fill(1), dim: d, n }], { counts: 0, keepRemoved: false }))
    const q = Uint8Array.from({ length: d }, (_, k) => (k % 2 === 0 ? 128 : 0))
    const out = await session.run({
      q: new ort.Tensor('uint8', q, [1, d]),
      hi_0: new ort.Tensor('float32', Float32Array.of(1e9), [1, 1]),
      k_0: new ort.Tensor('int64', BigInt64Array.of(3n), [1]),
      excl_0: new ort.Tensor('int64', BigInt64Array.of(-1n), [1, 1]),
    })
    await session.release()
    const want = [0, 1, 2].map((j) => Array.from({ length: d }, (_, k) => ((q[k] as number) - QUERY_ZERO) * (codes[k * n + j] as number)).reduce((a, b) => a + b, 0))
    const got = new Map(Array.from(out.top_index_0!.data as BigInt64Array, (j, t) => [Number(j), (out.top_g_0!.data as Float32Array)[t]]))
    expect([0, 1, 2].map((j) => got.get(j))).toEqual(want)
    expect(want).toEqual([64 * 127 * d, -64 * 127 * d, 0])
  })

  it('bounds the quantisation error soundly: the exact score always lies in the interval', () => {
    const p = randomUnit(300, 96, 41, 3)
    const q = randomUnit(50, 96, 42, 3)
    const pq = quantizeRows(p.data, p.rows, p.dim, POOL_LEVELS)
    const qq = quantizeRows(q.data, q.rows, q.dim, QUERY_LEVELS, QUERY_ZERO)
    const iv = new Float64Array(2)
    let width = 0
    for (let i = 0; i < q.rows; i++) {
      for (let j = 0; j < p.rows; j++) {
        let dot = 0
        for (let k = 0; k < 96; k++) dot += ((qq.codes[i * 96 + k] as number) - QUERY_ZERO) * (pq.codes[j * 96 + k] as number)
        const sHat = (qq.scale[i] as number) * Math.fround((pq.scale[j] as number) * dot)
        scoreInterval(sHat, qq, i, pq, j, iv)
        const s = dotRows(q.data, i, p.data, j, 96)
        expect(s).toBeGreaterThanOrEqual(iv[0] as number)
        expect(s).toBeLessThanOrEqual(iv[1] as number)
        width += (iv[1] as number) - (iv[0] as number)
      }
    }
    // Codes stay in the ranges that keep u8 x s8 pair sums inside int16.
    expect(Math.max(...qq.codes)).toBeLessThanOrEqual(2 * QUERY_LEVELS)
    expect(Math.max(...Array.from(pq.codes, Math.abs))).toBeLessThanOrEqual(POOL_LEVELS)
    expect(width / (q.rows * p.rows)).toBeLessThan(0.05)
  })
})

describe('the band probe of auto', () => {
  /** Clusters of 20 whose members score far above the rest, or no structure at all (every score crowds near 0). */
  const clustered = (): ReturnType<typeof randomUnit> => randomUnit(4000, 128, 81, 200)
  const crowded = (): ReturnType<typeof randomUnit> => randomUnit(4000, 128, 82)

  it('finds the int8 pass settles clustered data at once and leaves crowded data undecided', async () => {
    const found: Record<string, { queries: number; undecided: number }> = {}
    for (const [name, pool] of [['clustered', clustered()], ['crowded', crowded()]] as const) {
      const searcher = await createInt8Searcher({ pool, keep: 8, threads: 1 })
      try {
        found[name] = await probeBand(searcher, pool)
      } finally {
        await searcher.close()
      }
    }
    expect(found.clustered?.queries).toBe(256)
    expect(found.clustered?.undecided).toBeLessThanOrEqual(4)
    expect(found.crowded?.queries).toBe(256)
    expect(found.crowded?.undecided).toBeGreaterThan(128)
  })

  it('keeps fp32 under auto where the probe finds a wide band, and says why', () => {
    const cpu = { arch: 'x64', int8: 'avx2' as const, flags: ['avx2'] }
    const at = (undecided: number) => chooseExactKernel({ requested: 'auto', similarityRules: false, ops: 1e13, cpu, probe: { queries: 256, undecided } })
    expect(at(12).kernel).toBe('int8')
    expect(at(13)).toEqual({ kernel: 'fp32', reason: 'auto: a wide band (the int8 pass left 13 of 256 probe queries undecided in its first ranking: scores crowd within the quantisation bound), where int8 is slower' })
    expect(chooseExactKernel({ requested: 'int8', similarityRules: false, ops: 1e13, cpu, probe: { queries: 256, undecided: 256 } }).kernel).toBe('int8')
  })

  // The size rule needs a fast int8 CPU to reach the probe (this project's machines have AVX2 or better).
  it.runIf(cpuInt8().int8 !== 'none')('auto searches as the probe decided: fp32 on crowded data, int8 on clustered, the probe left out of the counts; a pool part refuses', async () => {
    const big = { kernel: 'auto' as const, queryRows: 1e9, keep: 8, threads: 1 }
    const wide = await createExactSearcher({ ...big, pool: crowded() })
    const narrow = await createExactSearcher({ ...big, pool: clustered() })
    try {
      expect(wide.kernel.kernel).toBe('fp32')
      expect(wide.kernel.reason).toMatch(/^auto: a wide band \(the int8 pass left \d+ of 256 probe queries undecided/)
      expect(narrow.kernel.kernel).toBe('int8')
      expect(narrow.rescoreCounts?.()).toEqual({ rescored: [], ceilingBand: [] })
    } finally {
      await wide.close()
      await narrow.close()
    }
    await expect(createExactSearcher({ ...big, pool: clustered(), poolPart: true })).rejects.toThrow(
      "exact kernel 'auto' for a split pool whose size and CPU call for int8, expected 'int8' or 'fp32' (--exact-kernel): auto decides by a probe of the whole pool, which no pool part holds",
    )
  })
})

describe('chooseExactKernel', () => {
  const cpu = (int8: 'vnni' | 'avx2' | 'dotprod' | 'none') => ({ arch: 'x64', flags: int8 === 'none' ? [] : ['avx2'], int8 })
  it.each([
    [{ requested: 'fp32', similarityRules: false, ops: 1e15, cpu: cpu('vnni') }, { kernel: 'fp32', reason: 'asked for' }],
    [{ requested: 'int8', similarityRules: false, ops: 1, cpu: cpu('none') }, { kernel: 'int8', reason: 'asked for' }],
    [{ requested: 'int8', similarityRules: true, ops: 1e15, cpu: cpu('vnni') }, { kernel: 'fp32', reason: 'int8 asked for, but the pos-sim/query-sim rules run in the fp32 kernel only' }],
    [{ requested: 'auto', similarityRules: true, ops: 1e15, cpu: cpu('vnni') }, { kernel: 'fp32', reason: 'the pos-sim/query-sim rules run in the fp32 kernel only' }],
    [{ requested: 'auto', similarityRules: false, ops: 1e15, cpu: cpu('none') }, { kernel: 'fp32', reason: 'auto: no fast int8 dot product on this CPU (x64; flags: none)' }],
    [{ requested: 'auto', similarityRules: false, ops: 1e10, cpu: cpu('avx2') }, { kernel: 'fp32', reason: "auto: the group's multiply is under 2e+12 operations (2 x queries x pool x dim)" }],
    [{ requested: 'auto', similarityRules: false, ops: 1e13, cpu: cpu('avx2') }, { kernel: 'int8', reason: 'auto: avx2 int8 dot product (avx2)' }],
  ] as const)('%o', (options, want) => {
    expect(chooseExactKernel(options)).toEqual(want)
  })

  it('rejects an unknown kernel', () => {
    expect(() => chooseExactKernel({ requested: 'int4' as 'int8', similarityRules: false, ops: 1 })).toThrow("kernel: 'int4', expected 'auto', 'fp32' or 'int8'")
  })
})

describe('mining with the int8 kernel', () => {
  /** 600 pairs in two groups, float16 queries, repeated positive texts (folded) and a few queries asked twice (siblings). */
  async function dataset(dir: string) {
    const n = 600
    const dim = 32
    const q = randomUnit(n, dim, 51, 10)
    const p = randomUnit(n, dim, 52, 10)
    const rows: string[][] = []
    for (let i = 0; i < n; i++) {
      const src = i % 9 === 4 ? i - 1 : i
      if (src !== i) p.data.copyWithin(i * dim, src * dim, (src + 1) * dim)
      const query = i % 50 === 7 ? `query ${i - 2}` : `query ${i}`
      rows.push([`id-${i}`, query, `positive ${src}`, i % 4 === 0 ? 'a' : 'b'])
    }
    await writeCsv(path.join(dir, 'pairs.csv'), ['id', 'query', 'positive', 'grp'], rows)
    await writeNpy(path.join(dir, 'q.npy'), q, 'f2')
    await writeNpy(path.join(dir, 'p.npy'), p, 'f4')
    return { pairs: path.join(dir, 'pairs.csv'), queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy'), idCol: 'id', groupCol: 'grp' }
  }
  const options = { k: 8, keepFiltered: 3, sweepThresholds: [0, 0.2], maxScore: 0.9, search: 'exact' as const, shardRows: 250 }

  it('gives the fp32 kernel\'s rows (this data has no float32 near-ties) with exact scores, byte-identical across threads and block sizes', async () => {
    const dir = await tempDir()
    const data = await dataset(dir)
    const fp32 = await mineNegatives({ ...data, ...options, out: path.join(dir, 'fp32'), exactKernel: 'fp32' })
    const shas: string[] = []
    for (const [i, extra] of [{}, { threads: 1, queryBlockRows: 37, poolBlockRows: 100 }, { threads: 2, queryBlockRows: 1, poolBlockRows: 1000 }].entries()) {
      const { manifest } = await mineNegatives({ ...data, ...options, ...extra, out: path.join(dir, `int8-${i}`), exactKernel: 'int8' })
      shas.push(manifest.shards.map((s) => s.sha256).join(','))
      if (i > 0) continue
      expect(manifest.search.exactKernel).toMatchObject({ requested: 'int8', groups: { fp32: 0, int8: 2 }, reasons: ['asked for'], rescore: { queries: 600 } })
      expect(manifest.counts).toEqual(fp32.manifest.counts)
    }
    expect(new Set(shas).size).toBe(1)
    expect(fp32.manifest.counts.multiPositiveQueries).toBeGreaterThan(0)
    const a = await rowsOf(path.join(dir, 'fp32'))
    const b = await rowsOf(path.join(dir, 'int8-0'))
    const key = (r: MinedRow) => JSON.stringify([r.id, r.negIds, r.nFalseNegatives, r.filtered?.map((f) => [f.id, f.rule])])
    expect(b.map(key)).toEqual(a.map(key))
    // Every score is the exact one: the float64 sum of the stored float32 vectors, rounded to float32.
    const queries = await loadEmbeddingMatrix({ file: data.queryEmbeddings })
    const positives = await loadEmbeddingMatrix({ file: data.positiveEmbeddings })
    for (const r of b) {
      const i = Number(r.id.slice(3))
      r.negIds.forEach((id, j) => expect(r.negScores[j]).toBe(dotRows(queries.data, i, positives.data, Number(id.slice(3)), 32)))
      r.filtered?.forEach((f) => expect(f.score).toBe(dotRows(queries.data, i, positives.data, Number(f.id.slice(3)), 32)))
    }
    expect(b.some((r) => (r.filtered?.length ?? 0) > 0)).toBe(true)
  })

  it('counts the same rescoring per query whatever the query block size (a worker\'s share starts its own blocks)', async () => {
    const dir = await tempDir()
    const data = await dataset(dir)
    const counts = []
    for (const [i, queryBlockRows] of [512, 37, 1].entries()) {
      const { manifest } = await mineNegatives({ ...data, ...options, queryBlockRows, out: path.join(dir, `int8-${i}`), exactKernel: 'int8' })
      counts.push(manifest.search.exactKernel?.rescore)
    }
    expect(counts[1]).toEqual(counts[0])
    expect(counts[2]).toEqual(counts[0])
  })

  it('runs the fp32 kernel for the similarity rules and says so in the manifest', async () => {
    const dir = await tempDir()
    const data = await dataset(dir)
    const { manifest } = await mineNegatives({ ...data, k: 8, posSim: 0.8, search: 'exact', out: path.join(dir, 'out'), exactKernel: 'int8' })
    expect(manifest.search.exactKernel).toEqual({
      requested: 'int8',
      groups: { fp32: 2, int8: 0 },
      reasons: ['int8 asked for, but the pos-sim/query-sim rules run in the fp32 kernel only'],
      cpu: expect.objectContaining({ arch: process.arch }),
    })
    expect(manifest.options.exactKernel).toBe('int8')
  })
})
