/**
 * Forbid sets for the contamination check: the normalised texts of evaluation sets
 * (MMEB-eval, a held-out split, ...) that must not appear in training data. Only 64-bit
 * hashes are kept (12-24 bytes a text), with the file and row of each text's first
 * occurrence for the message; and the image paths of image columns, which
 * `_images.ts` hashes when the checked data has images. Private to the validate files.
 */

import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import path, { extname } from 'node:path'
import { HardnegError } from '../errors.js'
import type { PairsFormat } from '../pairs/pairs.js'
import { HashIndex64, hashTexts } from './_hash.js'
import { normaliseText } from '../mine/pool.js'
import { formatOf, openCheckedTable } from './_rows.js'
import { openInput, readFailure } from '../pairs/sources.js'

/** Where a forbidden text was first seen. */
export interface ForbidHit {
  file: string // the forbid file as the user gave it
  row: number // its 1-based data row (JSONL and text files: line)
}

/** The image paths one forbid file names, with the directory they resolve against. */
export interface ForbidImageSource {
  file: string // the forbid file as the user gave it
  root: string // its image root: the given one, else the file's directory
  refs: { path: string; row: number }[] // non-empty paths of its image columns, with their 1-based data row
}

/** True for a column holding image paths: a name ending in `image_path`, or `image`. */
export function isImageColumn(name: string): boolean {
  return name === 'image' || name.endsWith('image_path')
}

const TEXT_EXTENSIONS = new Set(['.txt', '.text', '.lst'])
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/** The normalised texts of one or more forbid files. */
export class ForbidSet {
  private readonly index = new HashIndex64()
  private readonly bases: number[] = [] // first ordinal of each file: ordinal = base + row
  private next = 0
  /** The image paths of the files' image columns (see {@link isImageColumn}), per file that has any. */
  readonly images: ForbidImageSource[] = []

  private constructor(
    readonly files: readonly string[],
    readonly minLength: number,
    readonly imageRoot: string | undefined,
  ) {}

  /**
   * Reads every string of every file: all string values (also inside lists) of CSV/TSV,
   * JSONL and Parquet files, or each line of a .txt file. Strings that are numbers (an id
   * column, say) or shorter than `minLength` characters once normalised are skipped.
   * Throws E_BAD_FILE for a file that cannot be read whole: a contamination check with
   * holes would pass data it never compared. Image columns are also listed in `images`,
   * their relative paths resolving against `imageRoot` (default: each file's directory).
   */
  static async read(files: readonly string[], minLength = 1, imageRoot?: string): Promise<ForbidSet> {
    const set = new ForbidSet(files, minLength, imageRoot)
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
      await this.readImagePaths(file, format)
    }
    this.next += last + 1
  }

  /** A second pass over the image columns only, when the file has any (JSONL's 'all' values are not aligned with columns). */
  private async readImagePaths(file: string, format: PairsFormat): Promise<void> {
    const table = await openCheckedTable(file, format)
    try {
      const columns = table.columns.filter(isImageColumn)
      if (columns.length === 0) return
      const source: ForbidImageSource = { file, root: this.imageRoot ?? path.dirname(file), refs: [] }
      for await (const row of table.rows(columns)) {
        if ('problem' in row) continue // the first pass threw on it
        for (const v of row.values) if (typeof v === 'string' && v !== '') source.refs.push({ path: v, row: row.place })
      }
      if (source.refs.length > 0) this.images.push(source)
    } finally {
      await table.close()
    }
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
