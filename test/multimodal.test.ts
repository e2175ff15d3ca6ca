/**
 * Mining pairs with images: the coco-mini fixture end to end, planted near-duplicate
 * images, candidate identity by image content, the output formats, several input
 * files, and bad images.
 */
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { parquetReadObjects } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { parquetWriteBuffer } from 'hyparquet-writer'
import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { runHardneg, type CliIO } from '../src/cli/main.js'
import {
  buildPool, collectPairs, hashImages, mineNegatives, readShards, subsetName, validateShards, writeRowsAs,
  type MineOptions, type MineResult, type UnimeV2Record,
} from '../src/index.js'
import { randomUnit, rng, tempDir, writeNpy } from './_helpers.js'
import { TRANSFORMATIONS } from './_image-copies.js'

const COCO = path.join(import.meta.dirname, '..', 'fixtures', 'coco-mini')
const COCO_PAIRS = path.join(COCO, 'mmeb-style.parquet')
const COCO_INPUTS = {
  pairs: COCO_PAIRS,
  preset: 'mmeb',
  queryEmbeddings: path.join(COCO, 'mmeb-style.qry.npy'),
  positiveEmbeddings: path.join(COCO, 'mmeb-style.pos.npy'),
} as const satisfies Partial<MineOptions>
const INSTRUCTION = '<|image_1|>\nRepresent the given image.'

type CocoRow = { subset: string; qry: string; qry_image_path: string; pos_text: string; pos_image_path: string }

async function cocoRows(): Promise<CocoRow[]> {
  const b = await readFile(COCO_PAIRS)
  return (await parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength), compressors })) as CocoRow[]
}

async function duckRows(sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:')
  const connection = await instance.connect()
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[]
  } finally {
    connection.closeSync()
    instance.closeSync()
  }
}

describe('mining the coco-mini MMEB-style fixture', () => {
  it('mines both subsets end to end; shards carry the image columns and read back in DuckDB', async () => {
    const out = path.join(await tempDir(), 'out')
    const { manifest, summary } = await mineNegatives({ ...COCO_INPUTS, out, k: 8 })
    expect(Object.keys(summary.groups)).toEqual(['MSCOCO_t2i', 'MSCOCO_i2t'])
    expect(summary.rowsOut).toBe(160)
    // 80 distinct images are 80 candidates: no two fixture images are near-duplicates.
    expect(summary.falseNegativesByRule.imageDuplicate).toBe(0)
    expect(summary.falseNegatives).toBe(summary.falseNegativesByRule.margin)
    expect(manifest.images).toMatchObject({ distinct: 80, decoded: 80, badRows: 0 })

    const rows = await duckRows(`SELECT * FROM read_parquet('${out}/part-*.parquet') ORDER BY CAST(id AS INTEGER)`)
    expect(Object.keys(rows[0]!)).toEqual([
      'id', 'query', 'positive', 'group', 'pos_score', 'negatives', 'neg_ids', 'neg_scores', 'n_valid', 'n_false_negatives',
      'query_image', 'pos_image', 'neg_images',
    ])
    const source = await cocoRows()
    rows.forEach((row, i) => {
      const src = source[i]!
      expect(row.query_image).toBe(src.qry_image_path)
      expect(row.pos_image).toBe(src.pos_image_path)
      const negImages = row.neg_images as string[]
      expect(negImages).toHaveLength(8)
      if (src.subset === 'MSCOCO_t2i') {
        // Image candidates: the other rows' pictures, never this row's own.
        expect(negImages.every((p) => p.startsWith('images/') && p !== src.pos_image_path)).toBe(true)
        expect(row.negatives).toEqual(Array(8).fill(''))
      } else {
        expect(negImages).toEqual(Array(8).fill(''))
        expect(row.negatives as string[]).not.toContain(src.pos_text)
      }
    })
  })

  it('identifies candidates by (text, image content): one instruction over 80 pictures is 80 candidates; one picture under two paths is one', async () => {
    const dir = await tempDir()
    await mkdir(path.join(dir, 'images'))
    const t2i = (await collectPairs({ file: COCO_PAIRS, preset: 'mmeb' })).filter((p) => p.group === 'MSCOCO_t2i')
    for (const p of t2i) await copyFile(path.join(COCO, p.positiveImage), path.join(dir, p.positiveImage))
    await copyFile(path.join(dir, t2i[0]!.positiveImage), path.join(dir, 'images', 'same-bytes.jpg'))
    const pairs = [
      ...t2i.map((p) => ({ ...p, positive: INSTRUCTION })),
      { ...t2i[0]!, row: 80, id: '80', positive: ` ${INSTRUCTION.replace('\n', '  \n')} `, positiveImage: 'images/same-bytes.jpg' },
    ]
    const { images } = await hashImages(pairs.map((p) => ({ path: p.positiveImage })), { root: dir })
    const sha = new Map(pairs.map((p, i) => [p.positiveImage, images[i]!.sha256]))
    const pool = buildPool('t2i', pairs, [], { imageKey: (p) => sha.get(p)! })
    expect(pool.entries).toHaveLength(80)
    expect(pool.indexOf.get(pool.identify(pairs[80]!.positive, 'images/same-bytes.jpg'))).toBe(0)
    // Without images, the same texts are one candidate.
    expect(buildPool('t2i', pairs.map((p) => ({ ...p, positive: INSTRUCTION }))).entries).toHaveLength(1)
  })
})

/**
 * Nine pairs over six fixture pictures A..F, dim 16. Rows 0-5: caption -> picture
 * (one shared instruction text). Row 6's positive is a JPEG q50 copy of A and row 7's a
 * 10 % crop of B, with vectors next to A's and B's, so each copy and its original would
 * be the other's best negative. Row 8 asks for a caption of a brightened copy of C, and
 * row 2's positive (C itself) is its best candidate by score.
 */
async function plantedDataset(): Promise<{ dir: string; options: MineOptions; pictures: string[] }> {
  const dir = await tempDir()
  await mkdir(path.join(dir, 'images'))
  const t2i = (await cocoRows()).filter((r) => r.subset === 'MSCOCO_t2i').slice(0, 6)
  const pictures = t2i.map((r) => r.pos_image_path)
  for (const p of pictures) await copyFile(path.join(COCO, p), path.join(dir, p))
  const copy = async (from: string, to: string, name: string): Promise<void> => {
    const input = await readFile(path.join(COCO, from))
    const { width, height } = await sharp(input).metadata()
    const t = TRANSFORMATIONS.find((x) => x.name === name)!
    await writeFile(path.join(dir, to), await t.apply(input, width!, height!))
  }
  await copy(pictures[0]!, 'images/A-q50.jpg', 'JPEG q50')
  await copy(pictures[1]!, 'images/B-crop10.jpg', 'crop 10 % off each border')
  await copy(pictures[2]!, 'images/C-bright.jpg', 'brightness +15 %')
  const rows = [
    ...t2i.map((r, i) => ({ query: `caption ${i}: ${r.qry}`, query_image: '', positive: INSTRUCTION, positive_image: r.pos_image_path })),
    { query: 'a second caption for picture A', query_image: '', positive: INSTRUCTION, positive_image: 'images/A-q50.jpg' },
    { query: 'a second caption for picture B', query_image: '', positive: INSTRUCTION, positive_image: 'images/B-crop10.jpg' },
    { query: '<|image_1|>\nFind a caption for the given image.', query_image: 'images/C-bright.jpg', positive: 'a caption written for picture C', positive_image: '' },
  ]
  const pairsFile = path.join(dir, 'pairs.jsonl')
  await writeFile(pairsFile, rows.map((r) => JSON.stringify(r)).join('\n') + '\n')

  const dim = 16
  const base = randomUnit(9, dim, 7)
  const noise = rng(11)
  const near = (v: Float32Array, amount: number): Float32Array => {
    const out = v.map((x) => x + amount * (noise() - 0.5))
    const n = Math.hypot(...out)
    return out.map((x) => x / n)
  }
  const row = (m: { data: Float32Array }, i: number): Float32Array => m.data.slice(i * dim, (i + 1) * dim)
  const pos: Float32Array[] = []
  for (let i = 0; i < 6; i++) pos.push(row(base, i))
  pos.push(near(pos[0]!, 0.15), near(pos[1]!, 0.15))
  const q8 = near(pos[2]!, 0.3)
  pos.push(near(q8, 0.1))
  const qry = [...pos.slice(0, 8).map((p) => near(p, 0.5)), q8]
  const matrix = (vs: Float32Array[]) => ({ rows: vs.length, dim, data: Float32Array.from(vs.flatMap((v) => Array.from(v))) })
  await writeNpy(path.join(dir, 'q.npy'), matrix(qry))
  await writeNpy(path.join(dir, 'p.npy'), matrix(pos))
  const options: MineOptions = {
    pairs: pairsFile,
    queryImageCol: 'query_image',
    positiveImageCol: 'positive_image',
    queryEmbeddings: path.join(dir, 'q.npy'),
    positiveEmbeddings: path.join(dir, 'p.npy'),
    out: path.join(dir, 'out'),
    k: 2,
    search: 'exact',
  }
  return { dir, options, pictures }
}

async function minedRows(out: string) {
  const rows = []
  for await (const r of readShards(out)) rows.push(r)
  return rows
}

describe('near-duplicate images are false negatives', () => {
  it('never serves a copy of the query\'s or the positive\'s picture, in either direction, and counts them', async () => {
    const { options, pictures } = await plantedDataset()
    const off = await mineNegatives({ ...options, imageDupDistance: 0, out: `${options.out}-off` })
    const on = await mineNegatives(options)
    const offRows = await minedRows(off.out)
    const onRows = await minedRows(on.out)
    const served = (rows: typeof onRows, i: number): string[] => rows[i]!.extra.neg_images as string[]
    // What the embedding alone would serve: each copy/original next to its twin.
    expect(served(offRows, 0)).toContain('images/A-q50.jpg')
    expect(served(offRows, 6)).toContain(pictures[0])
    expect(served(offRows, 1)).toContain('images/B-crop10.jpg')
    expect(served(offRows, 7)).toContain(pictures[1])
    expect(served(offRows, 8)).toContain(pictures[2])
    // With the rule on, none of them.
    expect(served(onRows, 0)).not.toContain('images/A-q50.jpg')
    expect(served(onRows, 6)).not.toContain(pictures[0])
    expect(served(onRows, 1)).not.toContain('images/B-crop10.jpg')
    expect(served(onRows, 7)).not.toContain(pictures[1])
    expect(served(onRows, 8)).not.toContain(pictures[2])
    expect(on.summary.falseNegativesByRule).toMatchObject({ imageDuplicate: 5, textDuplicate: 0 })
    for (const i of [0, 1, 6, 7, 8]) expect(onRows[i]!.nFalseNegatives).toBe(offRows[i]!.nFalseNegatives + 1)
    expect(on.manifest.options).toMatchObject({ imageDupDistance: 58, onBadImage: 'error' })
    expect(on.manifest.groups['']?.falseNegativesByRule.imageDuplicate).toBe(5)
    // Still k negatives per row: the search fetched past the duplicates.
    for (const r of onRows) expect(r.nValid).toBe(2)
  })

  it('--keep-filtered lists the duplicates met, with rule, score and image (filtered_images)', async () => {
    const { options, pictures } = await plantedDataset()
    await mineNegatives({ ...options, keepFiltered: 4 })
    const rows = await duckRows(`SELECT id, filtered_texts, filtered_rules, filtered_images, filtered_scores FROM read_parquet('${options.out}/part-*.parquet') ORDER BY CAST(id AS INTEGER)`)
    const row0 = rows[0]!
    expect(row0.filtered_rules).toContain('image_duplicate')
    const at = (row0.filtered_rules as string[]).indexOf('image_duplicate')
    expect((row0.filtered_images as string[])[at]).toBe('images/A-q50.jpg')
    expect((rows[8]!.filtered_images as string[])[(rows[8]!.filtered_rules as string[]).indexOf('image_duplicate')]).toBe(pictures[2])
    const scores = row0.filtered_scores as number[]
    expect([...scores].sort((a, b) => b - a)).toEqual(scores)
    // readShards reads the image of each filtered candidate back into `filtered`.
    const [first] = await minedRows(options.out)
    expect(first!.filtered?.find((f) => f.rule === 'image_duplicate')).toMatchObject({ image: 'images/A-q50.jpg' })
    expect(first!.extra).not.toHaveProperty('filtered_images')
  })

  it('hnsw search applies the same duplicate rules (small pools: it fetches the whole pool)', async () => {
    const { options } = await plantedDataset()
    const exact = await mineNegatives(options)
    const hnsw = await mineNegatives({ ...options, search: 'hnsw', out: `${options.out}-hnsw` })
    expect(hnsw.summary.falseNegativesByRule).toEqual(exact.summary.falseNegativesByRule)
    const a = await minedRows(exact.out)
    const b = await minedRows(hnsw.out)
    expect(b.map((r) => r.extra.neg_images)).toEqual(a.map((r) => r.extra.neg_images))
  })

  it('counts a candidate repeating the positive\'s text with a picture attached as a text duplicate', async () => {
    const { options } = await plantedDataset()
    const lines = (await readFile(options.pairs as string, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>)
    // Row 5's positive becomes row 8's caption text, with its picture still attached.
    lines[5]!.positive = 'A caption   written for picture C'.replace('A', 'a')
    await writeFile(options.pairs as string, lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
    // k 8: every candidate is walked, so every duplicate is met.
    const { summary } = await mineNegatives({ ...options, k: 8, pad: 'none' })
    const rows = await minedRows(options.out)
    expect(rows[8]!.negatives).not.toContain(lines[5]!.positive)
    expect(rows[5]!.negatives).not.toContain('a caption written for picture C')
    // Both directions: row 8 meets row 5's positive, row 5 meets row 8's.
    expect(summary.falseNegativesByRule.textDuplicate).toBe(2)
  })
})

describe('output formats', () => {
  it('--format unime-v2 writes UniME-V2 JSON Lines with the same negatives as the Parquet shards', async () => {
    const dir = await tempDir()
    const parquet = await mineNegatives({ ...COCO_INPUTS, out: path.join(dir, 'pq') })
    const jsonl = await mineNegatives({ ...COCO_INPUTS, out: path.join(dir, 'uv2'), outputFormat: 'unime-v2' })
    expect(jsonl.manifest.shards.map((s) => s.file)).toEqual(['part-00000.jsonl'])
    const lines = (await readFile(path.join(dir, 'uv2', 'part-00000.jsonl'), 'utf8')).trimEnd().split('\n')
    expect(lines).toHaveLength(160)
    const rows = await minedRows(parquet.out)
    lines.forEach((line, i) => {
      const rec = JSON.parse(line) as UnimeV2Record
      expect(Object.keys(rec)).toEqual(['query_text', 'query_image', 'pos_text', 'pos_image', 'query_pos_scores', 'hard_negatives', 'hard_negatives_scores'])
      const r = rows[i]!
      expect(rec.query_text).toBe(r.query)
      expect(rec.query_image).toBe(r.extra.query_image)
      expect(rec.pos_image).toBe(r.extra.pos_image)
      expect(rec.query_pos_scores).toBeCloseTo(r.posScore, 6)
      expect(rec.hard_negatives).toEqual(r.negatives.map((t, j) => [t, (r.extra.neg_images as string[])[j]]))
      expect(rec.hard_negatives_scores.map((s) => Math.fround(s))).toEqual(r.negScores)
    })
  })

  it('--format mmeb writes MMEB-train columns with neg_text/neg_image_path as LIST columns (DuckDB)', async () => {
    const dir = await tempDir()
    const parquet = await mineNegatives({ ...COCO_INPUTS, out: path.join(dir, 'pq') })
    await mineNegatives({ ...COCO_INPUTS, out: path.join(dir, 'mmeb'), outputFormat: 'mmeb' })
    const schema = await duckRows(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${dir}/mmeb/part-*.parquet'))`)
    expect(schema).toEqual([
      { column_name: 'qry', column_type: 'VARCHAR' },
      { column_name: 'qry_image_path', column_type: 'VARCHAR' },
      { column_name: 'pos_text', column_type: 'VARCHAR' },
      { column_name: 'pos_image_path', column_type: 'VARCHAR' },
      { column_name: 'neg_text', column_type: 'VARCHAR[]' },
      { column_name: 'neg_image_path', column_type: 'VARCHAR[]' },
      { column_name: 'subset', column_type: 'VARCHAR' },
    ])
    const mmeb = await duckRows(`SELECT * FROM read_parquet('${dir}/mmeb/part-*.parquet')`)
    const source = await cocoRows()
    const rows = await minedRows(parquet.out)
    mmeb.forEach((m, i) => {
      expect(m).toEqual({
        qry: source[i]!.qry,
        qry_image_path: source[i]!.qry_image_path,
        pos_text: source[i]!.pos_text,
        pos_image_path: source[i]!.pos_image_path,
        neg_text: rows[i]!.negatives,
        neg_image_path: rows[i]!.extra.neg_images,
        subset: source[i]!.subset,
      })
    })
  })
})

describe('several pairs files, one per subset', () => {
  async function splitBySubset(dir: string, perFileEmbeddings: boolean): Promise<MineOptions> {
    const source = await cocoRows()
    const q = await readFile(COCO_INPUTS.queryEmbeddings)
    const p = await readFile(COCO_INPUTS.positiveEmbeddings)
    const files: string[] = []
    const qFiles: string[] = []
    const pFiles: string[] = []
    for (const subset of ['MSCOCO_t2i', 'MSCOCO_i2t']) {
      const rows = source.filter((r) => r.subset === subset)
      const folder = path.join(dir, subset)
      await mkdir(folder, { recursive: true })
      // As MMEB-train ships: one folder per subset, a Hugging Face shard name, no subset column.
      const file = path.join(folder, 'train-00000-of-00001.parquet')
      const columns = ['qry', 'qry_image_path', 'pos_text', 'pos_image_path'] as const
      await writeFile(file, Buffer.from(parquetWriteBuffer({ columnData: columns.map((name) => ({ name, data: rows.map((r) => r[name]), type: 'STRING' as const })) })))
      files.push(file)
      if (perFileEmbeddings) {
        const first = source.indexOf(rows[0]!)
        for (const [buf, list, side] of [[q, qFiles, 'q'], [p, pFiles, 'p']] as const) {
          const all = loadNpyRows(buf)
          const f = path.join(folder, `${side}.npy`)
          await writeNpy(f, { rows: rows.length, dim: all.dim, data: all.data.slice(first * all.dim, (first + rows.length) * all.dim) })
          list.push(f)
        }
      }
    }
    return {
      pairs: files,
      preset: 'mmeb',
      imageRoot: COCO,
      queryEmbeddings: perFileEmbeddings ? qFiles : COCO_INPUTS.queryEmbeddings,
      positiveEmbeddings: perFileEmbeddings ? pFiles : COCO_INPUTS.positiveEmbeddings,
      out: path.join(dir, perFileEmbeddings ? 'out-per-file' : 'out-one'),
    }
  }

  it('gives the same shards as one file with a subset column, with one embedding file per pairs file or one for all', async () => {
    const dir = await tempDir()
    const single = await mineNegatives({ ...COCO_INPUTS, out: path.join(dir, 'single') })
    const perFile = await mineNegatives(await splitBySubset(dir, true))
    const oneForAll = await mineNegatives(await splitBySubset(dir, false))
    expect(Object.keys(perFile.summary.groups)).toEqual(['MSCOCO_t2i', 'MSCOCO_i2t'])
    expect(perFile.manifest.shards[0]!.sha256).toBe(single.manifest.shards[0]!.sha256)
    expect(oneForAll.manifest.shards[0]!.sha256).toBe(single.manifest.shards[0]!.sha256)
    expect(perFile.manifest.inputs.filter((i) => i.role === 'pairs')).toHaveLength(2)
  })

  it('the CLI takes several pairs and embedding files and prints false negatives per subset and rule', async () => {
    const dir = await tempDir()
    const o = await splitBySubset(dir, true)
    let stdout = ''
    let stderr = ''
    const io: CliIO = { stdout: (t) => { stdout += t }, stderr: (t) => { stderr += t }, stderrIsTTY: false }
    const code = await runHardneg([
      'mine', '--preset', 'mmeb', '--pairs', ...(o.pairs as string[]), '--image-root', COCO,
      '--query-embeddings', ...(o.queryEmbeddings as string[]), '--positive-embeddings', ...(o.positiveEmbeddings as string[]),
      '--out', o.out, '--format', 'mmeb', '--quiet',
    ], io)
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout).toMatch(/^ {2}by rule: margin \d+, image duplicate 0, text duplicate 0, other filters 0$/m)
    expect(stdout).toMatch(/^ {2}\[MSCOCO_t2i\] 80 pairs, FalseNeg% [\d.]+% \(margin \d+, image duplicate 0, text duplicate 0, other filters 0\), padded 0, dropped 0$/m)
    expect(stdout).toMatch(/^ {2}\[MSCOCO_i2t\] 80 pairs, /m)
    expect(await readdir(o.out)).toContain('part-00000.parquet')
  })

  it('--global-pool mines every subset against one pool', async () => {
    const dir = await tempDir()
    const { summary } = await mineNegatives({ ...COCO_INPUTS, out: path.join(dir, 'g'), globalPool: true })
    expect(Object.keys(summary.groups)).toEqual([''])
    const rows = await minedRows(path.join(dir, 'g'))
    // A caption query may now be served captions as well as pictures.
    expect(rows.some((r) => (r.extra.neg_images as string[]).includes('') && (r.extra.neg_images as string[]).some((p) => p !== ''))).toBe(true)
  })

  it('names a subset after its file, or its folder for a Hugging Face shard name', () => {
    expect(subsetName('data/MSCOCO_i2t.parquet')).toBe('MSCOCO_i2t')
    expect(subsetName('MMEB-train/VisDial/train-00000-of-00001.parquet')).toBe('VisDial')
  })
})

/** The rows of a little-endian float32 .npy written by numpy or writeNpy. */
function loadNpyRows(buf: Buffer): { dim: number; data: Float32Array } {
  const headerLen = buf.readUInt16LE(8)
  const header = buf.subarray(10, 10 + headerLen).toString('latin1')
  const dim = Number(/'shape': \(\d+, (\d+)\)/.exec(header)![1])
  const body = buf.subarray(10 + headerLen)
  return { dim, data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)) }
}

describe('bad images', () => {
  async function cli(argv: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
    let stderr = ''
    let stdout = ''
    const io: CliIO = { stdout: (s) => { stdout += s }, stderr: (s) => { stderr += s }, stderrIsTTY: false }
    const code = await runHardneg(['mine', ...argv, '--quiet'], io)
    return { code, stderr, stdout }
  }

  it('a missing or corrupt image stops the run with file, row and path; nothing complete-looking is left', async () => {
    const { dir, options, pictures } = await plantedDataset()
    const args = [
      '--pairs', options.pairs as string, '--query-image-col', 'query_image', '--positive-image-col', 'positive_image',
      '--query-embeddings', options.queryEmbeddings as string, '--positive-embeddings', options.positiveEmbeddings as string,
      '--out', options.out, '--k', '2',
    ]
    await rm(path.join(dir, pictures[3]!))
    let r = await cli(args)
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(`hardneg: error E_BAD_IMAGE: ${options.pairs}:4: positive image '${pictures[3]}' not found (ENOENT), expected a readable image file\n`)
    expect((await readdir(options.out)).filter((f) => f === 'manifest.json' || f.startsWith('part-'))).toEqual([])

    await copyFile(path.join(COCO, pictures[3]!), path.join(dir, pictures[3]!))
    await writeFile(path.join(dir, 'images/C-bright.jpg'), 'not a jpeg')
    r = await cli(args)
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(
      `hardneg: error E_BAD_IMAGE: ${options.pairs}:9: query image 'images/C-bright.jpg' cannot be decoded (Input buffer contains unsupported image format), expected JPEG, PNG, WebP, GIF, TIFF or AVIF\n`,
    )
  })

  it('--on-bad-image skip drops the rows and counts them per subset', async () => {
    const { dir, options, pictures } = await plantedDataset()
    await rm(path.join(dir, pictures[3]!))
    await writeFile(path.join(dir, 'images/C-bright.jpg'), 'not a jpeg')
    const result: MineResult = await mineNegatives({ ...options, onBadImage: 'skip' })
    expect(result.summary).toMatchObject({ rowsIn: 9, rowsOut: 7, badImageRows: 2 })
    expect(result.manifest.images).toMatchObject({ badRows: 2 })
    const rows = await minedRows(options.out)
    expect(rows.map((r) => r.id)).toEqual(['0', '1', '2', '4', '5', '6', '7'])
    for (const r of rows) expect(r.extra.neg_images as string[]).not.toContain(pictures[3])
  })
})

describe('validate on shards of a run with images', () => {
  it('passes the coco-mini run, and names the image when a negative is the positive', async () => {
    const out = path.join(await tempDir(), 'out')
    await mineNegatives({ ...COCO_INPUTS, out })
    const clean = await validateShards({ shards: out })
    expect(clean.findings.filter((f) => f.severity === 'error')).toEqual([])

    // Same instruction text, same picture: a t2i row served its own positive.
    const rows = (await minedRows(out)).map((r) => ({
      ...r,
      queryImage: r.extra.query_image as string,
      positiveImage: r.extra.pos_image as string,
      negImages: [...(r.extra.neg_images as string[])],
    }))
    rows[0]!.negImages[0] = rows[0]!.positiveImage
    const file = path.join(out, 'part-00000.parquet')
    const manifestFile = path.join(out, 'manifest.json')
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8'))
    await rm(file)
    manifest.shards = await writeRowsAs('parquet', (async function* () { yield* rows })(), { dir: out, carriedColumns: [], images: true, keepFiltered: false })
    await writeFile(manifestFile, JSON.stringify(manifest))
    const report = await validateShards({ shards: out })
    expect(report.findings.filter((f) => f.code === 'V_NEG_IS_POSITIVE').map((f) => f.message)).toEqual([
      `${file}:1: negative 0 is the positive "" with image '${rows[0]!.positiveImage}', expected another candidate`,
    ])
  })
})
