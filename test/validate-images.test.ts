/**
 * Image checks of `validate` on the coco-mini fixture: a trimmed copy of
 * mmeb-style.parquet (text-to-image and image-to-text rows) with the images it names,
 * into which each test plants one defect.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parquetReadObjects } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { parquetWriteBuffer } from 'hyparquet-writer'
import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { runHardneg, type CliIO } from '../src/cli/main.js'
import { validateDataset, type Finding, type ValidateDatasetOptions } from '../src/index.js'
import { tempDir } from './_helpers.js'

const COCO = path.join(import.meta.dirname, '..', 'fixtures', 'coco-mini')
const COLUMNS = ['subset', 'qry', 'qry_image_path', 'pos_text', 'pos_image_path'] as const
type Row = Record<(typeof COLUMNS)[number], string>

/** Three text-to-image rows and three image-to-text rows on other images, as a Parquet file with its images. */
async function cocoCopy(): Promise<{ dir: string; pairs: string; rows: Row[]; unused: string }> {
  const buffer = await readFile(path.join(COCO, 'mmeb-style.parquet'))
  const all = (await parquetReadObjects({ file: buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength), compressors })) as Row[]
  const t2i = all.filter(r => r.pos_image_path !== '').slice(0, 3)
  const taken = new Set(t2i.map(r => r.pos_image_path))
  const i2t = all.filter(r => r.qry_image_path !== '' && !taken.has(r.qry_image_path)).slice(0, 3)
  const rows = [...t2i, ...i2t]
  const used = new Set(rows.map(r => r.qry_image_path || r.pos_image_path))
  const unused = all.map(r => r.qry_image_path || r.pos_image_path).find(p => !used.has(p))!
  const dir = await tempDir()
  await mkdir(path.join(dir, 'images'))
  for (const p of [...used, unused]) await copyFile(path.join(COCO, p), path.join(dir, p))
  const pairs = path.join(dir, 'mmeb-style.parquet')
  const columnData = COLUMNS.map(name => ({ name, data: rows.map(r => r[name]), type: 'STRING' as const }))
  await writeFile(pairs, Buffer.from(parquetWriteBuffer({ columnData })))
  return { dir, pairs, rows, unused }
}

const imageOf = (r: Row): string => r.qry_image_path || r.pos_image_path
const run = (pairs: string, extra: Partial<ValidateDatasetOptions> = {}) => validateDataset({ pairs, preset: 'mmeb', k: 1, ...extra })
const imageFindings = (findings: Finding[]): Finding[] => findings.filter(f => f.code.startsWith('V_IMAGE_') || f.code === 'V_CONTAMINATION')

describe('validate: images of the pairs', () => {
  it('passes the coco-mini copy: every image exists, decodes and is within the limits', async () => {
    const { pairs } = await cocoCopy()
    const report = await run(pairs)
    expect(imageFindings(report.findings)).toEqual([])
    for (const code of ['V_IMAGE_MISSING', 'V_IMAGE_UNDECODABLE', 'V_IMAGE_SIZE'] as const) {
      expect(report.checks.find(c => c.code === code)).toMatchObject({ status: 'ran', count: 0 })
    }
  })

  it('V_IMAGE_MISSING: a deleted image, at the pairs file and row', async () => {
    const { dir, pairs, rows } = await cocoCopy()
    await rm(path.join(dir, imageOf(rows[1]!)))
    expect(imageFindings((await run(pairs)).findings)).toEqual([{
      code: 'V_IMAGE_MISSING', severity: 'error', file: pairs, row: 2,
      message: `${pairs}:2: positive image '${imageOf(rows[1]!)}' not found (ENOENT), expected a readable image file`,
    }])
  })

  it('V_IMAGE_UNDECODABLE: garbage bytes named .jpg', async () => {
    const { dir, pairs, rows } = await cocoCopy()
    await writeFile(path.join(dir, imageOf(rows[4]!)), Buffer.from('not an image at all, just text bytes'))
    const found = imageFindings((await run(pairs)).findings)
    expect(found).toMatchObject([{ code: 'V_IMAGE_UNDECODABLE', file: pairs, row: 5 }])
    expect(found[0]!.message).toBe(`${pairs}:5: query image '${imageOf(rows[4]!)}' cannot be decoded (Input buffer contains unsupported image format), expected JPEG, PNG, WebP, GIF, TIFF or AVIF`)
  })

  it('V_IMAGE_SIZE: an 8 x 12 image under the default 16 px side', async () => {
    const { dir, pairs, rows } = await cocoCopy()
    const tiny = await sharp({ create: { width: 8, height: 12, channels: 3, background: '#808080' } }).jpeg().toBuffer()
    await writeFile(path.join(dir, imageOf(rows[0]!)), tiny)
    expect(imageFindings((await run(pairs)).findings)).toEqual([{
      code: 'V_IMAGE_SIZE', severity: 'error', file: pairs, row: 1,
      message: `${pairs}:1: positive image '${imageOf(rows[0]!)}' is 8 x 12 px, expected each side at least 16 px (--min-image-side)`,
    }])
  })

  it('V_IMAGE_SIZE: every image over a --max-image-pixels limit', async () => {
    const { dir, pairs, rows } = await cocoCopy()
    const { width, height } = await sharp(path.join(dir, imageOf(rows[2]!))).metadata()
    const found = imageFindings((await run(pairs, { maxImagePixels: 1000 })).findings)
    expect(found.map(f => [f.code, f.row])).toEqual(rows.map((_, i) => ['V_IMAGE_SIZE', i + 1]))
    expect(found[2]!.message).toBe(`${pairs}:3: positive image '${imageOf(rows[2]!)}' is ${width} x ${height} px (${Number((width! * height! / 1e6).toPrecision(4))} megapixels), expected at most 0.001 megapixels (--max-image-pixels)`)
  })
})

describe('validate: --forbid matches images by content', () => {
  it('reports a re-encoded copy of a pair\'s image as V_CONTAMINATION, and not a distinct image', async () => {
    const { dir, pairs, rows, unused } = await cocoCopy()
    const evalDir = path.join(dir, 'eval')
    await mkdir(path.join(evalDir, 'imgs'), { recursive: true })
    const original = await readFile(path.join(dir, imageOf(rows[3]!)))
    await writeFile(path.join(evalDir, 'imgs', 'copy-q50.jpg'), await sharp(original).jpeg({ quality: 50 }).toBuffer())
    await copyFile(path.join(dir, unused), path.join(evalDir, 'imgs', 'other.jpg'))
    const forbid = path.join(evalDir, 'eval.jsonl')
    await writeFile(forbid, [
      { qry: 'an evaluation question about a picture', qry_image_path: 'imgs/other.jpg' },
      { qry: 'another evaluation question', qry_image_path: 'imgs/copy-q50.jpg' },
    ].map(o => JSON.stringify(o)).join('\n') + '\n')
    const found = imageFindings((await run(pairs, { forbid: [forbid] })).findings)
    expect(found).toMatchObject([{ code: 'V_CONTAMINATION', file: pairs, row: 4 }])
    expect(found[0]!.message).toMatch(new RegExp(
      `^${escape(`${pairs}:4: query image '${imageOf(rows[3]!)}' is a near-duplicate of image 'imgs/copy-q50.jpg' at ${forbid}:2 (distance `)}\\d+, at most 58 counts\\), expected no image of the forbid sets$`))
  })
})

describe('hardneg validate with images', () => {
  it('exits 1 on a missing image and lists it; --quiet keeps stderr empty', async () => {
    const { dir, pairs, rows } = await cocoCopy()
    await rm(path.join(dir, imageOf(rows[0]!)))
    const out: string[] = []
    const err: string[] = []
    const io: CliIO = { stdout: t => void out.push(t), stderr: t => void err.push(t), stderrIsTTY: false }
    const code = await runHardneg(['validate', '--pairs', pairs, '--preset', 'mmeb', '--k', '1', '--quiet', '--format', 'github'], io)
    expect(err.join('')).toBe('')
    expect(code).toBe(1)
    expect(out.join('')).toContain(`::error file=${pairs},title=V_IMAGE_MISSING::${pairs}:1: positive image '${imageOf(rows[0]!)}' not found (ENOENT), expected a readable image file\n`)
  })
})

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
