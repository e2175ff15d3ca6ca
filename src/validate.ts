/**
 * Dataset and shard checks for CI: `validateDataset` checks the inputs of a mining run
 * (pairs file, embedding files), `validateShards` a mined shard directory. Both stream,
 * never stop at the first problem, and return findings as data; `formatReport` renders
 * them as text, JSON, JUnit XML or GitHub annotations.
 */

import { HardnegError } from './errors.js'
import type { PairsFormat, PresetName, ReadPairsOptions } from './pairs.js'
import { FindingLog, type ValidationReport } from './_validate-findings.js'
import { checkEmbeddings } from './_validate-embeddings.js'
import { ForbidSet } from './_validate-forbid.js'
import { checkMinedRows } from './_validate-mined-rows.js'
import { checkPairs } from './_validate-pairs.js'
import { rescoreRows } from './_validate-rescore.js'
import { checkShardSet } from './_validate-shard-set.js'

export { CHECKS, mergeReports, reportFails, countBySeverity } from './_validate-findings.js'
export type { CheckGroup, CheckResult, CheckSpec, Finding, FindingCode, Severity, ValidationReport } from './_validate-findings.js'
export { formatReport } from './_validate-report.js'
export type { FormatReportOptions, ReportFormat } from './_validate-report.js'

/** Options both validators share. */
export interface ValidateCommonOptions {
  forbid?: readonly string[] // evaluation sets no training text may appear in: CSV/TSV/JSONL/Parquet (every string value) or .txt (one per line) (default none)
  forbidMinLength?: number // forbid strings shorter than this many characters, once normalised, are ignored (default 1: all)
  sample?: number // row checks look at this many seeded rows of each embedding file and of the shard set instead of all (default: all rows)
  seed?: number // seed of --sample and --rescore draws (default 0)
  maxFindings?: number // findings kept per code; all are counted (default 20)
}

/** Options of {@link validateDataset}: the inputs of a mining run, with mining's column options. */
export interface ValidateDatasetOptions extends ValidateCommonOptions {
  pairs?: string // pairs file: CSV/TSV with header, JSONL or Parquet (default: none, embedding checks only)
  format?: PairsFormat // pairs format (default: from the extension)
  preset?: PresetName // column layout, as in mining (default: none)
  idCol?: string // id column; enables the empty and duplicate id checks (default: none, ids are row numbers)
  queryCol?: string // query column (default: the preset's, else 'query')
  positiveCol?: string // positive column (default: the preset's, else 'positive')
  groupCol?: string // group column (default: the preset's, else one group)
  carry?: readonly string[] // carried columns that must be present (default: the preset's)
  queryEmbeddings?: string // .npy [rows, dim], row i = pair i (default: none)
  positiveEmbeddings?: string // .npy [rows, dim], row i = pair i (default: none)
  imageRoot?: string // image checks: not available until the image module lands; giving it is E_BAD_OPTION
  k?: number // negatives per row the mining run will ask for, for the group-size check (default 8)
  normTolerance?: number // |L2 norm - 1| above this is V_EMB_NORM (default 0.01)
}

/** Options of {@link validateShards}: a mined directory, and the run's inputs for rescoring. */
export interface ValidateShardsOptions extends ValidateCommonOptions {
  shards: string // directory of a mining run: part-*.parquet and manifest.json
  rescore?: number // recompute the scores of this many seeded rows from the embeddings (default: no rescoring)
  rescoreTolerance?: number // largest accepted |stored - recomputed| score (default 1e-4)
  queryEmbeddings?: string // the run's query embeddings (required with rescore)
  positiveEmbeddings?: string // the run's positive embeddings (required with rescore)
  pairs?: string // the run's pairs file, to map ids to rows when they are not row numbers (default: ids are row numbers)
  format?: PairsFormat // pairs format (default: the manifest's, else from the extension)
  preset?: PresetName // column layout of `pairs` (default: the manifest's)
  idCol?: string // id column of `pairs` (default: the manifest's)
  queryCol?: string // query column of `pairs` (default: the manifest's)
  positiveCol?: string // positive column of `pairs` (default: the manifest's)
}

/**
 * Checks a pairs file and its embedding files: columns and types, empty texts,
 * duplicate ids and pairs, groups too small for k negatives, embedding headers, row
 * counts, dimensions, NaN/Inf, zero vectors and norms, and (with `forbid`) texts of
 * evaluation sets. Reads each file once, streaming; memory grows only with the hash
 * tables of the duplicate checks (20-40 bytes per row per table, see docs/validate.md).
 *
 * Throws a {@link HardnegError} only when validation cannot run: a bad option, a file
 * that cannot be opened. Everything wrong with the data is a finding.
 *
 * @example
 * const report = await validateDataset({
 *   pairs: 'nli_for_simcse.csv', preset: 'simcse',
 *   queryEmbeddings: 'sent0.npy', positiveEmbeddings: 'sent1.npy',
 * })
 * if (reportFails(report)) throw new Error(formatReport(report))
 */
export async function validateDataset(options: ValidateDatasetOptions): Promise<ValidationReport> {
  if (options.imageRoot !== undefined) {
    throw new HardnegError('E_BAD_OPTION', '--image-root: image checks are absent until the image module lands, expected no --image-root (text and embedding checks run without it)')
  }
  const embeddings = [options.queryEmbeddings, options.positiveEmbeddings].filter((f): f is string => f !== undefined)
  if (options.pairs === undefined && embeddings.length === 0) {
    throw new HardnegError('E_BAD_OPTION', 'nothing to validate, expected --pairs and/or --query-embeddings/--positive-embeddings')
  }
  const common = commonOptions(options)
  const k = integer('k', options.k, 1) ?? 8
  const normTolerance = options.normTolerance ?? 0.01
  if (!Number.isFinite(normTolerance) || normTolerance <= 0) {
    throw new HardnegError('E_BAD_OPTION', `normTolerance: ${String(normTolerance)}, expected a number > 0`)
  }
  const forbid = await readForbid(options, common.forbidMinLength)
  const log = new FindingLog(common.maxFindings)

  let pairRows: number | undefined
  if (options.pairs !== undefined) {
    pairRows = await checkPairs({ ...pick(options, ['format', 'preset', 'idCol', 'queryCol', 'positiveCol', 'groupCol', 'carry']), file: options.pairs, k, forbid }, log)
  }
  if (embeddings.length > 0) {
    await checkEmbeddings({ files: embeddings, pairRows, pairsFile: options.pairs, normTolerance, sample: common.sample, seed: common.seed }, log)
  }
  return log.report()
}

/**
 * Checks a mined shard directory: manifest present and consistent, every listed shard
 * with its row count and sha256 and nothing unlisted, the schema of docs/mining.md, k
 * negatives per row (or n_valid and the pad policy saying why), no negative equal to
 * the row's positive or query, scores at most the run's ceiling and sorted; with
 * `rescore`, scores recomputed from the embeddings; with `forbid`, no text of an
 * evaluation set. Rows are decoded one row group at a time.
 *
 * Throws a {@link HardnegError} only when validation cannot run (a bad option, a
 * directory or rescoring input that cannot be read).
 *
 * @example
 * const report = await validateShards({ shards: 'out/', forbid: ['mmeb-eval.jsonl'], rescore: 200,
 *   queryEmbeddings: 'sent0.npy', positiveEmbeddings: 'sent1.npy' })
 * console.log(formatReport(report, { format: 'text' }))
 */
export async function validateShards(options: ValidateShardsOptions): Promise<ValidationReport> {
  if (typeof options.shards !== 'string' || options.shards === '') {
    throw new HardnegError('E_BAD_OPTION', `shards: ${JSON.stringify(options.shards)}, expected a directory`)
  }
  const common = commonOptions(options)
  const rescore = integer('rescore', options.rescore, 1)
  const tolerance = options.rescoreTolerance ?? 1e-4
  if (!Number.isFinite(tolerance) || tolerance < 0) {
    throw new HardnegError('E_BAD_OPTION', `rescoreTolerance: ${String(tolerance)}, expected a number >= 0`)
  }
  if (rescore !== undefined && (options.queryEmbeddings === undefined || options.positiveEmbeddings === undefined)) {
    throw new HardnegError('E_BAD_OPTION', '--rescore needs the run\'s embeddings, expected --query-embeddings and --positive-embeddings')
  }
  const forbid = await readForbid(options, common.forbidMinLength)
  const log = new FindingLog(common.maxFindings)

  const set = await checkShardSet(options.shards, log)
  const drawn = await checkMinedRows(set, { sample: common.sample, rescore, seed: common.seed, forbid }, log)
  if (rescore !== undefined && options.queryEmbeddings !== undefined && options.positiveEmbeddings !== undefined) {
    await rescoreRows({
      rows: drawn,
      queryEmbeddings: options.queryEmbeddings,
      positiveEmbeddings: options.positiveEmbeddings,
      pairs: rescorePairs(options, set.manifest?.options),
      tolerance,
      manifest: set.manifest,
      dir: options.shards,
    }, log)
  }
  return log.report()
}

function commonOptions(options: ValidateCommonOptions) {
  return {
    maxFindings: integer('maxFindings', options.maxFindings, 1) ?? 20,
    sample: integer('sample', options.sample, 1),
    seed: integer('seed', options.seed, 0) ?? 0,
    forbidMinLength: integer('forbidMinLength', options.forbidMinLength, 1) ?? 1,
  }
}

async function readForbid(options: ValidateCommonOptions, minLength: number): Promise<ForbidSet | undefined> {
  if (options.forbid === undefined || options.forbid.length === 0) return undefined
  return ForbidSet.read(options.forbid, minLength)
}

/** The pairs reader options for rescoring: the given flags, else the run's own from the manifest. */
function rescorePairs(options: ValidateShardsOptions, run: Record<string, unknown> | undefined): ReadPairsOptions | undefined {
  if (options.pairs === undefined) return undefined
  const keys = ['format', 'preset', 'idCol', 'queryCol', 'positiveCol'] as const
  const given = keys.some(key => options[key] !== undefined)
  const out: Record<string, unknown> = { file: options.pairs }
  for (const key of keys) {
    const value = given ? options[key] : run?.[key]
    if (typeof value === 'string') out[key] = value
  }
  // Groups and carried columns do not matter for mapping ids, and a missing one would stop the read.
  return out as unknown as ReadPairsOptions
}

function integer(name: string, value: number | undefined, min: number): number | undefined {
  if (value === undefined) return undefined
  if (!Number.isSafeInteger(value) || value < min) throw new HardnegError('E_BAD_OPTION', `${name}: ${String(value)}, expected an integer >= ${min}`)
  return value
}

function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {}
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k]
  return out
}
