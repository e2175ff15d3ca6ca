/**
 * Tables read for checking rather than for mining: a malformed record (a CSV row with
 * the wrong field count, a JSONL line that is not an object) is yielded as a problem and
 * reading goes on, so one run lists every bad row. Only a failure the format cannot
 * resume from (a CSV quote left open, an undecodable Parquet row group) ends the table.
 * Private to the validate files.
 */

import { extname } from 'node:path'
import { createInterface } from 'node:readline'
import { CsvError } from 'csv-parse'
import { HardnegError } from '../errors.js'
import type { PairsFormat } from '../pairs/pairs.js'
import { emptyFileError, openCsvRecords, openInput, openParquetSource, readFailure } from '../pairs/sources.js'

/** One record of a {@link CheckedTable}. */
export type CheckedRow =
  | { place: number; line?: number; values: unknown[] } // values in `select` order; undefined = absent (JSONL)
  | { place: number; line?: number; problem: string; fatal: boolean } // fatal: no record follows

/** An open table. `rows` may be iterated once. */
export interface CheckedTable {
  columns: readonly string[] // column names in file order (JSONL: keys of the first object)
  rows(select: readonly string[] | 'all'): AsyncIterable<CheckedRow> // 'all': every value of each record (JSONL: of each object)
  close(): Promise<void>
}

const EXTENSIONS: Readonly<Record<string, PairsFormat>> = {
  '.csv': 'csv', '.tsv': 'tsv', '.jsonl': 'jsonl', '.json': 'jsonl', '.ndjson': 'jsonl', '.parquet': 'parquet',
}

/** The pairs format a file name implies (the same table as `readPairs`), or undefined. */
export function formatOf(file: string): PairsFormat | undefined {
  return EXTENSIONS[extname(file).toLowerCase()]
}

/**
 * Opens `file` as `format`. Throws E_BAD_FILE when it cannot be opened or is not the
 * format (validation cannot run), E_EMPTY when it has no header or no rows.
 */
export async function openCheckedTable(file: string, format: PairsFormat): Promise<CheckedTable> {
  switch (format) {
    case 'csv':
      return openDelimited(file, ',')
    case 'tsv':
      return openDelimited(file, '\t')
    case 'jsonl':
      return openJsonl(file)
    case 'parquet':
      return openParquet(file)
  }
}

async function openDelimited(file: string, delimiter: ',' | '\t'): Promise<CheckedTable> {
  const { handle, size } = await openInput(file)
  if (size === 0) {
    await handle.close()
    throw emptyFileError(file)
  }
  const { records, close } = openCsvRecords(handle, delimiter)
  let header: string[]
  try {
    const first = await records.next().catch((err: unknown) => {
      const reason = err instanceof CsvError ? err.message : String(err)
      throw new HardnegError('E_BAD_FILE', `invalid CSV header (${reason}), expected RFC 4180 fields`, { file })
    })
    if (first.done === true) throw emptyFileError(file)
    header = first.value
  } catch (err) {
    await close()
    throw err
  }

  async function* rows(select: readonly string[] | 'all'): AsyncGenerator<CheckedRow> {
    const indexes = select === 'all' ? undefined : select.map(name => header.indexOf(name))
    for (let place = 1; ; place++) {
      let next: IteratorResult<string[]>
      try {
        next = await records.next()
      } catch (err) {
        if (!(err instanceof CsvError)) throw readFailure(file, err)
        yield { place, problem: `invalid CSV (${err.message}), expected RFC 4180 fields; the rest of the file was not read`, fatal: true }
        return
      }
      if (next.done === true) return
      const record = next.value
      if (record.length !== header.length) {
        const found = record.length === 1 ? '1 field' : `${record.length} fields`
        yield { place, problem: `${found}, expected ${header.length} (header: ${header.join(',')})`, fatal: false }
      } else {
        yield { place, values: indexes === undefined ? record : indexes.map(i => record[i]) }
      }
    }
  }
  return { columns: header, rows, close }
}

async function openJsonl(file: string): Promise<CheckedTable> {
  const { handle } = await openInput(file)
  const input = handle.createReadStream({ autoClose: false, encoding: 'utf8' })
  const reader = createInterface({ input, crlfDelay: Infinity })
  const lines = reader[Symbol.asyncIterator]()
  const close = async (): Promise<void> => {
    reader.close()
    input.destroy()
    await handle.close()
  }
  let line = 0
  // Lines up to the first object are kept, so the columns are known before iterating.
  const early: { line: number; parsed: Parsed }[] = []
  let columns: string[] | undefined
  try {
    while (columns === undefined) {
      const next = await lines.next().catch((err: unknown) => { throw readFailure(file, err) })
      if (next.done === true) break
      line++
      const text = line === 1 && next.value.charCodeAt(0) === 0xfeff ? next.value.slice(1) : next.value
      if (text.trim() === '') continue
      const parsed = parseLine(text)
      early.push({ line, parsed })
      if ('object' in parsed) columns = Object.keys(parsed.object)
    }
    if (early.length === 0) throw emptyFileError(file)
  } catch (err) {
    await close()
    throw err
  }

  async function* rows(select: readonly string[] | 'all'): AsyncGenerator<CheckedRow> {
    const toRow = (at: number, parsed: Parsed): CheckedRow => {
      if (!('object' in parsed)) return { place: at, line: at, problem: parsed.problem, fatal: false }
      const { object } = parsed
      const values = select === 'all' ? Object.values(object) : select.map(key => (Object.hasOwn(object, key) ? object[key] : undefined))
      return { place: at, line: at, values }
    }
    for (const e of early) yield toRow(e.line, e.parsed)
    for (;;) {
      const next = await lines.next().catch((err: unknown) => { throw readFailure(file, err) })
      if (next.done === true) return
      line++
      if (next.value.trim() === '') continue
      yield toRow(line, parseLine(next.value))
    }
  }
  return { columns: columns ?? [], rows, close }
}

type Parsed = { object: Record<string, unknown> } | { problem: string }

function parseLine(text: string): Parsed {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return { problem: `invalid JSON (${err instanceof Error ? err.message : String(err)}), expected one object per line` }
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return { object: value as Record<string, unknown> }
  const found = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`
  return { problem: `found ${found}, expected one object per line` }
}

async function openParquet(file: string): Promise<CheckedTable> {
  const source = await openParquetSource(file)
  async function* rows(select: readonly string[] | 'all'): AsyncGenerator<CheckedRow> {
    let place = 1
    try {
      for await (const row of source.rows(select === 'all' ? source.columns : select)) {
        place = row.place + 1
        yield row
      }
    } catch (err) {
      if (!(err instanceof HardnegError) || err.code !== 'E_BAD_FILE') throw err
      // The reader's message already names the row group; only the file prefix is dropped.
      const detail = err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message
      yield { place, problem: `${detail}; the rest of the file was not read`, fatal: true }
    }
  }
  return { columns: source.columns, rows, close: () => source.close() }
}
