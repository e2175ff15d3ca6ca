/**
 * Checks of a mined shard directory as a whole: the manifest is there and consistent,
 * every listed shard exists with its row count and sha256, nothing unlisted would be
 * picked up by a `*.parquet` glob, and each shard's schema is the one docs/mining.md
 * states. Returns what the row checks need: the readable shards and the mining options.
 * Private to the validate files.
 */

import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { asyncBufferFromFile, parquetMetadataAsync, parquetSchema } from 'hyparquet'
import type { AsyncBuffer, FileMetaData, SchemaTree } from 'hyparquet'
import { HardnegError, isHardnegError } from '../errors.js'
import type { FalseNegativeRules } from '../mine/filters.js'
import { MANIFEST_FILE, hashFile, readManifest, type Manifest } from '../output/manifest.js'
import { listShards } from '../output/shards.js'
import type { FindingLog } from './_findings.js'

/** The mined columns and their types, as docs/mining.md states them. */
export const MINED_SCHEMA = {
  id: 'string',
  query: 'string',
  positive: 'string',
  group: 'string',
  pos_score: 'float32',
  negatives: 'list<string>',
  neg_ids: 'list<string>',
  neg_scores: 'list<float32>',
  n_valid: 'int32',
  n_false_negatives: 'int32',
} as const

/** A shard that opened, with the mined columns present. */
export interface OpenShard {
  file: string // path: the directory joined with the file name
  rows: number // rows in the footer
  buffer: AsyncBuffer
  metadata: FileMetaData
}

/** How the run selected negatives, from the manifest's options. */
export interface MinedSelection {
  k: number
  pad: 'repeat' | 'none' | 'drop'
  sampling: 'top' | 'random'
}

/** What the row checks need from the directory. */
export interface ShardSet {
  dir: string
  manifest: Manifest | undefined // present and valid JSON
  rules: FalseNegativeRules | undefined // threshold and caps, when the manifest states them
  selection: MinedSelection | undefined // k, pad and sampling, when the manifest states them
  shards: OpenShard[] // readable shards with the mined columns, in manifest (else name) order
}

/** Checks the directory `dir`; throws E_BAD_FILE only when it is not a readable directory. */
export async function checkShardSet(dir: string, log: FindingLog): Promise<ShardSet> {
  const info = await stat(dir).catch((err: unknown) => {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err)
    throw new HardnegError('E_BAD_FILE', `cannot open (${reason}), expected a directory of mined shards`, { file: dir })
  })
  if (!info.isDirectory()) throw new HardnegError('E_BAD_FILE', 'not a directory, expected a directory of mined shards', { file: dir })
  log.ran('V_MANIFEST_MISSING', 'V_MANIFEST_INVALID', 'V_SHARD_MISSING', 'V_SHARD_STRAY', 'V_SHARD_UNREADABLE', 'V_SCHEMA')

  const manifest = await loadManifest(dir, log)
  const listed = manifest === undefined ? undefined : listedShards(dir, manifest, log)
  const names = (await readdir(dir)).filter(n => n.endsWith('.parquet') && !n.startsWith('.'))
  let order: string[]
  const expected = new Map<string, { rows: number; sha256: string }>()
  if (listed !== undefined) {
    log.ran('V_SHARD_ROWS', 'V_SHARD_SHA')
    order = []
    for (const s of listed) {
      expected.set(s.file, s)
      if (names.includes(s.file)) order.push(s.file)
      else log.add('V_SHARD_MISSING', { file: path.join(dir, s.file) }, `missing, expected it (listed in ${MANIFEST_FILE} with ${s.rows} rows)`)
    }
  } else {
    const reason = `no usable ${MANIFEST_FILE}`
    log.skip('V_SHARD_ROWS', reason)
    log.skip('V_SHARD_SHA', reason)
    order = await listShards(dir).then(
      files => files.map(f => path.basename(f)),
      (err: unknown) => {
        if (!isHardnegError(err)) throw err
        log.add('V_SHARD_MISSING', { file: dir }, 'no part-*.parquet shards, expected at least part-00000.parquet')
        return []
      },
    )
  }
  for (const name of names) {
    if (order.includes(name)) continue
    const why = listed !== undefined ? `not listed in ${MANIFEST_FILE}` : 'not a part-NNNNN.parquet shard'
    log.add('V_SHARD_STRAY', { file: path.join(dir, name) }, `${why}, expected only the run's shards (a *.parquet glob would read it)`)
  }

  const shards: OpenShard[] = []
  for (const name of order) {
    const file = path.join(dir, name)
    const shard = await openShard(file, log)
    const want = expected.get(name)
    if (shard !== undefined && want !== undefined && shard.rows !== want.rows) {
      log.add('V_SHARD_ROWS', { file }, `${shard.rows} rows, expected ${want.rows} (from ${MANIFEST_FILE})`)
    }
    if (want !== undefined) {
      const { sha256 } = await hashFile(file)
      if (sha256 !== want.sha256) log.add('V_SHARD_SHA', { file }, `sha256 ${sha256}, expected ${want.sha256} (from ${MANIFEST_FILE})`)
    }
    if (shard !== undefined && checkSchema(shard, log)) shards.push(shard)
  }
  return { dir, manifest, shards, ...miningOptions(dir, manifest, log) }
}

async function loadManifest(dir: string, log: FindingLog): Promise<Manifest | undefined> {
  const exists = await stat(path.join(dir, MANIFEST_FILE)).then(() => true, () => false)
  if (!exists) {
    log.add('V_MANIFEST_MISSING', { file: dir }, `no ${MANIFEST_FILE}, expected a complete hardneg run (mining writes it last)`)
    return undefined
  }
  try {
    const manifest: unknown = await readManifest(dir)
    if (typeof manifest === 'object' && manifest !== null && !Array.isArray(manifest)) return manifest as Manifest
    invalid(dir, log, 'is not a JSON object, expected a hardneg manifest')
  } catch (err) {
    if (!isHardnegError(err)) throw err
    invalid(dir, log, err.message.replace(/^[^:]*: /, ''))
  }
  return undefined
}

function invalid(dir: string, log: FindingLog, detail: string): void {
  log.add('V_MANIFEST_INVALID', { file: path.join(dir, MANIFEST_FILE) }, detail)
}

/** The manifest's shard list, or undefined (after a finding) when it is not one. */
function listedShards(dir: string, manifest: Manifest, log: FindingLog): { file: string; rows: number; sha256: string }[] | undefined {
  const shards: unknown = manifest.shards
  if (!Array.isArray(shards) || shards.length === 0) {
    invalid(dir, log, `shards is ${Array.isArray(shards) ? 'empty' : JSON.stringify(shards) ?? 'missing'}, expected a list of {file, rows, sha256}`)
    return undefined
  }
  for (const [i, s] of shards.entries()) {
    const ok = typeof s === 'object' && s !== null && typeof s.file === 'string' && path.basename(s.file) === s.file &&
      Number.isSafeInteger(s.rows) && s.rows >= 0 && typeof s.sha256 === 'string' && /^[0-9a-f]{64}$/.test(s.sha256)
    if (!ok) {
      invalid(dir, log, `shards[${i}] is ${JSON.stringify(s)}, expected {file, rows, sha256} with a file name, a row count and a hex sha256`)
      return undefined
    }
  }
  const listed = shards as { file: string; rows: number; sha256: string }[]
  const out: unknown = (manifest.rows as unknown as { out?: unknown } | undefined)?.out
  const sum = listed.reduce((n, s) => n + s.rows, 0)
  if (out !== sum) invalid(dir, log, `rows.out is ${JSON.stringify(out) ?? 'missing'}, expected ${sum} (the sum of the shards' rows)`)
  return listed
}

/** Threshold, caps, k, pad and sampling from the manifest's options; undefined (after a finding) when absent or malformed. */
function miningOptions(dir: string, manifest: Manifest | undefined, log: FindingLog): Pick<ShardSet, 'rules' | 'selection'> {
  const none = { rules: undefined, selection: undefined }
  if (manifest === undefined) {
    const reason = `no usable ${MANIFEST_FILE}: k, pad policy and threshold unknown`
    log.skip('V_SHORT_ROW', reason)
    log.skip('V_SCORE_ABOVE_MARGIN', reason)
    return none
  }
  const o: Record<string, unknown> = typeof manifest.options === 'object' && manifest.options !== null ? manifest.options : {}
  const problems: string[] = []
  const number = (key: string, optional: boolean): number | undefined => {
    const v = o[key]
    if (v === undefined && optional) return undefined
    if (typeof v !== 'number' || !Number.isFinite(v)) problems.push(`options.${key} is ${JSON.stringify(v) ?? 'missing'}, expected a number`)
    return typeof v === 'number' ? v : undefined
  }
  const choice = <T extends string>(key: string, choices: readonly T[]): T | undefined => {
    const v = o[key]
    if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T
    problems.push(`options.${key} is ${JSON.stringify(v) ?? 'missing'}, expected one of ${choices.join(', ')}`)
    return undefined
  }
  const threshold = number('threshold', false)
  const maxScore = number('maxScore', true)
  const relativeMargin = number('relativeMargin', true)
  const k = number('k', false)
  if (k !== undefined && (!Number.isSafeInteger(k) || k < 1)) problems.push(`options.k is ${k}, expected an integer >= 1`)
  const pad = choice('pad', ['repeat', 'none', 'drop'] as const)
  const sampling = choice('sampling', ['top', 'random'] as const)
  if (problems.length > 0 || threshold === undefined || k === undefined || pad === undefined || sampling === undefined) {
    for (const p of problems) invalid(dir, log, p)
    const reason = `${MANIFEST_FILE} options unusable: k, pad policy and threshold unknown`
    log.skip('V_SHORT_ROW', reason)
    log.skip('V_SCORE_ABOVE_MARGIN', reason)
    return none
  }
  const rules: FalseNegativeRules = {
    threshold,
    ...(maxScore !== undefined ? { maxScore } : {}),
    ...(relativeMargin !== undefined ? { relativeMargin } : {}),
  }
  return { rules, selection: { k, pad, sampling } }
}

async function openShard(file: string, log: FindingLog): Promise<OpenShard | undefined> {
  try {
    const buffer = await asyncBufferFromFile(file)
    const metadata = await parquetMetadataAsync(buffer)
    return { file, rows: Number(metadata.num_rows), buffer, metadata }
  } catch (err) {
    log.add('V_SHARD_UNREADABLE', { file }, `not a readable Parquet file (${err instanceof Error ? err.message : String(err)})`)
    return undefined
  }
}

/** Reports every mined column that is missing or of another type; true when rows can be checked. */
function checkSchema(shard: OpenShard, log: FindingLog): boolean {
  const columns = new Map(parquetSchema(shard.metadata).children.map(c => [c.element.name, c]))
  let readable = true
  for (const [name, expected] of Object.entries(MINED_SCHEMA)) {
    const node = columns.get(name)
    if (node === undefined) {
      log.add('V_SCHEMA', { file: shard.file }, `no column '${name}', expected ${expected} (docs/mining.md, output rows)`)
      readable = false
      continue
    }
    const found = columnType(node)
    if (found !== expected) {
      log.add('V_SCHEMA', { file: shard.file }, `column '${name}' is ${found}, expected ${expected}`)
      readable = false
    }
  }
  return readable
}

/** A column's type in the words of MINED_SCHEMA: `string`, `float32`, `list<string>`, `int64`, ... */
function columnType(node: SchemaTree): string {
  const e = node.element
  const isList = e.converted_type === 'LIST' || e.logical_type?.type === 'LIST'
  if (isList) {
    // Standard 3-level lists (group LIST > repeated group > element) and the legacy 2-level form.
    const repeated = node.children[0]
    const leaf = repeated?.children.length === 1 ? repeated.children[0] : repeated
    return `list<${leaf === undefined ? 'unknown' : columnType(leaf)}>`
  }
  if (node.children.length > 0) return 'a group'
  switch (e.type) {
    case 'BYTE_ARRAY':
      return e.converted_type === 'UTF8' || e.logical_type?.type === 'STRING' ? 'string' : 'binary'
    case 'FLOAT':
      return 'float32'
    case 'DOUBLE':
      return 'float64'
    case 'INT32':
      return 'int32'
    case 'INT64':
      return 'int64'
    case 'BOOLEAN':
      return 'boolean'
    default:
      return String(e.type ?? 'unknown').toLowerCase()
  }
}
