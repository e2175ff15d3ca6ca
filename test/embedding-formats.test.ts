/**
 * Embeddings in safetensors, Arrow IPC and Parquet: each format and dtype loads exactly as
 * the .npy reference does, table rows are matched to pairs by id, every error path has
 * its whole message, and a mining run gives the same shards whatever the format.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  Field, FixedSizeList, Float32, Float64, Int64, List, Table, Utf8, tableToIPC, vectorFromArray, type DataType, type Vector,
} from 'apache-arrow'
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet'
import { parquetWriteBuffer } from 'hyparquet-writer'
import type { SchemaElement } from 'hyparquet-writer'
import { describe, expect, it } from 'vitest'
import { runHardneg, type CliIO } from '../src/cli/main.js'
import {
  collectPairs, loadEmbeddingMatrix, loadEmbeddings, mineNegatives, readEmbeddingHeader,
  type BadVector, type EmbeddingHeader, type ErrorCode,
} from '../src/index.js'
import type { EmbeddingBlock } from '../src/types.js'
import { tempDir, writeCsv, writeNpy } from './_helpers.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url))
const fixture = (name: string): string => path.join(FIXTURES, 'embeddings', name)
const SNLI = path.join(FIXTURES, 'snli')
const SENT0 = path.join(SNLI, 'snli-test-sent0.use512.f16.npy')
const SENT1 = path.join(SNLI, 'snli-test-sent1.use512.f16.npy')
const ROWS = 64
const FIRST = Int32Array.from({ length: ROWS }, (_, i) => i)
/** The fixtures' pair ids: SNLI rows have no id column, so a pair's id is its 0-based row number. */
const IDS = Array.from({ length: ROWS }, (_, i) => String(i))

/** Asserts bitwise equality (so -0 and 0 differ) and names the first differing index; fast on large arrays. */
function expectSameFloats(got: Float32Array, want: Float32Array): void {
  expect(got.length).toBe(want.length)
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length)
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length)
  let first = -1
  for (let i = 0; i < a.length && first === -1; i++) if (a[i] !== b[i]) first = i
  expect(first === -1 ? 'equal' : `first difference at ${first}: ${got[first]} vs ${want[first]}`).toBe('equal')
}

async function expectError(run: () => unknown, code: ErrorCode, message: string): Promise<void> {
  await expect((async () => run())()).rejects.toMatchObject({ name: 'HardnegError', code, message })
}

/**
 * A minimal safetensors writer for the error cases: an 8-byte little-endian header
 * length, the JSON header (or `header` verbatim), then the tensors' bytes back to back.
 */
function safetensors(tensors: Record<string, { dtype: string, shape: number[], data: Buffer }>, header?: string): Buffer {
  const entries: Record<string, unknown> = {}
  let offset = 0
  for (const [name, t] of Object.entries(tensors)) {
    entries[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] }
    offset += t.data.length
  }
  const json = Buffer.from(header ?? JSON.stringify(entries))
  const length = Buffer.alloc(8)
  length.writeBigUInt64LE(BigInt(json.length))
  return Buffer.concat([length, json, ...Object.values(tensors).map((t) => t.data)])
}

const f32 = (values: number[]): Buffer => Buffer.from(new Float32Array(values).buffer)

async function writeArrow(file: string, columns: Record<string, Vector>, format: 'file' | 'stream' = 'file'): Promise<string> {
  await writeFile(file, tableToIPC(new Table(columns), format))
  return file
}

const float32List = (size?: number, nullable = false): DataType =>
  size === undefined ? new List(new Field('item', new Float32(), nullable)) : new FixedSizeList(size, new Field('item', new Float32(), nullable))

/** A Parquet file with an optional string id column and a LIST vector column, through hyparquet-writer. */
async function writeParquet(
  file: string, o: { ids?: (string | null)[], vectors: unknown[], leaf?: 'FLOAT' | 'DOUBLE', name?: string, list?: boolean },
): Promise<string> {
  const name = o.name ?? 'embedding'
  const schema: SchemaElement[] = [{ name: 'root', num_children: o.ids === undefined ? 1 : 2 }]
  const columnData: { name: string, data: unknown[] }[] = []
  if (o.ids !== undefined) {
    schema.push({ name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' })
    columnData.push({ name: 'id', data: o.ids })
  }
  if (o.list === false) schema.push({ name, type: o.leaf ?? 'FLOAT', repetition_type: 'OPTIONAL' })
  else {
    schema.push(
      { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', type: o.leaf ?? 'FLOAT', repetition_type: 'OPTIONAL' },
    )
  }
  columnData.push({ name, data: o.vectors })
  await writeFile(file, Buffer.from(parquetWriteBuffer({ columnData: columnData as never, schema })))
  return file
}

describe('each format loads exactly as the .npy reference', () => {
  it.each([
    ['snli64.sent0.f16.safetensors', {}, { format: 'safetensors', dtype: 'float16', tensor: 'embedding' }],
    ['snli64.sent0.f32.safetensors', {}, { format: 'safetensors', dtype: 'float32', tensor: 'embedding' }],
    ['snli64.both.f16.safetensors', { key: 'sent0' }, { format: 'safetensors', dtype: 'float16', tensor: 'sent0' }],
    ['snli64.sent0.f32.arrow', {}, { format: 'arrow', dtype: 'float32', idCol: 'id', vectorCol: 'embedding' }],
    ['snli64.sent0.f16.feather', {}, { format: 'arrow', dtype: 'float16', idCol: 'id', vectorCol: 'embedding' }],
    ['snli64.sent0.f16.arrows', {}, { format: 'arrow', dtype: 'float16', idCol: 'id', vectorCol: 'vector' }],
    ['snli64.sent0.f16.parquet', {}, { format: 'parquet', dtype: 'float16', idCol: 'id', vectorCol: 'embedding' }],
    ['snli64.sent0.f32.parquet', {}, { format: 'parquet', dtype: 'float32', idCol: 'id', vectorCol: 'vector' }],
  ] as const)('%s %o', async (name, options, header) => {
    const file = fixture(name)
    expect(await readEmbeddingHeader(file, options)).toEqual({ file, rows: ROWS, dim: 512, ...header } satisfies EmbeddingHeader)
    for (const normalize of [true, false]) {
      const reference = await loadEmbeddingMatrix({ file: SENT0, rows: FIRST, normalize })
      const got = await loadEmbeddingMatrix({ file, ids: IDS, normalize, ...options })
      expect(got.rows).toBe(ROWS)
      expect(got.dim).toBe(512)
      expectSameFloats(got.data, reference.data)
    }
    // A selection: repeats, any order; positions in `ids` for tables, file rows otherwise.
    const picked = await loadEmbeddingMatrix({ file, ids: IDS, rows: [63, 0, 17, 17, 40], ...options })
    expectSameFloats(picked.data, (await loadEmbeddingMatrix({ file: SENT0, rows: [63, 0, 17, 17, 40] })).data)
  })

  it('widens bfloat16 by a 16-bit shift and normalises it like any float32 row', async () => {
    const file = fixture('snli64.sent0.bf16.safetensors')
    expect(await readEmbeddingHeader(file)).toMatchObject({ format: 'safetensors', dtype: 'bfloat16', rows: ROWS, dim: 512 })
    // Decode the tensor independently: header length, JSON, then bf16 bits as the top half of float32.
    const bytes = await readFile(file)
    const headerLength = Number(bytes.readBigUInt64LE(0))
    const entry = JSON.parse(bytes.subarray(8, 8 + headerLength).toString()).embedding as { data_offsets: [number, number] }
    const start = 8 + headerLength + entry.data_offsets[0]
    const bits = new Uint16Array(bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + start + ROWS * 512 * 2))
    const widened = new Float32Array(new Uint32Array(Array.from(bits, (b) => b << 16)).buffer)
    const dir = await tempDir()
    await writeNpy(path.join(dir, 'bf16-as-f32.npy'), { rows: ROWS, dim: 512, data: widened })
    const got = await loadEmbeddingMatrix({ file })
    expectSameFloats(got.data, (await loadEmbeddingMatrix({ file: path.join(dir, 'bf16-as-f32.npy') })).data)
    // bfloat16 keeps 8 significant bits: every value within 1% (or 1e-3) of the float16 reference.
    const reference = await loadEmbeddingMatrix({ file: SENT0, rows: FIRST })
    let worst = 0
    for (let i = 0; i < got.data.length; i++) worst = Math.max(worst, Math.abs(got.data[i]! - reference.data[i]!) - 0.01 * Math.abs(reference.data[i]!))
    expect(worst).toBeLessThan(1e-3)
  })

  it('streams safetensors blocks like .npy blocks', async () => {
    const collect = async (source: AsyncIterable<EmbeddingBlock>): Promise<EmbeddingBlock[]> => {
      const blocks: EmbeddingBlock[] = []
      for await (const block of source) blocks.push(block)
      return blocks
    }
    const got = await collect(loadEmbeddings({ file: fixture('snli64.both.f16.safetensors'), key: 'sent1', blockRows: 24, start: 3, end: 60 }))
    const want = await collect(loadEmbeddings({ file: SENT1, blockRows: 24, start: 3, end: 60 }))
    expect(got.map((b) => [b.start, b.rows, b.dim])).toEqual([[3, 24, 512], [27, 24, 512], [51, 9, 512]])
    got.forEach((block, i) => expectSameFloats(block.data, want[i]!.data))
  })

  it('takes table rows in file order without ids, and by position when there is no id column', async () => {
    const file = fixture('snli64.sent0.f16.parquet')
    const fileOrder = await loadEmbeddingMatrix({ file })
    const byId = await loadEmbeddingMatrix({ file, ids: IDS })
    expect(Buffer.from(fileOrder.data.buffer).equals(Buffer.from(byId.data.buffer))).toBe(false)
    const rowsOf = (m: { data: Float32Array }): string[] => Array.from({ length: ROWS }, (_, i) => Buffer.from(m.data.buffer, i * 2048, 2048).toString('hex'))
    expect(new Set(rowsOf(fileOrder))).toEqual(new Set(rowsOf(byId)))

    const dir = await tempDir()
    const reference = await loadEmbeddingMatrix({ file: SENT0, rows: [0, 1, 2], normalize: false })
    const vectors = [0, 1, 2].map((r) => Array.from(reference.data.subarray(r * 512, (r + 1) * 512)))
    const positional = await writeParquet(path.join(dir, 'no-id.parquet'), { vectors })
    expect(await readEmbeddingHeader(positional)).toEqual({ file: positional, format: 'parquet', dtype: 'float32', rows: 3, dim: 512, vectorCol: 'embedding' })
    const got = await loadEmbeddingMatrix({ file: positional, ids: ['x', 'y', 'z'], rows: [2, 0] })
    expectSameFloats(got.data, (await loadEmbeddingMatrix({ file: SENT0, rows: [2, 0] })).data)
  })

  it('matches ids again when the caller changes its ids array', async () => {
    const file = fixture('snli64.sent0.f32.arrow')
    const ids = IDS.slice()
    await loadEmbeddingMatrix({ file, ids, rows: [0] })
    ids[5] = 'five'
    await expectError(() => loadEmbeddingMatrix({ file, ids, rows: [0] }), 'E_ID_MISMATCH',
      `${file}:${await fileRowOf(file, '5')}: id '5' is not a pair id, expected only the 64 pair ids`)
  })

  it('finds the format from the first bytes when the extension says nothing', async () => {
    const dir = await tempDir()
    for (const [name, format] of [['snli64.sent0.f16.safetensors', 'safetensors'], ['snli64.sent0.f16.parquet', 'parquet'],
      ['snli64.sent0.f32.arrow', 'arrow'], ['snli64.sent0.f16.arrows', 'arrow']] as const) {
      const copy = path.join(dir, `${name}.bin`)
      await writeFile(copy, await readFile(fixture(name)))
      expect(await readEmbeddingHeader(copy)).toMatchObject({ format, rows: ROWS, dim: 512 })
    }
  })
})

/** 1-based row of `id` in an Arrow fixture, read with apache-arrow directly. */
async function fileRowOf(file: string, id: string): Promise<number> {
  const { tableFromIPC } = await import('apache-arrow')
  const ids = tableFromIPC(await readFile(file)).getChild('id')!.toArray() as BigInt64Array
  return Array.from(ids, String).indexOf(id) + 1
}

describe('safetensors errors', () => {
  const cases: [string, Buffer | ((f: string) => Promise<Buffer>), ErrorCode, string, string?][] = [
    ['no 2-D tensor', safetensors({ row: { dtype: 'I64', shape: [4], data: Buffer.alloc(32) } }),
      'E_EMBEDDING_HEADER', 'no 2-D tensor, expected one [rows, dim] tensor; found row I64 [4]'],
    ['no tensors at all', safetensors({}), 'E_EMBEDDING_HEADER', 'no 2-D tensor, expected one [rows, dim] tensor; found no tensors'],
    ['wrong dtype', safetensors({ embedding: { dtype: 'F64', shape: [1, 2], data: Buffer.alloc(16) } }),
      'E_EMBEDDING_HEADER', "tensor 'embedding' has dtype F64, expected F32, F16 or BF16"],
    ['offsets that do not span the shape', safetensors({ e: { dtype: 'F32', shape: [2, 2], data: Buffer.alloc(12) } }),
      'E_EMBEDDING_HEADER', "tensor 'e' data_offsets [0, 12] hold 12 bytes, expected 16 (2 x 2 x 4)"],
    ['dim 0', safetensors({ e: { dtype: 'F32', shape: [2, 0], data: Buffer.alloc(0) } }), 'E_EMBEDDING_HEADER', "tensor 'e' has shape [2, 0], expected dim >= 1"],
    ['a malformed entry', safetensors({}, '{"e": {"dtype": "F32", "shape": [1, 2]}}'), 'E_EMBEDDING_HEADER',
      `tensor 'e' has entry {"dtype":"F32","shape":[1,2]}, expected {"dtype": string, "shape": [rows, dim], "data_offsets": [begin, end]}`],
    ['bad header JSON', safetensors({}, '{"e": {"dtype": "F32",'), 'E_BAD_FILE',
      '.safetensors header is not a JSON object: {"e": {"dtype": "F32",; expected {"name": {"dtype", "shape", "data_offsets"}, ...}'],
    ['a JSON array header', safetensors({}, '[1, 2]'), 'E_BAD_FILE',
      '.safetensors header is not a JSON object: [1, 2]; expected {"name": {"dtype", "shape", "data_offsets"}, ...}'],
    ['fewer than 8 bytes', Buffer.from([1, 2, 3]), 'E_BAD_FILE', 'truncated .safetensors file: 3 bytes, expected 8 (the 8-byte header length)'],
    ['a header longer than the file', safetensors({}, '{}').subarray(0, 9), 'E_BAD_FILE', 'truncated .safetensors file: 9 bytes, expected 10 (8 + a 2-byte header)'],
    ['a header length no writer produces', Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0x7b]), 'E_BAD_FILE',
      '.safetensors header length 72057594037927936 bytes, expected at most 100000000 (is this a .safetensors file?)'],
    ['truncated tensor data', async (f) => (await readFile(fixture('snli64.sent0.f16.safetensors'))).subarray(0, 60000), 'E_BAD_FILE',
      "truncated .safetensors file: 60000 bytes, expected 65744 (8 + 200-byte header + tensor 'embedding' ending at data byte 65536)"],
  ]
  it.each(cases)('%s', async (_, content, code, message) => {
    const file = path.join(await tempDir(), 'e.safetensors')
    await writeFile(file, typeof content === 'function' ? await content(file) : content)
    await expectError(() => readEmbeddingHeader(file), code, `${file}: ${message}`)
    await expectError(() => loadEmbeddingMatrix({ file }), code, `${file}: ${message}`)
  })

  it('names the tensors when the key is unknown or when several are 2-D', async () => {
    const f32File = fixture('snli64.sent0.f32.safetensors')
    await expectError(() => readEmbeddingHeader(f32File, { key: 'nope' }), 'E_MISSING_COLUMN',
      `${f32File}: tensor 'nope' not found, expected one of: row, embedding`)
    await expectError(() => loadEmbeddingMatrix({ file: f32File, key: 'row' }), 'E_EMBEDDING_HEADER',
      `${f32File}: tensor 'row' has shape [64], expected 2-D [rows, dim]`)
    const both = fixture('snli64.both.f16.safetensors')
    await expectError(() => readEmbeddingHeader(both), 'E_BAD_OPTION',
      `${both}: 2 2-D tensors (sent0, sent1), expected one; name the one to read with embeddingKey (--embedding-key)`)
  })

  it('rejects NaN/Inf/zero rows with the .npy messages, or reports them to onBadVector', async () => {
    const file = path.join(await tempDir(), 'bad.safetensors')
    const bf16 = (values: number[]): Buffer => Buffer.from(new Uint16Array(values.map((v) => new Uint32Array(new Float32Array([v]).buffer)[0]! >>> 16)).buffer)
    await writeFile(file, safetensors({ embedding: { dtype: 'BF16', shape: [4, 2], data: bf16([1, 0, 0, Number.NaN, 0, 0, -Infinity, 1]) } }))
    await expectError(() => loadEmbeddingMatrix({ file }), 'E_BAD_VECTOR', `${file}:2: embedding row 1 (0-based) contains NaN at column 1; expected finite values`)
    await expectError(() => loadEmbeddingMatrix({ file, rows: [2] }), 'E_BAD_VECTOR', `${file}:3: embedding row 2 (0-based) is all zeros; expected a non-zero vector`)
    const bad: BadVector[] = []
    const m = await loadEmbeddingMatrix({ file, onBadVector: (b) => void bad.push(b) })
    expect(bad).toEqual([
      { file, row: 1, problem: 'NaN', column: 1 },
      { file, row: 2, problem: 'zero', column: -1 },
      { file, row: 3, problem: '-Inf', column: 0 },
    ])
    expect(Array.from(m.data.subarray(0, 2))).toEqual([1, 0])
  })

  it('reads float32 safetensors with positioned reads when a selection is given', async () => {
    const file = path.join(await tempDir(), 'e.safetensors')
    await writeFile(file, safetensors({ e: { dtype: 'F32', shape: [3, 2], data: f32([3, 4, 0, 2, 6, 8]) } }))
    const m = await loadEmbeddingMatrix({ file, rows: [2, 0, 2] })
    expect(Array.from(m.data)).toEqual([0.6, 0.8, 0.6, 0.8, 0.6, 0.8].map(Math.fround))
    await expectError(() => loadEmbeddingMatrix({ file, rows: [3] }), 'E_BAD_OPTION',
      `${file}: rows[0] = 3, expected an integer >= 0 and < 3 (the file's row count)`)
  })
})

describe('table id matching and errors', () => {
  const vectors = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]

  it('names the file, the row and the id of a missing, extra or repeated id', async () => {
    const fixtureFile = fixture('snli64.sent0.f16.parquet')
    await expectError(() => loadEmbeddingMatrix({ file: fixtureFile, ids: [...IDS, '64'], idsFrom: 'pairs.csv' }), 'E_ID_MISMATCH',
      `${fixtureFile}: no row with id '64' (pair row 65 of pairs.csv), expected one row per pair id (1 of 65 missing)`)

    const dir = await tempDir()
    const file = await writeArrow(path.join(dir, 'e.arrow'), {
      id: vectorFromArray(['a', 'b', 'c'], new Utf8()), embedding: vectorFromArray(vectors, float32List(3)),
    })
    await expectError(() => loadEmbeddingMatrix({ file, ids: ['a', 'b'], idsFrom: 'pairs.csv' }), 'E_ID_MISMATCH',
      `${file}:3: id 'c' is not a pair id, expected only the 2 pair ids of pairs.csv`)
    await expectError(() => loadEmbeddingMatrix({ file, ids: ['a', 'b', 'd', 'e'] }), 'E_ID_MISMATCH',
      `${file}:3: id 'c' is not a pair id, expected only the 4 pair ids`)
    await expectError(() => loadEmbeddingMatrix({ file, ids: ['a', 'b', 'a'], idsFrom: 'pairs.csv' }), 'E_ID_MISMATCH',
      `pairs.csv:3: pair id 'a' repeats row 1, expected unique pair ids to match the rows of ${file} by id`)

    const repeated = await writeParquet(path.join(dir, 'repeated.parquet'), { ids: ['a', 'b', 'a'], vectors })
    await expectError(() => loadEmbeddingMatrix({ file: repeated, ids: ['a', 'b', 'c'] }), 'E_ID_MISMATCH',
      `${repeated}:3: id 'a' again (first at row 1), expected each id once`)
  })

  it('matches integer ids by their decimal text and returns rows in ids order', async () => {
    const file = await writeArrow(path.join(await tempDir(), 'int.arrow'), {
      id: vectorFromArray([30n, 10n, 20n], new Int64()), embedding: vectorFromArray(vectors, float32List(3)),
    })
    const m = await loadEmbeddingMatrix({ file, ids: ['10', '20', '30'] })
    expect(Array.from(m.data)).toEqual([0, 1, 0, 0, 0, 1, 1, 0, 0])
    await expectError(() => loadEmbeddingMatrix({ file, ids: ['10', '20', '30'], rows: [0, 3] }), 'E_BAD_OPTION',
      `${file}: rows[1] = 3, expected an integer >= 0 and < 3 (the number of ids)`)
  })

  it.each(['arrow', 'parquet'] as const)('rejects a list row of another length, a null row and a null value (%s)', async (format) => {
    const dir = await tempDir()
    const write = (name: string, rows: (number | null)[][] | (number[] | null)[]): Promise<string> => format === 'arrow'
      ? writeArrow(path.join(dir, `${name}.arrow`), { id: vectorFromArray(['a', 'b', 'c'], new Utf8()), embedding: vectorFromArray(rows, float32List(undefined, true)) })
      : writeParquet(path.join(dir, `${name}.parquet`), { ids: ['a', 'b', 'c'], vectors: rows })
    const ragged = await write('ragged', [[1, 0, 0], [0, 1], [0, 0, 1]])
    expect(await readEmbeddingHeader(ragged)).toMatchObject({ rows: 3, dim: 3 })
    await expectError(() => loadEmbeddingMatrix({ file: ragged, ids: ['a', 'b', 'c'] }), 'E_BAD_VECTOR',
      `${ragged}:2: embedding row 1 (0-based) has 2 values, expected 3 (the file's vector length)`)
    expect(Array.from((await loadEmbeddingMatrix({ file: ragged, ids: ['a', 'b', 'c'], rows: [2] })).data)).toEqual([0, 0, 1])
    const nullRow = await write('null-row', [[1, 0, 0], [0, 1, 0], null])
    await expectError(() => loadEmbeddingMatrix({ file: nullRow }), 'E_BAD_VECTOR', `${nullRow}:3: embedding row 2 (0-based) is null, expected 3 values`)
    const nullValue = await write('null-value', [[1, 0, 0], [0, null, 0], [0, 0, 1]])
    await expectError(() => loadEmbeddingMatrix({ file: nullValue }), 'E_BAD_VECTOR',
      `${nullValue}:2: embedding row 1 (0-based) holds a null at column 1, expected 3 numbers`)
  })

  it('rejects NaN and zero rows with the .npy messages', async () => {
    const file = await writeArrow(path.join(await tempDir(), 'nan.arrow'), {
      id: vectorFromArray(['a', 'b', 'c'], new Utf8()), embedding: vectorFromArray([[1, 0, 0], [0, 0, 0], [0, Number.NaN, 1]], float32List(3)),
    })
    await expectError(() => loadEmbeddingMatrix({ file, ids: ['c', 'b', 'a'] }), 'E_BAD_VECTOR',
      `${file}:2: embedding row 1 (0-based) is all zeros; expected a non-zero vector`)
    await expectError(() => loadEmbeddingMatrix({ file, ids: ['c', 'a', 'b'], rows: [0, 1] }), 'E_BAD_VECTOR',
      `${file}:3: embedding row 2 (0-based) contains NaN at column 1; expected finite values`)
    const bad: BadVector[] = []
    await loadEmbeddingMatrix({ file, ids: ['c', 'b', 'a'], onBadVector: (b) => void bad.push(b) })
    expect(bad).toEqual([{ file, row: 1, problem: 'zero', column: -1 }, { file, row: 2, problem: 'NaN', column: 1 }])
  })

  it('rejects vector and id columns of the wrong type, missing columns and null ids', async () => {
    const dir = await tempDir()
    const f64 = await writeArrow(path.join(dir, 'f64.arrow'), {
      id: vectorFromArray(['a'], new Utf8()), embedding: vectorFromArray([[1, 0]], new FixedSizeList(2, new Field('item', new Float64()))),
    })
    await expectError(() => readEmbeddingHeader(f64), 'E_EMBEDDING_HEADER',
      `${f64}: column 'embedding' has type FixedSizeList[2]<Float64>, expected a fixed-size list (or list) of Float32 or Float16`)
    const double = await writeParquet(path.join(dir, 'double.parquet'), { ids: ['a'], vectors: [[1, 0]], leaf: 'DOUBLE' })
    await expectError(() => readEmbeddingHeader(double), 'E_EMBEDDING_HEADER',
      `${double}: column 'embedding' is a list of DOUBLE, expected a list of FLOAT or FLOAT16`)
    const flat = await writeParquet(path.join(dir, 'flat.parquet'), { ids: ['a'], vectors: [1], list: false })
    await expectError(() => readEmbeddingHeader(flat), 'E_EMBEDDING_HEADER', `${flat}: column 'embedding' is FLOAT, expected a list of FLOAT or FLOAT16`)
    const floatIds = await writeArrow(path.join(dir, 'float-ids.arrow'), {
      id: vectorFromArray([1.5], new Float64()), embedding: vectorFromArray([[1, 0]], float32List(2)),
    })
    await expectError(() => readEmbeddingHeader(floatIds), 'E_EMBEDDING_HEADER', `${floatIds}: id column 'id' has type Float64, expected strings or integers`)

    const other = await writeArrow(path.join(dir, 'other.arrow'), {
      key: vectorFromArray(['a'], new Utf8()), emb: vectorFromArray([[1, 0]], float32List(2)),
    })
    await expectError(() => readEmbeddingHeader(other), 'E_MISSING_COLUMN',
      `${other}: no column 'embedding' or 'vector', expected one of them (or a vector column named in the options); found columns: key, emb`)
    await expectError(() => readEmbeddingHeader(other, { vectorCol: 'vec' }), 'E_MISSING_COLUMN', `${other}: no vector column 'vec'; found columns: key, emb`)
    await expectError(() => readEmbeddingHeader(other, { vectorCol: 'emb', idCol: 'id' }), 'E_MISSING_COLUMN', `${other}: no id column 'id'; found columns: key, emb`)
    expect(await readEmbeddingHeader(other, { vectorCol: 'emb', idCol: 'key' })).toMatchObject({ idCol: 'key', vectorCol: 'emb', rows: 1, dim: 2 })

    const nullId = await writeParquet(path.join(dir, 'null-id.parquet'), { ids: ['a', null], vectors: [[1, 0], [0, 1]] })
    await expectError(() => loadEmbeddingMatrix({ file: nullId, ids: ['a', 'b'] }), 'E_BAD_ROW',
      `${nullId}:2: id column 'id' holds null, expected a string or an integer`)
  })

  it.each(['snli2.sent0.f16.lz4.feather', 'snli2.sent0.f16.lz4.arrows'])('refuses lz4-compressed Arrow buffers with advice (%s)', async (name) => {
    const file = fixture(name)
    const load = name.endsWith('.feather') ? () => readEmbeddingHeader(file) : () => loadEmbeddingMatrix({ file })
    await expectError(load, 'E_BAD_FILE',
      `${file}: record batch 1 is LZ4_FRAME-compressed, expected uncompressed or zstd buffers (pyarrow: feather.write_feather(table, path, compression='zstd'))`)
  })

  it('leaves streaming to the dense formats', async () => {
    const file = fixture('snli64.sent0.f16.parquet')
    await expectError(async () => {
      for await (const block of loadEmbeddings({ file })) void block
    }, 'E_BAD_OPTION', `${file}: loadEmbeddings streams .npy and .safetensors files, found a Parquet file; load it with loadEmbeddingMatrix`)
  })
})

describe('mining with other formats', () => {
  /** The first 64 SNLI triplets as a CSV, and their sent0/sent1 embeddings as float16 .npy. */
  async function snli64(dir: string): Promise<{ pairs: string, q: string, p: string }> {
    const pairs = (await collectPairs({ file: path.join(SNLI, 'snli-test-triplets.csv'), preset: 'simcse' })).slice(0, ROWS)
    const csv = path.join(dir, 'pairs.csv')
    await writeCsv(csv, ['sent0', 'sent1', 'hard_neg'], pairs.map((p) => [p.query, p.positive, String(p.carried.orig_hard_neg)]))
    const q = path.join(dir, 'q.npy')
    const p = path.join(dir, 'p.npy')
    await writeNpy(q, await loadEmbeddingMatrix({ file: SENT0, rows: FIRST, normalize: false }), 'f2')
    await writeNpy(p, await loadEmbeddingMatrix({ file: SENT1, rows: FIRST, normalize: false }), 'f2')
    return { pairs: csv, q, p }
  }

  async function shards(dir: string): Promise<Map<string, Buffer>> {
    const names = (await readdir(dir)).filter((n) => n.startsWith('part-')).sort()
    return new Map(await Promise.all(names.map(async (n) => [n, await readFile(path.join(dir, n))] as const)))
  }

  it('writes byte-identical shards from safetensors, Parquet (shuffled, by id) and .npy', async () => {
    const dir = await tempDir()
    const { pairs, q, p } = await snli64(dir)
    const run = async (name: string, queryEmbeddings: string, positiveEmbeddings: string): Promise<Map<string, Buffer>> => {
      const out = path.join(dir, name)
      await mineNegatives({ pairs, preset: 'simcse', queryEmbeddings, positiveEmbeddings, out, k: 4, threshold: 0.1, search: 'exact', threads: 1 })
      return shards(out)
    }
    const npy = await run('npy', q, p)
    expect(npy.size).toBe(1)
    expect(await run('safetensors', fixture('snli64.sent0.f16.safetensors'), fixture('snli64.sent1.f16.safetensors'))).toEqual(npy)
    expect(await run('parquet', fixture('snli64.sent0.f16.parquet'), fixture('snli64.sent1.f16.parquet'))).toEqual(npy)
  })

  it('matches the ids of a table to the pair ids before writing anything', async () => {
    const dir = await tempDir()
    const { pairs, p } = await snli64(dir)
    // The same pairs with an id column in which pair row 11 has the id 'x' instead of '10'.
    const lines = (await readFile(pairs, 'utf8')).trimEnd().split('\n')
    const withIds = path.join(dir, 'with-ids.csv')
    await writeFile(withIds, [`id,${lines[0]}`, ...lines.slice(1).map((line, i) => `${i === 10 ? 'x' : i},${line}`)].join('\n') + '\n')
    const file = fixture('snli64.sent0.f16.parquet')
    const fileIds = (await parquetReadObjects({ file: await asyncBufferFromFile(file), columns: ['id'] })).map((r) => r.id as string)
    const out = path.join(dir, 'out')
    await expectError(() => mineNegatives({ pairs: withIds, preset: 'simcse', idCol: 'id', queryEmbeddings: file, positiveEmbeddings: p, out }),
      'E_ID_MISMATCH', `${file}:${fileIds.indexOf('10') + 1}: id '10' is not a pair id, expected only the 64 pair ids of ${withIds}`)
    await expect(readdir(out)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('passes --embedding-key, --embedding-col and --embedding-id-col through the CLI', async () => {
    const dir = await tempDir()
    const { pairs, p } = await snli64(dir)
    const cli = async (args: string[]): Promise<{ code: number, err: string }> => {
      const err: string[] = []
      const io: CliIO = { stdout: () => {}, stderr: (t) => void err.push(t), stderrIsTTY: false }
      const code = await runHardneg(['mine', '--pairs', pairs, '--preset', 'simcse', '--positive-embeddings', p,
        '--out', path.join(dir, 'out'), '--quiet', ...args], io)
      return { code, err: err.join('') }
    }
    const both = fixture('snli64.both.f16.safetensors')
    expect(await cli(['--query-embeddings', both, '--embedding-key', 'nope'])).toEqual({
      code: 2, err: `hardneg: error E_MISSING_COLUMN: ${both}: tensor 'nope' not found, expected one of: sent0, sent1\n`,
    })
    const table = fixture('snli64.sent0.f16.arrows')
    expect(await cli(['--query-embeddings', table, '--embedding-col', 'vec'])).toEqual({
      code: 2, err: `hardneg: error E_MISSING_COLUMN: ${table}: no vector column 'vec'; found columns: id, vector\n`,
    })
    expect(await cli(['--query-embeddings', table, '--embedding-id-col', 'pair_id'])).toEqual({
      code: 2, err: `hardneg: error E_MISSING_COLUMN: ${table}: no id column 'pair_id'; found columns: id, vector\n`,
    })
    expect(await cli(['--query-embeddings', both, '--embedding-key', 'sent0', '--k', '2', '--search', 'exact', '--threads', '1'])).toEqual({ code: 0, err: '' })
  })
})
