/**
 * Shard directories for the report tests: a small generated run mined for real, and a
 * hand-made multimodal shard set with the image columns of an image run (query_image,
 * pos_image, neg_images, filtered_images; paths relative to the manifest's image_root)
 * built from the coco-mini images.
 */
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { mineNegatives, type MineOptions, type MinedRow } from '../src/index.js'
import { writeManifest, type Manifest } from '../src/output/manifest.js'
import { FILTERED_COLUMNS, writeShards, type ShardColumn } from '../src/output/shards.js'
import { emptyGroupCounts } from '../src/mine/stats.js'
import { randomUnit, writeCsv, writeNpy } from './_helpers.js'

export const COCO_IMAGES = path.resolve(import.meta.dirname, '..', 'fixtures', 'coco-mini', 'images')

/** Pairs in two groups ('a' for every third row, else 'b') with clustered vectors, so rules remove candidates. */
export async function generatedRun(dir: string, n: number, options: Partial<MineOptions> = {}): Promise<string> {
  const dim = 16
  const q = randomUnit(n, dim, 1, 10)
  // Positives near their queries (q + noise, normalised), as an encoder's would be.
  const noise = randomUnit(n, dim, 2)
  const p = { rows: n, dim, data: new Float32Array(n * dim) }
  for (let i = 0; i < n; i++) {
    let norm = 0
    for (let j = 0; j < dim; j++) norm += (p.data[i * dim + j] = (q.data[i * dim + j] as number) + 0.9 * (noise.data[i * dim + j] as number)) ** 2
    for (let j = 0; j < dim; j++) p.data[i * dim + j] = (p.data[i * dim + j] as number) / Math.sqrt(norm)
  }
  const rows = Array.from({ length: n }, (_, i) => [`id-${i}`, `query ${i}`, `positive ${i}`, i % 3 === 0 ? 'a' : 'b'])
  await writeCsv(path.join(dir, 'pairs.csv'), ['id', 'query', 'positive', 'grp'], rows)
  await writeNpy(path.join(dir, 'q.npy'), q)
  await writeNpy(path.join(dir, 'p.npy'), p)
  const out = path.join(dir, 'run')
  await mineNegatives({
    pairs: path.join(dir, 'pairs.csv'), idCol: 'id', groupCol: 'grp',
    queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy'),
    out, search: 'exact', k: 4, threshold: 0.05, shardRows: Math.ceil(n / 3), ...options,
  })
  return out
}

/** Options of {@link imageRun}. */
export interface ImageRunOptions {
  rows: number // rows written
  distinctImages?: boolean // every image reference its own file (copies of the fixture images), as in a large run (default false: the 80 fixture files)
  k?: number // negatives per row (default 4)
  maxFiltered?: number // filtered candidates of row i: i % (maxFiltered + 1) (default 3)
  queryText?: (i: number) => string // query text of row i (default `photo i`)
}

const IMAGE_COLUMNS: ShardColumn[] = [
  { name: 'query_image', type: 'string', get: r => r.carried.query_image },
  { name: 'pos_image', type: 'string', get: r => r.carried.pos_image },
  { name: 'neg_images', type: 'list<string>', get: r => (r.carried.neg_images as string).split('|') },
  { name: 'filtered_images', type: 'list<string>', get: r => (r.carried.filtered_images as string).split('|').filter(Boolean) },
]

/**
 * A hand-made shard directory as an image run writes it: k negatives, up to maxFiltered
 * filtered candidates with rules (one an image rule the report does not know), images under
 * `<dir>/images`. Row 0's positive image is missing and row 1's is not an image.
 */
export async function imageRun(dir: string, options: ImageRunOptions): Promise<string> {
  const fixtures = (await readdir(COCO_IMAGES)).filter(f => f.endsWith('.jpg')).sort()
  const root = path.join(dir, 'images')
  await mkdir(root, { recursive: true })
  const image = async (name: string, n: number): Promise<string> => {
    const fixture = fixtures[n % fixtures.length] as string
    if (!options.distinctImages) {
      await copyFile(path.join(COCO_IMAGES, fixture), path.join(root, fixture))
      return fixture
    }
    await copyFile(path.join(COCO_IMAGES, fixture), path.join(root, `${name}.jpg`))
    return `${name}.jpg`
  }
  await writeFile(path.join(root, 'not-an-image.jpg'), 'plain text, not a JPEG\n')
  const rules = ['margin', 'pos_sim', 'image_duplicate', 'margin']
  const k = options.k ?? 4
  const maxFiltered = options.maxFiltered ?? 3
  const rows: MinedRow[] = []
  for (let i = 0; i < options.rows; i++) {
    const posScore = 0.5 + (i % 40) / 100
    const negScores = Array.from({ length: k }, (_, j) => Math.fround(posScore - 0.02 - j * 0.03))
    const nFiltered = i % (maxFiltered + 1)
    const filteredScores = Array.from({ length: nFiltered }, (_, j) => Math.fround(posScore + 0.15 - j * 0.02))
    rows.push({
      id: `r${i}`,
      query: options.queryText?.(i) ?? `photo ${i}`,
      positive: `a caption of photo ${i}`,
      group: i % 2 === 0 ? 'MSCOCO_i2t' : 'MSCOCO_t2i',
      posScore,
      negatives: negScores.map((_, j) => `negative ${i}.${j}`),
      negIds: negScores.map((_, j) => `n${i}.${j}`),
      negScores,
      nValid: k,
      nFalseNegatives: nFiltered + (i % 3),
      filtered: filteredScores.map((score, j) => ({ text: `filtered ${i}.${j}`, id: `f${i}.${j}`, score, rule: rules[j % rules.length] as string })),
      carried: {
        query_image: await image(`q${i}`, i),
        pos_image: i === 0 ? 'no-such-image.jpg' : i === 1 ? 'not-an-image.jpg' : await image(`p${i}`, i + 1),
        neg_images: (await Promise.all(negScores.map((_, j) => image(`n${i}-${j}`, i + 2 + j)))).join('|'),
        filtered_images: (await Promise.all(filteredScores.map((_, j) => image(`f${i}-${j}`, i + 2 + k + j)))).join('|'),
      },
    })
  }
  const out = path.join(dir, 'run')
  const shards = await writeShards((async function* () { yield* rows })(), {
    dir: out, carriedColumns: [], extraColumns: [...IMAGE_COLUMNS, ...FILTERED_COLUMNS], shardRows: 60, rowGroupRows: 25,
  })
  const counts = emptyGroupCounts()
  const groups: Manifest['groups'] = {}
  for (const r of rows) {
    const g = (groups[r.group] ??= emptyGroupCounts())
    for (const c of [counts, g]) {
      c.rowsIn++
      c.rowsOut++
      c.falseNegatives += r.nFalseNegatives
      if (r.nFalseNegatives > 0) c.queriesWithFalseNegatives++
    }
  }
  const empty = { count: 0, mean: null, p1: null, p5: null, p25: null, p50: null, p75: null, p95: null, p99: null }
  const manifest: Manifest = {
    tool: { name: 'hardneg', version: 'test' },
    createdAt: '2025-01-01T00:00:00.000Z',
    inputs: [],
    options: { k, threshold: 0.1, keepFiltered: maxFiltered, image_root: root },
    search: { method: 'exact', falseNegativeCounts: 'whole-pool' },
    rows: { in: rows.length, out: rows.length },
    shards,
    counts: { ...counts, falseNegativeQueryShare: counts.queriesWithFalseNegatives / counts.rowsIn },
    groups,
    scores: { positive: empty, negative: empty },
    timings: { total: 1 },
  }
  await writeManifest(out, manifest)
  return out
}
