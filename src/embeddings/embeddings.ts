/**
 * Load embeddings: read `.npy` matrices (float32 or float16, written by `numpy.save`),
 * safetensors tensors (F32, F16, BF16), and Arrow IPC / Parquet tables (an id column and
 * a list-of-float vector column) as L2-normalised float32 rows, streamed in blocks or
 * gathered into one matrix. See docs/embedding-formats.md.
 *
 * `.npy` and safetensors files of any size are read through one FileHandle at explicit
 * byte offsets (plain numbers, exact up to 2^53) in chunks of at most 16 MiB, the next
 * chunk's read running while the current one is decoded; nothing here reads a whole file.
 * Tables are read one record batch / row group at a time (`_table.ts`).
 */

import { open } from 'node:fs/promises'
import { extname } from 'node:path'
import { readDenseLayout, RowReader, type Chunk } from './_dense.js'
import { openNpy, readHeaderFrom, type NpyHeader } from './_npy.js'
import { gatherTableRows, tableRows, type TableSource } from './_table.js'
import type { BadVector, EmbeddingDtype } from './_vectors.js'
import { HardnegError } from '../errors.js'
import type { EmbeddingBlock, EmbeddingMatrix } from '../types.js'

export type { BadVector, EmbeddingDtype } from './_vectors.js'
export type { NpyHeader } from './_npy.js'

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
  if (format === 'arrow') return (await import('./_arrow.js')).openArrowSource(file, columns)
  return (await import('./_parquet.js')).openParquetEmbeddings(file, columns)
}

async function drain(source: AsyncIterable<unknown>): Promise<void> {
  for await (const item of source) void item
}
