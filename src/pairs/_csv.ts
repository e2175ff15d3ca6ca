/**
 * CSV and TSV pairs files: a header row, then RFC 4180 records (quoted fields may hold
 * delimiters, newlines and doubled quotes), streamed through csv-parse.
 */

import { pipeline } from 'node:stream'
import { CsvError, parse } from 'csv-parse'
import { HardnegError } from '../errors.js'
import { emptyFileError, openInput, readFailure } from './_source.js'
import type { PairSource, SourceRow } from './_source.js'
import type { FileHandle } from 'node:fs/promises'

/**
 * The csv-parse record stream over an open file, shared by mining and validation so
 * both see the same records; `close` ends the parser, the stream and the handle.
 */
export function openCsvRecords(
  handle: FileHandle,
  delimiter: ',' | '\t',
): { records: AsyncIterator<string[]>; close: () => Promise<void> } {
  // 1 MiB reads: csv-parse is the bottleneck, and fewer, larger chunks cut its per-chunk overhead.
  const input = handle.createReadStream({ autoClose: false, highWaterMark: 1 << 20 })
  const parser = parse({
    bom: true,
    delimiter,
    // Any line ending, also mixed in one file (as Python's csv module reads them); auto-detection
    // would fix the first one seen and leave a stray '\n' in fields after it.
    record_delimiter: ['\r\n', '\n', '\r'],
    // Field counts are checked by the callers, against the header, to name the row and the header.
    relax_column_count: true,
    skip_empty_lines: true,
  })
  // The pipeline's own callback is not needed: any failure also rejects the parser's iterator.
  pipeline(input, parser, () => {})
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<string[]>
  const close = async (): Promise<void> => {
    parser.destroy()
    input.destroy()
    await handle.close()
  }
  return { records, close }
}

/**
 * Open a delimited file and read its header. Blank lines are skipped and do not count
 * as rows, so `place` is the 1-based data row (header excluded), not the line number.
 */
export async function openDelimitedSource(file: string, delimiter: ',' | '\t'): Promise<PairSource> {
  const { handle, size } = await openInput(file)
  if (size === 0) {
    await handle.close()
    throw emptyFileError(file)
  }
  const { records, close } = openCsvRecords(handle, delimiter)

  let header: string[]
  try {
    const first = await nextRecord(records, file)
    if (first === undefined) throw emptyFileError(file)
    header = first
  } catch (err) {
    await close()
    throw err
  }

  async function* rows(select: readonly string[]): AsyncGenerator<SourceRow> {
    const indexes = select.map(name => header.indexOf(name))
    // Blank lines are skipped by the parser, so counting records gives the data row.
    for (let place = 1; ; place++) {
      const record = await nextRecord(records, file)
      if (record === undefined) return
      if (record.length !== header.length) {
        const found = record.length === 1 ? '1 field' : `${record.length} fields`
        throw new HardnegError('E_BAD_ROW', `${found}, expected ${header.length} (header: ${header.join(',')})`, { file, row: place })
      }
      yield { place, values: indexes.map(i => record[i]) }
    }
  }

  return { columns: header, rows, close }
}

async function nextRecord(records: AsyncIterator<string[]>, file: string): Promise<string[] | undefined> {
  let result: IteratorResult<string[]>
  try {
    result = await records.next()
  } catch (err) {
    throw csvFailure(err, file)
  }
  return result.done ? undefined : result.value
}

/** csv-parse's reason (which names the line) becomes E_BAD_ROW at the record that failed. */
function csvFailure(err: unknown, file: string): HardnegError {
  if (!(err instanceof CsvError)) return readFailure(file, err)
  const done = typeof err['records'] === 'number' ? err['records'] : 0
  if (done === 0) {
    return new HardnegError('E_BAD_ROW', `invalid CSV header (${err.message}), expected RFC 4180 fields`, { file })
  }
  // `records` counts the header and every complete record before the failing one.
  return new HardnegError('E_BAD_ROW', `invalid CSV (${err.message}), expected RFC 4180 fields`, { file, row: done })
}
