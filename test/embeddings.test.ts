import { mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { halfTable, halfToNumber } from '../src/embeddings/_float16.js'
import {
  checkEmbeddingShape, loadEmbeddingMatrix, loadEmbeddings, readNpyHeader, type NpyHeader,
} from '../src/embeddings/embeddings.js'
import type { ErrorCode } from '../src/errors.js'
import type { EmbeddingBlock } from '../src/types.js'

const SNLI_SENT0 = fileURLToPath(new URL('../fixtures/snli/snli-test-sent0.use512.f16.npy', import.meta.url))
const COCO_QRY = fileURLToPath(new URL('../fixtures/coco-mini/mmeb-style.qry.npy', import.meta.url))

let dir = ''
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hardneg-embeddings-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

interface NpyOptions {
  descr?: string // dtype string written into the header (default '<f4')
  shape?: string // Python tuple text (default from `rows`/`dim`)
  fortran?: string // 'False' or 'True' (default 'False')
  version?: 1 | 2 | 3 // format version (default 1)
  dict?: string // whole header dict text, overriding the three fields above
}

/** The header `numpy.save` writes: preamble + dict padded with spaces to a multiple of 64, ending in '\n'. */
function npyHeader(o: NpyOptions & { rows?: number, dim?: number }): Buffer {
  const version = o.version ?? 1
  const dict = o.dict
    ?? `{'descr': '${o.descr ?? '<f4'}', 'fortran_order': ${o.fortran ?? 'False'}, 'shape': ${o.shape ?? `(${o.rows}, ${o.dim})`}, }`
  const pre = version === 1 ? 10 : 12
  const text = Buffer.from(dict, version === 3 ? 'utf8' : 'latin1')
  const total = Math.ceil((pre + text.length + 1) / 64) * 64
  const out = Buffer.alloc(total, 0x20)
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0])
  if (version === 1) out.writeUInt16LE(total - pre, 8)
  else out.writeUInt32LE(total - pre, 8)
  out.set(text, pre)
  out[total - 1] = 0x0a
  return out
}

function f32(values: number[]): Buffer {
  return Buffer.from(new Float32Array(values).buffer)
}

function f16(bits: number[]): Buffer {
  return Buffer.from(new Uint16Array(bits).buffer)
}

async function writeNpy(name: string, o: NpyOptions & { rows: number, dim: number, data: Buffer }): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, Buffer.concat([npyHeader(o), o.data]))
  return file
}

/** A float32 file whose row r holds r * dim + 1 .. r * dim + dim. */
async function writeCounting(name: string, rows: number, dim: number): Promise<string> {
  return writeNpy(name, { rows, dim, data: f32(Array.from({ length: rows * dim }, (_, i) => i + 1)) })
}

async function collect(source: AsyncIterable<EmbeddingBlock>): Promise<EmbeddingBlock[]> {
  const blocks: EmbeddingBlock[] = []
  for await (const block of source) blocks.push(block)
  return blocks
}

async function expectError(run: () => unknown, code: ErrorCode, message: string): Promise<void> {
  await expect((async () => run())()).rejects.toMatchObject({ name: 'HardnegError', code, message })
}

function rowNorm(data: Float32Array, row: number, dim: number): number {
  let sum = 0
  for (let i = row * dim; i < (row + 1) * dim; i++) sum += data[i]! * data[i]!
  return Math.sqrt(sum)
}

describe('readNpyHeader', () => {
  it.each([
    { version: 1 as const, descr: '<f4', dtype: 'float32', itemSize: 4, dataOffset: 128 },
    { version: 2 as const, descr: '<f2', dtype: 'float16', itemSize: 2, dataOffset: 128 },
    { version: 3 as const, descr: '<f4', dtype: 'float32', itemSize: 4, dataOffset: 128 },
    { version: 1 as const, descr: '=f2', dtype: 'float16', itemSize: 2, dataOffset: 128 },
    { version: 1 as const, descr: 'f4', dtype: 'float32', itemSize: 4, dataOffset: 128 },
  ])('reads a version $version header with dtype $descr', async ({ version, descr, dtype, itemSize, dataOffset }) => {
    const file = await writeNpy('a.npy', { version, descr, rows: 3, dim: 5, data: Buffer.alloc(3 * 5 * itemSize) })
    expect(await readNpyHeader(file)).toEqual({ file, dtype, rows: 3, dim: 5, dataOffset, byteLength: 3 * 5 * itemSize })
  })

  it('accepts key order, double quotes and Python 2 long integers', async () => {
    const dict = `{"shape": (2L, 3L), "fortran_order": False, "descr": "<f4"}`
    const file = await writeNpy('a.npy', { dict, rows: 2, dim: 3, data: Buffer.alloc(24) })
    expect(await readNpyHeader(file)).toMatchObject({ rows: 2, dim: 3, dtype: 'float32' })
  })

  it('reads the SNLI float16 fixture header', async () => {
    expect(await readNpyHeader(SNLI_SENT0)).toEqual(
      { file: SNLI_SENT0, dtype: 'float16', rows: 2921, dim: 512, dataOffset: 128, byteLength: 2921 * 512 * 2 })
  })

  it('reads the COCO float32 fixture header', async () => {
    expect(await readNpyHeader(COCO_QRY)).toEqual(
      { file: COCO_QRY, dtype: 'float32', rows: 160, dim: 512, dataOffset: 128, byteLength: 160 * 512 * 4 })
  })
})

describe('header errors', () => {
  it('reports a file that cannot be opened', async () => {
    const file = join(dir, 'missing.npy')
    await expectError(() => readNpyHeader(file), 'E_BAD_FILE', `${file}: cannot open (ENOENT), expected a readable .npy file`)
  })

  it('reports a file that is not .npy', async () => {
    const file = join(dir, 'q.npy')
    await writeFile(file, Buffer.from('PK\x03\x04\x14\x00\x00\x00\x08\x00 zip', 'latin1'))
    await expectError(() => readNpyHeader(file), 'E_BAD_FILE',
      `${file}: not a .npy file: starts with 'PK\\x03\\x04\\x14\\x00', expected '\\x93NUMPY'`)
  })

  it.each([
    { name: 'empty', bytes: 0, message: 'truncated .npy file: 0 bytes, expected 10 (the .npy preamble)' },
    { name: 'cut in the magic', bytes: 4, message: 'truncated .npy file: 4 bytes, expected 10 (the .npy preamble)' },
    { name: 'cut in the preamble', bytes: 9, message: 'truncated .npy file: 9 bytes, expected 10 (the .npy preamble)' },
    { name: 'cut in the header', bytes: 50, message: 'truncated .npy file: 50 bytes, expected 128 (a 128-byte header)' },
    {
      name: 'cut in the data', bytes: 128 + 40,
      message: 'truncated .npy file: 168 bytes, expected 176 (128-byte header + 3 rows x 4 dim x 4 bytes)',
    },
  ])('reports a truncated file ($name)', async ({ bytes, message }) => {
    const whole = Buffer.concat([npyHeader({ rows: 3, dim: 4 }), f32(new Array(12).fill(1))])
    const file = join(dir, 'q.npy')
    await writeFile(file, whole.subarray(0, bytes))
    await expectError(() => readNpyHeader(file), 'E_BAD_FILE', `${file}: ${message}`)
    await expectError(() => loadEmbeddingMatrix({ file }), 'E_BAD_FILE', `${file}: ${message}`)
  })

  it('reports a directory', async () => {
    await expectError(() => readNpyHeader(dir), 'E_BAD_FILE', `${dir}: not a regular file, expected a .npy file`)
  })

  it('reports an implausibly long header', async () => {
    const bytes = Buffer.concat([npyHeader({ rows: 1, dim: 1, version: 2 }), f32([1])])
    bytes.writeUInt32LE(2 ** 21, 8)
    const file = join(dir, 'q.npy')
    await writeFile(file, bytes)
    await expectError(() => readNpyHeader(file), 'E_NPY_HEADER', `${file}: .npy header length 2097152 bytes, expected at most 1048576`)
  })

  it('reports an unsupported format version', async () => {
    const bytes = Buffer.concat([npyHeader({ rows: 1, dim: 1, version: 2 }), f32([1])])
    bytes[6] = 4
    const file = join(dir, 'q.npy')
    await writeFile(file, bytes)
    await expectError(() => readNpyHeader(file), 'E_NPY_HEADER', `${file}: .npy format version 4.0 not supported, expected 1.0, 2.0 or 3.0`)
  })

  const dtypeMessage = (shown: string): string => `dtype ${shown} not supported, expected float32 ('<f4') or float16 ('<f2')`
  it.each([
    { o: { descr: '>f8' }, message: dtypeMessage("'>f8'") },
    { o: { descr: '>f4' }, message: dtypeMessage("'>f4'") },
    { o: { descr: '>f2' }, message: dtypeMessage("'>f2'") },
    { o: { descr: '<f8' }, message: dtypeMessage("'<f8'") },
    { o: { descr: '<i4' }, message: dtypeMessage("'<i4'") },
    {
      o: { dict: "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (2, 3), }" },
      message: dtypeMessage("[('a', '<f4'), ('b', '<f4')]"),
    },
    {
      o: { fortran: 'True' },
      message: 'fortran_order True not supported, expected C order; save with np.save(path, np.ascontiguousarray(arr))',
    },
    { o: { fortran: "'no'" }, message: "fortran_order 'no' not understood, expected True or False" },
    { o: { shape: '(6,)' }, message: 'shape (6,) not supported, expected 2-D (rows, dim)' },
    { o: { shape: '(1, 2, 3)' }, message: 'shape (1, 2, 3) not supported, expected 2-D (rows, dim)' },
    { o: { shape: '()' }, message: 'shape () not supported, expected 2-D (rows, dim)' },
    { o: { shape: '[2, 3]' }, message: 'shape [2, 3] not supported, expected 2-D (rows, dim)' },
    { o: { shape: '(2, 0)' }, message: 'shape (2, 0) has dim 0, expected dim >= 1' },
    {
      o: { dict: "{'descr': '<f4', 'shape': (2, 3), }" },
      message: ".npy header has no 'fortran_order' key, expected keys 'descr', 'fortran_order' and 'shape'",
    },
    {
      o: { dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), " },
      message: ".npy header is not a Python dict literal (unexpected end at offset 118): {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3),",
    },
    {
      o: { dict: "{'descr': <f4}" },
      message: `.npy header is not a Python dict literal (unexpected "<" at offset 10): {'descr': <f4}`,
    },
  ])('reports $message', async ({ o, message }) => {
    const file = await writeNpy('q.npy', { rows: 2, dim: 3, data: Buffer.alloc(48), ...o })
    await expectError(() => readNpyHeader(file), 'E_NPY_HEADER', `${file}: ${message}`)
  })
})

describe('float16 table', () => {
  /** Reference decoding by building the float32 bit pattern, not by arithmetic. */
  function viaBits(h: number): number {
    const sign = (h >> 15) << 31
    let exponent = (h >> 10) & 0x1f
    let mantissa = h & 0x3ff
    let bits: number
    if (exponent === 31) bits = sign | (0xff << 23) | (mantissa << 13)
    else if (exponent === 0 && mantissa === 0) bits = sign
    else {
      if (exponent === 0) {
        exponent = 1
        while ((mantissa & 0x400) === 0) {
          mantissa <<= 1
          exponent--
        }
        mantissa &= 0x3ff
      }
      bits = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)
    }
    const view = new DataView(new ArrayBuffer(4))
    view.setUint32(0, bits >>> 0)
    return view.getFloat32(0)
  }

  it('decodes all 65536 half values like the bit-level reference', () => {
    const table = halfTable()
    expect(table.length).toBe(65536)
    const wrong: number[] = []
    for (let h = 0; h < 65536; h++) {
      const want = viaBits(h)
      const got = table[h]!
      if (!(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)))) wrong.push(h)
    }
    expect(wrong).toEqual([])
    expect(halfTable()).toBe(table)
  })

  it.each([
    [0x0000, 0], [0x8000, -0], [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x3555, 0.333251953125],
    [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x0400, 2 ** -14], [0x8001, -(2 ** -24)],
    [0x7c00, Infinity], [0xfc00, -Infinity], [0x7e00, NaN], [0xfc01, NaN],
  ])('decodes 0x%s', (bits, value) => {
    expect(halfToNumber(bits)).toBe(value)
    expect(halfTable()[bits]).toBe(value)
  })
})

describe('loadEmbeddingMatrix', () => {
  it('normalises float32 rows: Math.fround(x / sqrt(sum of squares in float64))', async () => {
    const file = await writeNpy('a.npy', { rows: 2, dim: 2, data: f32([3, 4, -1e-30, 1e-30]) })
    const m = await loadEmbeddingMatrix({ file })
    expect(m.rows).toBe(2)
    expect(m.dim).toBe(2)
    const n = Math.sqrt(Math.fround(1e-30) ** 2 * 2)
    expect([...m.data]).toEqual([Math.fround(0.6), Math.fround(0.8), Math.fround(Math.fround(-1e-30) / n), Math.fround(Math.fround(1e-30) / n)])
    const raw = await loadEmbeddingMatrix({ file, normalize: false })
    expect([...raw.data]).toEqual([3, 4, Math.fround(-1e-30), Math.fround(1e-30)])
  })

  it('decodes float16 subnormals and normalises them (odd dim)', async () => {
    const file = await writeNpy('a.npy', {
      descr: '<f2', rows: 2, dim: 3, data: f16([0x0001, 0x03ff, 0x8200, 0x0001, 0x0001, 0x0000]),
    })
    const raw = await loadEmbeddingMatrix({ file, normalize: false })
    expect([...raw.data]).toEqual([2 ** -24, 1023 * 2 ** -24, -(2 ** -15), 2 ** -24, 2 ** -24, 0])
    const m = await loadEmbeddingMatrix({ file })
    expect([...m.data.subarray(3)]).toEqual([Math.fround(Math.SQRT1_2), Math.fround(Math.SQRT1_2), 0])
    expect(rowNorm(m.data, 0, 3)).toBeCloseTo(1, 6)
  })

  it('loads the SNLI float16 fixture like numpy', async () => {
    const m = await loadEmbeddingMatrix({ file: SNLI_SENT0 })
    expect([m.rows, m.dim, m.data.length]).toEqual([2921, 512, 2921 * 512])
    // np.load(f).astype(np.float64), divided by the left-to-right float64 row norm, then astype(np.float32)
    expect([...m.data.subarray(0, 4)]).toEqual(
      [0.010398856364190578, -0.009887686930596828, 0.0011014929041266441, 0.05700678750872612])
    expect(m.data[511]).toBe(-0.05126948654651642)
    expect([...m.data.subarray(2920 * 512, 2920 * 512 + 4)]).toEqual(
      [0.062498342245817184, -0.07067683339118958, -0.07830602675676346, -0.030821936205029488])
    expect(m.data[2921 * 512 - 1]).toBe(-0.045012231916189194)
    expect(m.data[1234 * 512 + 100]).toBe(0.016006197780370712)
    let sum = 0
    for (const x of m.data) sum += x
    expect(sum).toBeCloseTo(1845.858789915002, 6)
    for (let r = 0; r < m.rows; r++) expect(Math.abs(rowNorm(m.data, r, m.dim) - 1)).toBeLessThan(1e-6)

    const raw = await loadEmbeddingMatrix({ file: SNLI_SENT0, normalize: false })
    expect([...raw.data.subarray(0, 4)]).toEqual(
      [0.01039886474609375, -0.0098876953125, 0.0011014938354492188, 0.0570068359375])
    expect([...raw.data.subarray(2920 * 512, 2920 * 512 + 4)]).toEqual(
      [0.0625, -0.0706787109375, -0.07830810546875, -0.03082275390625])
    // float64 row norms from numpy: 1.0000008440662365 (row 0), 1.0000265369124703 (row 2920)
    expect(rowNorm(raw.data, 0, 512)).toBe(1.0000008440662365)
    expect(rowNorm(raw.data, 2920, 512)).toBe(1.0000265369124703)
  })

  it('loads the COCO float32 fixture like numpy', async () => {
    const m = await loadEmbeddingMatrix({ file: COCO_QRY })
    expect([m.rows, m.dim]).toEqual([160, 512])
    expect([...m.data.subarray(0, 4)]).toEqual(
      [0.034412119537591934, 0.0014115993399173021, -0.04169180244207382, -0.047756362706422806])
    expect([...m.data.subarray(159 * 512, 159 * 512 + 4)]).toEqual(
      [-0.03640103340148926, 0.03165637329220772, -0.011700385250151157, -0.02577725611627102])
    expect(m.data[160 * 512 - 1]).toBe(-0.06120866537094116)
    let sum = 0
    for (const x of m.data) sum += x
    expect(sum).toBeCloseTo(29.370744311033775, 6)
    for (let r = 0; r < m.rows; r++) expect(Math.abs(rowNorm(m.data, r, m.dim) - 1)).toBeLessThan(1e-6)
    const raw = await loadEmbeddingMatrix({ file: COCO_QRY, normalize: false })
    expect(rowNorm(raw.data, 0, 512)).toBe(1.0000000091598622)
    expect(rowNorm(raw.data, 159, 512)).toBe(1.0000000218013507)
  })

  it.each([
    { name: 'unsorted with repeats', rows: [7, 3, 7, 0, 9, 3] },
    { name: 'sorted', rows: [0, 1, 2, 5, 9] },
    { name: 'empty', rows: [] },
  ])('gathers a selection ($name) in the given order', async ({ rows }) => {
    const file = await writeCounting('a.npy', 10, 3)
    const all = await loadEmbeddingMatrix({ file })
    for (const selection of [rows, Int32Array.from(rows)]) {
      const m = await loadEmbeddingMatrix({ file, rows: selection })
      expect(m.rows).toBe(rows.length)
      expect(m.dim).toBe(3)
      expect([...m.data]).toEqual(rows.flatMap((r) => [...all.data.subarray(r * 3, r * 3 + 3)]))
    }
  })

  it('gathers float16 rows of the SNLI fixture', async () => {
    const all = await loadEmbeddingMatrix({ file: SNLI_SENT0 })
    const rows = [2920, 0, 1234, 1234, 7]
    const m = await loadEmbeddingMatrix({ file: SNLI_SENT0, rows })
    expect([...m.data]).toEqual(rows.flatMap((r) => [...all.data.subarray(r * 512, r * 512 + 512)]))
  })

  it.each([
    { rows: [0, 10], message: "rows[1] = 10, expected an integer >= 0 and < 10 (the file's row count)" },
    { rows: [-1], message: "rows[0] = -1, expected an integer >= 0 and < 10 (the file's row count)" },
    { rows: [1.5], message: "rows[0] = 1.5, expected an integer >= 0 and < 10 (the file's row count)" },
  ])('rejects selection $rows', async ({ rows, message }) => {
    const file = await writeCounting('a.npy', 10, 3)
    await expectError(() => loadEmbeddingMatrix({ file, rows }), 'E_BAD_OPTION', `${file}: ${message}`)
  })
})

describe('loadEmbeddings', () => {
  it.each([
    { blockRows: 3, start: undefined, end: undefined, blocks: [[0, 3], [3, 3], [6, 3], [9, 1]] },
    { blockRows: 10, start: undefined, end: undefined, blocks: [[0, 10]] },
    { blockRows: 64, start: undefined, end: undefined, blocks: [[0, 10]] },
    { blockRows: 4, start: 2, end: 8, blocks: [[2, 4], [6, 2]] },
    { blockRows: 4, start: 7, end: undefined, blocks: [[7, 3]] },
    { blockRows: 4, start: undefined, end: 1, blocks: [[0, 1]] },
    { blockRows: 4, start: 5, end: 5, blocks: [] },
    { blockRows: 4, start: 10, end: undefined, blocks: [] },
  ])('streams blockRows $blockRows from $start to $end', async ({ blockRows, start, end, blocks }) => {
    for (const descr of ['<f4', '<f2']) {
      const values = Array.from({ length: 30 }, (_, i) => i + 1)
      const data = descr === '<f4' ? f32(values) : f16(values.map((v) => 0x3c00 + v)) // 1 + v/1024
      const file = await writeNpy('a.npy', { descr, rows: 10, dim: 3, data })
      const all = await loadEmbeddingMatrix({ file })
      const source = loadEmbeddings({ file, blockRows, start, end })
      const got = await collect(source)
      expect(got.map((b) => [b.start, b.rows])).toEqual(blocks)
      for (const b of got) {
        expect(b.dim).toBe(3)
        expect([...b.data]).toEqual([...all.data.subarray(b.start * 3, (b.start + b.rows) * 3)])
      }
      // replayable: a second pass reopens the file and yields the same blocks
      expect(source.replayable).toBe(true)
      expect(await collect(source)).toEqual(got)
    }
  })

  it('streams the fixtures: SNLI in 1000-row blocks, COCO in one default 8192-row block', async () => {
    const blocks = await collect(loadEmbeddings({ file: SNLI_SENT0, blockRows: 1000 }))
    expect(blocks.map((b) => [b.start, b.rows])).toEqual([[0, 1000], [1000, 1000], [2000, 921]])
    const all = await loadEmbeddingMatrix({ file: SNLI_SENT0 })
    expect(blocks.every((b) => b.data.every((x, i) => x === all.data[b.start * 512 + i]))).toBe(true)
    const one = await collect(loadEmbeddings({ file: COCO_QRY }))
    expect(one.map((b) => [b.start, b.rows, b.dim])).toEqual([[0, 160, 512]])
  })

  it('stops reading when the consumer breaks, and can start again', async () => {
    const file = await writeCounting('a.npy', 10, 3)
    const source = loadEmbeddings({ file, blockRows: 2, normalize: false })
    for await (const block of source) {
      expect(block.start).toBe(0)
      break
    }
    const blocks = await collect(source)
    expect(blocks.length).toBe(5)
    expect([...blocks[4]!.data]).toEqual([25, 26, 27, 28, 29, 30])
  })

  it.each([
    { o: { blockRows: 0 }, message: 'blockRows 0, expected a positive integer' },
    { o: { blockRows: 2.5 }, message: 'blockRows 2.5, expected a positive integer' },
    { o: { start: -1 }, message: 'start -1, expected a non-negative integer' },
    { o: { end: 1.5 }, message: 'end 1.5, expected a non-negative integer' },
  ])('rejects options at once: $message', ({ o, message }) => {
    expect(() => loadEmbeddings({ file: 'a.npy', ...o })).toThrow(expect.objectContaining({ code: 'E_BAD_OPTION', message }))
  })

  it.each([
    { start: 11, end: undefined, message: "start 11 and end 10 out of range, expected 0 <= start <= end <= 10 (the file's row count)" },
    { start: 0, end: 11, message: "start 0 and end 11 out of range, expected 0 <= start <= end <= 10 (the file's row count)" },
    { start: 6, end: 5, message: "start 6 and end 5 out of range, expected 0 <= start <= end <= 10 (the file's row count)" },
  ])('rejects start $start / end $end against the file', async ({ start, end, message }) => {
    const file = await writeCounting('a.npy', 10, 3)
    await expectError(() => collect(loadEmbeddings({ file, start, end })), 'E_BAD_OPTION', `${file}: ${message}`)
  })
})

describe('bad vectors', () => {
  const cases = [
    { what: 'NaN', value: NaN, message: 'embedding row 4 (0-based) contains NaN at column 1; expected finite values' },
    { what: 'Inf', value: Infinity, message: 'embedding row 4 (0-based) contains Inf at column 1; expected finite values' },
    { what: '-Inf', value: -Infinity, message: 'embedding row 4 (0-based) contains -Inf at column 1; expected finite values' },
  ]
  it.each(cases)('rejects a row holding $what, normalised or not', async ({ value, message }) => {
    const values = Array.from({ length: 18 }, (_, i) => i + 1)
    values[4 * 3 + 1] = value
    for (const file of [
      await writeNpy('q.npy', { rows: 6, dim: 3, data: f32(values) }),
      await writeNpy('h.npy', { descr: '<f2', rows: 6, dim: 3, data: f16(values.map((v) => Number.isNaN(v) ? 0x7e00 : v === Infinity ? 0x7c00 : v === -Infinity ? 0xfc00 : 0x3c00)) }),
    ]) {
      for (const normalize of [true, false]) {
        await expectError(() => loadEmbeddingMatrix({ file, normalize }), 'E_BAD_VECTOR', `${file}:5: ${message}`)
        await expectError(() => collect(loadEmbeddings({ file, normalize, blockRows: 4 })), 'E_BAD_VECTOR', `${file}:5: ${message}`)
        await expectError(() => loadEmbeddingMatrix({ file, normalize, rows: [0, 4] }), 'E_BAD_VECTOR', `${file}:5: ${message}`)
      }
      // rows before the bad one still stream, and a selection that skips it loads
      expect((await collect(loadEmbeddings({ file, end: 4 }))).length).toBe(1)
      expect((await loadEmbeddingMatrix({ file, rows: [5, 0] })).rows).toBe(2)
    }
  })

  it('fails cleanly while the next block is still being read', async () => {
    const values = Array.from({ length: 15 }, (_, i) => i + 1)
    values[3] = NaN
    const file = await writeNpy('q.npy', { rows: 5, dim: 3, data: f32(values) })
    const message = `${file}:2: embedding row 1 (0-based) contains NaN at column 0; expected finite values`
    await expectError(() => collect(loadEmbeddings({ file, blockRows: 1 })), 'E_BAD_VECTOR', message)
    const blocks: number[] = []
    await expectError(async () => {
      for await (const block of loadEmbeddings({ file, blockRows: 1 })) blocks.push(block.start)
    }, 'E_BAD_VECTOR', message)
    expect(blocks).toEqual([0])
  })

  it('rejects an all-zero row when normalising, and keeps it otherwise', async () => {
    const values = [1, 2, 3, 4, 5, 6, 0, -0, 0]
    const file = await writeNpy('q.npy', { rows: 3, dim: 3, data: f32(values) })
    const message = `${file}:3: embedding row 2 (0-based) is all zeros; expected a non-zero vector`
    await expectError(() => loadEmbeddingMatrix({ file }), 'E_BAD_VECTOR', message)
    await expectError(() => collect(loadEmbeddings({ file })), 'E_BAD_VECTOR', message)
    await expectError(() => loadEmbeddingMatrix({ file, rows: [2] }), 'E_BAD_VECTOR', message)
    expect([...(await loadEmbeddingMatrix({ file, normalize: false })).data]).toEqual(values)
  })
})

describe('checkEmbeddingShape', () => {
  const header: NpyHeader = { file: 'sent1.npy', dtype: 'float16', rows: 2920, dim: 384, dataOffset: 128, byteLength: 2920 * 384 * 2 }

  it.each([
    { expected: { rows: 2921, rowsFrom: 'pairs.csv' }, code: 'E_ROW_MISMATCH', message: 'sent1.npy: 2920 embedding rows, expected 2921 (one per row of pairs.csv)' },
    { expected: { rows: 2921 }, code: 'E_ROW_MISMATCH', message: 'sent1.npy: 2920 embedding rows, expected 2921' },
    { expected: { dim: 512, dimFrom: 'sent0.npy' }, code: 'E_DIM_MISMATCH', message: 'sent1.npy: embedding dim 384, expected 512 (from sent0.npy)' },
    { expected: { dim: 512 }, code: 'E_DIM_MISMATCH', message: 'sent1.npy: embedding dim 384, expected 512' },
    { expected: { rows: 1, dim: 1 }, code: 'E_DIM_MISMATCH', message: 'sent1.npy: embedding dim 384, expected 1' },
  ])('throws $message', ({ expected, code, message }) => {
    expect(() => checkEmbeddingShape(header, expected)).toThrow(expect.objectContaining({ code, message, file: 'sent1.npy' }))
  })

  it('accepts a matching shape', () => {
    expect(() => checkEmbeddingShape(header, { rows: 2920, dim: 384, rowsFrom: 'pairs.csv', dimFrom: 'sent0.npy' })).not.toThrow()
    expect(() => checkEmbeddingShape(header, {})).not.toThrow()
  })
})

describe('byte offsets past 4 GiB', () => {
  // A sparse file: the header claims 2^28 + 8 rows of 16 bytes (> 4 GiB of data), and only
  // rows 0..1 and the last three are written. Reading them exercises offsets above 2^32
  // without writing gigabytes; any 32-bit arithmetic on offsets would read the wrong rows.
  const rows = 2 ** 28 + 8
  it.each([
    { descr: '<f4', dim: 4, encode: (v: number[]) => f32(v) },
    { descr: '<f2', dim: 8, encode: (v: number[]) => f16(v.map((x) => 0x3c00 + x)) },
  ])('reads the last rows of a sparse $descr file', async ({ descr, dim, encode }) => {
    const file = join(dir, 'big.npy')
    const header = npyHeader({ descr, rows, dim })
    const rowBytes = 16
    const fh = await open(file, 'w')
    try {
      await fh.write(header, 0, header.length, 0)
      for (const r of [0, 1, rows - 3, rows - 2, rows - 1]) {
        const row = encode(Array.from({ length: dim }, (_, i) => (r % 100) * 10 + i + 1))
        await fh.write(row, 0, row.length, header.length + r * rowBytes)
      }
      await fh.truncate(header.length + rows * rowBytes)
    } finally {
      await fh.close()
    }
    const h = await readNpyHeader(file)
    expect(h.byteLength).toBe(rows * 16)
    expect(h.dataOffset + h.byteLength).toBeGreaterThan(2 ** 32)

    const expectRow = (data: Float32Array, at: number, r: number): void => {
      const raw = Array.from({ length: dim }, (_, i) => (r % 100) * 10 + i + 1)
      const want = descr === '<f4' ? raw : raw.map((x) => halfToNumber(0x3c00 + x))
      expect([...data.subarray(at * dim, (at + 1) * dim)]).toEqual(want)
    }
    const blocks = await collect(loadEmbeddings({ file, start: rows - 3, blockRows: 2, normalize: false }))
    expect(blocks.map((b) => [b.start, b.rows])).toEqual([[rows - 3, 2], [rows - 1, 1]])
    expectRow(blocks[0]!.data, 0, rows - 3)
    expectRow(blocks[0]!.data, 1, rows - 2)
    expectRow(blocks[1]!.data, 0, rows - 1)

    const m = await loadEmbeddingMatrix({ file, normalize: false, rows: [rows - 1, 1, rows - 3, 0] })
    ;[rows - 1, 1, rows - 3, 0].forEach((r, i) => expectRow(m.data, i, r))
    const normalized = await loadEmbeddingMatrix({ file, rows: [rows - 2] })
    expect(rowNorm(normalized.data, 0, dim)).toBeCloseTo(1, 6)
  })
})
