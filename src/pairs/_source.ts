/**
 * The contract between `pairs.ts` and the per-format readers (`_csv.ts`, `_jsonl.ts`,
 * `_parquet.ts`): a table whose column names are known once it is open, read
 * row by row with only the columns asked for.
 */

import { open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { HardnegError } from '../errors.js'

/** An open pairs file. Close it when done, also after an early `break`. */
export interface PairSource {
  columns: readonly string[] // column names in file order (JSONL: keys of the first object)
  rows(select: readonly string[]): AsyncIterable<SourceRow> // rows in file order, values in `select` order
  close(): Promise<void> // release the file; safe to call twice
}

/** One row of a {@link PairSource}. */
export interface SourceRow {
  place: number // 1-based position for messages: CSV/Parquet data row, JSONL line
  values: unknown[] // one value per selected column; undefined = key absent (JSONL only)
}

/**
 * Open `file` for reading and check it is a regular file, so a missing file or a
 * directory fails here with E_BAD_FILE instead of deep inside a parser.
 * Returns the handle and the file size in bytes.
 */
export async function openInput(file: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle
  try {
    handle = await open(file, 'r')
  } catch (err) {
    throw new HardnegError('E_BAD_FILE', `cannot open (${systemReason(err)}), expected a readable file`, { file })
  }
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) {
      const found = stat.isDirectory() ? 'a directory' : 'not a regular file'
      throw new HardnegError('E_BAD_FILE', `${found}, expected a readable file`, { file })
    }
    return { handle, size: stat.size }
  } catch (err) {
    await handle.close()
    throw err
  }
}

/** The error every reader throws for a file (or header) without data rows. */
export function emptyFileError(file: string): HardnegError {
  return new HardnegError('E_EMPTY', 'no data rows, expected at least 1', { file })
}

/** E_BAD_FILE for an I/O or decoder failure while reading `file`. */
export function readFailure(file: string, err: unknown, what = 'cannot read'): HardnegError {
  return new HardnegError('E_BAD_FILE', `${what} (${systemReason(err)})`, { file })
}

/** A system error's message without the trailing `, open '/path'` that repeats the file. */
export function systemReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.replace(/, \w+ '[^']*'$/, '')
}

/** How a value reads in a message: `empty`, `null`, `missing`, `a number`, `an array`, ... */
export function describe(value: unknown): string {
  if (value === undefined) return 'missing'
  if (value === null) return 'null'
  if (value === '') return 'empty'
  if (Array.isArray(value)) return 'an array'
  if (value instanceof Uint8Array) return 'binary'
  if (value instanceof Date) return 'a date'
  const type = typeof value
  return type === 'object' ? 'an object' : `a ${type}`
}
