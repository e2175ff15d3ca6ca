/**
 * The options of a mining run checked and resolved: defaults filled in, every value in
 * its range, combinations that cannot work rejected with E_BAD_OPTION naming the option,
 * and the options as the manifest records them. Private to `mine.ts`.
 */
import { HardnegError } from '../errors.js'
import { DEFAULT_IMAGE_DUP_DISTANCE } from '../images/images.js'
import { OUTPUT_FORMATS, TEXT_ONLY_FORMATS, type OutputFormat } from '../output/formats.js'
import { checkRules, type FalseNegativeRules } from './filters.js'
import { listOf } from '../pairs/files.js'
import type { MineOptions } from './mine.js'
import type { HnswParams, MarginAnchor } from './negatives.js'
import { checkSelectOptions, type SelectOptions } from './select.js'

/** What {@link resolveOptions} makes of a run's options. */
export interface ResolvedOptions {
  rules: FalseNegativeRules // the false-negative rules
  select: SelectOptions // selection and padding
  method: 'exact' | 'hnsw' | 'auto' // the search asked for
  outputFormat: OutputFormat // the output layout
  onBadImage: 'error' | 'skip' // bad-image policy
  imageDupDistance: number // near-duplicate distance in bits
  keepFiltered: number // filtered candidates stored per row
  marginAnchor: MarginAnchor // which positive score margins are measured from
  sweep: number[] // thresholds of the false-negative sweep ([] = none)
  pairFiles: string[] // the pairs files
  queryFiles: string[] // query embedding files
  positiveFiles: string[] // positive embedding files
}

/** Checks `options` and fills in the defaults; throws E_BAD_OPTION naming the first bad one. */
export function resolveOptions(options: MineOptions): ResolvedOptions {
  const rules: FalseNegativeRules = {
    threshold: options.threshold ?? 0.1,
    ...(options.maxScore !== undefined ? { maxScore: options.maxScore } : {}),
    ...(options.relativeMargin !== undefined ? { relativeMargin: options.relativeMargin } : {}),
    ...(options.posSim !== undefined ? { posSim: options.posSim } : {}),
    ...(options.querySim !== undefined ? { querySim: options.querySim } : {}),
  }
  const select: SelectOptions = {
    k: options.k ?? 8,
    sampling: options.sampling ?? 'top',
    seed: options.seed ?? 0,
    pad: options.pad ?? 'repeat',
    ...(options.range ? { range: options.range } : options.sampling === 'random' ? { range: [0, 100] as [number, number] } : {}),
    ...(options.minScore !== undefined ? { minScore: options.minScore } : {}),
  }
  checkSelectOptions(select)
  checkRules(rules)
  const method = options.search ?? 'auto'
  if (!['exact', 'hnsw', 'auto'].includes(method)) {
    throw new HardnegError('E_BAD_OPTION', `search: '${String(method)}', expected 'exact', 'hnsw' or 'auto'`)
  }
  if (options.exactKernel !== undefined && !['auto', 'fp32', 'int8'].includes(options.exactKernel)) {
    throw new HardnegError('E_BAD_OPTION', `exactKernel: '${String(options.exactKernel)}', expected 'auto', 'fp32' or 'int8'`)
  }
  const outputFormat = options.outputFormat ?? 'parquet'
  if (!OUTPUT_FORMATS.includes(outputFormat)) {
    throw new HardnegError('E_BAD_OPTION', `outputFormat: '${String(outputFormat)}', expected one of: ${OUTPUT_FORMATS.join(', ')}`)
  }
  const onBadImage = options.onBadImage ?? 'error'
  if (onBadImage !== 'error' && onBadImage !== 'skip') {
    throw new HardnegError('E_BAD_OPTION', `onBadImage: '${String(onBadImage)}', expected 'error' or 'skip'`)
  }
  const imageDupDistance = options.imageDupDistance ?? DEFAULT_IMAGE_DUP_DISTANCE
  if (!Number.isInteger(imageDupDistance) || imageDupDistance < 0 || imageDupDistance > 256) {
    throw new HardnegError('E_BAD_OPTION', `imageDupDistance: ${String(imageDupDistance)}, expected an integer from 0 to 256 (bits of the 256-bit image hash)`)
  }
  checkPositiveInt('shardRows', options.shardRows)
  checkPositiveInt('m', options.m)
  if (options.m === 1) throw new HardnegError('E_BAD_OPTION', 'm: 1, expected an integer >= 2 (hnsw graph degree)')
  checkPositiveInt('ef', options.ef)
  checkPositiveInt('efConstruction', options.efConstruction)
  checkPositiveInt('threads', options.threads)
  checkPositiveInt('queryBlockRows', options.queryBlockRows)
  checkPositiveInt('poolBlockRows', options.poolBlockRows)
  const keepFiltered = options.keepFiltered ?? 0
  if (!Number.isSafeInteger(keepFiltered) || keepFiltered < 0) {
    throw new HardnegError('E_BAD_OPTION', `keepFiltered: ${String(options.keepFiltered)}, expected an integer >= 0`)
  }
  if ((options.corpus === undefined) !== (options.corpusEmbeddings === undefined)) {
    throw new HardnegError('E_BAD_OPTION', 'corpus and corpusEmbeddings go together, expected both or neither')
  }
  const pairFiles = listOf('pairs', options.pairs)
  const queryFiles = listOf('queryEmbeddings', options.queryEmbeddings)
  const positiveFiles = listOf('positiveEmbeddings', options.positiveEmbeddings)
  for (const [name, files] of [['queryEmbeddings', queryFiles], ['positiveEmbeddings', positiveFiles]] as const) {
    if (files.length !== 1 && files.length !== pairFiles.length) {
      throw new HardnegError('E_BAD_OPTION', `${name}: ${files.length} files for ${pairFiles.length} pairs files, expected one per pairs file (same order) or one for all`)
    }
  }
  if (TEXT_ONLY_FORMATS.includes(outputFormat)) {
    if (outputFormat === 'sentence-transformers' && select.pad === 'none') {
      throw new HardnegError('E_BAD_OPTION',
        "pad: 'none' leaves rows with fewer than k negatives, which outputFormat 'sentence-transformers' cannot hold (one column per negative); expected pad 'repeat' or 'drop'")
    }
    if (outputFormat === 'flagembedding' && select.pad === 'none') {
      throw new HardnegError('E_BAD_OPTION',
        "pad: 'none' can leave a row without negatives, which FlagEmbedding's loader cannot read (it divides by the number of negatives); expected pad 'repeat' or 'drop' with outputFormat 'flagembedding'")
    }
    if (keepFiltered > 0) {
      throw new HardnegError('E_BAD_OPTION', `keepFiltered: ${keepFiltered}, not available with outputFormat '${outputFormat}', expected 0 (its readers take only its own fields)`)
    }
    if (options.carry !== undefined && options.carry.length > 0) {
      throw new HardnegError('E_BAD_OPTION', `carry: not available with outputFormat '${outputFormat}', expected its own columns only`)
    }
  }
  const marginAnchor = options.marginAnchor ?? 'own'
  if (marginAnchor !== 'own' && marginAnchor !== 'lowest') {
    throw new HardnegError('E_BAD_OPTION', `marginAnchor: '${String(marginAnchor)}', expected 'own' or 'lowest'`)
  }
  const sweep = [...(options.sweepThresholds ?? [])]
  for (const threshold of sweep) checkRules({ threshold })
  if (new Set(sweep).size !== sweep.length) {
    throw new HardnegError('E_BAD_OPTION', `sweepThresholds: ${sweep.join(',')} lists a threshold twice, expected distinct values`)
  }
  return { rules, select, method, outputFormat, onBadImage, imageDupDistance, keepFiltered, marginAnchor, sweep, pairFiles, queryFiles, positiveFiles }
}

export function checkPositiveInt(name: string, value: number | undefined): void {
  if (value === undefined) return
  if (!Number.isInteger(value) || value < 1) throw new HardnegError('E_BAD_OPTION', `${name}: ${String(value)}, expected an integer >= 1`)
}

export function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {}
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k]
  return out
}

/** The run's options as the manifest records them: what was given, with every default filled in. */
export function effectiveOptions(
  options: MineOptions,
  rules: FalseNegativeRules,
  select: SelectOptions,
  marginAnchor: MarginAnchor,
  method: string,
  hnsw: HnswParams,
  outputFormat: OutputFormat,
  imageOptions: { onBadImage: string; imageDupDistance: number; imageRoot: string } | undefined, // runs with images only
): Record<string, unknown> {
  const { onProgress: _progress, ...rest } = options
  return {
    ...rest,
    ...rules,
    ...select,
    marginAnchor,
    keepFiltered: options.keepFiltered ?? 0,
    search: method,
    exactKernel: options.exactKernel ?? 'auto',
    ...(method !== 'exact' ? hnsw : {}),
    outputFormat,
    ...imageOptions,
  }
}
