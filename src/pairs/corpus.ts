/**
 * Reading an external candidate pool (--corpus): rows with an id and a text column, in
 * any format the pairs reader accepts.
 */
import { readPairs, type PairsFormat } from './pairs.js'
import type { CorpusRecord } from '../types.js'

/** Options of {@link readCorpus}. */
export interface ReadCorpusOptions {
  file: string // corpus file: CSV/TSV with header, JSONL or Parquet
  format?: PairsFormat // default: from the extension
  idCol?: string // id column (default 'id')
  textCol?: string // text column (default 'text')
}

/**
 * Reads every corpus row into memory (the pool needs them all).
 *
 * @example
 * const corpus = await readCorpus({ file: 'wiki-passages.jsonl' })
 */
export async function readCorpus(options: ReadCorpusOptions): Promise<CorpusRecord[]> {
  const textCol = options.textCol ?? 'text'
  const out: CorpusRecord[] = []
  // The pairs reader already handles every format, quoting and error place; a corpus
  // row is a pair whose query and positive are the same text column.
  const rows = readPairs({
    file: options.file,
    ...(options.format ? { format: options.format } : {}),
    idCol: options.idCol ?? 'id',
    queryCol: textCol,
    positiveCol: textCol,
  })
  for await (const r of rows) out.push({ row: r.row, id: r.id, text: r.positive })
  return out
}
