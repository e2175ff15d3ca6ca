/**
 * Load embeddings: read `.npy` matrices (float32 or float16, written by `numpy.save`),
 * safetensors tensors (F32, F16, BF16), and Arrow IPC / Parquet tables (an id column and
 * a list-of-float vector column) as L2-normalised float32 rows, streamed in blocks or
 * gathered into one matrix. See docs/embedding-formats.md.
 *
 * `.npy` and safetensors files of any size are read through one FileHandle at explicit
 * byte offsets (plain numbers, exact up to 2^53) in chunks of at most 16 MiB, the next
 * chunk's read running while the current one is decoded; nothing here reads a whole file.
 * Tables are read one record batch / row group at a time (`_embeddings-table.ts`).
 */

import { open, type FileHandle } from 'node:fs/promises'
import { extname } from 'node:path'
import { endianness } from 'node:os'
import { halfTable } from './_float16.js'
import { readSafetensorsLayout } from './_safetensors.js'
import { gatherTableRows, tableRows, type TableSource } from './_embeddings-table.js'
import {
  copyRow, decodeBf16Row, decodeHalfRow, finishRow, sortedOrder, sumSquares,
  type BadVector, type EmbeddingDtype, type RowRule,
} from './_vectors.js'
import { HardnegError } from './errors.js'
import type { EmbeddingBlock, EmbeddingMatrix } from './types.js'

export type { BadVector, EmbeddingDtype } from './_vectors.js'

/** Embedding file formats, chosen by extension (else by the file's first bytes). */
export type EmbeddingFormat = 'npy' | 'safetensors' | 'arrow' | 'parquet'

/** How to find the embeddings inside a file that can hold more than one array. */
export interface EmbeddingFileOptions {
  key?: string // safetensors: name of the tensor to read (default: the file's only 2-D tensor)
  idCol?: string // Arrow/Parquet: id column whose values are matched to `ids`; when given it must exist (default 'id'; a file without it is read by position)
  vectorCol?: string // Arrow/Parquet: vector column, a (fixed-size) list of float32/float16 (default 'embedding', else 'vector')
}

/** What {@link readEmbeddingHeader} finds, whatever the format. */
export interface EmbeddingHeader {
  file: string // path as the user gave it
  format: EmbeddingFormat // container format
  dtype: EmbeddingDtype // element type on disk ('bfloat16' only in safetensors)
  rows: number // number of embedding rows
  dim: number // vector dimension
  idCol?: string // Arrow/Parquet: the id column rows are matched by; absent: row i belongs to pair row i
  tensor?: string // safetensors: the tensor read
  vectorCol?: string // Arrow/Parquet: the vector column read
}

/** What a `.npy` header says about the matrix that follows it. */
export interface NpyHeader {
  file: string // path as the user gave it
  dtype: 'float32' | 'float16' // element type on disk (always little-endian)
  rows: number // number of embedding rows (shape[0])
  dim: number // vector dimension (shape[1])
  dataOffset: number // byte offset of row 0 in the file (the header length)
  byteLength: number // bytes of array data: rows * dim * 4 (float32) or * 2 (float16)
}

/** Options of {@link loadEmbeddings}. */
export interface LoadEmbeddingsOptions {
  file: string // path of a 2-D float32/float16 .npy file, or a .safetensors file
  key?: string // safetensors: the tensor to read (default: the file's only 2-D tensor)
  blockRows?: number // rows per yielded block; the last block may be shorter (default 8192)
  normalize?: boolean // L2-normalise every row; false yields the stored values (default true)
  start?: number // 0-based index of the first row to read (default 0)
  end?: number // 0-based index one past the last row to read (default: the file's row count)
  onBadVector?: (bad: BadVector) => void // called for a NaN/Inf row (or, when normalising, an all-zero row) instead of throwing E_BAD_VECTOR; the row is yielded as stored (default: throw)
}

/** Options of {@link loadEmbeddingMatrix}. */
export interface LoadEmbeddingMatrixOptions extends EmbeddingFileOptions {
  file: string // .npy, .safetensors, Arrow IPC (.arrow/.feather/.arrows) or .parquet; see EmbeddingFormat
  normalize?: boolean // L2-normalise every row; false returns the stored values (default true)
  rows?: Int32Array | number[] // 0-based rows to gather, in this order, repeats allowed; positions in `ids` when the file is matched by id, else file rows (default: all rows)
  ids?: readonly string[] // the pair ids in pair order; a file with an id column returns the row of each id (or of `ids[rows[j]]`) in this order; files read by position ignore it (default: none, file order)
  idsFrom?: string // where `ids` come from, for messages, e.g. 'pairs.csv' (default: none)
  onBadVector?: (bad: BadVector) => void // as in {@link LoadEmbeddingsOptions}: report a NaN/Inf/zero row instead of throwing (default: throw)
}

/** The shape a caller expects of an embedding file; see {@link checkEmbeddingShape}. */
export interface ExpectedShape {
  rows?: number // expected row count (default: not checked)
  dim?: number // expected vector dimension (default: not checked)
  rowsFrom?: string // where `rows` comes from, for the message, e.g. 'pairs.csv' (default: none)
  dimFrom?: string // where `dim` comes from, for the message, e.g. 'sent0.npy' (default: none)
}

/**
 * Embedding blocks that can be read any number of times: every `for await` reopens
 * `file`, reads its header again and streams rows `start` .. `end - 1` in order.
 */
export interface EmbeddingSource extends AsyncIterable<EmbeddingBlock> {
  readonly file: string // path as the user gave it
  readonly replayable: true // each iteration rereads the file from `start`
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // '\x93NUMPY'
const MAX_HEADER_BYTES = 1 << 20
const CHUNK_BYTES = 16 * 1024 * 1024 // raw bytes per read call
const DTYPES: ReadonlyMap<string, NpyHeader['dtype']> = new Map([
  ['<f4', 'float32'], ['=f4', 'float32'], ['|f4', 'float32'], ['f4', 'float32'],
  ['<f2', 'float16'], ['=f2', 'float16'], ['|f2', 'float16'], ['f2', 'float16'],
])

/**
 * Reads and checks the header of a `.npy` file (format versions 1.0, 2.0 and 3.0): a
 * C-order 2-D array of little-endian float32 (`'<f4'`) or float16 (`'<f2'`), with the
 * file long enough to hold all rows.
 *
 * Throws `HardnegError` `E_BAD_FILE` when the file cannot be opened, is not a `.npy`
 * file or is truncated, and `E_NPY_HEADER` when the header describes anything else.
 *
 * @example
 * const h = await readNpyHeader('sent0.npy')
 * // { file: 'sent0.npy', dtype: 'float16', rows: 2921, dim: 512, dataOffset: 128, byteLength: 2991104 }
 */
export async function readNpyHeader(file: string): Promise<NpyHeader> {
  const fh = await openNpy(file)
  try {
    return await readHeaderFrom(fh, file)
  } finally {
    await fh.close()
  }
}

/**
 * Reads the header of an embedding file in any supported format and reports its shape.
 * The format comes from the extension: `.npy`; `.safetensors`; `.arrow`, `.feather`,
 * `.arrows`, `.ipc` (Arrow IPC file or stream); `.parquet`; any other name is sniffed
 * from its first bytes. Nothing beyond headers is read, except for an Arrow stream
 * (which has no index: one pass counts its rows) or a table whose vector column is a
 * variable-size list (its first row gives the length).
 *
 * `.npy` errors are those of {@link readNpyHeader}. safetensors: `E_BAD_FILE` (truncated,
 * header not JSON), `E_MISSING_COLUMN` (`key` names no tensor), `E_BAD_OPTION` (several
 * 2-D tensors and no `key`), `E_EMBEDDING_HEADER` (no 2-D tensor, dtype other than
 * F32/F16/BF16, inconsistent offsets). Arrow/Parquet: `E_MISSING_COLUMN` (no vector
 * column, or no `idCol` when one is given), `E_EMBEDDING_HEADER` (the vector column is
 * not a list of float32/float16, or the id column holds neither strings nor integers).
 *
 * @example
 * const h = await readEmbeddingHeader('sent0.safetensors')
 * // { file: 'sent0.safetensors', format: 'safetensors', dtype: 'float16', rows: 2921, dim: 512, tensor: 'embedding' }
 * const t = await readEmbeddingHeader('sent0.parquet')
 * // { ..., format: 'parquet', idCol: 'id', vectorCol: 'embedding' }: rows are matched to pairs by id
 */
export async function readEmbeddingHeader(file: string, options: EmbeddingFileOptions = {}): Promise<EmbeddingHeader> {
  const format = await formatOf(file)
  if (format === 'arrow' || format === 'parquet') {
    const source = await openTable(file, format, options)
    try {
      const { dtype, dim, idCol, vectorCol } = source
      return { file, format, dtype, rows: tableRows(source), dim, ...(idCol !== undefined ? { idCol } : {}), vectorCol }
    } finally {
      await source.close()
    }
  }
  const fh = await openNpy(file, format)
  try {
    const { dtype, rows, dim, tensor } = await readDenseLayout(fh, file, format, options.key)
    return { file, format, dtype, rows, dim, ...(tensor !== undefined ? { tensor } : {}) }
  } finally {
    await fh.close()
  }
}

/**
 * Streams the rows of a `.npy` or `.safetensors` embedding file (the tensor `key`, else
 * the only 2-D one) as float32 blocks of `blockRows` rows, in file order. Arrow and
 * Parquet files are an `E_BAD_OPTION` error here: load them with {@link loadEmbeddingMatrix}.
 * Each block owns its `data` (a fresh Float32Array), so consumers may keep it;
 * the stream itself holds at most two blocks (the one yielded and the one being read).
 * The result can be iterated any number of times; each iteration reopens the file and
 * closes it when the loop ends, breaks or throws.
 *
 * With `normalize` (the default) row `x` becomes `y[i] = Math.fround(x[i] / norm)` where
 * `norm = Math.sqrt(x[0]*x[0] + x[1]*x[1] + ...)`, summed left to right in float64 over
 * the float32 values (float16 values are widened to float32 exactly). A row holding NaN
 * or ±Inf is always an `E_BAD_VECTOR` error; an all-zero row is one only when normalising.
 * With `onBadVector`, such a row is reported to it instead and yielded as stored, so a
 * checker can list every bad row in one pass.
 *
 * Option errors (`E_BAD_OPTION`) for `blockRows`, `start` and `end` that do not depend
 * on the file are thrown here; the rest surface on iteration.
 *
 * @example
 * for await (const block of loadEmbeddings({ file: 'sent0.npy', blockRows: 4096 })) {
 *   // block.data holds rows block.start .. block.start + block.rows - 1, unit length
 * }
 */
export function loadEmbeddings(options: LoadEmbeddingsOptions): EmbeddingSource {
  const { file } = options
  const blockRows = options.blockRows ?? 8192
  if (!Number.isSafeInteger(blockRows) || blockRows < 1) {
    throw new HardnegError('E_BAD_OPTION', `blockRows ${blockRows}, expected a positive integer`)
  }
  const start = options.start ?? 0
  const end = options.end
  for (const [name, value] of [['start', start], ['end', end]] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      throw new HardnegError('E_BAD_OPTION', `${name} ${value}, expected a non-negative integer`)
    }
  }
  const normalize = options.normalize ?? true
  return {
    file,
    replayable: true,
    [Symbol.asyncIterator]: () => streamBlocks(file, options.key, blockRows, normalize, start, end, options.onBadVector),
  }
}

async function* streamBlocks(
  file: string, key: string | undefined, blockRows: number, normalize: boolean, start: number, end: number | undefined,
  onBadVector: ((bad: BadVector) => void) | undefined,
): AsyncGenerator<EmbeddingBlock> {
  const format = await formatOf(file)
  if (format === 'arrow' || format === 'parquet') {
    throw new HardnegError('E_BAD_OPTION',
      `loadEmbeddings streams .npy and .safetensors files, found ${format === 'arrow' ? 'an Arrow IPC' : 'a Parquet'} file; load it with loadEmbeddingMatrix`,
      { file })
  }
  const fh = await openNpy(file, format)
  try {
    const h = await readDenseLayout(fh, file, format, key)
    const stop = end ?? h.rows
    if (start > stop || stop > h.rows) {
      throw new HardnegError('E_BAD_OPTION',
        `start ${start} and end ${stop} out of range, expected 0 <= start <= end <= ${h.rows} (the file's row count)`,
        { file })
    }
    const reader = new RowReader(fh, h, normalize, onBadVector)
    const plan = function* (): Generator<Chunk> {
      for (let first = start; first < stop; first += blockRows) {
        const rows = Math.min(blockRows, stop - first)
        yield* reader.split(first, rows, new Float32Array(rows * h.dim))
      }
    }
    // Chunks run across block boundaries so that the next block's read overlaps this one's decoding.
    for await (const c of reader.decode(plan())) {
      const rows = c.out.length / h.dim
      if (c.outRow + c.count === rows) yield { start: c.first - c.outRow, rows, dim: h.dim, data: c.out }
    }
  } finally {
    await fh.close()
  }
}

/**
 * Reads a whole embedding file, or the rows listed in `rows`, into one row-major
 * Float32Array allocated once, in any format {@link readEmbeddingHeader} reads.
 *
 * Which rows: `.npy`, safetensors, and tables without an id column are read by position:
 * `rows` are file rows and `ids` is ignored. A table with an id column (`idCol`, default
 * 'id') is matched by id when `ids` is given: `ids` lists the pair ids in pair order,
 * result row j is the file row whose id is `ids[j]` (or `ids[rows[j]]` with `rows`), so
 * the file may hold its rows in any order. Every pair id must be in the file exactly
 * once and the file may hold no other id, else `E_ID_MISMATCH` names the file, the row
 * and the id (a repeated pair id names `idsFrom` and its row). Integer ids match their
 * decimal text. The match is computed once per `ids` array, file and id column and
 * reused while the file and the array's contents are unchanged, so a caller loading one
 * group at a time pays for one read of the id column. Without `ids`, a table's rows are
 * taken in file order.
 *
 * Memory and reads: `.npy`/safetensors selections are gathered while streaming, so memory
 * is the result plus two 16 MiB read buffers and only the file ranges holding selected
 * rows are read; a whole file is read straight into the result. Tables decode only the
 * record batches (Arrow) or row groups (Parquet) holding a selected row, one at a time.
 * Normalisation and `E_BAD_VECTOR` rules are those of {@link loadEmbeddings}, applied to
 * the rows loaded; a table row that is null, holds a null or has another length than the
 * file's vectors is `E_BAD_VECTOR` too (never passed to `onBadVector`). A selected index
 * that is not an integer in range is an `E_BAD_OPTION` error.
 *
 * @example
 * const queries = await loadEmbeddingMatrix({ file: 'sent0.npy' })
 * const picked = await loadEmbeddingMatrix({ file: 'sent1.npy', rows: [7, 3, 7] })
 * // picked.rows === 3; picked.data row 0 and row 2 are both file row 7
 * const byId = await loadEmbeddingMatrix({ file: 'sent0.parquet', ids: pairs.map((p) => p.id), idsFrom: 'pairs.csv' })
 * // byId row i is the embedding of pairs[i], wherever the file holds it
 */
export async function loadEmbeddingMatrix(options: LoadEmbeddingMatrixOptions): Promise<EmbeddingMatrix> {
  const { file, rows: selection } = options
  const format = await formatOf(file)
  if (format === 'arrow' || format === 'parquet') {
    const source = await openTable(file, format, options)
    try {
      return await gatherTableRows(source, {
        rows: selection, ids: options.ids, idsFrom: options.idsFrom, normalize: options.normalize ?? true, onBadVector: options.onBadVector,
      })
    } finally {
      await source.close()
    }
  }
  const fh = await openNpy(file, format)
  try {
    const h = await readDenseLayout(fh, file, format, options.key)
    const reader = new RowReader(fh, h, options.normalize ?? true, options.onBadVector)
    if (selection === undefined) {
      const data = new Float32Array(h.rows * h.dim)
      await drain(reader.decode(reader.split(0, h.rows, data)))
      return { rows: h.rows, dim: h.dim, data }
    }
    for (let i = 0; i < selection.length; i++) {
      const r = selection[i]!
      if (!Number.isInteger(r) || r < 0 || r >= h.rows) {
        throw new HardnegError('E_BAD_OPTION',
          `rows[${i}] = ${r}, expected an integer >= 0 and < ${h.rows} (the file's row count)`, { file })
      }
    }
    return { rows: selection.length, dim: h.dim, data: await reader.gather(selection) }
  } finally {
    await fh.close()
  }
}

/**
 * Checks a header against the shape the caller expects: the dimension first, then the
 * row count. Throws `E_DIM_MISMATCH` as
 * `sent1.npy: embedding dim 384, expected 512 (from sent0.npy)` and `E_ROW_MISMATCH` as
 * `sent1.npy: 2920 embedding rows, expected 2921 (one per row of pairs.csv)`; the
 * parenthesised part appears only when `dimFrom` / `rowsFrom` is given.
 *
 * @example
 * checkEmbeddingShape(await readNpyHeader('sent1.npy'), { rows: pairs.length, rowsFrom: 'pairs.csv', dim: 512, dimFrom: 'sent0.npy' })
 */
export function checkEmbeddingShape(header: Pick<EmbeddingHeader, 'file' | 'rows' | 'dim'>, expected: ExpectedShape): void {
  const place = { file: header.file }
  if (expected.dim !== undefined && header.dim !== expected.dim) {
    const from = expected.dimFrom === undefined ? '' : ` (from ${expected.dimFrom})`
    throw new HardnegError('E_DIM_MISMATCH', `embedding dim ${header.dim}, expected ${expected.dim}${from}`, place)
  }
  if (expected.rows !== undefined && header.rows !== expected.rows) {
    const from = expected.rowsFrom === undefined ? '' : ` (one per row of ${expected.rowsFrom})`
    throw new HardnegError('E_ROW_MISMATCH', `${header.rows} embedding rows, expected ${expected.rows}${from}`, place)
  }
}

async function openNpy(file: string, format: 'npy' | 'safetensors' = 'npy'): Promise<FileHandle> {
  try {
    return await open(file, 'r')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err)
    throw new HardnegError('E_BAD_FILE', `cannot open (${reason}), expected a readable .${format} file`, { file })
  }
}

const EXTENSIONS: ReadonlyMap<string, EmbeddingFormat> = new Map([
  ['.npy', 'npy'], ['.safetensors', 'safetensors'], ['.parquet', 'parquet'],
  ['.arrow', 'arrow'], ['.feather', 'arrow'], ['.arrows', 'arrow'], ['.ipc', 'arrow'],
])

/** The format by extension, else by the first bytes; unknown content falls to `.npy` and its errors. */
async function formatOf(file: string): Promise<EmbeddingFormat> {
  const known = EXTENSIONS.get(extname(file).toLowerCase())
  if (known !== undefined) return known
  let head: Buffer
  try {
    const fh = await open(file, 'r')
    try {
      head = Buffer.alloc(9)
      head = head.subarray(0, (await fh.read(head, 0, 9, 0)).bytesRead)
    } finally {
      await fh.close()
    }
  } catch {
    return 'npy' // the .npy reader reports the open error
  }
  const text = head.toString('latin1')
  if (text.startsWith('PAR1')) return 'parquet'
  if (text.startsWith('ARROW1') || head.subarray(0, 4).equals(Buffer.from([0xff, 0xff, 0xff, 0xff]))) return 'arrow'
  if (head.length === 9 && head[8] === 0x7b && head.readBigUInt64LE(0) < 100_000_000n) return 'safetensors' // length, then '{'
  return 'npy'
}

/** Opens an Arrow or Parquet table; their readers load on first use. */
async function openTable(file: string, format: 'arrow' | 'parquet', options: EmbeddingFileOptions): Promise<TableSource> {
  const columns = { ...(options.idCol !== undefined ? { idCol: options.idCol } : {}), ...(options.vectorCol !== undefined ? { vectorCol: options.vectorCol } : {}) }
  if (format === 'arrow') return (await import('./_embeddings-arrow.js')).openArrowSource(file, columns)
  return (await import('./_embeddings-parquet.js')).openParquetEmbeddings(file, columns)
}

/** Where the rows of a `.npy` or safetensors file lie: a dense row-major matrix at `dataOffset`. */
interface DenseLayout {
  file: string // path as the user gave it
  dtype: EmbeddingDtype // element type on disk, little-endian
  rows: number // number of rows
  dim: number // values per row
  dataOffset: number // byte offset of row 0
  tensor?: string // safetensors: the tensor's name
}

async function readDenseLayout(fh: FileHandle, file: string, format: 'npy' | 'safetensors', key: string | undefined): Promise<DenseLayout> {
  if (format === 'npy') return readHeaderFrom(fh, file)
  if (endianness() !== 'LE') throw new Error('hardneg reads safetensors data through typed arrays, which needs a little-endian host')
  const stat = await fh.stat()
  if (!stat.isFile()) throw new HardnegError('E_BAD_FILE', 'not a regular file, expected a .safetensors file', { file })
  return readSafetensorsLayout((target, position) => readFully(fh, target, position, file), stat.size, file, key)
}

async function readHeaderFrom(fh: FileHandle, file: string): Promise<NpyHeader> {
  if (endianness() !== 'LE') throw new Error('hardneg reads .npy data through typed arrays, which needs a little-endian host')
  const stat = await fh.stat()
  if (!stat.isFile()) throw new HardnegError('E_BAD_FILE', 'not a regular file, expected a .npy file', { file })
  const size = stat.size
  const truncated = (need: number, what: string): HardnegError =>
    new HardnegError('E_BAD_FILE', `truncated .npy file: ${size} bytes, expected ${need} (${what})`, { file })

  const pre = new Uint8Array(Math.min(12, size))
  await readFully(fh, pre, 0, file)
  for (let i = 0; i < MAGIC.length; i++) {
    if (i === pre.length) throw truncated(10, 'the .npy preamble')
    if (pre[i] !== MAGIC[i]) {
      throw new HardnegError('E_BAD_FILE',
        `not a .npy file: starts with '${showBytes(pre.subarray(0, 6))}', expected '\\x93NUMPY'`, { file })
    }
  }
  if (pre.length < 8) throw truncated(10, 'the .npy preamble')
  const major = pre[6]!
  const minor = pre[7]!
  if (minor !== 0 || major < 1 || major > 3) {
    throw new HardnegError('E_NPY_HEADER', `.npy format version ${major}.${minor} not supported, expected 1.0, 2.0 or 3.0`, { file })
  }
  const preLen = major === 1 ? 10 : 12
  if (pre.length < preLen) throw truncated(preLen, 'the .npy preamble')
  const view = new DataView(pre.buffer, pre.byteOffset, pre.byteLength)
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  if (headerLen > MAX_HEADER_BYTES) {
    throw new HardnegError('E_NPY_HEADER', `.npy header length ${headerLen} bytes, expected at most ${MAX_HEADER_BYTES}`, { file })
  }
  const dataOffset = preLen + headerLen
  if (size < dataOffset) throw truncated(dataOffset, `a ${dataOffset}-byte header`)
  const raw = new Uint8Array(headerLen)
  await readFully(fh, raw, preLen, file)
  const text = major === 3 ? Buffer.from(raw).toString('utf8') : Buffer.from(raw).toString('latin1')

  const fields = parseHeaderDict(text, file)
  for (const key of ['descr', 'fortran_order', 'shape']) {
    if (!fields.has(key)) {
      throw new HardnegError('E_NPY_HEADER',
        `.npy header has no '${key}' key, expected keys 'descr', 'fortran_order' and 'shape'`, { file })
    }
  }
  const descr = fields.get('descr')
  const dtype = typeof descr === 'string' ? DTYPES.get(descr) : undefined
  if (dtype === undefined) {
    throw new HardnegError('E_NPY_HEADER',
      `dtype ${pyRepr(descr)} not supported, expected float32 ('<f4') or float16 ('<f2')`, { file })
  }
  const fortran = fields.get('fortran_order')
  if (fortran === true) {
    throw new HardnegError('E_NPY_HEADER',
      'fortran_order True not supported, expected C order; save with np.save(path, np.ascontiguousarray(arr))', { file })
  }
  if (fortran !== false) {
    throw new HardnegError('E_NPY_HEADER', `fortran_order ${pyRepr(fortran)} not understood, expected True or False`, { file })
  }
  const shape = fields.get('shape')
  const dims = isTuple(shape) ? shape.tuple : undefined
  if (dims?.length !== 2 || !dims.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new HardnegError('E_NPY_HEADER', `shape ${pyRepr(shape)} not supported, expected 2-D (rows, dim)`, { file })
  }
  const [rows, dim] = dims as [number, number]
  if (dim === 0) throw new HardnegError('E_NPY_HEADER', `shape ${pyRepr(shape)} has dim 0, expected dim >= 1`, { file })
  const itemSize = dtype === 'float32' ? 4 : 2
  const byteLength = rows * dim * itemSize
  if (size < dataOffset + byteLength) {
    throw truncated(dataOffset + byteLength, `${dataOffset}-byte header + ${rows} rows x ${dim} dim x ${itemSize} bytes`)
  }
  return { file, dtype, rows, dim, dataOffset, byteLength }
}

/** Fills `target` from byte `position` on; short reads are retried, end of file is an error. */
async function readFully(fh: FileHandle, target: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0
  while (done < target.byteLength) {
    const length = Math.min(target.byteLength - done, CHUNK_BYTES)
    const { bytesRead } = await fh.read(target, done, length, position + done)
    if (bytesRead === 0) {
      throw new HardnegError('E_BAD_FILE',
        `file ended at byte ${position + done}, expected ${position + target.byteLength} bytes (did it change while being read?)`,
        { file })
    }
    done += bytesRead
  }
}

/** File rows `first` .. `first + count - 1`, bound for rows `outRow` .. `outRow + count - 1` of `out`. */
interface Chunk {
  first: number
  count: number
  out: Float32Array
  outRow: number
}

/** A scratch read buffer with a view for each dtype. */
interface Slot {
  bytes: Uint8Array
  half: Uint16Array
  single: Float32Array
}

/**
 * Reads rows of one open file and turns them into (normalised) float32 rows, keeping the
 * next read in flight while the current chunk is decoded.
 */
class RowReader {
  readonly chunkRows: number
  private readonly rowBytes: number
  private readonly table = halfTable()
  private readonly slots: Slot[] = []
  private readonly rule: RowRule

  constructor(
    private readonly fh: FileHandle,
    private readonly h: DenseLayout,
    normalize: boolean,
    onBadVector?: (bad: BadVector) => void,
  ) {
    this.rowBytes = h.dim * (h.dtype === 'float32' ? 4 : 2)
    this.chunkRows = Math.max(1, Math.floor(CHUNK_BYTES / this.rowBytes))
    this.rule = { file: h.file, dim: h.dim, normalize, onBadVector }
  }

  /** Splits file rows `first` .. `first + count - 1` into read-sized chunks bound for `out`. */
  * split(first: number, count: number, out: Float32Array): Generator<Chunk> {
    for (let done = 0; done < count; done += this.chunkRows) {
      yield { first: first + done, count: Math.min(this.chunkRows, count - done), out, outRow: done }
    }
  }

  /** Reads, decodes and finishes the chunks of `plan` in order, yielding each once its rows are in `out`. */
  async* decode<C extends Chunk>(plan: Iterable<C>): AsyncGenerator<C> {
    const { dim } = this.h
    const half = this.h.dtype !== 'float32' // float16 or bfloat16: 2 bytes, widened in place
    const outBytes = (c: C): Uint8Array => new Uint8Array(c.out.buffer, c.out.byteOffset + c.outRow * dim * 4, c.count * dim * 4)
    // Every chunk is read into its own rows of `out`: float32 is already the output layout,
    // and float16/bfloat16 land in the upper half of the chunk's bytes and are widened in place,
    // front to back (float32 j ends at byte 4j + 4, never past 16-bit value j + 1 at byte 2N + 2j + 2).
    // Reading there also makes the I/O thread, not this one, fault in the pages of a fresh `out`.
    const into = half ? (c: C) => outBytes(c).subarray(c.count * dim * 2) : outBytes
    for await (const { job: c } of this.prefetch(plan, into)) {
      const src = half ? new Uint16Array(c.out.buffer, c.out.byteOffset + c.outRow * dim * 4 + c.count * dim * 2, c.count * dim) : undefined
      const bits = this.h.dtype === 'bfloat16' ? new Uint32Array(c.out.buffer, c.out.byteOffset, c.out.length) : undefined
      for (let r = 0; r < c.count; r++) {
        const at = (c.outRow + r) * dim
        const sum = src === undefined ? sumSquares(c.out, at, dim)
          : bits === undefined ? decodeHalfRow(this.table, src, r * dim, c.out, at, dim)
            : decodeBf16Row(src, r * dim, c.out, bits, at, dim)
        finishRow(this.rule, sum, c.out, at, c.first + r)
      }
      yield c
    }
  }

  /** Gathers `selection` (checked indices) in order, reading only spans that hold selected rows. */
  async gather(selection: Int32Array | number[]): Promise<Float32Array> {
    const { dim } = this.h
    const n = selection.length
    const out = new Float32Array(n * dim)
    const bits = this.h.dtype === 'bfloat16' ? new Uint32Array(out.buffer) : undefined
    const order = sortedOrder(selection)
    const chunkRows = this.chunkRows
    // Spans of at most chunkRows rows, from one selected row to the last selected row within reach.
    function* spans(): Generator<{ first: number, count: number, from: number, to: number }> {
      for (let k = 0; k < n;) {
        const first = selection[order[k]!]!
        let j = k + 1
        while (j < n && selection[order[j]!]! < first + chunkRows) j++
        yield { first, count: selection[order[j - 1]!]! - first + 1, from: k, to: j }
        k = j
      }
    }
    for await (const { job: span, slot } of this.prefetch(spans(), () => undefined)) {
      let prevRow = -1
      let prevAt = 0
      for (let k = span.from; k < span.to; k++) {
        const at = order[k]! * dim
        const row = selection[order[k]!]!
        if (row === prevRow) {
          out.copyWithin(at, prevAt, prevAt + dim)
          continue
        }
        const from = (row - span.first) * dim
        const sum = this.h.dtype === 'float32' ? copyRow(slot!.single, from, out, at, dim)
          : bits === undefined ? decodeHalfRow(this.table, slot!.half, from, out, at, dim)
            : decodeBf16Row(slot!.half, from, out, bits, at, dim)
        finishRow(this.rule, sum, out, at, row)
        prevRow = row
        prevAt = at
      }
    }
    return out
  }

  /**
   * Reads the jobs of `plan` in order, each into the bytes `direct` gives or else into one
   * of two scratch slots, and yields a job once its bytes are in. The next job's read is
   * already running while the consumer works on the yielded one.
   */
  private async* prefetch<J extends { first: number, count: number }>(
    plan: Iterable<J>, direct: (job: J) => Uint8Array | undefined,
  ): AsyncGenerator<{ job: J, slot: Slot | undefined }> {
    const jobs = plan[Symbol.iterator]()
    let turn = 0
    const start = (): Promise<{ job: J, slot: Slot | undefined }> | undefined => {
      const next = jobs.next()
      if (next.done === true) return undefined
      const job = next.value
      const into = direct(job)
      const slot = into === undefined ? this.slot(turn++ % 2) : undefined
      const bytes = into ?? slot!.bytes.subarray(0, job.count * this.rowBytes)
      const read = readFully(this.fh, bytes, this.position(job.first), this.h.file).then(() => ({ job, slot }))
      read.catch(() => {}) // awaited below; this only stops a failure that lands early from counting as unhandled
      return read
    }
    let pending = start()
    try {
      while (pending !== undefined) {
        const ready = await pending
        pending = start()
        yield ready
      }
    } finally {
      // A consumer that stops early (break, bad vector) must not leave a read running
      // into its buffers or on a file handle that is about to close.
      await pending?.catch(() => {})
    }
  }

  private slot(i: number): Slot {
    let slot = this.slots[i]
    if (slot === undefined) {
      // Rounded up to whole float32s so that both views fit whatever the dtype.
      const buffer = new ArrayBuffer(Math.ceil(Math.min(this.chunkRows, this.h.rows) * this.rowBytes / 4) * 4)
      slot = { bytes: new Uint8Array(buffer), half: new Uint16Array(buffer), single: new Float32Array(buffer) }
      this.slots[i] = slot
    }
    return slot
  }

  private position(row: number): number {
    return this.h.dataOffset + row * this.rowBytes
  }
}

async function drain(source: AsyncIterable<unknown>): Promise<void> {
  for await (const item of source) void item
}

// ---- the header dict: a Python literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }

type PyValue = string | number | boolean | null | PyValue[] | { tuple: PyValue[] } | Map<string, PyValue>

function isTuple(v: PyValue | undefined): v is { tuple: PyValue[] } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map)
}

function parseHeaderDict(text: string, file: string): Map<string, PyValue> {
  let pos = 0
  const fail = (why: string): never => {
    const shown = text.trim().length > 200 ? `${text.trim().slice(0, 200)}...` : text.trim()
    throw new HardnegError('E_NPY_HEADER', `.npy header is not a Python dict literal (${why} at offset ${pos}): ${shown}`, { file })
  }
  const skip = (): void => {
    while (pos < text.length && ' \t\r\n'.includes(text[pos]!)) pos++
  }
  const items = (close: string): PyValue[] => {
    const out: PyValue[] = []
    for (skip(); text[pos] !== close; skip()) {
      out.push(value())
      skip()
      if (text[pos] === ',') pos++
      else if (text[pos] !== close) fail(`expected ',' or '${close}'`)
    }
    pos++
    return out
  }
  const value = (): PyValue => {
    skip()
    const c = text[pos]
    if (c === undefined) return fail('unexpected end')
    if (c === '{') {
      pos++
      const dict = new Map<string, PyValue>()
      for (skip(); text[pos] !== '}'; skip()) {
        const key = value()
        if (typeof key !== 'string') fail('expected a string key')
        skip()
        if (text[pos++] !== ':') fail("expected ':'")
        dict.set(key as string, value())
        skip()
        if (text[pos] === ',') pos++
        else if (text[pos] !== '}') fail("expected ',' or '}'")
      }
      pos++
      return dict
    }
    if (c === '(') {
      pos++
      return { tuple: items(')') }
    }
    if (c === '[') {
      pos++
      return items(']')
    }
    if (c === "'" || c === '"') {
      let s = ''
      for (pos++; text[pos] !== c; pos++) {
        if (pos >= text.length) fail('unterminated string')
        if (text[pos] === '\\') pos++
        s += text[pos]
      }
      pos++
      return s
    }
    const word = /^(?:-?\d+L?|True|False|None)/.exec(text.slice(pos, pos + 40))?.[0]
    if (word === undefined) return fail(`unexpected ${JSON.stringify(c)}`)
    pos += word.length
    return word === 'True' ? true : word === 'False' ? false : word === 'None' ? null : Number(word.replace('L', ''))
  }
  const dict = value()
  skip()
  if (!(dict instanceof Map) || pos !== text.length) fail('expected one dict')
  return dict as Map<string, PyValue>
}

function pyRepr(v: PyValue | undefined): string {
  if (v === undefined) return ''
  if (v === null) return 'None'
  if (typeof v === 'boolean') return v ? 'True' : 'False'
  if (typeof v === 'number') return String(v)
  if (typeof v === 'string') return `'${v}'`
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `'${k}': ${pyRepr(x)}`).join(', ')}}`
  return v.tuple.length === 1 ? `(${pyRepr(v.tuple[0])},)` : `(${v.tuple.map(pyRepr).join(', ')})`
}

function showBytes(bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) {
    s += b >= 0x20 && b < 0x7f && b !== 0x27 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`
  }
  return s
}
