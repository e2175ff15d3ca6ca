/**
 * Scale-out: N workers (and N / M query shares x M pool parts) and a merge give the
 * one-process run's shards and manifest byte for byte, over every option that changes
 * output and every output format; what a worker leaves never looks finished.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { mergeParts, mineNegatives, mineWorkerPart, type MineOptions } from '../src/index.js'
import { tempDir } from './_helpers.js'
import { expectSameRun, setAside, SNLI_FULL, snliSubset } from './_scale-fixture.js'

const COCO = path.join(import.meta.dirname, '..', 'fixtures', 'coco-mini')
const COCO_INPUTS = {
  pairs: path.join(COCO, 'mmeb-style.parquet'),
  preset: 'mmeb' as const,
  queryEmbeddings: path.join(COCO, 'mmeb-style.qry.npy'),
  positiveEmbeddings: path.join(COCO, 'mmeb-style.pos.npy'),
  threads: 1,
}

/** Mines `options` in one process, then with `workers` workers and `poolParts` pool parts into the same `out`, and compares. */
async function compare(options: Omit<MineOptions, 'out'>, workers: number, poolParts = 1): Promise<{ pool: [number, number] }[][]> {
  const dir = await tempDir()
  const out = path.join(dir, 'run')
  await mineNegatives({ ...options, out })
  const ref = await setAside(out, path.join(dir, 'ref'), poolParts > 1)
  for (let index = 0; index < workers; index++) {
    await mineWorkerPart({ ...options, out }, { index, count: workers, poolParts, engine: 'flags', source: 'test' })
    // Nothing a worker writes looks like a finished run.
    expect((await readdir(out)).filter((n) => !n.startsWith('.'))).toEqual([])
  }
  const mined: { pool: [number, number] }[][] = []
  for (const name of (await readdir(path.join(out, '.hardneg-parts'))).sort()) {
    mined.push((JSON.parse(await readFile(path.join(out, '.hardneg-parts', name, 'part.json'), 'utf8')) as { mined: { pool: [number, number] }[] }).mined)
  }
  await mergeParts({ out })
  await expectSameRun(out, ref, poolParts > 1)
  expect((await readdir(out)).filter((n) => n.startsWith('.hardneg-parts'))).toEqual([])
  return mined
}

describe('workers and merge give the one-process run', () => {
  const cases: [string, Partial<MineOptions>][] = [
    ['defaults', {}],
    ['groups, siblings, lowest anchor, sweep, min-score, top range, carried column', { groupCol: 'group', carry: ['label'], marginAnchor: 'lowest', sweepThresholds: [0, 0.05, 0.2], minScore: 0.05, range: [2, 30] }],
    ['random sampling, pad none, keep-filtered, every filter', { k: 3, pad: 'none', sampling: 'random', range: [0, 40], seed: 7, keepFiltered: 3, maxScore: 0.8, relativeMargin: 0.05, posSim: 0.9, querySim: 0.95 }],
    ['corpus, small shards', { shardRows: 250, threshold: 0 }],
    ['hnsw search', { search: 'hnsw', groupCol: 'group' }],
    ['mmeb layout', { outputFormat: 'mmeb', pad: 'drop' }],
    ['unime-v2 layout', { outputFormat: 'unime-v2', shardRows: 400 }],
    ['sentence-transformers layout', { outputFormat: 'sentence-transformers', k: 4 }],
    ['flagembedding layout', { outputFormat: 'flagembedding', groupCol: 'group' }],
    ['int8 kernel, groups, keep-filtered, sweep', { exactKernel: 'int8', groupCol: 'group', keepFiltered: 3, sweepThresholds: [0, 0.2] }],
  ]
  it.each(cases)('%s (3 workers)', async (_name, extra) => {
    const inputs = await snliSubset(await tempDir())
    const { corpus, corpusEmbeddings, ...noCorpus } = inputs
    await compare({ ...(_name.startsWith('corpus') ? inputs : noCorpus), ...extra } as Omit<MineOptions, 'out'>, 3)
  })

  it('gives workers without a query nothing to do (7 workers, 4 rows)', async () => {
    const { corpus, corpusEmbeddings, ...inputs } = await snliSubset(await tempDir(), 4)
    await compare({ ...inputs, k: 2 }, 7)
  })

  it('mines pairs with images (coco-mini, two subsets) with keep-filtered, in UniME-V2 JSON Lines and hardneg shards', async () => {
    await compare({ ...COCO_INPUTS, keepFiltered: 4 }, 3)
    await compare({ ...COCO_INPUTS, outputFormat: 'unime-v2', k: 4 }, 4)
  })

  it('splits the pool: 2 query shares x 2 pool parts over SNLI (2,849 distinct positives), with keep-filtered and a sweep', async () => {
    const mined = await compare({ ...SNLI_FULL, keepFiltered: 3, sweepThresholds: [0, 0.1, 0.3] }, 4, 2)
    expect(mined.map((m) => m.map((g) => g.pool))).toEqual([[[0, 1424]], [[1424, 2849]], [[0, 1424]], [[1424, 2849]]])
  })

  it('splits the pool under the int8 kernel (2 query shares x 2 pool parts); its rescoring is counted per query and pool part', async () => {
    await compare({ ...SNLI_FULL, exactKernel: 'int8', keepFiltered: 2 }, 4, 2)
    type Kernel = { groups: { int8: number }; rescore: { queries: number; splitGroups?: number } }
    const dir = await tempDir()
    const out = path.join(dir, 'run')
    const one = (await mineNegatives({ ...SNLI_FULL, exactKernel: 'int8', out })).manifest.search.exactKernel as Kernel
    expect(one.groups.int8).toBe(1)
    expect(one.rescore.queries).toBe(2921)
    expect(one.rescore.splitGroups).toBeUndefined()
    const split = path.join(dir, 'split')
    for (let index = 0; index < 4; index++) await mineWorkerPart({ ...SNLI_FULL, exactKernel: 'int8', out: split }, { index, count: 4, poolParts: 2, engine: 'flags', source: 'test' })
    const merged = (await mergeParts({ out: split })).manifest.search.exactKernel as Kernel
    expect(merged.groups.int8).toBe(1)
    expect(merged.rescore).toMatchObject({ queries: 2 * 2921, splitGroups: 1 })
  })

  it('refuses parts whose workers ran one group with different kernels (auto on unlike CPUs), before writing anything', async () => {
    const dir = await tempDir()
    const out = path.join(dir, 'run')
    const { corpus, corpusEmbeddings, ...inputs } = await snliSubset(dir)
    for (let index = 0; index < 2; index++) await mineWorkerPart({ ...inputs, exactKernel: 'fp32', out }, { index, count: 2, poolParts: 1, engine: 'flags', source: 'test' })
    // What worker 1 would have written on a CPU where auto took int8 for this group.
    const names = (await readdir(path.join(out, '.hardneg-parts'))).sort()
    const file = path.join(out, '.hardneg-parts', names[1] as string, 'part.json')
    const part = JSON.parse(await readFile(file, 'utf8')) as { kernels: { kernels: [string, string][]; cpu: { int8: string } } }
    part.kernels.kernels = part.kernels.kernels.map(([g]) => [g, 'int8'])
    part.kernels.cpu.int8 = 'vnni'
    await writeFile(file, JSON.stringify(part))
    const message = ((await mergeParts({ out }).catch((e: unknown) => e)) as Error).message
    expect(message.startsWith(`${out}: group '' was searched with the fp32 kernel by worker 0 (CPU `)).toBe(true)
    expect(message).toMatch(/\) and with int8 by worker 1 \(CPU x64, int8 vnni, flags [^)]*\), expected one kernel per group: rerun the workers with --exact-kernel int8 \(the same rows on every CPU\) or --exact-kernel fp32$/)
    expect((await readdir(out)).filter((n) => !n.startsWith('.'))).toEqual([])
  })

  it('splits the pool with random sampling, a rank window, min-score and every filter (1 share x 2 parts)', async () => {
    await compare({ ...SNLI_FULL, k: 4, sampling: 'random', range: [1, 50], seed: 3, minScore: 0.1, posSim: 0.9, querySim: 0.95, relativeMargin: 0.02, pad: 'none' }, 2, 2)
  })
})

describe('a split pool with the duplicate rules', () => {
  it('finishes every query from its parts exactly as the whole pool does, deep fetches included', async () => {
    const { buildPool, mineGroup } = await import('../src/index.js')
    const { searchPoolPart, finishPartials } = await import('../src/mine/partial.js')
    const { randomUnit } = await import('./_helpers.js')
    const dim = 16
    const poolRows = 2400
    const queries = 40
    const pairs = Array.from({ length: poolRows }, (_, row) => ({ row, id: `r${row}`, query: `q${row}`, positive: `p${row}`, group: '', queryImage: '', positiveImage: '', carried: {} }))
    const pool = buildPool('', pairs)
    const vectors = randomUnit(poolRows, dim, 11, 4)
    const queryVectors = randomUnit(queries, dim, 12, 4)
    // Half the pool counts as a duplicate for even rows, so most queries walk past their first fetch.
    const duplicates = (pair: { row: number }, entry: { id: string }): 'image_duplicate' | 'text_duplicate' | undefined => {
      const j = Number(entry.id.slice(1))
      if (j % 2 === 0 && pair.row % 2 === 0) return 'image_duplicate'
      return j % 9 === pair.row % 9 ? 'text_duplicate' : undefined
    }
    const base = {
      pairs: pairs.slice(0, queries),
      queries: queryVectors,
      positives: { rows: queries, dim, data: vectors.data.slice(0, queries * dim) },
      pool,
      rules: { threshold: 0.05 },
      duplicates,
      select: { k: 8, sampling: 'top' as const, seed: 0, pad: 'repeat' as const },
      keepFiltered: 5,
      search: 'exact' as const,
      threads: 1,
    }
    const whole: unknown[] = []
    for await (const row of mineGroup({ ...base, poolVectors: vectors, onOutcome: (row, outcome, _pair, counts) => whole.push({ row, outcome, counts }) })) void row
    const parts: Awaited<Parameters<Parameters<typeof searchPoolPart>[1]>[0]>[][] = [[], []]
    for (const [p, [a, b]] of ([[0, 1200], [1200, 2400]] as const).entries()) {
      const part = { rows: b - a, dim, data: vectors.data.slice(a * dim, b * dim) }
      await searchPoolPart({ ...base, poolVectors: part, poolOffset: a }, async (q) => void parts[p]?.push(q))
    }
    const split: unknown[] = []
    for (let i = 0; i < queries; i++) {
      const done = await finishPartials([parts[0]?.[i], parts[1]?.[i]] as never, { poolRows, rules: base.rules, select: base.select, keepFiltered: 5, images: false, duplicates: true })
      split.push({ row: done.row, outcome: done.outcome, counts: done.counts })
    }
    expect(split).toEqual(whole)
    // The walk went deeper than the first fetch for some queries: more than 2k + 8 candidates listed.
    expect(parts[0]?.some((q) => q.result.index.length > 24)).toBe(true)
  })
})
