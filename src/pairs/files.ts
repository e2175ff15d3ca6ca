/**
 * Several pairs files as one sequence of rows, numbered across the files, with the subset
 * each file holds. `mine` and `embed` both read their pairs through here, so that row i
 * means the same pair to both.
 */
import path from 'node:path'
import { HardnegError } from '../errors.js'
import { collectPairs, type ReadPairsOptions } from './pairs.js'
import type { PairRecord } from '../types.js'

/** The column options every pairs file is read with, and how rows are grouped. */
export type PairFileOptions = Omit<ReadPairsOptions, 'file'> & {
  globalPool?: boolean | undefined // every row in one group
}

/** One pairs file as read: its pairs numbered from `firstRow` across all files. */
export interface PairFile {
  file: string // as the user gave it
  firstRow: number // row of its first pair across all pairs files
  pairs: PairRecord[] // its pairs; `row` is the row across all files
}

/** Reads every pairs file; with several, a pair without a group takes its file's subset name. */
export async function readPairFiles(pairFiles: readonly string[], options: PairFileOptions): Promise<PairFile[]> {
  const files: PairFile[] = []
  let firstRow = 0
  for (const file of pairFiles) {
    const { globalPool, ...columns } = options
    const pairs = await collectPairs({ file, ...columns })
    const subset = pairFiles.length > 1 ? subsetName(file) : ''
    for (const p of pairs) {
      p.row += firstRow
      // Ids stay unique across files: the row number across all of them.
      if (options.idCol === undefined) p.id = String(p.row)
      if (p.group === '') p.group = subset
      if (globalPool) p.group = ''
    }
    files.push({ file, firstRow, pairs })
    firstRow += pairs.length
  }
  return files
}

/**
 * The subset a pairs file holds, named after the file: `MSCOCO_i2t.parquet` ->
 * MSCOCO_i2t; a Hugging Face shard name (`train-00000-of-00001.parquet`) takes its
 * folder's name, as MMEB-train ships one folder per subset.
 */
export function subsetName(file: string): string {
  const base = path.basename(file).replace(/\.[^.]*$/, '')
  if (/-\d{5}-of-\d{5}$/.test(base)) return path.basename(path.dirname(path.resolve(file)))
  return base
}

/** One file or several as a list; none is E_BAD_OPTION naming the option. */
export function listOf(name: string, value: string | readonly string[]): string[] {
  const list = typeof value === 'string' ? [value] : [...value]
  if (list.length === 0) throw new HardnegError('E_BAD_OPTION', `${name}: no files, expected at least one`)
  return list
}
