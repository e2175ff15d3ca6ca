import { readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { mineNegatives, readShards, type MineOptions, type MinedRow } from '../src/index.js'
import { at, randomUnit, tempDir, writeCsv, writeNpy } from './_helpers.js'

async function rowsOf(dir: string): Promise<MinedRow[]> {
  const out: MinedRow[] = []
  for await (const r of readShards(dir)) out.push(r)
  return out
}

/** Six pairs on the unit circle: query angle, positive angle (degrees). */
const CIRCLE: [number, number][] = [
  [0, 60],
  [200, 20],
  [250, 45],
  [300, 100],
  [10, 120],
  [90, 200],
]

async function circleDataset(dir: string): Promise<{ pairs: string; queryEmbeddings: string; positiveEmbeddings: string }> {
  const pairs = path.join(dir, 'pairs.csv')
  await writeCsv(pairs, ['query', 'positive'], CIRCLE.map((_, i) => [`q${i}`, `p${i}`]))
  await writeNpy(path.join(dir, 'q.npy'), CIRCLE.map(([q]) => at(q)))
  await writeNpy(path.join(dir, 'p.npy'), CIRCLE.map(([, p]) => at(p)))
  return { pairs, queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy') }
}

const cosDeg = (a: number, b: number): number => Math.cos(((a - b) * Math.PI) / 180)

describe('mineNegatives on hand-checkable 2-D cases', () => {
  it('drops candidates above pos + threshold and keeps the k best of the rest', async () => {
    const dir = await tempDir()
    const { summary } = await mineNegatives({ ...(await circleDataset(dir)), out: path.join(dir, 'out'), k: 2, threshold: 0.1, search: 'exact' })
    const rows = await rowsOf(path.join(dir, 'out'))
    const r0 = rows[0]!
    // q0 at 0 deg, positive at 60 deg: pos = 0.5, ceiling 0.6. p1 (20 deg, 0.94) and p2 (45 deg, 0.71)
    // are false negatives; p3 (100 deg) and p5 (200 deg) are next; p4 (120 deg) is -0.5.
    expect(r0.posScore).toBeCloseTo(0.5, 6)
    expect(r0.nFalseNegatives).toBe(2)
    expect(r0.negatives).toEqual(['p3', 'p4'])
    expect(r0.negIds).toEqual(['3', '4'])
    expect(r0.negScores[0]).toBeCloseTo(cosDeg(0, 100), 6)
    expect(r0.negScores[1]).toBeCloseTo(cosDeg(0, 120), 6)
    expect(r0.nValid).toBe(2)
    expect(summary.rowsIn).toBe(6)
  })

  it('handles a negative positive score: the ceiling is below zero', async () => {
    const dir = await tempDir()
    await mineNegatives({ ...(await circleDataset(dir)), out: path.join(dir, 'out'), k: 2, search: 'exact' })
    const r4 = (await rowsOf(path.join(dir, 'out'))).find((r) => r.id === '4')!
    // q4 at 10 deg, positive at 120 deg: pos = cos 110 = -0.342, ceiling -0.242. Only p5
    // (200 deg, -0.985) is below it: four false negatives, one valid negative, padded.
    expect(r4.posScore).toBeCloseTo(cosDeg(10, 120), 6)
    expect(r4.nFalseNegatives).toBe(4)
    expect(r4.negatives).toEqual(['p5', 'p5'])
    expect(r4.nValid).toBe(1)
  })

  // Rows 1, 3 and 4 keep one candidate each; row 5 keeps none (every other positive
  // scores above its ceiling of cos 110 deg + 0.1), so it cannot be padded.
  it.each([
    ['repeat', 5, ['p5', 'p5'], { padded: 3, short: 0, dropped: 1 }],
    ['none', 6, ['p5'], { padded: 0, short: 4, dropped: 0 }],
    ['drop', 2, undefined, { padded: 0, short: 0, dropped: 4 }],
  ] as const)('pad %s', async (pad, rowsOut, negativesOf4, counts) => {
    const dir = await tempDir()
    const { summary } = await mineNegatives({ ...(await circleDataset(dir)), out: path.join(dir, 'out'), k: 2, pad, search: 'exact' })
    const rows = await rowsOf(path.join(dir, 'out'))
    expect(rows.length).toBe(rowsOut)
    expect(rows.find((r) => r.id === '4')?.negatives).toEqual(negativesOf4)
    expect(rows.find((r) => r.id === '5')?.negatives).toEqual(pad === 'none' ? [] : undefined)
    expect(summary.rowsOut).toBe(rowsOut)
    expect({ padded: summary.padded, short: summary.short, dropped: summary.dropped }).toEqual(counts)
  })

  it('gives the same rows with hnsw on a small pool', async () => {
    const dir = await tempDir()
    const data = await circleDataset(dir)
    await mineNegatives({ ...data, out: path.join(dir, 'exact'), k: 2, search: 'exact' })
    const phases = new Set<string>()
    await mineNegatives({ ...data, out: path.join(dir, 'hnsw'), k: 2, search: 'hnsw', onProgress: (e) => void phases.add(e.phase) })
    expect([...phases].sort()).toEqual(['hash', 'index', 'load', 'read', 'search'])
    const strip = (rs: MinedRow[]) => rs.map((r) => [r.id, r.negatives, r.nValid])
    expect(strip(await rowsOf(path.join(dir, 'hnsw')))).toEqual(strip(await rowsOf(path.join(dir, 'exact'))))
  })
})

describe('external corpus and random sampling', () => {
  it('adds corpus candidates after the pairs, with their ids, and folds texts already in the pool', async () => {
    const dir = await tempDir()
    const data = await circleDataset(dir)
    const corpus = path.join(dir, 'corpus.jsonl')
    // c-near at 5 deg is a false negative for q0; c-far at 170 deg is a negative; "p3"
    // repeats a pair's positive and keeps the pair's vector (100 deg), not its own.
    await writeFile(corpus, ['{"id":"c1","text":"c-near"}', '{"id":"c2","text":"c-far"}', '{"id":"c3","text":"p3"}'].join('\n') + '\n')
    await writeNpy(path.join(dir, 'c.npy'), [at(5), at(170), at(300)])
    const { summary } = await mineNegatives({ ...data, corpus, corpusEmbeddings: path.join(dir, 'c.npy'), out: path.join(dir, 'out'), k: 4, search: 'exact' })
    const r0 = (await rowsOf(path.join(dir, 'out')))[0]!
    // Removed: c-near (0.996), p1 (0.94), p2 (0.71). Ranked: p3 (-0.17), p4 (-0.5), p5 (-0.94), c-far (-0.985).
    expect(r0.nFalseNegatives).toBe(3)
    expect(r0.negatives).toEqual(['p3', 'p4', 'p5', 'c-far'])
    expect(r0.negIds).toEqual(['3', '4', '5', 'c2'])
    expect(r0.negScores[0]).toBeCloseTo(cosDeg(0, 100), 6)
    expect(summary.rowsIn).toBe(6)
  })

  it('rejects a corpus whose embeddings do not match it', async () => {
    const dir = await tempDir()
    const data = await circleDataset(dir)
    const corpus = path.join(dir, 'corpus.csv')
    await writeCsv(corpus, ['id', 'text'], [['c1', 'x'], ['c2', 'y']])
    await writeNpy(path.join(dir, 'c.npy'), [at(5)])
    await expect(mineNegatives({ ...data, corpus, corpusEmbeddings: path.join(dir, 'c.npy'), out: path.join(dir, 'out') })).rejects.toThrow(
      `${path.join(dir, 'c.npy')}: 1 embedding rows, expected 2 (one per row of ${corpus})`,
    )
  })

  it('samples k negatives from the rank window, reproducibly for a seed', async () => {
    const dir = await tempDir()
    const n = 400
    const q = randomUnit(n, 16, 5)
    const p = randomUnit(n, 16, 6)
    await writeCsv(path.join(dir, 'pairs.csv'), ['query', 'positive'], Array.from({ length: n }, (_, i) => [`q${i}`, `p${i}`]))
    await writeNpy(path.join(dir, 'q.npy'), q)
    await writeNpy(path.join(dir, 'p.npy'), p)
    // threshold 2 removes nothing, so every row has all 399 candidates to rank.
    const base = { pairs: path.join(dir, 'pairs.csv'), queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy'), search: 'exact' as const, threshold: 2 }
    await mineNegatives({ ...base, out: path.join(dir, 'top'), k: 40 })
    const random = { ...base, k: 4, sampling: 'random' as const, range: [5, 20] as [number, number], seed: 7 }
    const a = await mineNegatives({ ...random, out: path.join(dir, 'a') })
    const b = await mineNegatives({ ...random, out: path.join(dir, 'b') })
    const c = await mineNegatives({ ...random, seed: 8, out: path.join(dir, 'c') })
    expect(b.manifest.shards[0]!.sha256).toBe(a.manifest.shards[0]!.sha256)
    expect(c.manifest.shards[0]!.sha256).not.toBe(a.manifest.shards[0]!.sha256)
    const top = await rowsOf(path.join(dir, 'top'))
    const rows = await rowsOf(path.join(dir, 'a'))
    for (const [i, r] of rows.entries()) {
      const ranked = top[i]!.negatives
      const ranks = r.negatives.map((t) => ranked.indexOf(t))
      for (const rank of ranks) expect(rank >= 5 && rank < 20).toBe(true)
      expect([...ranks].sort((x, y) => x - y)).toEqual(ranks)
      expect(new Set(ranks).size).toBe(4)
    }
  })
})

describe('mineNegatives on generated data', () => {
  async function generated(dir: string, n: number, dim: number, dupEvery = 7) {
    const q = randomUnit(n, dim, 1, 12)
    const p = randomUnit(n, dim, 2, 12)
    // Repeat some positive texts (and their vectors) so the pool has duplicates to fold.
    const rows: string[][] = []
    for (let i = 0; i < n; i++) {
      const src = i % dupEvery === 3 ? i - 1 : i
      if (src !== i) p.data.copyWithin(i * dim, src * dim, (src + 1) * dim)
      rows.push([`id-${i}`, `query ${i}`, `positive ${src}`, i % 3 === 0 ? 'a' : 'b'])
    }
    await writeCsv(path.join(dir, 'pairs.csv'), ['id', 'query', 'positive', 'grp'], rows)
    await writeNpy(path.join(dir, 'q.npy'), q, 'f2')
    await writeNpy(path.join(dir, 'p.npy'), p, 'f4')
    return {
      pairs: path.join(dir, 'pairs.csv'),
      queryEmbeddings: path.join(dir, 'q.npy'),
      positiveEmbeddings: path.join(dir, 'p.npy'),
      idCol: 'id',
      groupCol: 'grp',
    }
  }

  it('never serves the positive (or anything of its text) as a negative, and respects the ceiling and groups', async () => {
    const dir = await tempDir()
    const data = await generated(dir, 900, 24)
    await mineNegatives({ ...data, out: path.join(dir, 'out'), k: 8, threshold: 0.05, search: 'exact' })
    const rows = await rowsOf(path.join(dir, 'out'))
    expect(rows.length).toBe(900)
    for (const r of rows) {
      expect(r.negatives).not.toContain(r.positive)
      expect(r.negatives).not.toContain(r.query)
      expect(r.negatives.length).toBe(8)
      for (const s of r.negScores) expect(s).toBeLessThanOrEqual(Math.fround(r.posScore + 0.05))
      for (let i = 1; i < r.nValid; i++) expect(r.negScores[i]!).toBeLessThanOrEqual(r.negScores[i - 1]!)
      const group = Number(r.id.slice(3)) % 3 === 0 ? 'a' : 'b'
      expect(r.group).toBe(group)
      for (const id of r.negIds) expect(Number(id.slice(3)) % 3 === 0 ? 'a' : 'b').toBe(group)
    }
  })

  it('writes byte-identical shards across runs, thread counts and block sizes', async () => {
    const dir = await tempDir()
    const data = await generated(dir, 700, 40)
    const shas: string[] = []
    for (const [i, extra] of [
      {},
      {},
      { threads: 1, queryBlockRows: 33, poolBlockRows: 1024 },
      { threads: 2, queryBlockRows: 1, poolBlockRows: 5000 },
    ].entries()) {
      const { manifest } = await mineNegatives({ ...data, out: path.join(dir, `out${i}`), shardRows: 300, search: 'exact', ...extra })
      shas.push(manifest.shards.map((s) => s.sha256).join(','))
    }
    expect(new Set(shas).size).toBe(1)
    expect(shas[0]!.split(',').length).toBe(3)
  })

  it('a pool of under 150 rows scores the same whatever the query block size (it is padded to the main sgemm path)', async () => {
    // 90 SNLI rows at 512-d: before padding, 90 queries per call and 30 per call gave other bits.
    const dir = await tempDir()
    const snli = path.resolve(import.meta.dirname, '..', 'fixtures', 'snli')
    const { loadEmbeddingMatrix } = await import('../src/index.js')
    const rows = Int32Array.from({ length: 90 }, (_, i) => i)
    for (const [name, file] of [['q', 'snli-test-sent0.use512.f16.npy'], ['p', 'snli-test-sent1.use512.f16.npy']] as const) {
      await writeNpy(path.join(dir, `${name}.npy`), await loadEmbeddingMatrix({ file: path.join(snli, file), rows, normalize: false }), 'f2')
    }
    const lines = (await readFile(path.join(snli, 'snli-test-triplets.csv'), 'utf8')).split('\n')
    await writeFile(path.join(dir, 'pairs.csv'), lines.slice(0, 91).join('\n') + '\n')
    const data = { pairs: path.join(dir, 'pairs.csv'), preset: 'simcse' as const, queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy') }
    const shas = new Set<string>()
    for (const queryBlockRows of [90, 30, 7, 1]) {
      const { manifest } = await mineNegatives({ ...data, out: path.join(dir, `b${queryBlockRows}`), search: 'exact', queryBlockRows, sweepThresholds: [-0.2, 0], keepFiltered: 2 })
      shas.add(manifest.shards[0]!.sha256 + JSON.stringify(manifest.counts))
    }
    expect(shas.size).toBe(1)
  })

  it('writes the manifest last, with inputs, shards, counts and timings', async () => {
    const dir = await tempDir()
    const data = await generated(dir, 300, 16)
    const out = path.join(dir, 'out')
    const { manifest } = await mineNegatives({ ...data, out, shardRows: 100, search: 'exact' })
    expect((await readdir(out)).sort()).toEqual(['manifest.json', 'part-00000.parquet', 'part-00001.parquet', 'part-00002.parquet'])
    const onDisk = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'))
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(manifest)))
    expect(manifest.inputs.map((i) => i.role)).toEqual(['pairs', 'query-embeddings', 'positive-embeddings'])
    expect(manifest.inputs[0]!.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(manifest.rows).toEqual({ in: 300, out: 300 })
    expect(manifest.shards.map((s) => s.rows)).toEqual([100, 100, 100])
    // Small groups: 'auto' keeps the fp32 kernel (under the size rule, or on a CPU without a fast int8 dot product).
    expect(manifest.search).toEqual({
      method: 'exact',
      falseNegativeCounts: 'whole-pool',
      exactKernel: { requested: 'auto', groups: { fp32: 2, int8: 0 }, reasons: [expect.stringMatching(/^auto: /)], cpu: expect.objectContaining({ arch: process.arch }) },
    })
    expect(manifest.options).toMatchObject({ k: 8, threshold: 0.1, pad: 'repeat', sampling: 'top' })
    expect(Object.keys(manifest.groups).sort()).toEqual(['a', 'b'])
    expect(manifest.timings.total).toBeGreaterThan(0)
  })

  it('refuses to overwrite an earlier run unless asked, and replaces it when asked', async () => {
    const dir = await tempDir()
    const data = await generated(dir, 50, 8)
    const out = path.join(dir, 'out')
    await mineNegatives({ ...data, out, search: 'exact' })
    await expect(mineNegatives({ ...data, out, search: 'exact' })).rejects.toThrow(
      `${out}: holds an earlier run (manifest.json, part-00000.parquet); expected an empty directory, or pass --overwrite`,
    )
    await mineNegatives({ ...data, out, search: 'exact', overwrite: true, k: 3 })
    expect((await rowsOf(out))[0]!.negatives.length).toBe(3)
  })
})

describe('bad input', () => {
  async function fixture(dir: string) {
    const data = await circleDataset(dir)
    return { ...data, out: path.join(dir, 'out'), search: 'exact' as const }
  }

  async function expectError(options: MineOptions, code: string, message: string): Promise<void> {
    const err = await mineNegatives(options).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    )
    expect(err?.message).toBe(message)
    expect(err?.code).toBe(code)
    // Nothing that looks complete is left behind.
    const left = await readdir(options.out).catch(() => [] as string[])
    expect(left.filter((f) => f === 'manifest.json' || f.endsWith('.parquet'))).toEqual([])
  }

  it('dimension mismatch', async () => {
    const dir = await tempDir()
    const o = await fixture(dir)
    await writeNpy(o.positiveEmbeddings, CIRCLE.map(() => [1, 0, 0]))
    await expectError(o, 'E_DIM_MISMATCH', `${o.positiveEmbeddings}: embedding dim 3, expected 2 (from ${o.queryEmbeddings})`)
  })

  it('row-count mismatch', async () => {
    const dir = await tempDir()
    const o = await fixture(dir)
    await writeNpy(o.queryEmbeddings, CIRCLE.slice(1).map(([q]) => at(q)))
    await expectError(o, 'E_ROW_MISMATCH', `${o.queryEmbeddings}: 5 embedding rows, expected 6 (one per row of ${o.pairs})`)
  })

  it('NaN vector', async () => {
    const dir = await tempDir()
    const o = await fixture(dir)
    await writeNpy(o.positiveEmbeddings, CIRCLE.map(([, p], i) => (i === 3 ? [Number.NaN, 1] : at(p))))
    await expectError(o, 'E_BAD_VECTOR', `${o.positiveEmbeddings}:4: embedding row 3 (0-based) contains NaN at column 0; expected finite values`)
  })

  it('zero vector', async () => {
    const dir = await tempDir()
    const o = await fixture(dir)
    await writeNpy(o.queryEmbeddings, CIRCLE.map(([q], i) => (i === 5 ? [0, 0] : at(q))))
    await expectError(o, 'E_BAD_VECTOR', `${o.queryEmbeddings}:6: embedding row 5 (0-based) is all zeros; expected a non-zero vector`)
  })

  it('missing column', async () => {
    const dir = await tempDir()
    const o = await fixture(dir)
    await expectError({ ...o, positiveCol: 'answer' }, 'E_MISSING_COLUMN', `${o.pairs}: positive column 'answer' (from --positive-col) not found, columns are: query,positive`)
  })

  it('malformed CSV row', async () => {
    const dir = await tempDir()
    const o = await fixture(dir)
    await writeFile(o.pairs, 'query,positive\nq0,p0\nq1,p1,extra\n')
    await expectError(o, 'E_BAD_ROW', `${o.pairs}:2: 3 fields, expected 2 (header: query,positive)`)
  })

  it('malformed JSONL row', async () => {
    const dir = await tempDir()
    const o = await fixture(dir)
    const pairs = path.join(dir, 'pairs.jsonl')
    const bad = '{"query": "q1", "positive": '
    await writeFile(pairs, `{"query":"q0","positive":"p0"}\n${bad}\n`)
    let reason = ''
    try {
      JSON.parse(bad)
    } catch (err) {
      reason = (err as Error).message
    }
    await expectError({ ...o, pairs }, 'E_BAD_ROW', `${pairs}:2: invalid JSON (${reason}), expected one object per line`)
  })

  it('empty dataset', async () => {
    const dir = await tempDir()
    const o = await fixture(dir)
    await writeFile(o.pairs, 'query,positive\n')
    await expectError(o, 'E_EMPTY', `${o.pairs}: no data rows, expected at least 1`)
  })

  it.each([
    [{ k: 0 }, 'k: 0, expected an integer >= 1'],
    [{ threshold: Number.NaN }, 'threshold: NaN, expected a number from -2 to 2'],
  ])('bad option %o', async (patch, message) => {
    const dir = await tempDir()
    const o = await fixture(dir)
    await expectError({ ...o, ...patch }, 'E_BAD_OPTION', message)
  })
})
