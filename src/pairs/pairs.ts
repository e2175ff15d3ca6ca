/**
 * Read training pairs (query, positive, optional id, group and carried columns) from
 * CSV, TSV, JSONL or Parquet, as a stream of {@link PairRecord}s in file order.
 */

import { extname } from 'node:path'
import { HardnegError } from '../errors.js'
import type { CellValue, PairRecord } from '../types.js'
import { emptyFileError, describe } from './_source.js'
import type { PairSource, SourceRow } from './_source.js'

/** File formats {@link readPairs} understands. */
export type PairsFormat = 'csv' | 'tsv' | 'jsonl' | 'parquet'

/** Names of the built-in column layouts, see {@link PRESETS}. */
export type PresetName = 'simcse' | 'mmeb'

/** An input column copied to every output row, possibly under another name. */
export interface PresetCarry {
  from: string // input column
  to: string // output name in `PairRecord.carried`
  optional: boolean // true: skipped when the file lacks the column; false: missing = E_MISSING_COLUMN
}

/** A known dataset layout: which columns hold what. */
export interface PairPreset {
  queryCol: string // query text column
  positiveCol: string // positive text column
  groupCol?: string // pool group column, used only when the file has it (else group '')
  carry: readonly PresetCarry[] // columns copied to the output
  queryImageCol?: string // image path column; where non-empty, an empty query text is allowed
  positiveImageCol?: string // image path column; where non-empty, an empty positive text is allowed
}

/**
 * Built-in layouts.
 * - `simcse`: SimCSE's `nli_for_simcse.csv` (`sent0,sent1,hard_neg`); the original hard
 *   negative is kept as `orig_hard_neg`.
 * - `mmeb`: VLM2Vec's MMEB-train Parquet (`qry, qry_image_path, pos_text, pos_image_path`,
 *   `subset`); one pool per subset, and a side may have an image instead of text.
 */
export const PRESETS: Readonly<Record<PresetName, Readonly<PairPreset>>> = Object.freeze({
  simcse: Object.freeze({
    queryCol: 'sent0',
    positiveCol: 'sent1',
    carry: Object.freeze([{ from: 'hard_neg', to: 'orig_hard_neg', optional: false }]),
  }),
  mmeb: Object.freeze({
    queryCol: 'qry',
    positiveCol: 'pos_text',
    groupCol: 'subset',
    carry: Object.freeze([]),
    queryImageCol: 'qry_image_path',
    positiveImageCol: 'pos_image_path',
  }),
})

/** Options of {@link readPairs} and {@link collectPairs}. */
export interface ReadPairsOptions {
  /** Path of the pairs file, as the user gave it (it is quoted in messages). */
  file: string
  /** File format (default: from the extension: .csv, .tsv, .jsonl/.json/.ndjson, .parquet). */
  format?: PairsFormat
  /** Column layout of a known dataset (default: none, columns `query` and `positive`). */
  preset?: PresetName
  /** Column holding the pair id (default: none, the id is the 0-based row index as a string). */
  idCol?: string
  /** Column holding the query text (default: the preset's, else `query`). */
  queryCol?: string
  /** Column holding the positive text (default: the preset's, else `positive`). */
  positiveCol?: string
  /** Column holding the pool group (default: the preset's if the file has it, else every group is ''). */
  groupCol?: string
  /** Extra columns copied to the output under the same name, after the preset's (default: none). */
  carry?: readonly string[]
  /** Column holding the query's image path; where non-empty, an empty query text is allowed (default: the preset's, e.g. mmeb's qry_image_path, used when the file has it; else none). */
  queryImageCol?: string
  /** Column holding the positive's image path, as queryImageCol (default: the preset's, e.g. mmeb's pos_image_path). */
  positiveImageCol?: string
}

const FORMATS: readonly PairsFormat[] = ['csv', 'tsv', 'jsonl', 'parquet']

const EXTENSIONS: Readonly<Record<string, PairsFormat>> = {
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.jsonl': 'jsonl',
  '.json': 'jsonl',
  '.ndjson': 'jsonl',
  '.parquet': 'parquet',
}

/**
 * Stream the pairs of `options.file` in file order.
 *
 * Options are checked at once (E_BAD_OPTION, or E_BAD_FILE for an unknown extension);
 * everything about the file's content is reported while iterating. Each iteration opens
 * the file afresh, so the result can be read more than once (e.g. two passes over a pool).
 *
 * Errors are {@link HardnegError}s whose place is `file:N`, where N is the 1-based data
 * row (header excluded) for CSV, TSV and Parquet, and the 1-based **line** for JSONL
 * (blank lines are skipped but counted). `PairRecord.row` is always the 0-based index
 * among the pairs.
 *
 * @example
 * ```ts
 * for await (const pair of readPairs({ file: 'nli_for_simcse.csv', preset: 'simcse' })) {
 *   console.log(pair.id, pair.query, pair.positive, pair.carried['orig_hard_neg'])
 * }
 * ```
 */
export function readPairs(options: ReadPairsOptions): AsyncIterable<PairRecord> {
  const plan = planRead(options)
  return { [Symbol.asyncIterator]: () => iteratePairs(plan) }
}

/**
 * Read every pair of `options.file` into an array; for small inputs and tests.
 *
 * @example
 * ```ts
 * const pairs = await collectPairs({ file: 'fixtures/coco-mini/mmeb-style.parquet', preset: 'mmeb' })
 * ```
 */
export async function collectPairs(options: ReadPairsOptions): Promise<PairRecord[]> {
  const pairs: PairRecord[] = []
  for await (const pair of readPairs(options)) pairs.push(pair)
  return pairs
}

type Role = 'id' | 'query' | 'positive' | 'group' | 'carried value' | 'image path'

/** Where a column name came from, quoted when the file lacks it. */
interface ColumnWish {
  name: string
  source: string // e.g. 'from --query-col', 'from preset simcse'
}

interface ReadPlan {
  file: string
  format: PairsFormat
  id: ColumnWish | undefined
  query: ColumnWish
  positive: ColumnWish
  group: ColumnWish | undefined
  groupOptional: boolean // preset group: used only if present
  carry: (PresetCarry & { source: string })[]
  queryImage: (ColumnWish & { optional: boolean }) | undefined // a preset's image column is used only if present
  positiveImage: (ColumnWish & { optional: boolean }) | undefined
}

function planRead(options: ReadPairsOptions): ReadPlan {
  const { file, idCol, queryCol, positiveCol, groupCol, carry = [], queryImageCol, positiveImageCol } = options
  if (typeof file !== 'string' || file === '') {
    throw new HardnegError('E_BAD_OPTION', `file is ${JSON.stringify(file)}, expected a path`)
  }
  const format = options.format ?? formatFromName(file)
  if (!FORMATS.includes(format)) {
    throw new HardnegError('E_BAD_OPTION', `--format '${format}', expected one of: ${FORMATS.join(', ')}`)
  }
  const presetName = options.preset
  if (presetName !== undefined && !Object.hasOwn(PRESETS, presetName)) {
    throw new HardnegError('E_BAD_OPTION', `--preset '${presetName}', expected one of: ${Object.keys(PRESETS).join(', ')}`)
  }
  const flags = [
    ['--id-col', idCol], ['--query-col', queryCol], ['--positive-col', positiveCol], ['--group-col', groupCol],
    ['--query-image-col', queryImageCol], ['--positive-image-col', positiveImageCol],
  ] as const
  for (const [flag, value] of flags) {
    if (value === '') throw new HardnegError('E_BAD_OPTION', `${flag} is empty, expected a column name`)
  }
  if (carry.some(name => name === '')) {
    throw new HardnegError('E_BAD_OPTION', '--carry has an empty name, expected column names')
  }

  const preset = presetName === undefined ? undefined : PRESETS[presetName]
  const fromPreset = `from preset ${presetName}`
  const wish = (flag: string, given: string | undefined, presetValue: string | undefined, fallback: string): ColumnWish => {
    if (given !== undefined) return { name: given, source: `from ${flag}` }
    if (presetValue !== undefined) return { name: presetValue, source: fromPreset }
    return { name: fallback, source: `the default; choose with ${flag} or --preset` }
  }
  // A preset's image column may be absent (a text-only subset); a named one must exist.
  const imageWish = (flag: string, given: string | undefined, presetValue: string | undefined): ReadPlan['queryImage'] => {
    if (given !== undefined) return { name: given, source: `from ${flag}`, optional: false }
    if (presetValue !== undefined) return { name: presetValue, source: fromPreset, optional: true }
    return undefined
  }
  let groupWish: ColumnWish | undefined
  if (groupCol !== undefined) groupWish = { name: groupCol, source: 'from --group-col' }
  else if (preset?.groupCol !== undefined) groupWish = { name: preset.groupCol, source: fromPreset }
  return {
    file,
    format,
    id: idCol === undefined ? undefined : { name: idCol, source: 'from --id-col' },
    query: wish('--query-col', queryCol, preset?.queryCol, 'query'),
    positive: wish('--positive-col', positiveCol, preset?.positiveCol, 'positive'),
    group: groupWish,
    groupOptional: groupCol === undefined,
    carry: [
      ...(preset?.carry ?? []).map(c => ({ ...c, source: fromPreset })),
      ...carry.map(name => ({ from: name, to: name, optional: false, source: 'from --carry' })),
    ],
    queryImage: imageWish('--query-image-col', queryImageCol, preset?.queryImageCol),
    positiveImage: imageWish('--positive-image-col', positiveImageCol, preset?.positiveImageCol),
  }
}

function formatFromName(file: string): PairsFormat {
  const ext = extname(file).toLowerCase()
  const format = EXTENSIONS[ext]
  if (format !== undefined) return format
  const found = ext === '' ? 'no extension' : `extension '${ext}'`
  throw new HardnegError('E_BAD_FILE', `${found}, expected .csv, .tsv, .jsonl, .json, .ndjson or .parquet (or set --pairs-format)`, { file })
}

async function openSource(file: string, format: PairsFormat): Promise<PairSource> {
  // Each reader is loaded only when its format is used, so reading a CSV never loads Parquet codecs.
  switch (format) {
    case 'csv':
      return (await import('./_csv.js')).openDelimitedSource(file, ',')
    case 'tsv':
      return (await import('./_csv.js')).openDelimitedSource(file, '\t')
    case 'jsonl':
      return (await import('./_jsonl.js')).openJsonlSource(file)
    case 'parquet':
      return (await import('./_parquet.js')).openParquetSource(file)
  }
}

/** Column positions within the selected values of a source row. */
interface Layout {
  select: string[]
  id: number // -1 = row index
  query: number
  positive: number
  group: number // -1 = ''
  carry: { index: number; to: string }[] // `to` = output name
  queryImage: number // -1 = no image column
  positiveImage: number
}

function layoutColumns(plan: ReadPlan, columns: readonly string[]): Layout {
  const available = new Set(columns)
  const select: string[] = []
  const indexOf = (name: string): number => {
    let index = select.indexOf(name)
    if (index < 0) index = select.push(name) - 1
    return index
  }
  const need = (role: string, wish: ColumnWish): number => {
    if (!available.has(wish.name)) {
      const found = columns.length === 0 ? '(none)' : columns.join(',')
      throw new HardnegError('E_MISSING_COLUMN', `${role} column '${wish.name}' (${wish.source}) not found, columns are: ${found}`, { file: plan.file })
    }
    return indexOf(wish.name)
  }
  const optional = (name: string | undefined): number => (name !== undefined && available.has(name) ? indexOf(name) : -1)

  const query = need('query', plan.query)
  const positive = need('positive', plan.positive)
  const id = plan.id === undefined ? -1 : need('id', plan.id)
  const group = plan.group === undefined ? -1 : plan.groupOptional ? optional(plan.group.name) : need('group', plan.group)
  const carry: Layout['carry'] = []
  for (const c of plan.carry) {
    const index = c.optional ? optional(c.from) : need('carried', { name: c.from, source: c.source })
    if (index >= 0) carry.push({ index, to: c.to })
  }
  const image = (wish: ReadPlan['queryImage'], role: string): number =>
    wish === undefined ? -1 : wish.optional ? optional(wish.name) : need(role, wish)
  return { select, id, query, positive, group, carry, queryImage: image(plan.queryImage, 'query image'), positiveImage: image(plan.positiveImage, 'positive image') }
}

async function* iteratePairs(plan: ReadPlan): AsyncGenerator<PairRecord> {
  const { file } = plan
  const source = await openSource(file, plan.format)
  try {
    const layout = layoutColumns(plan, source.columns)
    let row = 0
    for await (const sourceRow of source.rows(layout.select)) {
      yield toPair(sourceRow, row, layout, plan)
      row++
    }
    if (row === 0) throw emptyFileError(file)
  } finally {
    await source.close()
  }
}

function toPair({ place, values }: SourceRow, row: number, layout: Layout, plan: ReadPlan): PairRecord {
  const fail = (role: Role, index: number, found: string, expected: string): never => {
    throw new HardnegError('E_BAD_ROW', `${role} (column '${layout.select[index]}') is ${found}, expected ${expected}`, { file: plan.file, row: place })
  }
  const text = (role: 'query' | 'positive', index: number, imageIndex: number): string => {
    const value = values[index]
    if (typeof value === 'string' && value !== '') return value
    if (value !== '' && value !== null) return fail(role, index, describe(value), 'a string')
    if (imageIndex >= 0 && hasImage(values[imageIndex])) return ''
    const expected = imageIndex >= 0 ? `text or an image path in column '${layout.select[imageIndex]}'` : 'text'
    return fail(role, index, describe(value), expected)
  }

  const query = text('query', layout.query, layout.queryImage)
  const positive = text('positive', layout.positive, layout.positiveImage)

  let id = String(row)
  if (layout.id >= 0) {
    const value = values[layout.id]
    if (typeof value === 'number' || typeof value === 'bigint') id = String(value)
    else if (typeof value !== 'string') fail('id', layout.id, describe(value), 'a string or number')
    else if (value === '') fail('id', layout.id, 'empty', 'text')
    else id = value
  }

  let group = ''
  if (layout.group >= 0) {
    const value = values[layout.group]
    if (typeof value === 'string') group = value
    else if (typeof value === 'number' || typeof value === 'bigint') group = String(value)
    else if (value !== null) fail('group', layout.group, describe(value), 'a string or number')
  }

  const carried: Record<string, CellValue> = {}
  for (const { index, to } of layout.carry) {
    const value = values[index]
    if (!isCellValue(value)) fail('carried value', index, describe(value), 'a string, number, boolean or null')
    carried[to] = value as CellValue
  }

  const imagePath = (index: number): string => {
    if (index < 0) return ''
    const value = values[index]
    if (value === null || value === undefined || typeof value === 'string') return value ?? ''
    return fail('image path', index, describe(value), 'a string path or empty')
  }

  return { row, id, query, positive, group, carried, queryImage: imagePath(layout.queryImage), positiveImage: imagePath(layout.positiveImage) }
}

function hasImage(value: unknown): boolean {
  return typeof value === 'string' ? value !== '' : value !== null && value !== undefined
}

function isCellValue(value: unknown): value is CellValue {
  const type = typeof value
  return value === null || type === 'string' || type === 'number' || type === 'boolean' || type === 'bigint'
}

