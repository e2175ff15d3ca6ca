/**
 * Embeddings stored as a table (Arrow IPC or Parquet): an optional id column and a
 * vector column holding a list of float32/float16 per row. This file owns what the two
 * formats share: the source interface their readers implement, matching file rows to
 * pair ids, and gathering rows batch by batch into one normalised matrix. Private to `src/embeddings/`.
 */

import { stat } from 'node:fs/promises'
import { HardnegError } from '../errors.js'
import type { EmbeddingMatrix } from '../types.js'
import { finishRow, sortedOrder, type BadVector, type RowRule } from './_vectors.js'

/** Column choices for a table of embeddings. */
export interface TableColumns {
  idCol?: string // id column; given explicitly it must exist (default 'id', optional)
  vectorCol?: string // vector column (default 'embedding', else 'vector')
}

/** One record batch (Arrow) or row group (Parquet) of the vector column, decoded. */
export interface VectorBatch {
  start: number // file row of the batch's first row
  rows: number // rows in the batch
  /**
   * Widens row `row` of the batch (0-based within it) to float32 at `out[at ..]` and returns
   * its sum of squares in float64, left to right. Throws E_BAD_VECTOR for a null row, a
   * null value, or a row whose length is not `dim`.
   */
  copyRow(row: number, out: Float32Array, at: number): number
}

/** An open Arrow or Parquet embedding file, read one batch at a time. Close it when done. */
export interface TableSource {
  readonly file: string // path as the user gave it
  readonly format: 'arrow' | 'parquet' // container
  readonly dtype: 'float32' | 'float16' // element type of the vector lists
  readonly dim: number // values per vector
  readonly idCol: string | undefined // the id column, or undefined when rows match pairs by position
  readonly vectorCol: string // the vector column read
  readonly batchRows: readonly number[] // rows per record batch / row group, in file order
  ids(): Promise<string[]> // the id column as text, in file order (integers as decimal text)
  vectors(batches: readonly number[]): AsyncIterable<VectorBatch> // the given batches (ascending), in that order
  close(): Promise<void> // release the file; safe to call twice
}

/** What {@link gatherTableRows} loads. */
export interface TableRequest {
  rows: Int32Array | number[] | undefined // selection; with `ids` positions in `ids`, else file rows (default: all)
  ids: readonly string[] | undefined // pair ids to match file rows to (ignored when the table has no id column)
  idsFrom: string | undefined // where `ids` come from, for messages
  normalize: boolean // L2-normalise every row
  onBadVector: ((bad: BadVector) => void) | undefined // report NaN/Inf/zero rows instead of throwing
}

/** Total rows of a source. */
export function tableRows(source: TableSource): number {
  let rows = 0
  for (const n of source.batchRows) rows += n
  return rows
}

/**
 * Gathers the requested rows, in request order, into one row-major Float32Array,
 * normalised and checked by the rule every embedding reader uses. Only the batches that
 * hold a selected row are decoded, one at a time.
 */
export async function gatherTableRows(source: TableSource, request: TableRequest): Promise<EmbeddingMatrix> {
  const { file, dim } = source
  const fileRows = tableRows(source)
  let selection: ArrayLike<number>
  if (request.ids !== undefined && source.idCol !== undefined) {
    const fileRowOf = await matchIds(source, request.ids, request.idsFrom)
    if (request.rows === undefined) selection = fileRowOf
    else {
      checkSelection(request.rows, request.ids.length, 'the number of ids', file)
      selection = Int32Array.from(request.rows, (i) => fileRowOf[i]!)
    }
  } else if (request.rows === undefined) {
    selection = Int32Array.from({ length: fileRows }, (_, i) => i)
  } else {
    checkSelection(request.rows, fileRows, "the file's row count", file)
    selection = request.rows
  }

  const n = selection.length
  const out = new Float32Array(n * dim)
  const order = sortedOrder(selection)
  const starts: number[] = []
  let start = 0
  for (const rows of source.batchRows) {
    starts.push(start)
    start += rows
  }
  const wanted: number[] = []
  for (let k = 0, b = 0; k < n; k++) {
    const row = selection[order[k]!]!
    while (row >= starts[b]! + source.batchRows[b]!) b++
    if (wanted[wanted.length - 1] !== b) wanted.push(b)
  }
  const rule: RowRule = { file, dim, normalize: request.normalize, onBadVector: request.onBadVector }
  let k = 0
  let prevRow = -1
  let prevAt = 0
  for await (const batch of source.vectors(wanted)) {
    for (; k < n && selection[order[k]!]! < batch.start + batch.rows; k++) {
      const at = order[k]! * dim
      const row = selection[order[k]!]!
      if (row === prevRow) {
        out.copyWithin(at, prevAt, prevAt + dim)
        continue
      }
      finishRow(rule, batch.copyRow(row - batch.start, out, at), out, at, row)
      prevRow = row
      prevAt = at
    }
  }
  return { rows: n, dim, data: out }
}

function checkSelection(rows: Int32Array | number[], limit: number, what: string, file: string): void {
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!
    if (!Number.isInteger(r) || r < 0 || r >= limit) {
      throw new HardnegError('E_BAD_OPTION', `rows[${i}] = ${r}, expected an integer >= 0 and < ${limit} (${what})`, { file })
    }
  }
}

interface CachedMatch {
  stamp: string // size and mtime of the file when matched
  ids: string[] // copy of the ids matched, to notice a caller that changed its array
  fileRowOf: Int32Array // file row of each id
}

/** Matches per ids array, then per file and id column: a run loads one file many times with the same ids. */
const matches = new WeakMap<readonly string[], Map<string, CachedMatch>>()

/**
 * The file row of every id in `ids`: each id must be in the file exactly once and the
 * file must hold no other id. Computed once per ids array, file and id column, and
 * reused while the file's size and mtime and the array's contents stay the same.
 */
export async function matchIds(source: TableSource, ids: readonly string[], idsFrom: string | undefined): Promise<Int32Array> {
  const { file } = source
  const info = await stat(file)
  const stamp = `${info.size}:${info.mtimeMs}`
  const key = `${source.idCol}\0${file}`
  let perIds = matches.get(ids)
  const hit = perIds?.get(key)
  if (hit !== undefined && hit.stamp === stamp && sameIds(hit.ids, ids)) return hit.fileRowOf

  const from = idsFrom === undefined ? '' : ` of ${idsFrom}`
  const pairRow = new Map<string, number>()
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!
    const first = pairRow.get(id)
    if (first !== undefined) {
      throw new HardnegError('E_ID_MISMATCH',
        `pair id '${id}' repeats row ${first + 1}, expected unique pair ids to match the rows of ${file} by id`,
        idsFrom === undefined ? {} : { file: idsFrom, row: i + 1 })
    }
    pairRow.set(id, i)
  }
  const fileIds = await source.ids()
  const fileRowOf = new Int32Array(ids.length).fill(-1)
  for (let r = 0; r < fileIds.length; r++) {
    const id = fileIds[r]!
    const p = pairRow.get(id)
    const place = { file, row: r + 1 }
    if (p === undefined) {
      throw new HardnegError('E_ID_MISMATCH', `id '${id}' is not a pair id, expected only the ${ids.length} pair ids${from}`, place)
    }
    if (fileRowOf[p] !== -1) {
      throw new HardnegError('E_ID_MISMATCH', `id '${id}' again (first at row ${fileRowOf[p]! + 1}), expected each id once`, place)
    }
    fileRowOf[p] = r
  }
  const missing = fileRowOf.indexOf(-1)
  if (missing !== -1) {
    let count = 0
    for (const r of fileRowOf) if (r === -1) count++
    throw new HardnegError('E_ID_MISMATCH',
      `no row with id '${ids[missing]}' (pair row ${missing + 1}${from}), expected one row per pair id (${count} of ${ids.length} missing)`,
      { file })
  }
  if (perIds === undefined) matches.set(ids, (perIds = new Map()))
  perIds.set(key, { stamp, ids: ids.slice(), fileRowOf })
  return fileRowOf
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Resolves the column options against a table's columns: the vector column is `vectorCol`,
 * else 'embedding', else 'vector'; the id column is `idCol` (which must then exist), else
 * 'id' when present, else none (rows match pairs by position).
 */
export function pickColumns(columns: readonly string[], options: TableColumns, file: string): { idCol: string | undefined, vectorCol: string } {
  const found = `found columns: ${columns.join(', ')}`
  const missing = (detail: string): HardnegError => new HardnegError('E_MISSING_COLUMN', `${detail}; ${found}`, { file })
  let vectorCol = options.vectorCol
  if (vectorCol === undefined) {
    vectorCol = columns.includes('embedding') ? 'embedding' : columns.includes('vector') ? 'vector' : undefined
    if (vectorCol === undefined) throw missing("no column 'embedding' or 'vector', expected one of them (or a vector column named in the options)")
  } else if (!columns.includes(vectorCol)) {
    throw missing(`no vector column '${vectorCol}'`)
  }
  if (options.idCol !== undefined && !columns.includes(options.idCol)) throw missing(`no id column '${options.idCol}'`)
  const idCol = options.idCol ?? (columns.includes('id') ? 'id' : undefined)
  return { idCol, vectorCol }
}

/** The id column value `value` as text: strings as they are, integers in decimal; anything else is an error. */
export function idText(value: unknown, file: string, row: number, idCol: string): string {
  if (typeof value === 'string') return value
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8')
  if (typeof value === 'bigint' || (typeof value === 'number' && Number.isSafeInteger(value))) return String(value)
  const found = value === null || value === undefined ? 'null' : `${typeof value} ${String(value)}`
  throw new HardnegError('E_BAD_ROW', `id column '${idCol}' holds ${found}, expected a string or an integer`, { file, row: row + 1 })
}

/** E_BAD_VECTOR for a vector row that is null, holds a null, or has the wrong length. */
export function badListRow(file: string, row: number, detail: string): HardnegError {
  return new HardnegError('E_BAD_VECTOR', `embedding row ${row} (0-based) ${detail}`, { file, row: row + 1 })
}
