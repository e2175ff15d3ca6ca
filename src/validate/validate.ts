/**
 * Dataset and shard checks for CI: `validateDataset` checks the inputs of a mining run
 * (pairs file, embedding files), `validateShards` a mined shard directory. Both stream,
 * never stop at the first problem, and return findings as data; `formatReport` renders
 * them as text, JSON, JUnit XML or GitHub annotations.
 */

import path from 'node:path'
import { HardnegError } from '../errors.js'
import { DEFAULT_IMAGE_DUP_DISTANCE } from '../images/images.js'
import type { ProgressEvent } from '../mine/mine.js'
import type { PairsFormat, PresetName, ReadPairsOptions } from '../pairs/pairs.js'
import { FindingLog, type ValidationReport } from './_findings.js'
import { checkEmbeddings } from './_embeddings.js'
import { ForbidSet } from './_forbid.js'
import { checkImages, ForbiddenImages, type ImageCheckOptions, type PlacedImage } from './_images.js'
import { checkMinedRows } from './_mined-rows.js'
import { checkPairs } from './_pairs.js'
import { rescoreRows } from './_rescore.js'
import { checkShardSet } from './_shard-set.js'

export { CHECKS, mergeReports, reportFails, countBySeverity } from './_findings.js'
export type { CheckGroup, CheckResult, CheckSpec, Finding, FindingCode, Severity, ValidationReport } from './_findings.js'
export { formatReport } from './_format.js'
export type { FormatReportOptions, ReportFormat } from './_format.js'

/** Options both validators share. */
export interface ValidateCommonOptions {
  forbid?: readonly string[] // evaluation sets no training text may appear in: CSV/TSV/JSONL/Parquet (every string value) or .txt (one per line) (default none)
  forbidMinLength?: number // forbid strings shorter than this many characters, once normalised, are ignored (default 1: all)
  forbidImageRoot?: string // directory the image paths of forbid files resolve against (default: each forbid file's directory)
  imageRoot?: string // directory the checked data's image paths resolve against (default: the pairs file's directory; shards: that of --pairs, else of the pairs file the manifest records)
  imageCache?: string // image hash cache file, read first and rewritten when something changed (default: none)
  imageConcurrency?: number // images decoded at once (default 4)
  imageDupDistance?: number // largest imageDistance at which an image is a near-duplicate of a forbidden one (default DEFAULT_IMAGE_DUP_DISTANCE, 58)
  onProgress?: (event: ProgressEvent) => void // progress of image decoding, phase 'images' (default: none)
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
  queryImageCol?: string // query image path column (default: the preset's, e.g. mmeb's qry_image_path; else none)
  positiveImageCol?: string // positive image path column (default: the preset's, e.g. mmeb's pos_image_path; else none)
  minImageSide?: number // an image narrower or lower than this many pixels is V_IMAGE_SIZE (default 16)
  maxImagePixels?: number // an image of more pixels (width x height) than this is V_IMAGE_SIZE (default 100,000,000)
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
 * counts, dimensions, NaN/Inf, zero vectors and norms; images (exist, decode, within
 * size limits, each distinct file decoded once); and (with `forbid`) texts and
 * near-duplicate images of evaluation sets. Reads each file once, streaming; memory grows
 * with the hash tables of the duplicate checks (20-40 bytes per row per table) and the
 * image paths of the pairs (see docs/validate.md).
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
  const minSide = integer('minImageSide', options.minImageSide, 1) ?? 16
  const maxPixels = integer('maxImagePixels', options.maxImagePixels, 1) ?? 100_000_000
  const forbid = await readForbid(options, common.forbidMinLength)
  const log = new FindingLog(common.maxFindings)

  let pairRows: number | undefined
  if (options.pairs !== undefined) {
    const images: PlacedImage[] = []
    const columns = pick(options, ['format', 'preset', 'idCol', 'queryCol', 'positiveCol', 'groupCol', 'carry', 'queryImageCol', 'positiveImageCol'])
    pairRows = await checkPairs({ ...columns, file: options.pairs, k, forbid, images }, log)
    if (images.length > 0) {
      const root = options.imageRoot ?? path.dirname(options.pairs)
      await checkImages(images, { ...(await imageOptions(options, common, root, forbid)), limits: { minSide, maxPixels } }, log)
    } else if (options.imageRoot !== undefined) {
      log.skip('V_IMAGE_MISSING', 'no image path in the pairs: image columns come from --preset mmeb or --query-image-col/--positive-image-col')
    }
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
  // Shard images are decoded only to compare them with forbidden images; the inputs' checks cover the rest.
  const images: PlacedImage[] | undefined = forbid !== undefined && forbid.images.length > 0 ? [] : undefined
  const drawn = await checkMinedRows(set, { sample: common.sample, rescore, seed: common.seed, forbid, images }, log)
  if (images !== undefined && images.length > 0) {
    const inputs: unknown = set.manifest?.inputs // a manifest may be valid JSON and still malformed (V_MANIFEST_INVALID)
    const recorded = Array.isArray(inputs) ? (inputs as { role?: unknown; path?: unknown }[]).find(i => i?.role === 'pairs')?.path : undefined
    const pairs = options.pairs ?? (typeof recorded === 'string' ? recorded : undefined)
    const root = options.imageRoot ?? (pairs === undefined ? '.' : path.dirname(pairs))
    log.ran('V_IMAGE_MISSING', 'V_IMAGE_UNDECODABLE')
    await checkImages(images, await imageOptions(options, common, root, forbid), log)
  }
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
  const imageDupDistance = options.imageDupDistance ?? DEFAULT_IMAGE_DUP_DISTANCE
  if (!Number.isInteger(imageDupDistance) || imageDupDistance < 0 || imageDupDistance > 256) {
    throw new HardnegError('E_BAD_OPTION', `imageDupDistance: ${String(imageDupDistance)}, expected an integer from 0 to 256`)
  }
  return {
    imageDupDistance,
    imageConcurrency: integer('imageConcurrency', options.imageConcurrency, 1) ?? 4,
    maxFindings: integer('maxFindings', options.maxFindings, 1) ?? 20,
    sample: integer('sample', options.sample, 1),
    seed: integer('seed', options.seed, 0) ?? 0,
    forbidMinLength: integer('forbidMinLength', options.forbidMinLength, 1) ?? 1,
  }
}

async function readForbid(options: ValidateCommonOptions, minLength: number): Promise<ForbidSet | undefined> {
  if (options.forbid === undefined || options.forbid.length === 0) return undefined
  return ForbidSet.read(options.forbid, minLength, options.forbidImageRoot)
}

/** The image check options; hashes the forbidden images (only now that there are images to compare them with). */
async function imageOptions(options: ValidateCommonOptions, common: ReturnType<typeof commonOptions>, root: string, forbid: ForbidSet | undefined): Promise<ImageCheckOptions> {
  const onProgress = options.onProgress === undefined ? undefined : (done: number, total: number) => options.onProgress?.({ phase: 'images', done, total })
  const shared = { cache: options.imageCache, concurrency: common.imageConcurrency, onProgress }
  const forbidden = forbid === undefined || forbid.images.length === 0 ? undefined : await ForbiddenImages.hash(forbid.images, shared)
  return { ...shared, root, forbidden, maxDistance: common.imageDupDistance }
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
