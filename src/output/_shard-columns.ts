/**
 * The shard schema as data: one spec per output column (name, type, getter), and the
 * translation of those specs into Parquet schema elements and row-group column data.
 * Private to `shards.ts`.
 */

// The writer's own SchemaElement: hyparquet-writer pins an older hyparquet whose types differ slightly.
import type { SchemaElement } from 'hyparquet-writer'
import { HardnegError } from '../errors.js'
import type { MinedRow } from '../types.js'

/** Value type of a shard column. List types are standard 3-level Parquet LISTs with non-null elements. */
export type ShardColumnType =
  | 'string'
  | 'float32'
  | 'float64'
  | 'int32'
  | 'int64'
  | 'boolean'
  | 'list<string>'
  | 'list<float32>'

/** One output column: its name, type and where its value comes from. */
export interface ShardColumn {
  name: string // output column name
  type: ShardColumnType // Parquet type written
  nullable?: boolean // null or undefined is written as null (default false: a missing value is an error)
  get: (row: MinedRow) => unknown // the value for one row
}

/** A carried column as the pairs reader declares it: values come from `MinedRow.carried[name]`, nullable. */
export interface CarriedColumn {
  name: string // output column name, key in `MinedRow.carried`
  type: 'string' | 'float64' | 'int64' | 'boolean' // Parquet type written
}

/** The mined columns every shard starts with, in output order. */
export const MINED_COLUMNS: readonly ShardColumn[] = [
  { name: 'id', type: 'string', get: r => r.id },
  { name: 'query', type: 'string', get: r => r.query },
  { name: 'positive', type: 'string', get: r => r.positive },
  { name: 'group', type: 'string', get: r => r.group },
  { name: 'pos_score', type: 'float32', get: r => r.posScore },
  { name: 'negatives', type: 'list<string>', get: r => r.negatives },
  { name: 'neg_ids', type: 'list<string>', get: r => r.negIds },
  { name: 'neg_scores', type: 'list<float32>', get: r => r.negScores },
  { name: 'n_valid', type: 'int32', get: r => r.nValid },
  { name: 'n_false_negatives', type: 'int32', get: r => r.nFalseNegatives },
]

/**
 * The columns of `--keep-filtered`, written after the carried columns (as extra columns)
 * only when it is on: the removed candidates of `MinedRow.filtered` as parallel lists,
 * highest score first.
 */
export const FILTERED_COLUMNS: readonly ShardColumn[] = [
  { name: 'filtered_texts', type: 'list<string>', get: r => (r.filtered ?? []).map(f => f.text) },
  { name: 'filtered_ids', type: 'list<string>', get: r => (r.filtered ?? []).map(f => f.id) },
  { name: 'filtered_scores', type: 'list<float32>', get: r => (r.filtered ?? []).map(f => f.score) },
  { name: 'filtered_rules', type: 'list<string>', get: r => (r.filtered ?? []).map(f => f.rule) },
]

/** With `--rescore-url`: the rescorer's scores of the positive and of each negative, in its own score space. */
export const RESCORE_COLUMNS: readonly ShardColumn[] = [
  { name: 'pos_rescore', type: 'float32', get: r => r.posRescore ?? Number.NaN },
  { name: 'neg_rescores', type: 'list<float32>', get: r => r.negRescores ?? [] },
]

/** With `--keep-filtered` in a run with images: each filtered candidate's image path ('' = none), after FILTERED_COLUMNS. */
export const FILTERED_IMAGES_COLUMN: ShardColumn = {
  name: 'filtered_images',
  type: 'list<string>',
  get: r => (r.filtered ?? []).map(f => f.image ?? ''),
}

const CARRIED_TYPES: ReadonlySet<string> = new Set(['string', 'float64', 'int64', 'boolean'])
const COLUMN_TYPES: ReadonlySet<string> = new Set([...CARRIED_TYPES, 'float32', 'int32', 'list<string>', 'list<float32>'])

/**
 * The full column list of a shard: mined (or other base) columns, then carried columns, then extra columns.
 * Throws E_BAD_OPTION on a duplicate name or an unknown type.
 */
export function shardColumns(carried: readonly CarriedColumn[], extra: readonly ShardColumn[], base: readonly ShardColumn[] = MINED_COLUMNS): ShardColumn[] {
  const columns: ShardColumn[] = [...base]
  for (const c of carried) {
    if (!CARRIED_TYPES.has(c.type)) {
      throw new HardnegError('E_BAD_OPTION', `carriedColumns: column "${c.name}" has type ${JSON.stringify(c.type)}, expected string, float64, int64 or boolean`)
    }
    const name = c.name
    columns.push({ name, type: c.type, nullable: true, get: r => r.carried[name] })
  }
  for (const c of extra) {
    if (!COLUMN_TYPES.has(c.type)) {
      throw new HardnegError('E_BAD_OPTION', `extraColumns: column "${c.name}" has type ${JSON.stringify(c.type)}, expected one of ${[...COLUMN_TYPES].join(', ')}`)
    }
    columns.push(c)
  }
  const seen = new Set<string>()
  for (const { name } of columns) {
    if (name === '') throw new HardnegError('E_BAD_OPTION', 'writeShards: a column name is empty, expected a non-empty name')
    if (seen.has(name)) {
      throw new HardnegError('E_BAD_OPTION', `writeShards: column "${name}" appears twice, expected unique names (mined, carried and extra columns share one namespace)`)
    }
    seen.add(name)
  }
  return columns
}

/** Parquet schema elements (flattened tree, root first) for `columns`. */
export function parquetSchema(columns: readonly ShardColumn[]): SchemaElement[] {
  const schema: SchemaElement[] = [{ name: 'root', num_children: columns.length }]
  for (const { name, type, nullable } of columns) {
    const repetition_type = nullable ? 'OPTIONAL' : 'REQUIRED'
    if (type === 'list<string>' || type === 'list<float32>') {
      schema.push(
        { name, repetition_type, converted_type: 'LIST', logical_type: { type: 'LIST' }, num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        leafElement('element', type === 'list<string>' ? 'string' : 'float32', 'REQUIRED'),
      )
    } else {
      schema.push(leafElement(name, type, repetition_type))
    }
  }
  return schema
}

function leafElement(name: string, type: ShardColumnType, repetition_type: 'REQUIRED' | 'OPTIONAL'): SchemaElement {
  switch (type) {
    case 'string':
      return { name, repetition_type, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } }
    case 'float32':
      return { name, repetition_type, type: 'FLOAT' }
    case 'float64':
      return { name, repetition_type, type: 'DOUBLE' }
    case 'int32':
      return { name, repetition_type, type: 'INT32' }
    case 'int64':
      return { name, repetition_type, type: 'INT64' }
    case 'boolean':
      return { name, repetition_type, type: 'BOOLEAN' }
    default:
      throw new Error(`leafElement: list type ${type} is not a leaf`)
  }
}

/** Where a value is being written, for error messages. */
export interface CellPlace {
  file: string // shard path as it will be named when complete
  row: number // 1-based row within that shard
  id: string // the mined row's id
}

/**
 * Column buffers for one row group: `push` checks and stores one row's values, `take`
 * hands the buffered columns to the Parquet writer and starts the next group.
 */
export class RowGroupBuffer {
  readonly columns: readonly ShardColumn[]
  private data: unknown[][]

  constructor(columns: readonly ShardColumn[]) {
    this.columns = columns
    this.data = columns.map(() => [])
  }

  /** Rows buffered since the last `take`. */
  get rows(): number {
    return this.data[0]?.length ?? 0
  }

  /** Check and buffer one row; throws E_BAD_ROW naming `place` on a value of the wrong type. */
  push(row: MinedRow, place: CellPlace): void {
    // Convert every cell before storing any, so a bad row never leaves the columns ragged.
    const cells = this.columns.map(column => toParquetValue(column, column.get(row), place))
    const nNeg = row.negatives.length
    if (row.negIds.length !== nNeg || row.negScores.length !== nNeg) {
      throw rowError(place, `negatives, neg_ids and neg_scores have ${nNeg}, ${row.negIds.length} and ${row.negScores.length} values, expected equal lengths`)
    }
    cells.forEach((cell, i) => this.data[i]?.push(cell))
  }

  /** The buffered columns in hyparquet-writer's shape; empties the buffer. */
  take(): { name: string, data: unknown[] }[] {
    const out = this.columns.map((c, i) => ({ name: c.name, data: this.data[i] ?? [] }))
    this.data = this.columns.map(() => [])
    return out
  }
}

function toParquetValue(column: ShardColumn, value: unknown, place: CellPlace): unknown {
  if (value === null || value === undefined) {
    if (column.nullable) return null
    throw rowError(place, `column "${column.name}" is ${String(value)}, expected ${column.type}`)
  }
  switch (column.type) {
    case 'string':
      if (typeof value === 'string') return value
      break
    case 'float32':
    case 'float64':
      if (typeof value === 'number') return value
      break
    case 'int32':
      if (typeof value === 'number' && Number.isInteger(value) && value >= -0x80000000 && value <= 0x7fffffff) return value
      break
    case 'int64':
      if (typeof value === 'bigint' && value >= -(2n ** 63n) && value < 2n ** 63n) return value
      if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value)
      break
    case 'boolean':
      if (typeof value === 'boolean') return value
      break
    case 'list<string>':
    case 'list<float32>': {
      if (!Array.isArray(value)) break
      const elementType = column.type === 'list<string>' ? 'string' : 'number'
      const index = value.findIndex(v => typeof v !== elementType)
      if (index < 0) return value
      throw rowError(place, `column "${column.name}" element ${index} is ${describe(value[index])}, expected ${elementType}`)
    }
  }
  throw rowError(place, `column "${column.name}" is ${describe(value)}, expected ${column.type}${column.nullable ? ' or null' : ''}`)
}

function rowError(place: CellPlace, detail: string): HardnegError {
  return new HardnegError('E_BAD_ROW', `${detail} (row id ${JSON.stringify(place.id)})`, { file: place.file, row: place.row })
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return `a list of ${value.length}`
  if (typeof value === 'string') return `${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value)} (string)`
  if (typeof value === 'bigint') return `${value}n (bigint)`
  if (typeof value === 'object') return `an object`
  return `${String(value)} (${typeof value})`
}
