import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runHardneg, runMineNegatives, type CliIO } from '../src/cli/main.js'
import { buildReportData, readShards, renderReport, writeReport, type MinedRow, type ReportData } from '../src/index.js'
import { binnedQuantile, occupiedBins, ScoreBins } from '../src/report/_bins.js'
import { esc } from '../src/report/_html.js'
import { writeManifest, type Manifest } from '../src/output/manifest.js'
import { writeShards } from '../src/output/shards.js'
import { tempDir } from './_helpers.js'
import { generatedRun, imageRun } from './_report-fixture.js'

function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), stderrIsTTY: false }
}

async function rowsOf(dir: string): Promise<MinedRow[]> {
  const rows: MinedRow[] = []
  for await (const r of readShards(dir)) rows.push(r)
  return rows
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)

describe('score bins', () => {
  it('puts each value in the bin of its left edge, the right edge and values a hair past it in the edge bins', () => {
    const bins = new ScoreBins(-1, 1, 4) // [-1,-0.5) [-0.5,0) [0,0.5) [0.5,1]
    for (const v of [-1, -0.5, -0.25, 0, 0.49, 0.5, 1, 1.0000001, -1.0000001, Number.NaN]) bins.add(v)
    const h = bins.histogram()
    expect(h.counts).toEqual([2, 2, 2, 3])
    expect(h).toMatchObject({ lo: -1, hi: 1, below: 0, above: 0, total: 9 })
    expect(h.mean).toBeCloseTo((-1 - 0.5 - 0.25 + 0 + 0.49 + 0.5 + 1 + 1.0000001 - 1.0000001) / 9, 12)
  })

  it('counts values well outside the range apart, in the total and the mean but in no bin', () => {
    const bins = new ScoreBins(-1, 1, 4)
    for (const v of [1.05, 1.1, -1.5, 0.25]) bins.add(v)
    const h = bins.histogram()
    expect(h.counts).toEqual([0, 0, 1, 0])
    expect(h).toMatchObject({ below: 1, above: 2, total: 4 })
    expect(h.mean).toBeCloseTo((1.05 + 1.1 - 1.5 + 0.25) / 4, 12)
  })

  it('gives quantiles within one bin width, and the occupied bin range', () => {
    const bins = new ScoreBins(-1, 1, 200)
    for (let i = 0; i < 1000; i++) bins.add(-0.2 + (0.8 * i) / 1000) // uniform on [-0.2, 0.6)
    const h = bins.histogram()
    expect(binnedQuantile(h, 0.5)).toBeCloseTo(0.2, 2)
    expect(Math.abs(binnedQuantile(h, 0.9)! - 0.52)).toBeLessThanOrEqual(0.01)
    expect(occupiedBins([h])).toEqual([80, 159])
    expect(binnedQuantile(new ScoreBins(-1, 1, 4).histogram(), 0.5)).toBeNull()
    expect(occupiedBins([new ScoreBins(-1, 1, 4).histogram()])).toBeNull()
  })

  it('rejects bins that cannot be drawn', () => {
    expect(() => new ScoreBins(1, 1, 4)).toThrow('bins over [1, 1] x 4, expected lo < hi and bins >= 1')
  })
})

describe('buildReportData on a mined run', () => {
  it('bins every written row: positives, distinct negatives, ceilings and stored filtered candidates, per group', async () => {
    const dir = await tempDir()
    const run = await generatedRun(dir, 600, { keepFiltered: 3, pad: 'repeat' })
    const data = await buildReportData({ shards: run, samples: 25, seed: 3, bins: 100 })
    const rows = await rowsOf(run)
    const manifest = JSON.parse(await readFile(path.join(run, 'manifest.json'), 'utf8')) as Manifest

    expect(data.rows).toBe(600)
    expect(data.layout).toEqual({ filtered: true, rescored: false, images: {} })
    expect(data.keepFiltered).toBe(3)
    expect(data.rules).toEqual({ threshold: 0.05 })
    expect(data.overall.positive.total).toBe(600)
    expect(data.overall.negative.total).toBe(sum(rows.map((r) => r.nValid)))
    expect(data.overall.negative.total).toBe(manifest.scores.negative.count)
    expect(data.overall.ceiling.total).toBe(600)
    expect(data.overall.filtered!.total).toBe(sum(rows.map((r) => r.filtered!.length)))
    expect(data.overall.filtered!.total).toBeGreaterThan(0)
    expect(sum(Object.values(data.overall.storedByRule))).toBe(data.overall.filtered!.total)
    expect(Object.keys(data.overall.storedByRule)).toEqual(['margin'])
    expect(sum(data.overall.positive.counts)).toBe(600)
    expect(data.overall.positive.mean).toBeCloseTo(sum(rows.map((r) => r.posScore)) / 600, 9)
    expect(data.overall.counts).toMatchObject({ rowsIn: 600, padded: manifest.counts.padded, dropped: manifest.counts.dropped })

    expect(data.groups.map((g) => [g.name, g.rows])).toEqual([['a', 200], ['b', 400]])
    const a = data.groups[0]!
    const inA = rows.filter((r) => r.group === 'a')
    expect(a.counts).toEqual(manifest.groups.a)
    expect(a.falseNegatives).toBe(sum(inA.map((r) => r.nFalseNegatives)))
    expect(a.rowsWithFalseNegatives).toBe(inA.filter((r) => r.nFalseNegatives > 0).length)
    expect(a.hardness).toBeCloseTo(a.negative.mean! / a.positive.mean!, 12)
    for (const key of ['positive', 'negative', 'ceiling', 'filtered'] as const) {
      const merged = data.groups.map((g) => g[key]!.counts).reduce((x, y) => x.map((v, i) => v + y[i]!))
      expect(merged).toEqual(data.overall[key]!.counts)
    }
  })

  it('samples rows uniformly and reproducibly by seed, each as the shards hold it', async () => {
    const dir = await tempDir()
    const run = await generatedRun(dir, 300, { keepFiltered: 2 })
    const rows = await rowsOf(run)
    const one = await buildReportData({ shards: run, samples: 20, seed: 1 })
    const again = await buildReportData({ shards: run, samples: 20, seed: 1 })
    const other = await buildReportData({ shards: run, samples: 20, seed: 2 })
    const indices = (d: ReportData): number[] => d.samples.map((s) => s.index)
    expect(indices(one)).toEqual(indices(again))
    expect(indices(one)).not.toEqual(indices(other))
    expect(indices(one).length).toBe(20)
    expect([...indices(one)].sort((x, y) => x - y)).toEqual(indices(one))
    expect(new Set(indices(one)).size).toBe(20)
    for (const s of one.samples) {
      const r = rows[s.index]!
      expect(s).toMatchObject({ id: r.id, query: r.query, positive: r.positive, group: r.group, nValid: r.nValid, nFalseNegatives: r.nFalseNegatives })
      expect(s.negatives.map((n) => [n.text, n.id, n.score])).toEqual(r.negatives.map((t, i) => [t, r.negIds[i], r.negScores[i]]))
      expect(s.filtered).toEqual(r.filtered)
      expect(s.ceiling).toBe(Math.fround(r.posScore + 0.05))
    }
    // Asking for more than there are shows every row once.
    expect(indices(await buildReportData({ shards: run, samples: 1000 }))).toEqual(rows.map((_, i) => i))
  })

  it('says when the run was mined without --keep-filtered, and marks padding repeats', async () => {
    const dir = await tempDir()
    // Group a's pool holds 19 candidates per query: every row of it is padded to k = 24.
    const run = await generatedRun(dir, 60, { k: 24 })
    const data = await buildReportData({ shards: run, samples: 60 })
    expect(data.layout.filtered).toBe(false)
    expect(data.overall.filtered).toBeUndefined()
    expect(data.samples.every((s) => s.filtered === undefined)).toBe(true)
    const padded = data.samples.find((s) => s.group === 'a')!
    expect(padded.nValid).toBeLessThan(20)
    expect(padded.negatives.map((n) => n.repeat)).toEqual(Array.from({ length: 24 }, (_, i) => i >= padded.nValid))
    expect(data.groups[0]!.counts!.padded).toBe(20)
    const html = renderReport(data)
    expect(html).toContain('This run was mined without <code>--keep-filtered</code>')
    expect(html).toContain('not stored (mined without --keep-filtered)')
    expect(html.match(/class="neg repeat"/g)?.length).toBe(sum(data.samples.map((s) => 24 - s.nValid)))
  })
})

describe('the page', () => {
  it('is one self-contained HTML file: no script, no external URL, histograms and gallery counted', async () => {
    const dir = await tempDir()
    const run = await generatedRun(dir, 300, { keepFiltered: 2 })
    const { out, bytes, data } = await writeReport({ shards: run, samples: 12 })
    expect(out).toBe(path.join(run, 'report.html'))
    const html = await readFile(out, 'utf8')
    expect(Buffer.byteLength(html)).toBe(bytes)
    expect(html).not.toMatch(/<script|https?:\/\/|src="(?!data:)/i)
    // Overall and one per group.
    expect(html.match(/<svg class="histogram"/g)?.length).toBe(3)
    expect(html.match(/data-series="filtered"/g)?.length).toBe(3)
    expect(html.match(/<article class="sample"/g)?.length).toBe(12)
    expect(html.match(/<tr class="filtered-row"/g)?.length).toBe(sum(data.samples.map((s) => s.filtered!.length)))
    expect(html).toContain('<td>a</td><td class="num">100</td><td class="num">100</td>')
  })

  it('charts FalseNeg% against β from a run mined with --sweep-thresholds, the run\'s own β marked; no chart without one', async () => {
    const dir = await tempDir()
    const run = await generatedRun(dir, 300, { sweepThresholds: [0.2, 0, 0.05, 0.1] })
    const manifest = JSON.parse(await readFile(path.join(run, 'manifest.json'), 'utf8'))
    const { out } = await writeReport({ shards: run, samples: 0 })
    const html = await readFile(out, 'utf8')
    expect(html).toContain('<a href="#sweep">Threshold sweep</a>')
    const points = [...html.matchAll(/<g class="point" data-threshold="([^"]+)" data-share="([^"]+)"><circle [^>]* r="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2]), m[3]])
    const sweep = [...manifest.counts.sweep].sort((a: { threshold: number }, b: { threshold: number }) => a.threshold - b.threshold)
    // In β order, each at its FalseNeg%; the run's own β (0.05) drawn larger.
    expect(points).toEqual(sweep.map((p: { threshold: number; falseNegativeQueryShare: number }) => [p.threshold, p.falseNegativeQueryShare, p.threshold === 0.05 ? '5' : '3.5']))
    expect(points.map((p) => p[1])).toEqual([...points.map((p) => p[1])].sort((a, b) => Number(b) - Number(a))) // FalseNeg% falls as β grows
    expect(html).toContain(`<td class="num">0.05</td><td class="num">${manifest.counts.falseNegatives.toLocaleString('en-US')}</td>`)
    const plain = await generatedRun(await tempDir(), 30)
    const page = await readFile((await writeReport({ shards: plain, samples: 0 })).out, 'utf8')
    expect(page).not.toContain('id="sweep"')
  })

  it('shows every text as text: markup in queries, groups and ids is escaped', async () => {
    const dir = await tempDir()
    const out = path.join(dir, 'run')
    const evil = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    const row: MinedRow = {
      id: `"id'<b>`, query: evil, positive: 'p </textarea>', group: '<g>', posScore: 0.5,
      negatives: ['n <i>1</i>'], negIds: ['1'], negScores: [0.4], nValid: 1, nFalseNegatives: 1,
      filtered: [{ text: 'f <svg onload=alert(1)>', id: '2', score: 0.7, rule: '<rule>' }], carried: {},
    }
    const { FILTERED_COLUMNS } = await import('../src/output/shards.js')
    const shards = await writeShards((async function* () { yield row })(), { dir: out, carriedColumns: [], extraColumns: FILTERED_COLUMNS })
    await writeManifest(out, { options: { threshold: 0.1, k: 1, keepFiltered: 1 }, shards } as unknown as Manifest)
    const html = renderReport(await buildReportData({ shards: out, samples: 1 }))
    expect(html).not.toMatch(/<script|<img|<svg onload|<rule>|<g>|<i>1/)
    expect(html).toContain(esc(evil))
    expect(html).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#60;img src=x onerror=alert(1)&#62;')
    expect(html).toContain(`<span class="rule" title="a rule named by the run">&#60;rule&#62;</span>`)
  })
})

describe('images', () => {
  it('embeds each image once as a JPEG thumbnail, with placeholders for a missing and an undecodable image', async () => {
    const dir = await tempDir()
    const run = await imageRun(dir, { rows: 12 })
    const data = await buildReportData({ shards: run, samples: 12 })
    expect(data.layout.images).toEqual({ query: 'query_image', positive: 'pos_image', negatives: 'neg_images', filtered: 'filtered_images' })
    expect(data.imageRoot).toBe(path.join(dir, 'images'))
    const r0 = data.samples[0]!
    expect(r0.positiveImage).toBe('no-such-image.jpg')
    expect(data.thumbnails['no-such-image.jpg']).toEqual({ missing: `missing: no file ${path.join(dir, 'images', 'no-such-image.jpg')}` })
    expect(data.thumbnails['not-an-image.jpg']).toMatchObject({ missing: expect.stringMatching(/^undecodable: .*not-an-image\.jpg \(.+\)$/) })
    const made = Object.values(data.thumbnails).filter((t) => 'dataUri' in t)
    expect(made.length).toBeGreaterThan(10)
    for (const t of made) {
      expect(t).toMatchObject({ dataUri: expect.stringMatching(/^data:image\/jpeg;base64,/) })
      if ('width' in t) expect(Math.max(t.width, t.height)).toBeLessThanOrEqual(128)
    }
    // Rules the report does not know are shown as they are.
    expect(data.samples[3]!.filtered!.map((f) => f.rule)).toEqual(['margin', 'pos_sim', 'image_duplicate'])
    const html = renderReport(data)
    expect(html.match(/data:image\/jpeg;base64,/g)?.length).toBe(made.length)
    expect(html).toContain('<i class="th big missing" title="missing: no file ')
    expect(html).toContain('<span class="rule" title="a rule named by the run">image_duplicate</span>')
  })

  it('stays under 5 MB with 100 samples of distinct images', async () => {
    const dir = await tempDir()
    // k = 8 and up to 4 filtered candidates with images: 1 + 1 + 8 + 4 images per row at most.
    const run = await imageRun(dir, { rows: 100, distinctImages: true, k: 8, maxFiltered: 4 })
    const { bytes, data } = await writeReport({ shards: run, samples: 100 })
    const images = Object.keys(data.thumbnails).length
    expect(images).toBeGreaterThanOrEqual(1200)
    expect(bytes).toBeLessThan(5_000_000)
    console.info(`report of 100 image samples: ${images} distinct images, ${(bytes / 1e6).toFixed(2)} MB`)
    // Past the image budget, the later images are left out with a placeholder.
    const budget = await writeReport({ shards: run, samples: 10, out: path.join(dir, 'small.html'), imageBudgetBytes: 50_000 })
    const left = Object.values(budget.data.thumbnails).filter((t) => 'missing' in t && t.missing.startsWith('not embedded'))
    expect(left.length).toBeGreaterThan(60)
    expect(left[0]).toEqual({ missing: "not embedded: the page's image budget (0.05 MB) is spent" })
    expect(budget.bytes).toBeLessThan(150_000)
  })

  it('shows the images of a run mined with --preset mmeb from its image columns', async () => {
    const dir = await tempDir()
    const coco = path.resolve(import.meta.dirname, '..', 'fixtures', 'coco-mini')
    const io = captureIO()
    const out = path.join(dir, 'coco')
    const args = ['--pairs', path.join(coco, 'mmeb-style.parquet'), '--preset', 'mmeb', '--query-embeddings', path.join(coco, 'mmeb-style.qry.npy')]
    args.push('--positive-embeddings', path.join(coco, 'mmeb-style.pos.npy'), '--out', out, '--k', '4', '--keep-filtered', '2', '--report', '--quiet')
    expect(await runMineNegatives(args, io)).toBe(0)
    expect(io.out.join('')).toMatch(/hardneg: report of 160 rows \(2 groups, 50 sampled\) -> .*coco\/report\.html \([\d.]+ MB\)\n$/)
    const data = await buildReportData({ shards: out, samples: 40 })
    expect(data.layout.images).toEqual({ query: 'query_image', positive: 'pos_image', negatives: 'neg_images', filtered: 'filtered_images' })
    expect(data.imageRoot).toBe(coco)
    // Every coco-mini row shows a picture on one side.
    expect(data.samples.every((s) => Boolean(s.queryImage) !== Boolean(s.positiveImage))).toBe(true)
    expect(Object.values(data.thumbnails).every((t) => 'dataUri' in t)).toBe(true)
    // Text-to-image rows are served picture negatives: both subsets mined in full.
    expect(data.groups.map((g) => [g.name, g.rows, g.counts?.dropped])).toEqual([['MSCOCO_t2i', 80, 0], ['MSCOCO_i2t', 80, 0]])
    expect(data.samples.some((s) => s.negatives.some((n) => n.image !== undefined && n.image !== ''))).toBe(true)
  })
})

describe('errors', () => {
  async function errorOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
    return promise.then(() => ({ code: 'none', message: 'resolved' }), (e: { code: string; message: string }) => ({ code: e.code, message: e.message }))
  }

  it.each<[string, (run: string) => Promise<void>, string, (run: string) => string]>([
    ['no manifest', (run) => rm(path.join(run, 'manifest.json')), 'E_BAD_FILE', (run) => `${run}: no manifest.json, expected a complete hardneg run`],
    ['a listed shard missing', (run) => rm(path.join(run, 'part-00001.parquet')), 'E_BAD_FILE',
      (run) => `${path.join(run, 'part-00001.parquet')}: no such shard, expected the file manifest.json lists`],
    ['a shard that is not Parquet', (run) => writeFile(path.join(run, 'part-00002.parquet'), 'not parquet'), 'E_BAD_FILE',
      (run) => `${path.join(run, 'part-00002.parquet')}: not a readable Parquet file (parquet file invalid (footer != PAR1))`],
    ['a manifest without a threshold', async (run) => {
      const m = JSON.parse(await readFile(path.join(run, 'manifest.json'), 'utf8'))
      delete m.options.threshold
      await writeFile(path.join(run, 'manifest.json'), JSON.stringify(m))
    }, 'E_BAD_FILE', (run) => `${path.join(run, 'manifest.json')}: options.threshold is missing, expected a number (the run's margin)`],
  ])('%s', async (_, damage, code, message) => {
    const dir = await tempDir()
    const run = await generatedRun(dir, 90)
    await damage(run)
    expect(await errorOf(buildReportData({ shards: run }))).toEqual({ code, message: message(run) })
  })

  it('a shard without the mined columns', async () => {
    const dir = await tempDir()
    const run = await generatedRun(dir, 30)
    const { parquetWriteBuffer } = await import('hyparquet-writer')
    await writeFile(path.join(run, 'part-00000.parquet'), Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'id', data: ['a'], type: 'STRING' }] })))
    expect(await errorOf(buildReportData({ shards: run }))).toEqual({
      code: 'E_MISSING_COLUMN',
      message: `${path.join(run, 'part-00000.parquet')}: no column "query", "positive", "group", "pos_score", "negatives", "neg_ids", "neg_scores", "n_valid", "n_false_negatives", ` +
        'expected the hardneg shard columns (id, query, positive, group, pos_score, negatives, neg_ids, neg_scores, n_valid, n_false_negatives)',
    })
  })

  it.each([
    [{ samples: -1 }, 'samples: -1, expected an integer from 0 to 100000'],
    [{ bins: 1 }, 'bins: 1, expected an integer from 2 to 10000'],
    [{ seed: 1.5 }, 'seed: 1.5, expected an integer from 0 to 9007199254740991'],
  ])('bad option %o', async (patch, message) => {
    expect(await errorOf(buildReportData({ shards: 'anywhere', ...patch }))).toEqual({ code: 'E_BAD_OPTION', message })
  })
})

describe('hardneg report CLI', () => {
  it('writes <shards>/report.html and prints one line', async () => {
    const dir = await tempDir()
    const run = await generatedRun(dir, 90, { keepFiltered: 1 })
    const io = captureIO()
    expect(await runHardneg(['report', '--shards', run, '--samples', '7', '--seed', '3'], io)).toBe(0)
    const rows = (await rowsOf(run)).length
    expect(io.out.join('')).toMatch(new RegExp(`^hardneg: report of ${rows} rows \\(2 groups, 7 sampled\\) -> ${run}/report\\.html \\(0\\.\\d\\d MB\\)\\n$`))
    expect(io.err.join('')).toContain(`scan [####################] 100% ${rows}/${rows} rows`)
    const html = await readFile(path.join(run, 'report.html'), 'utf8')
    expect(html.match(/<article class="sample"/g)?.length).toBe(7)
  })

  it('writes to --out, quietly', async () => {
    const dir = await tempDir()
    const run = await generatedRun(dir, 30)
    const io = captureIO()
    expect(await runHardneg(['report', '--shards', run, '--out', path.join(dir, 'r.html'), '--quiet', '--bins', '50'], io)).toBe(0)
    expect(io.err).toEqual([])
    expect(await readFile(path.join(dir, 'r.html'), 'utf8')).toContain('50 bins over [−1, 1]')
  })

  it('exits 2 with one line when the directory holds no run', async () => {
    const dir = await tempDir()
    const io = captureIO()
    expect(await runHardneg(['report', '--shards', dir, '--quiet'], io)).toBe(2)
    expect(io.err.join('')).toBe(`hardneg: error E_BAD_FILE: ${dir}: no manifest.json, expected a complete hardneg run\n`)
  })

  it('exits 2 without --shards', async () => {
    const io = captureIO()
    expect(await runHardneg(['report'], io)).toBe(2)
    expect(io.err.join('')).toContain("error: required option '--shards <dir>' not specified")
  })

  it('mine --report writes the report after the run; a later run removes a stale one', async () => {
    const dir = await tempDir()
    const run = await generatedRun(dir, 30)
    const mine = ['--pairs', path.join(dir, 'pairs.csv'), '--query-embeddings', path.join(dir, 'q.npy'), '--positive-embeddings', path.join(dir, 'p.npy'), '--quiet']
    const io = captureIO()
    expect(await runMineNegatives([...mine, '--out', run, '--overwrite', '--report', path.join(dir, 'elsewhere.html'), '--json'], io)).toBe(0)
    expect(JSON.parse(io.out.join(''))).toMatchObject({ rowsIn: 30 })
    expect(io.err.join('')).toMatch(/elsewhere\.html/)
    await writeReport({ shards: run })
    expect(await runMineNegatives([...mine, '--out', run, '--overwrite'], captureIO())).toBe(0)
    await expect(readFile(path.join(run, 'report.html'))).rejects.toThrow(/ENOENT/)
  })

  it('mine --help lists --keep-filtered and --report', async () => {
    const io = captureIO()
    expect(await runHardneg(['mine', '--help'], io)).toBe(0)
    const help = io.out.join('')
    expect(help).toContain('--keep-filtered <n>')
    expect(help).toMatch(/--report \[file\]\s+after mining, write an HTML report of the\s+run/)
    expect(help).toMatch(/filtered_texts, filtered_ids,\s+filtered_scores, filtered_rules/)
  })

  it('prints help', async () => {
    const io = captureIO()
    expect(await runHardneg(['report', '--help'], io)).toBe(0)
    expect(io.out.join('')).toMatchInlineSnapshot(`
      "Usage: hardneg report [options]

      Write a self-contained HTML report of a mining run: the run header, score
      histograms overall and per group, a per-group table, and a seeded sample of rows
      with their negatives and filtered candidates. Opens offline.

      Options:
        --shards <dir>      a mined shard directory (manifest.json and part-*.parquet)
        --out <file>        the HTML file to write (default: <shards>/report.html)
        --samples <n>       rows shown in the gallery, a seeded uniform sample
                            (default: 50)
        --seed <s>          seed of the sample (default: 0)
        --bins <n>          histogram bins over the score range [-1, 1] (default: 200)
        --image-root <dir>  directory the shards' image paths resolve against
                            (default: the run's image root, else the pairs file's
                            directory)
        --no-thumbnails     show image paths instead of embedded thumbnails
        --quiet             no progress output (default: false)
        -h, --help          display help for command

      Examples:
        $ hardneg report --shards shards/
            writes shards/report.html
        $ hardneg report --shards shards/ --out review.html --samples 100 --seed 7

      Mine with --keep-filtered N to see the filtered candidates (and their rules) in the
      gallery and the filtered-score histogram. Image columns of a multimodal run are shown
      as thumbnails. See docs/report.md. Exit codes: 0 written, 2 bad input or options.
      "
    `)
  })
})
