/**
 * Forbid sets for the contamination check: the normalised texts of evaluation sets
 * (MMEB-eval, a held-out split, ...) that must not appear in training data. Only 64-bit
 * hashes are kept (12-24 bytes a text), with the file and row of each text's first
 * occurrence for the message. Private to the validate files.
 */

import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { extname } from 'node:path'
import { HardnegError } from './errors.js'
import { HashIndex64, hashTexts, normaliseText } from './_validate-hash.js'
import { formatOf, openCheckedTable } from './_validate-rows.js'
import { openInput, readFailure } from './_pairs-source.js'

/** Where a forbidden text was first seen. */
export interface ForbidHit {
  file: string // the forbid file as the user gave it
  row: number // its 1-based data row (JSONL and text files: line)
}

const TEXT_EXTENSIONS = new Set(['.txt', '.text', '.lst'])
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/** The normalised texts of one or more forbid files. */
export class ForbidSet {
  private readonly index = new HashIndex64()
  private readonly bases: number[] = [] // first ordinal of each file: ordinal = base + row
  private next = 0

  private constructor(
    readonly files: readonly string[],
    readonly minLength: number,
  ) {}

  /**
   * Reads every string of every file: all string values (also inside lists) of CSV/TSV,
   * JSONL and Parquet files, or each line of a .txt file. Strings that are numbers (an id
   * column, say) or shorter than `minLength` characters once normalised are skipped.
   * Throws E_BAD_FILE for a file that cannot be read whole: a contamination check with
   * holes would pass data it never compared.
   */
  static async read(files: readonly string[], minLength = 1): Promise<ForbidSet> {
    const set = new ForbidSet(files, minLength)
    for (const file of files) await set.readFile(file)
    return set
  }

  /** Number of distinct normalised texts held. */
  get size(): number {
    return this.index.size
  }

  /** Where `text` (compared normalised) first appears in the forbid files, or undefined. */
  find(text: string): ForbidHit | undefined {
    const key = normaliseText(text)
    if (key.length < this.minLength || key.length === 0) return undefined
    const ordinal = this.index.get(hashTexts(key))
    if (ordinal < 0) return undefined
    let f = this.bases.length - 1
    while (f > 0 && this.bases[f]! > ordinal) f--
    return { file: this.files[f]!, row: ordinal - this.bases[f]! }
  }

  private add(value: unknown, row: number): void {
    if (typeof value === 'string') {
      if (NUMBER.test(value.trim())) return
      const key = normaliseText(value)
      if (key.length === 0 || key.length < this.minLength) return
      this.index.putIfAbsent(hashTexts(key), this.bases[this.bases.length - 1]! + row)
    } else if (Array.isArray(value)) {
      for (const v of value) this.add(v, row)
    } else if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array) && !(value instanceof Date)) {
      for (const v of Object.values(value)) this.add(v, row)
    }
  }

  private async readFile(file: string): Promise<void> {
    this.bases.push(this.next)
    let last = 0
    if (TEXT_EXTENSIONS.has(extname(file).toLowerCase())) {
      last = await this.readLines(file)
    } else {
      const format = formatOf(file)
      if (format === undefined) {
        throw new HardnegError('E_BAD_FILE', `forbid file extension '${extname(file)}', expected .csv, .tsv, .jsonl, .json, .ndjson, .parquet or .txt`, { file })
      }
      const table = await openCheckedTable(file, format)
      try {
        for await (const row of table.rows('all')) {
          if ('problem' in row) throw new HardnegError('E_BAD_FILE', `forbid file row unreadable: ${row.problem}`, { file, row: row.place })
          for (const v of row.values) this.add(v, row.place)
          last = row.place
        }
      } finally {
        await table.close()
      }
    }
    this.next += last + 1
  }

  private async readLines(file: string): Promise<number> {
    const { handle } = await openInput(file)
    await handle.close()
    const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity })
    let line = 0
    try {
      for await (const text of lines) this.add(text, ++line)
    } catch (err) {
      throw readFailure(file, err)
    } finally {
      lines.close()
    }
    return line
  }
}
