/**
 * The last pipeline stage: mined rows in, Parquet shards out (`part-00000.parquet`, ...),
 * and the same shards read back as rows. The files are plain Parquet with standard
 * 3-level LIST columns, so pyarrow, Hugging Face `datasets` and DuckDB read the
 * directory as it is.
 */

import { mkdir, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet'
import type { AsyncBuffer, FileMetaData } from 'hyparquet'
import { compressors as decompressors } from 'hyparquet-compressors'
import { ParquetWriter } from 'hyparquet-writer'
import type { ColumnSource, KeyValue } from 'hyparquet-writer'
import { FILTERED_COLUMNS, FILTERED_IMAGES_COLUMN, MINED_COLUMNS, RESCORE_COLUMNS, RowGroupBuffer, parquetSchema, shardColumns } from './_shard-columns.js'
import type { CarriedColumn, ShardColumn, ShardColumnType } from './_shard-columns.js'
import { ShardSink, shardName } from './_shard-sink.js'
import { HardnegError } from '../errors.js'
import type { CellValue, FilteredCandidate, MinedRow } from '../types.js'

export type { CarriedColumn, ShardColumn, ShardColumnType }

/** Compression codec applied to every column chunk. All three are read by pyarrow, DuckDB and hyparquet. */
export type ShardCompression = 'snappy' | 'gzip' | 'none'

/** Options of {@link writeShards}. */
export interface WriteShardsOptions {
  dir: string // output directory, created if missing; shards are named part-00000.parquet, part-00001.parquet, ...
  shardRows?: number // rows per shard file; every shard but the last is full (default 100000)
  rowGroupRows?: number // rows per Parquet row group, the unit held in memory while writing (default 10000, capped at shardRows)
  compression?: ShardCompression // column chunk codec (default 'snappy'; 'gzip' gives ~37% smaller files for ~20% more CPU, see docs/decisions-parquet-write.md)
  carriedColumns: readonly CarriedColumn[] // carried columns in output order, after the mined columns; values from `MinedRow.carried`, nullable ([] for none)
  extraColumns?: readonly ShardColumn[] // further columns after the carried ones, e.g. image paths of a multimodal dataset (default none)
  baseColumns?: readonly ShardColumn[] // the leading columns, in place of the mined ones, for another layout such as MMEB's (default: the mined columns; such shards are not read back by readShards)
  onShard?: (shard: ShardInfo) => void | Promise<void> // called, and awaited, after each shard is complete under its final name
}

/** One shard as written. */
export interface ShardInfo {
  file: string // basename, e.g. 'part-00000.parquet'
  rows: number // rows in the shard
  bytes: number // file size in bytes
  sha256: string // hex SHA-256 of the file bytes
}

/** A row read back from a shard. */
export interface ShardRow extends MinedRow {
  extra: Record<string, unknown> // columns written through `extraColumns`, by name ({} when none); the filtered_* columns are read into `filtered` instead
}

export { FILTERED_COLUMNS, FILTERED_IMAGES_COLUMN, RESCORE_COLUMNS }

/** Key of the footer metadata entry that records which columns are carried and which are extra. */
const LAYOUT_KEY = 'hardneg.columns'

type ParquetWriterOptions = ConstructorParameters<typeof ParquetWriter>[0]

const CODECS = { snappy: 'SNAPPY', gzip: 'GZIP', none: 'UNCOMPRESSED' } as const

// Level 6 is zlib's default; the codec output has no timestamp, so files stay reproducible.
const compressors: ParquetWriterOptions['compressors'] = { GZIP: input => gzipSync(input, { level: 6 }) }

/**
 * Write mined rows into Parquet shards of `shardRows` rows each, streaming: at most one
 * row group (`rowGroupRows` rows) is buffered in memory.
 *
 * Columns, in order: `id`, `query`, `positive`, `group` (string), `pos_score` (float32),
 * `negatives`, `neg_ids` (list<string>), `neg_scores` (list<float32>), `n_valid`,
 * `n_false_negatives` (int32), all non-null; then the carried columns (nullable), then
 * any `extraColumns`.
 *
 * Each shard is written as `.part-NNNNN.parquet.tmp` in `dir` and renamed when complete,
 * so a file named `part-*.parquet` is always whole. If `rows` throws, or a row is
 * malformed (E_BAD_ROW), the unfinished shard's temporary file is removed and the error
 * propagates; shards completed before it stay, and the caller decides what to do with
 * them. Existing files of the same names are replaced; other files in `dir` are left alone.
 *
 * Zero rows write one empty `part-00000.parquet` (no row groups) that carries the full
 * schema, so readers of the directory (pyarrow, DuckDB globs) still see the columns.
 * (Hugging Face `load_dataset` refuses a split without rows whatever the files hold.)
 *
 * Same rows and options give byte-identical files: nothing time- or host-dependent is written.
 *
 * @returns the shards in order, with their sizes and SHA-256 sums
 * @example
 * const shards = await writeShards(minedRows, {
 *   dir: 'out/train',
 *   carriedColumns: [{ name: 'label', type: 'int64' }],
 * })
 * // [{ file: 'part-00000.parquet', rows: 100000, bytes: 48912345, sha256: '9f2c...' }, ...]
 */
export async function writeShards(rows: AsyncIterable<MinedRow>, options: WriteShardsOptions): Promise<ShardInfo[]> {
  const { dir, shardRows, rowGroupRows, codec, columns, onShard } = resolveOptions(options)
  const schema = parquetSchema(columns)
  const kvMetadata = [layoutMetadata(options)]
  await mkdir(dir, { recursive: true }).catch((err: unknown) => {
    throw new HardnegError('E_OUTPUT', `cannot create the output directory (${errorCode(err)})`, { file: dir })
  })

  const shards: ShardInfo[] = []
  const buffer = new RowGroupBuffer(columns)
  let shard: OpenShard | undefined

  const openShard = async (): Promise<OpenShard> => {
    const file = shardName(shards.length)
    const tmpPath = join(dir, `.${file}.tmp`)
    const sink = await ShardSink.create(tmpPath).catch((err: unknown) => {
      throw new HardnegError('E_OUTPUT', `cannot create the temporary shard file (${errorCode(err)})`, { file: tmpPath })
    })
    const writer = new ParquetWriter({ writer: sink, schema, codec, compressors, kvMetadata, createdBy: 'hardneg' })
    return { file, path: join(dir, file), sink, writer, rows: 0 }
  }
  const writeRowGroup = async (open: OpenShard): Promise<void> => {
    const rows = buffer.rows
    // hyparquet-writer's ColumnSource wants its own array types; the buffer holds plain arrays of checked values.
    const columnData = buffer.take() as ColumnSource[]
    await open.writer.write({ columnData, rowGroupSize: rows })
    open.rows += rows
  }
  const closeShard = async (open: OpenShard): Promise<void> => {
    let info: ShardInfo
    try {
      if (buffer.rows > 0) await writeRowGroup(open)
      await open.writer.finish()
      const { bytes, sha256 } = await open.sink.commit(open.path)
      info = { file: open.file, rows: open.rows, bytes, sha256 }
    } catch (err) {
      await open.sink.abort()
      throw err
    }
    shards.push(info)
    await onShard?.(info)
  }

  try {
    for await (const row of rows) {
      shard ??= await openShard()
      buffer.push(row, { file: shard.path, row: shard.rows + buffer.rows + 1, id: String(row.id) })
      if (shard.rows + buffer.rows === shardRows) {
        const full = shard
        shard = undefined // closeShard cleans up after itself
        await closeShard(full)
      } else if (buffer.rows === rowGroupRows) {
        await writeRowGroup(shard)
      }
    }
    if (shard === undefined && shards.length === 0) shard = await openShard()
    if (shard !== undefined) {
      const last = shard
      shard = undefined
      await closeShard(last)
    }
  } catch (err) {
    await shard?.sink.abort()
    throw err
  }
  return shards
}

/** A shard being written. */
interface OpenShard {
  file: string // final basename
  path: string // final path
  sink: ShardSink
  writer: ParquetWriter
  rows: number // rows written in completed row groups
}

function resolveOptions(options: WriteShardsOptions) {
  const shardRows = positiveInteger('shardRows', options.shardRows, 100_000)
  const rowGroupRows = Math.min(positiveInteger('rowGroupRows', options.rowGroupRows, 10_000), shardRows)
  const compression = options.compression ?? 'snappy'
  if (!Object.hasOwn(CODECS, compression)) {
    throw new HardnegError('E_BAD_OPTION', `compression ${JSON.stringify(compression)}, expected one of ${Object.keys(CODECS).join(', ')}`)
  }
  if (typeof options.dir !== 'string' || options.dir === '') {
    throw new HardnegError('E_BAD_OPTION', `dir ${JSON.stringify(options.dir)}, expected a directory path`)
  }
  if (!Array.isArray(options.carriedColumns)) {
    throw new HardnegError('E_BAD_OPTION', `carriedColumns ${String(options.carriedColumns)}, expected an array ([] for none)`)
  }
  return {
    dir: options.dir,
    shardRows,
    rowGroupRows,
    codec: CODECS[compression],
    columns: shardColumns(options.carriedColumns, options.extraColumns ?? [], options.baseColumns),
    onShard: options.onShard,
  }
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new HardnegError('E_BAD_OPTION', `${name} ${String(value)}, expected a positive integer`)
  }
  return value
}

function layoutMetadata(options: WriteShardsOptions): KeyValue {
  const carried = options.carriedColumns.map(c => c.name)
  const extra = (options.extraColumns ?? []).map(c => c.name)
  return { key: LAYOUT_KEY, value: JSON.stringify({ carried, extra }) }
}

function errorCode(err: unknown): string {
  return err instanceof Error && 'code' in err ? String(err.code) : String(err)
}

/**
 * The shard files of a directory (`part-*.parquet`, temporary files excluded), sorted by name.
 * Throws E_BAD_FILE when the directory cannot be read or holds no shard.
 */
export async function listShards(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((err: unknown) => {
    throw new HardnegError('E_BAD_FILE', `cannot read the shard directory (${errorCode(err)})`, { file: dir })
  })
  const index = (name: string) => Number(/^part-(\d+)\.parquet$/.exec(name)?.[1] ?? NaN)
  // By number, so part-100000 follows part-99999.
  const shards = names.filter(n => Number.isInteger(index(n))).sort((a, b) => index(a) - index(b))
  if (shards.length === 0) {
    throw new HardnegError('E_BAD_FILE', 'no part-*.parquet shards, expected at least part-00000.parquet', { file: dir })
  }
  return shards.map(n => join(dir, n))
}

/**
 * Read shards back as rows, one row group at a time. `source` is a shard directory (its
 * `part-*.parquet` files in name order) or a list of shard files (in the given order).
 * The result can be iterated more than once; each pass reads the files again.
 *
 * @example
 * for await (const row of readShards('out/train')) console.log(row.id, row.negatives.length)
 */
export function readShards(source: string | readonly string[]): AsyncIterable<ShardRow> {
  return {
    async *[Symbol.asyncIterator]() {
      const files = typeof source === 'string' ? await listShards(source) : source
      for (const file of files) yield* readShardRows(file)
    },
  }
}

/**
 * Read one shard back as rows, one row group at a time. Columns that are neither mined nor
 * extra (per the shard's footer) are returned in `carried`. Throws E_BAD_FILE for a file
 * that is missing or not Parquet, E_MISSING_COLUMN for one without the mined columns.
 * The result can be iterated more than once.
 */
export function readShardRows(file: string): AsyncIterable<ShardRow> {
  return {
    async *[Symbol.asyncIterator]() {
      const { buffer, metadata } = await openShardFile(file)
      const layout = shardLayout(file, metadata)
      let rowStart = 0
      for (const group of metadata.row_groups) {
        const rowEnd = rowStart + Number(group.num_rows)
        const rows = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd, compressors: decompressors })
        for (const row of rows) yield toShardRow(row, layout)
        rowStart = rowEnd
      }
    },
  }
}

/** A shard opened for reading chosen columns of chosen rows (what a report needs of a large run). */
export interface ShardColumns {
  file: string // the shard path
  rows: number // rows in the shard
  columns: string[] // top-level column names, in schema order
  rowGroups: { rowStart: number; rowEnd: number }[] // 0-based row ranges [rowStart, rowEnd) of the row groups
  read(columns: readonly string[], rowStart: number, rowEnd: number): Promise<Record<string, unknown>[]> // rows [rowStart, rowEnd) with only `columns`
}

/**
 * Opens one shard for column reads: only the footer is read here; each `read` decodes just
 * the pages of the given columns that hold the given rows. Throws E_BAD_FILE for a file
 * that is missing or not Parquet, or (from `read`) for rows that cannot be decoded.
 */
export async function openShardColumns(file: string): Promise<ShardColumns> {
  const { buffer, metadata } = await openShardFile(file)
  const rowGroups: ShardColumns['rowGroups'] = []
  let rowStart = 0
  for (const group of metadata.row_groups) {
    rowGroups.push({ rowStart, rowEnd: rowStart + Number(group.num_rows) })
    rowStart += Number(group.num_rows)
  }
  return {
    file,
    rows: Number(metadata.num_rows),
    columns: topLevelColumns(metadata),
    rowGroups,
    async read(columns, start, end) {
      try {
        return await parquetReadObjects({ file: buffer, metadata, columns: [...columns], rowStart: start, rowEnd: end, compressors: decompressors })
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err)
        throw new HardnegError('E_BAD_FILE', `cannot decode rows ${start + 1}-${end} of columns ${columns.join(', ')} (${why}), expected a readable Parquet shard`, { file })
      }
    },
  }
}

async function openShardFile(file: string): Promise<{ buffer: AsyncBuffer, metadata: FileMetaData }> {
  const info = await stat(file).catch((err: unknown) => {
    throw new HardnegError('E_BAD_FILE', `cannot open the shard (${errorCode(err)})`, { file })
  })
  if (!info.isFile()) throw new HardnegError('E_BAD_FILE', 'is not a file, expected a Parquet shard', { file })
  const buffer = await asyncBufferFromFile(file)
  const metadata = await parquetMetadataAsync(buffer).catch((err: unknown) => {
    throw new HardnegError('E_BAD_FILE', `not a readable Parquet file (${err instanceof Error ? err.message : String(err)})`, { file })
  })
  return { buffer, metadata }
}

/** Which columns of a shard are carried and which extra. */
interface ShardLayout {
  carried: string[]
  extra: string[]
}

function shardLayout(file: string, metadata: FileMetaData): ShardLayout {
  const top = topLevelColumns(metadata)
  for (const { name } of MINED_COLUMNS) {
    if (!top.includes(name)) {
      throw new HardnegError('E_MISSING_COLUMN', `no column "${name}", expected the hardneg shard columns (${MINED_COLUMNS.map(c => c.name).join(', ')})`, { file })
    }
  }
  const others = top.filter(n => !MINED_COLUMNS.some(c => c.name === n))
  const extraNames = recordedExtra(metadata)
  const extra = others.filter(n => extraNames.includes(n))
  return { carried: others.filter(n => !extra.includes(n)), extra }
}

/** Extra column names recorded in the footer; none for a file another tool wrote. */
function recordedExtra(metadata: FileMetaData): string[] {
  const recorded = metadata.key_value_metadata?.find(kv => kv.key === LAYOUT_KEY)?.value
  if (recorded === undefined) return []
  try {
    const { extra } = JSON.parse(recorded) as Partial<ShardLayout>
    return Array.isArray(extra) ? extra.filter(n => typeof n === 'string') : []
  } catch {
    return []
  }
}

/** Names of the top-level columns, in schema order. */
function topLevelColumns(metadata: FileMetaData): string[] {
  const names: string[] = []
  const [root, ...elements] = metadata.schema
  let i = 0
  for (let child = 0; child < (root?.num_children ?? 0); child++) {
    const element = elements[i]
    if (element === undefined) break
    names.push(element.name)
    i += subtreeSize(elements, i)
  }
  return names
}

function subtreeSize(elements: FileMetaData['schema'], index: number): number {
  let size = 1
  const children = elements[index]?.num_children ?? 0
  for (let c = 0; c < children; c++) size += subtreeSize(elements, index + size)
  return size
}

function toShardRow(row: Record<string, unknown>, layout: ShardLayout): ShardRow {
  const carried: Record<string, CellValue> = {}
  for (const name of layout.carried) carried[name] = (row[name] ?? null) as CellValue
  const extra: Record<string, unknown> = {}
  for (const name of layout.extra) if (!FILTERED_NAMES.has(name) && !RESCORE_NAMES.has(name)) extra[name] = row[name] ?? null
  const filtered = layout.extra.includes('filtered_texts') ? filteredOf(row) : undefined
  const rescored = layout.extra.includes('pos_rescore') && layout.extra.includes('neg_rescores')
  return {
    id: row.id as string,
    query: row.query as string,
    positive: row.positive as string,
    group: row.group as string,
    posScore: row.pos_score as number,
    negatives: row.negatives as string[],
    negIds: row.neg_ids as string[],
    negScores: row.neg_scores as number[],
    nValid: row.n_valid as number,
    nFalseNegatives: row.n_false_negatives as number,
    carried,
    ...(filtered ? { filtered } : {}),
    ...(rescored ? { posRescore: row.pos_rescore as number, negRescores: row.neg_rescores as number[] } : {}),
    extra,
  }
}

const RESCORE_NAMES: ReadonlySet<string> = new Set(RESCORE_COLUMNS.map(c => c.name))

const FILTERED_NAMES: ReadonlySet<string> = new Set([...FILTERED_COLUMNS, FILTERED_IMAGES_COLUMN].map(c => c.name))

function filteredOf(row: Record<string, unknown>): FilteredCandidate[] {
  const list = (name: string): unknown[] => (Array.isArray(row[name]) ? (row[name] as unknown[]) : [])
  const [ids, scores, rules] = [list('filtered_ids'), list('filtered_scores'), list('filtered_rules')]
  const images = Array.isArray(row[FILTERED_IMAGES_COLUMN.name]) ? list(FILTERED_IMAGES_COLUMN.name) : undefined
  return list('filtered_texts').map((text, i) => ({
    text: String(text),
    id: String(ids[i] ?? ''),
    score: Number(scores[i]),
    rule: String(rules[i] ?? ''),
    ...(images ? { image: String(images[i] ?? '') } : {}),
  }))
}
