/**
 * A labeled positive is never a negative: rows sharing a query are siblings, and every
 * positive of every sibling is left out of each sibling's pool (docs/mining.md). Also
 * the options that came with it: the margin anchor, --min-score, --range with top
 * sampling and the threshold sweep.
 */
import { copyFile, mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runMineNegatives, type CliIO } from '../src/cli/main.js'
import { mineNegatives, readShards, type MineOptions, type MinedRow } from '../src/index.js'
import { randomUnit, SNLI_INPUTS, tempDir, writeCsv, writeNpy } from './_helpers.js'

const DIM = 16

/** A unit vector of DIM with the given components (the rest 0), normalised. */
function vec(parts: Record<number, number>): number[] {
  const v = new Array<number>(DIM).fill(0)
  for (const [i, x] of Object.entries(parts)) v[Number(i)] = x
  const n = Math.hypot(...v)
  return v.map((x) => x / n)
}

interface Row {
  query: string
  positive: string
  q: number[]
  p: number[]
}

/**
 * The issue's reproduction: three queries, each on two rows with different positives
 * (scores 0.8 and 0.75 against the query), plus 40 unrelated rows. Row 6's positive
 * scores 0.87 against query 0: above 0.75 + 0.1, below 0.8 + 0.1.
 */
function siblingRows(): Row[] {
  const rows: Row[] = []
  for (let i = 0; i < 3; i++) {
    rows.push({ query: `query ${i}`, positive: `pos ${i}-0`, q: vec({ [i]: 1 }), p: vec({ [i]: 0.8, [3 + 2 * i]: 0.6 }) })
    rows.push({ query: `query ${i}`, positive: `pos ${i}-1`, q: vec({ [i]: 1 }), p: vec({ [i]: 0.75, [4 + 2 * i]: Math.sqrt(1 - 0.75 ** 2) }) })
  }
  for (let j = 0; j < 40; j++) {
    const axis = 10 + (j % 6)
    const p = j === 0 ? vec({ 0: 0.87, [axis]: Math.sqrt(1 - 0.87 ** 2) }) : vec({ [axis]: 0.9, [(axis + 1) % 16 === 0 ? 10 : axis + 1]: 0.1 * (j % 5) })
    rows.push({ query: `other ${j}`, positive: `answer ${j}`, q: vec({ [axis]: 1, 9: 0.05 * (j % 7) }), p })
  }
  return rows
}

async function writeRows(dir: string, rows: readonly Row[]): Promise<Pick<MineOptions, 'pairs' | 'queryEmbeddings' | 'positiveEmbeddings'>> {
  const pairs = path.join(dir, 'pairs.csv')
  await writeCsv(pairs, ['query', 'positive'], rows.map((r) => [r.query, r.positive]))
  await writeNpy(path.join(dir, 'q.npy'), rows.map((r) => r.q))
  await writeNpy(path.join(dir, 'p.npy'), rows.map((r) => r.p))
  return { pairs, queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy') }
}

async function rowsOf(dir: string): Promise<MinedRow[]> {
  const out: MinedRow[] = []
  for await (const r of readShards(dir)) out.push(r)
  return out
}

describe('sibling positives', () => {
  it.each(['exact', 'hnsw'] as const)('are never served, and not counted as false negatives (%s)', async (search) => {
    const dir = await tempDir()
    const inputs = await writeRows(dir, siblingRows())
    const { summary } = await mineNegatives({ ...inputs, out: path.join(dir, 'out'), k: 4, search })
    const rows = await rowsOf(path.join(dir, 'out'))
    expect(rows).toHaveLength(46)
    for (let i = 0; i < 3; i++) {
      for (const own of [0, 1]) {
        const row = rows[2 * i + own]!
        expect(row.positive).toBe(`pos ${i}-${own}`)
        expect(row.negatives).not.toContain(`pos ${i}-${1 - own}`)
        expect(row.negatives).not.toContain(`pos ${i}-${own}`)
      }
    }
    // Query 0's first row: own positive 0.8, ceiling 0.9, so 'answer 0' (0.87) is its best
    // negative; on its second row (0.75, ceiling 0.85) it is the one false negative.
    expect(rows[0]!.negatives[0]).toBe('answer 0')
    expect(rows[0]!.negScores[0]).toBeCloseTo(0.87, 6)
    expect(rows[0]!.nFalseNegatives).toBe(0)
    expect(rows[1]!.negatives).not.toContain('answer 0')
    expect(rows[1]!.nFalseNegatives).toBe(1)
    expect(summary.multiPositiveQueries).toBe(3)
    expect(summary.siblingPositivesExcluded).toBe(6)
    expect(summary.groups['']).toMatchObject({ multiPositiveQueries: 3, siblingPositivesExcluded: 6 })
  })

  it('without sibling exclusion the sibling positive would be the top negative (the check can fail)', async () => {
    // The same rows with the query texts made unique: no siblings, and each row's other
    // positive is served first, as the issue measured (query 0 | pos 0-0 | negatives: pos 0-1 ...).
    const dir = await tempDir()
    const rows = siblingRows().map((r, i) => (i < 6 ? { ...r, query: `${r.query} (row ${i})` } : r))
    await mineNegatives({ ...(await writeRows(dir, rows)), out: path.join(dir, 'out'), k: 4, search: 'exact' })
    const mined = await rowsOf(path.join(dir, 'out'))
    expect(mined[1]!.negatives[0]).toBe('pos 0-0')
    expect(mined[2]!.negatives[0]).toBe('pos 1-1')
  })

  it("--margin-anchor lowest measures the margin from the query's lowest-scoring positive", async () => {
    const dir = await tempDir()
    const inputs = await writeRows(dir, siblingRows())
    const { manifest } = await mineNegatives({ ...inputs, out: path.join(dir, 'out'), k: 4, search: 'exact', marginAnchor: 'lowest' })
    const rows = await rowsOf(path.join(dir, 'out'))
    // Row 0: lowest positive 0.75, ceiling 0.85: 'answer 0' (0.87) is now a false negative.
    expect(rows[0]!.negatives).not.toContain('answer 0')
    expect(rows[0]!.nFalseNegatives).toBe(1)
    expect(rows[0]!.posScore).toBeCloseTo(0.8, 6) // pos_score stays the row's own
    expect(rows[1]!.nFalseNegatives).toBe(1)
    expect(manifest.options.marginAnchor).toBe('lowest')
  })

  it('rows without siblings give byte-identical shards to before (SNLI, hnsw, random window, coco-mini images)', async () => {
    const dir = await tempDir()
    const coco = path.resolve(import.meta.dirname, '..', 'fixtures', 'coco-mini')
    const base = SNLI_INPUTS
    // The sha256 of each run's shard, as written before sibling exclusion existed.
    const runs: [string, Omit<MineOptions, 'out'>, string][] = [
      ['snli', base, '2422dc67aa1baf98003ec675ae969ee6594e88f75982d766c283ca2d9a321059'],
      ['snli-hnsw', { ...base, search: 'hnsw' }, 'aec24c6897b5c466d59e55bd7d9df0e8311638e61a43bb29b36c5c340782690b'],
      ['snli-random', { ...base, sampling: 'random', range: [5, 40], seed: 3, keepFiltered: 3 }, '940ef357d0d8e3a278b9930581dec2592571e1eaabadff730d5630e957dd8cca'],
      ['coco', {
        pairs: path.join(coco, 'mmeb-style.parquet'), preset: 'mmeb',
        queryEmbeddings: path.join(coco, 'mmeb-style.qry.npy'), positiveEmbeddings: path.join(coco, 'mmeb-style.pos.npy'),
      }, '1542a128b341215262a05db038cbcd332e0d173c18865285b0926abbfe95acda'],
    ]
    for (const [name, options, sha256] of runs) {
      const { manifest } = await mineNegatives({ ...options, out: path.join(dir, name) })
      expect(manifest.counts.multiPositiveQueries, name).toBe(0)
      expect(manifest.shards.map((s) => s.sha256), name).toEqual([sha256])
    }
  })
})

describe('siblings in runs with images', () => {
  it.each(['exact', 'hnsw'] as const)('are rows with the same instruction over the same picture (by content), never the same instruction over another (%s)', async (search) => {
    const dir = await tempDir()
    const images = path.join(dir, 'images')
    await mkdir(images)
    const src = path.resolve(import.meta.dirname, '..', 'fixtures', 'coco-mini', 'images')
    await copyFile(path.join(src, '000000000790.jpg'), path.join(images, 'a.jpg'))
    await copyFile(path.join(src, '000000000790.jpg'), path.join(images, 'a-copy.jpg')) // the same picture under another name
    await copyFile(path.join(src, '000000030752.jpg'), path.join(images, 'b.jpg'))
    const instruction = '<|image_1|>\nFind an image caption describing the given everyday image.'
    const rows = [
      { qi: 'images/a.jpg', pos: 'caption a one', q: vec({ 0: 1 }), p: vec({ 0: 0.8, 1: 0.6 }) },
      { qi: 'images/a-copy.jpg', pos: 'caption a two', q: vec({ 0: 1 }), p: vec({ 0: 0.75, 2: Math.sqrt(1 - 0.75 ** 2) }) },
      { qi: 'images/b.jpg', pos: 'caption b', q: vec({ 0: 0.9, 3: Math.sqrt(1 - 0.81) }), p: vec({ 0: 0.7, 4: Math.sqrt(1 - 0.49) }) },
      ...Array.from({ length: 12 }, (_, j) => ({ qi: '', pos: `unrelated ${j}`, q: vec({ [5 + (j % 8)]: 1 }), p: vec({ [5 + (j % 8)]: 1, 0: 0.1 * (j % 3) }) })),
    ]
    const pairs = path.join(dir, 'pairs.csv')
    await writeCsv(pairs, ['query', 'query_image', 'positive'], rows.map((r) => [r.qi === '' ? `text query ${r.pos}` : instruction, r.qi, r.pos]))
    await writeNpy(path.join(dir, 'q.npy'), rows.map((r) => r.q))
    await writeNpy(path.join(dir, 'p.npy'), rows.map((r) => r.p))
    const { summary } = await mineNegatives({
      pairs, queryImageCol: 'query_image', queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy'),
      out: path.join(dir, 'out'), k: 3, search,
    })
    const mined = await rowsOf(path.join(dir, 'out'))
    expect(mined[0]!.negatives).not.toContain('caption a two')
    expect(mined[1]!.negatives).not.toContain('caption a one')
    // Picture b is another query: a's captions are its best negatives (0.72 and 0.675, under its ceiling 0.63 + 0.1).
    expect(mined[2]!.negatives.slice(0, 2).sort()).toEqual(['caption a one', 'caption a two'])
    expect(summary.multiPositiveQueries).toBe(1)
    expect(summary.siblingPositivesExcluded).toBe(2)
  })
})

describe('--min-score and --range with top sampling', () => {
  it('--min-score leaves out candidates scoring below it; rows run short and are padded', async () => {
    const dir = await tempDir()
    const inputs = await writeRows(dir, siblingRows())
    await mineNegatives({ ...inputs, out: path.join(dir, 'out'), k: 4, search: 'exact', minScore: 0.5 })
    const rows = await rowsOf(path.join(dir, 'out'))
    // Row 0's only candidate at or above 0.5 is 'answer 0' (0.87): one valid negative, repeated.
    expect(rows[0]!.negatives).toEqual(['answer 0', 'answer 0', 'answer 0', 'answer 0'])
    expect(rows[0]!.nValid).toBe(1)
    for (const r of rows) for (const s of r.negScores) expect(s).toBeGreaterThanOrEqual(0.5)
  })

  it('--range 2:10 with top sampling skips the two best and takes the next k', async () => {
    const dir = await tempDir()
    const { pairs, queryEmbeddings, positiveEmbeddings } = { ...(await writeRows(dir, siblingRows())) }
    await mineNegatives({ pairs, queryEmbeddings, positiveEmbeddings, out: path.join(dir, 'all'), k: 8, search: 'exact' })
    await mineNegatives({ pairs, queryEmbeddings, positiveEmbeddings, out: path.join(dir, 'window'), k: 4, search: 'exact', range: [2, 10] })
    const all = await rowsOf(path.join(dir, 'all'))
    const window = await rowsOf(path.join(dir, 'window'))
    for (const [i, row] of window.entries()) {
      expect(row.negatives).toEqual(all[i]!.negatives.slice(2, 6))
      expect(row.negScores).toEqual(all[i]!.negScores.slice(2, 6))
    }
  })

  it('a window narrower than k is rejected for top sampling too', async () => {
    const dir = await tempDir()
    await expect(mineNegatives({ ...(await writeRows(dir, siblingRows())), out: path.join(dir, 'out'), k: 8, range: [10, 15] }))
      .rejects.toThrow('range: 10:15 holds 5 ranks, expected at least k = 8')
  })
})

/** Brute-force margin-rule counts: candidates above fround(pos + beta), own positive/query and sibling positives left out. */
function bruteSweep(rows: readonly Row[], thresholds: readonly number[]): { fn: number[]; queries: number[] } {
  const fn = thresholds.map(() => 0)
  const queries = thresholds.map(() => 0)
  const dot = (a: number[], b: number[]): number => {
    let s = 0
    for (let j = 0; j < a.length; j++) s += Math.fround(a[j]!) * Math.fround(b[j]!)
    return s
  }
  const firstOf = new Map<string, number>()
  rows.forEach((r, i) => { if (!firstOf.has(r.positive)) firstOf.set(r.positive, i) })
  for (const r of rows) {
    const pos = Math.fround(dot(r.q, r.p))
    const labeled = new Set(rows.filter((o) => o.query === r.query).map((o) => o.positive))
    thresholds.forEach((beta, t) => {
      const cap = Math.fround(pos + beta)
      let n = 0
      for (const [text, i] of firstOf) {
        if (labeled.has(text) || text === r.query) continue
        if (Math.fround(dot(r.q, rows[i]!.p)) > cap) n++
      }
      fn[t]! += n
      if (n > 0) queries[t]!++
    })
  }
  return { fn, queries }
}

describe('--sweep-thresholds', () => {
  it('counts each margin\'s false negatives over the whole pool in the same pass, as a brute force does', async () => {
    const dir = await tempDir()
    const qs = randomUnit(300, 24, 11, 6)
    const ps = randomUnit(300, 24, 12, 6)
    const rows: Row[] = Array.from({ length: 300 }, (_, i) => ({
      query: `q${i % 250}`, // 50 queries on two rows: siblings
      positive: `p${i}`,
      q: Array.from(qs.data.subarray((i % 250) * 24, (i % 250 + 1) * 24)),
      p: Array.from(ps.data.subarray(i * 24, (i + 1) * 24)),
    }))
    const thresholds = [-0.1, 0, 0.05, 0.1, 0.3]
    const { summary, manifest } = await mineNegatives({
      ...(await writeRows(dir, rows)), out: path.join(dir, 'out'), search: 'exact', sweepThresholds: thresholds, poolBlockRows: 1024, queryBlockRows: 299, // the last block has one query: the padded path
    })
    const brute = bruteSweep(rows, thresholds)
    expect(summary.sweep?.map((p) => p.threshold)).toEqual(thresholds)
    expect(summary.sweep?.map((p) => p.falseNegatives)).toEqual(brute.fn)
    expect(summary.sweep?.map((p) => p.queriesWithFalseNegatives)).toEqual(brute.queries)
    expect(summary.sweep?.map((p) => p.falseNegativeQueryShare)).toEqual(brute.queries.map((q) => q / 300))
    // The run's own margin (0.1) in the sweep agrees with the run's own count.
    expect(summary.sweep?.[3]?.falseNegatives).toBe(summary.falseNegatives)
    expect(manifest.counts.sweep).toEqual(summary.sweep)
    expect(manifest.groups['']?.sweep).toEqual(summary.sweep)
  })

  it('leaves the shards byte-identical', async () => {
    const dir = await tempDir()
    const inputs = await writeRows(dir, siblingRows())
    const a = await mineNegatives({ ...inputs, out: path.join(dir, 'a'), search: 'exact' })
    const b = await mineNegatives({ ...inputs, out: path.join(dir, 'b'), search: 'exact', sweepThresholds: [0, 0.2] })
    expect(b.manifest.shards).toEqual(a.manifest.shards)
    expect(await readFile(path.join(dir, 'b', 'part-00000.parquet'))).toEqual(await readFile(path.join(dir, 'a', 'part-00000.parquet')))
  })

  it('counts in hnsw mode over the candidates fetched, as n_false_negatives there', async () => {
    const dir = await tempDir()
    const inputs = await writeRows(dir, siblingRows())
    const { summary } = await mineNegatives({ ...inputs, out: path.join(dir, 'out'), k: 4, search: 'hnsw', sweepThresholds: [0.1] })
    expect(summary.sweep?.[0]?.falseNegatives).toBe(summary.falseNegatives)
  })

  it('rejects a threshold given twice, naming the list', async () => {
    const dir = await tempDir()
    await expect(mineNegatives({ ...(await writeRows(dir, siblingRows())), out: path.join(dir, 'out'), sweepThresholds: [0, 0.1, 0] }))
      .rejects.toThrow('sweepThresholds: 0,0.1,0 lists a threshold twice, expected distinct values')
  })
})

describe('the CLI', () => {
  const io = (): CliIO & { out: string[]; err: string[] } => {
    const out: string[] = []
    const err: string[] = []
    return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), stderrIsTTY: false }
  }

  it('takes --margin-anchor, --min-score, --sweep-thresholds and --range with top sampling, and prints the counts', async () => {
    const dir = await tempDir()
    const inputs = await writeRows(dir, siblingRows())
    const cli = io()
    const code = await runMineNegatives([
      '--pairs', inputs.pairs as string, '--query-embeddings', inputs.queryEmbeddings as string, '--positive-embeddings', inputs.positiveEmbeddings as string,
      '--out', path.join(dir, 'out'), '--quiet', '--k', '4', '--margin-anchor', 'lowest', '--min-score', '-0.5', '--range', '1:9',
      '--sweep-thresholds', '0,0.1,0.3',
    ], cli)
    expect(cli.err.join('')).toBe('')
    expect(code).toBe(0)
    const summary = cli.out.join('')
    expect(summary).toContain('\n  queries with several labeled positives: 3; sibling positives left out of pools: 6\n')
    expect(summary).toMatch(/\n  threshold sweep \(margin rule alone\): beta 0: [\d,]+ FN, FalseNeg% [\d.]+%; beta 0\.1: [\d,]+ FN, FalseNeg% [\d.]+%; beta 0\.3: [\d,]+ FN, FalseNeg% [\d.]+%\n/)
    const manifest = JSON.parse(await readFile(path.join(dir, 'out', 'manifest.json'), 'utf8'))
    expect(manifest.options).toMatchObject({ marginAnchor: 'lowest', minScore: -0.5, range: [1, 9], sampling: 'top', sweepThresholds: [0, 0.1, 0.3] })
  })

  it.each([
    [['--sweep-thresholds', '0,,0.1'], "--sweep-thresholds: '0,,0.1', expected comma-separated numbers from -2 to 2"],
    [['--sweep-thresholds', '0,x'], "--sweep-thresholds: 'x' in '0,x', expected comma-separated numbers from -2 to 2"],
    [['--margin-anchor', 'min'], "--margin-anchor: 'min', expected one of own, lowest"],
    [['--min-score', '2'], "--min-score: '2', expected a number from -1 to 1"],
    [['--range', '0:4', '--k', '8'], 'range: 0:4 holds 4 ranks, expected at least k = 8'],
  ])('%j exits 2 with one line', async (flags, message) => {
    const dir = await tempDir()
    const cli = io()
    expect(await runMineNegatives(['--out', path.join(dir, 'o'), '--quiet', ...flags], cli)).toBe(2)
    expect(cli.err.join('').split('\n').filter((l) => !l.startsWith('hardneg: no --pairs given'))).toEqual([`hardneg: error E_BAD_OPTION: ${message}`, ''])
  })
})
