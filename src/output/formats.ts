/**
 * Output layouts besides hardneg's own shards: MMEB-train's Parquet columns with the
 * negatives as lists, UniME-V2's JSON Lines, sentence-transformers' n-tuple Parquet and
 * FlagEmbedding's fine-tuning JSON Lines. All are written as numbered shards
 * (`part-NNNNN.parquet` / `part-NNNNN.jsonl`) through a temporary name, like the
 * default layout.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ShardSink, shardName } from './_shard-sink.js'
import { HardnegError } from '../errors.js'
import { FILTERED_COLUMNS, FILTERED_IMAGES_COLUMN, RESCORE_COLUMNS, writeShards, type ShardColumn, type ShardInfo } from './shards.js'
import type { MinedRow } from '../types.js'

/**
 * How mined rows are written: hardneg's shards, MMEB-train's columns, UniME-V2's JSON
 * Lines, sentence-transformers' (anchor, positive, negative_1 .. negative_k) Parquet, or
 * FlagEmbedding's {query, pos, neg, pos_scores, neg_scores} JSON Lines.
 */
export type OutputFormat = 'parquet' | 'mmeb' | 'unime-v2' | 'sentence-transformers' | 'flagembedding'

/** Each negative's image path ('' = none), also for a row mined without images. */
function negativeImages(row: MinedRow): string[] {
  return row.negImages ?? row.negatives.map(() => '')
}

/** The output formats, for option checks and help. */
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['parquet', 'mmeb', 'unime-v2', 'sentence-transformers', 'flagembedding']

/** The layouts that hold texts only: a run with images, or rows of other lengths than k, cannot be written in them. */
export const TEXT_ONLY_FORMATS: readonly OutputFormat[] = ['sentence-transformers', 'flagembedding']

/**
 * sentence-transformers' n-tuple layout for `k` negatives: `anchor`, `positive`,
 * `negative_1` .. `negative_k`, strings, and nothing else, since its trainer takes every
 * column but a label as an input (MultipleNegativesRankingLoss reads them in order).
 */
export function sentenceTransformersColumns(k: number): ShardColumn[] {
  const columns: ShardColumn[] = [
    { name: 'anchor', type: 'string', get: (r) => r.query },
    { name: 'positive', type: 'string', get: (r) => r.positive },
  ]
  for (let i = 0; i < k; i++) {
    columns.push({ name: `negative_${i + 1}`, type: 'string', get: (r) => r.negatives[i] ?? missingNegative(r, i, k) })
  }
  return columns
}

function missingNegative(row: MinedRow, i: number, k: number): never {
  throw new Error(`row ${row.id} has ${row.negatives.length} negatives, expected ${k} for the sentence-transformers layout (negative_${i + 1})`)
}

/** One line of FlagEmbedding's fine-tuning data, with scores for distillation. */
export interface FlagEmbeddingRecord {
  query: string // the query
  pos: string[] // the row's positive
  neg: string[] // its hard negatives, best first
  pos_scores: number[] // sim(query, positive), aligned with pos; the rescorer's in a run with --rescore-url
  neg_scores: number[] // sim(query, negative), aligned with neg; the rescorer's in a run with --rescore-url
}

/** A mined row as FlagEmbedding's fine-tuning reads it. */
export function toFlagEmbedding(row: MinedRow): FlagEmbeddingRecord {
  return { query: row.query, pos: [row.positive], neg: row.negatives, pos_scores: [row.posRescore ?? row.posScore], neg_scores: row.negRescores ?? row.negScores }
}

/**
 * MMEB-train's columns (`qry, qry_image_path, pos_text, pos_image_path`) plus the mined
 * negatives as the hard-negative MMEB variants lay them out: `neg_text` and
 * `neg_image_path` as list<string> ('' = that side of a negative has no text / image),
 * then `subset` (the pool group) so one shard set can hold every subset.
 */
export const MMEB_COLUMNS: readonly ShardColumn[] = [
  { name: 'qry', type: 'string', get: (r) => r.query },
  { name: 'qry_image_path', type: 'string', get: (r) => r.queryImage ?? '' },
  { name: 'pos_text', type: 'string', get: (r) => r.positive },
  { name: 'pos_image_path', type: 'string', get: (r) => r.positiveImage ?? '' },
  { name: 'neg_text', type: 'list<string>', get: (r) => r.negatives },
  { name: 'neg_image_path', type: 'list<string>', get: (r) => negativeImages(r) },
  { name: 'subset', type: 'string', get: (r) => r.group },
]

/** The image columns of hardneg's own layout in a run with images. */
export const IMAGE_COLUMNS: readonly ShardColumn[] = [
  { name: 'query_image', type: 'string', get: (r) => r.queryImage ?? '' },
  { name: 'pos_image', type: 'string', get: (r) => r.positiveImage ?? '' },
  { name: 'neg_images', type: 'list<string>', get: (r) => negativeImages(r) },
]

/** One line of UniME-V2's training JSON Lines. */
export interface UnimeV2Record {
  query_text: string // query text ('' = none)
  query_image: string // query image path ('' = none)
  pos_text: string // positive text
  pos_image: string // positive image path
  query_pos_scores: number // sim(query, positive); the rescorer's score of it in a run with --rescore-url
  hard_negatives: [string, string][] // [text, image path] per hard negative, best first
  hard_negatives_scores: number[] // sim(query, negative), aligned with hard_negatives; the rescorer's scores in a run with --rescore-url
}

/** A mined row as UniME-V2 reads it. */
export function toUnimeV2(row: MinedRow): UnimeV2Record {
  const images = negativeImages(row)
  return {
    query_text: row.query,
    query_image: row.queryImage ?? '',
    pos_text: row.positive,
    pos_image: row.positiveImage ?? '',
    query_pos_scores: row.posRescore ?? row.posScore,
    hard_negatives: row.negatives.map((text, i) => [text, images[i] ?? '']),
    hard_negatives_scores: row.negRescores ?? row.negScores,
  }
}

/** Options of {@link writeJsonlShards}. */
export interface WriteJsonlShardsOptions {
  dir: string // output directory, created if missing; shards are named part-00000.jsonl, ...
  shardRows?: number // lines per shard (default 100000)
  toRecord: (row: MinedRow) => unknown // the JSON value written for one row, one line each
}

/**
 * Writes rows as JSON Lines shards, streaming: each shard goes to `.part-NNNNN.jsonl.tmp`
 * and is renamed when complete. Zero rows write one empty `part-00000.jsonl`.
 *
 * @example
 * const shards = await writeJsonlShards(rows, { dir: 'out', toRecord: toUnimeV2 })
 */
export async function writeJsonlShards(rows: AsyncIterable<MinedRow>, options: WriteJsonlShardsOptions): Promise<ShardInfo[]> {
  const shardRows = options.shardRows ?? 100_000
  if (!Number.isSafeInteger(shardRows) || shardRows < 1) throw new HardnegError('E_BAD_OPTION', `shardRows ${String(shardRows)}, expected a positive integer`)
  await mkdir(options.dir, { recursive: true })
  const shards: ShardInfo[] = []
  let current: JsonlShard | undefined
  try {
    for await (const row of rows) {
      current ??= await JsonlShard.open(options.dir, shards.length)
      await current.write(`${JSON.stringify(options.toRecord(row))}\n`)
      if (current.rows === shardRows) {
        shards.push(await current.commit())
        current = undefined
      }
    }
    if (current === undefined && shards.length === 0) current = await JsonlShard.open(options.dir, 0)
    if (current !== undefined) shards.push(await current.commit())
  } catch (err) {
    await current?.abort()
    throw err
  }
  return shards
}

/** One JSON Lines shard being written: lines go through a {@link ShardSink}, flushed every MiB. */
class JsonlShard {
  rows = 0

  private constructor(
    private readonly sink: ShardSink,
    private readonly dir: string,
    private readonly file: string,
  ) {}

  static async open(dir: string, index: number): Promise<JsonlShard> {
    const file = shardName(index, 'jsonl')
    const tmpPath = join(dir, `.${file}.tmp`)
    const sink = await ShardSink.create(tmpPath).catch((err: unknown) => {
      throw new HardnegError('E_OUTPUT', `cannot create the temporary shard file (${(err as NodeJS.ErrnoException).code})`, { file: tmpPath })
    })
    return new JsonlShard(sink, dir, file)
  }

  async write(line: string): Promise<void> {
    this.sink.appendBytes(Buffer.from(line, 'utf8'))
    this.rows++
    if (this.sink.index >= FLUSH_BYTES) await this.sink.flush()
  }

  async commit(): Promise<ShardInfo> {
    const { bytes, sha256 } = await this.sink.commit(join(this.dir, this.file))
    return { file: this.file, rows: this.rows, bytes, sha256 }
  }

  abort(): Promise<void> {
    return this.sink.abort()
  }
}

const FLUSH_BYTES = 1 << 20

/** Writes `rows` in `format` into `dir`; see {@link writeShards} for the default layout. */
export async function writeRowsAs(
  format: OutputFormat,
  rows: AsyncIterable<MinedRow>,
  options: {
    dir: string // output directory
    shardRows?: number // rows per shard (default 100000)
    carriedColumns: Parameters<typeof writeShards>[1]['carriedColumns'] // carried columns (Parquet layouts)
    images: boolean // a run with images: hardneg's layout gains the image columns, and the filtered columns filtered_images
    keepFiltered: boolean // rows carry `filtered`: the Parquet layouts gain the filtered_* columns
    rescored?: boolean // rows carry the rescorer's scores: hardneg's layout gains pos_rescore and neg_rescores (default false)
    k?: number // negatives per row: the sentence-transformers layout has one column each (required for it)
  },
): Promise<ShardInfo[]> {
  const { dir, shardRows, carriedColumns, images, keepFiltered } = options
  const extraColumns = keepFiltered ? [...FILTERED_COLUMNS, ...(images ? [FILTERED_IMAGES_COLUMN] : [])] : []
  switch (format) {
    case 'parquet':
      return writeShards(rows, { dir, ...(shardRows ? { shardRows } : {}), carriedColumns, extraColumns: [...(images ? IMAGE_COLUMNS : []), ...(options.rescored ? RESCORE_COLUMNS : []), ...extraColumns] })
    case 'mmeb':
      return writeShards(rows, { dir, ...(shardRows ? { shardRows } : {}), carriedColumns, baseColumns: MMEB_COLUMNS, extraColumns })
    case 'unime-v2':
      return writeJsonlShards(rows, { dir, ...(shardRows ? { shardRows } : {}), toRecord: toUnimeV2 })
    case 'sentence-transformers':
      if (options.k === undefined) throw new HardnegError('E_BAD_OPTION', "the 'sentence-transformers' layout needs k, the negatives per row")
      return writeShards(rows, { dir, ...(shardRows ? { shardRows } : {}), carriedColumns: [], baseColumns: sentenceTransformersColumns(options.k) })
    case 'flagembedding':
      return writeJsonlShards(rows, { dir, ...(shardRows ? { shardRows } : {}), toRecord: toFlagEmbedding })
  }
}
