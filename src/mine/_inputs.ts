/**
 * Mining's inputs over several files: the pairs files read as one sequence of rows (with
 * the subset each file holds), and the images those pairs name, decoded and hashed once.
 * Private to `mine.ts`.
 */
import path from 'node:path'
import { HardnegError } from '../errors.js'
import { hashImages, type HashedImage, type ImageRef } from '../images/images.js'
import { collectPairs, type ReadPairsOptions } from '../pairs/pairs.js'
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

/** The images of a run: hashes by path as written, and the pair rows to drop. */
export interface PairImages {
  byPath: Map<string, HashedImage> // image path as written -> its decode and hashes
  badRows: Set<number> // pair rows with a bad image (only with onBadImage 'skip')
  summary: { root: string; distinct: number; decoded: number; cached: number; cache: string; badRows: number } // for the manifest
}

export async function hashPairImages(
  files: readonly PairFile[],
  options: { root: string; cache: string; onBadImage: 'error' | 'skip'; onProgress?: (done: number, total: number) => void },
): Promise<PairImages> {
  const refs: (ImageRef & { pairRow: number })[] = []
  for (const f of files) {
    for (const p of f.pairs) {
      const row = p.row - f.firstRow + 1
      if (p.queryImage !== '') refs.push({ path: p.queryImage, file: f.file, row, role: 'query', pairRow: p.row })
      if (p.positiveImage !== '') refs.push({ path: p.positiveImage, file: f.file, row, role: 'positive', pairRow: p.row })
    }
  }
  const result = await hashImages(refs, {
    root: options.root,
    cache: options.cache,
    onBadImage: options.onBadImage,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  })
  const byPath = new Map<string, HashedImage>()
  refs.forEach((ref, i) => {
    const image = result.images[i]
    if (image && !byPath.has(ref.path)) byPath.set(ref.path, image)
  })
  const badRows = new Set(result.bad.map((b) => (refs[b.index] as { pairRow: number }).pairRow))
  return {
    byPath,
    badRows,
    summary: {
      root: path.resolve(options.root),
      distinct: result.distinct,
      decoded: result.decoded,
      cached: result.cached,
      cache: result.cache,
      badRows: badRows.size,
    },
  }
}
