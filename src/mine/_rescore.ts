/**
 * A mining run's second stage (`--rescore-url`): the options resolved into a rescorer and
 * its rule, the selection the embedding stage runs instead of the run's own (the top N
 * survivors, unpadded), the sides the rescorer is sent (images as files with their
 * content hash), and what the manifest records. Private to `mine.ts`.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { HardnegError } from '../errors.js'
import { apiKeyFromEnv } from '../http/client.js'
import { imageMimeType } from '../images/images.js'
import type { PairImages } from '../images/pair-images.js'
import type { PairFile } from '../pairs/files.js'
import { checkRescoreRule, createRescorer, RESCORE_APIS, type RescoreApi, type Rescorer, type RescorerIdentity, type RescoreRule, type RescoreSide, type RescoreStats } from '../rescore/rescore.js'
import { rescoreRows } from '../rescore/stage.js'
import type { FalseNegativeCounts, MinedRow, PairRecord } from '../types.js'
import type { MineOptions, ProgressEvent } from './mine.js'
import type { QueryOutcome } from './negatives.js'
import type { SelectOptions, SelectOutcome } from './select.js'

/** The rescore cache's default name inside `--out`; it survives `--overwrite`. */
export const RESCORE_CACHE_FILE = '.hardneg-rescore-cache.bin'

/** What the manifest records of the stage. */
export interface RescoreRecord {
  url: string // the endpoint scores came from
  identity: RescorerIdentity // api, model, score space (the cache's key)
  rule: RescoreRule // top, margin, max score, rank
  cache: string // the cache file
  counts: RescoreStats & { positiveOutranked: number } // pairs scored, cache hits, pairs sent, requests, retries, halvings; rows whose positive a rescored candidate outscored
}

/** The rule from the options, checked; undefined when the run does not rescore. */
export function rescoreRuleOf(options: MineOptions): RescoreRule | undefined {
  const named = [options.rescoreApi, options.rescoreModel, options.rescoreTop, options.rescoreMargin, options.rescoreMaxScore, options.rescoreRank, options.rescoreBatch, options.rescoreConcurrency, options.rescoreCache, options.judgePrompt, options.rescoreTimeout, options.rescoreMaxAttempts]
  if (options.rescoreUrl === undefined) {
    if (named.some((v) => v !== undefined)) throw new HardnegError('E_BAD_OPTION', 'rescore options given without rescoreUrl, expected --rescore-url with them')
    return undefined
  }
  if (options.rescoreApi === undefined || !RESCORE_APIS.includes(options.rescoreApi)) {
    throw new HardnegError('E_BAD_OPTION', `rescoreApi: ${options.rescoreApi === undefined ? 'missing' : `'${String(options.rescoreApi)}'`}, expected one of ${RESCORE_APIS.join(', ')} with --rescore-url`)
  }
  const rule: RescoreRule = {
    top: options.rescoreTop ?? 50,
    margin: options.rescoreMargin ?? 0.01,
    ...(options.rescoreMaxScore !== undefined ? { maxScore: options.rescoreMaxScore } : {}),
    rank: options.rescoreRank ?? 'embedding',
  }
  checkRescoreRule(rule)
  return rule
}

/** The embedding stage's selection when rescoring: its top N survivors, in order, unpadded. */
export function candidateSelect(select: SelectOptions, rule: RescoreRule): SelectOptions {
  return { k: rule.top, sampling: 'top', seed: select.seed, pad: 'none', ...(select.minScore !== undefined ? { minScore: select.minScore } : {}) }
}

/** Stops a run with images whose API takes text only, before anything is sent. */
export function checkRescoreImages(api: RescoreApi, pairs: readonly PairRecord[]): void {
  if (api === 'chat-judge') return
  const first = pairs.find((p) => p.queryImage !== '' || p.positiveImage !== '')
  if (first) {
    throw new HardnegError('E_BAD_OPTION',
      `rescoreApi '${api}' scores texts only, but pair ${first.id} has an image ('${first.queryImage || first.positiveImage}'); expected --rescore-api chat-judge for pairs with images`)
  }
}

/** One run's rescore stage: open it, pass the embedding stage's rows through it, record it. */
export class RescoreRun {
  private readonly pending = new Map<MinedRow, { pair: PairRecord; removed: FalseNegativeCounts; query: QueryOutcome }>()
  private positiveOutranked = 0

  private constructor(
    private readonly rescorer: Rescorer,
    readonly rule: RescoreRule,
    private readonly cacheFile: string,
  ) {}

  /** Connects to the server and opens the cache (default `<out>/.hardneg-rescore-cache.bin`). */
  static async open(options: MineOptions, rule: RescoreRule): Promise<RescoreRun> {
    const cache = options.rescoreCache ?? path.join(options.out, RESCORE_CACHE_FILE)
    let prompt: string | undefined
    if (options.judgePrompt !== undefined) {
      try {
        prompt = await readFile(options.judgePrompt, 'utf8')
      } catch (err) {
        throw new HardnegError('E_BAD_FILE', `cannot read the judge prompt (${(err as NodeJS.ErrnoException).code ?? String(err)}), expected a text file with {query} and {candidate}`, { file: options.judgePrompt })
      }
    }
    const rescorer = await createRescorer({
      url: options.rescoreUrl as string,
      api: options.rescoreApi as RescoreApi,
      cache,
      ...(options.rescoreModel !== undefined ? { model: options.rescoreModel } : {}),
      ...(options.rescoreBatch !== undefined ? { batch: options.rescoreBatch } : {}),
      ...(options.rescoreConcurrency !== undefined ? { concurrency: options.rescoreConcurrency } : {}),
      ...(options.rescoreRawScores === true ? { rawScores: true } : {}),
      ...(prompt !== undefined ? { prompt } : {}),
      ...(options.rescoreApiKeyEnv !== undefined ? { apiKey: apiKeyFromEnv(options.rescoreApiKeyEnv) } : {}),
      http: {
        ...(options.rescoreTimeout !== undefined ? { timeoutMs: Math.round(options.rescoreTimeout * 1000) } : {}),
        ...(options.rescoreMaxAttempts !== undefined ? { maxAttempts: options.rescoreMaxAttempts } : {}),
      },
    })
    return new RescoreRun(rescorer, rule, cache)
  }

  /** Holds a query's embedding-stage outcome until the stage decides its row. */
  hold(row: MinedRow | null, pair: PairRecord, removed: FalseNegativeCounts, query: QueryOutcome): void {
    if (row === null) throw new Error(`row ${pair.id}: the embedding stage dropped a row it should have kept unpadded`)
    this.pending.set(row, { pair, removed, query })
  }

  /** The final rows of `rows`, recording each outcome through `record`. */
  rows(
    rows: AsyncIterable<MinedRow>,
    context: { select: SelectOptions; keepFiltered: number; images: PairImages | undefined; files: readonly PairFile[]; total: number; onProgress?: (e: ProgressEvent) => void },
    record: (pair: PairRecord, row: MinedRow | null, outcome: SelectOutcome, removed: FalseNegativeCounts, query: QueryOutcome) => void,
  ): AsyncGenerator<MinedRow> {
    const side = (text: string, image: string): RescoreSide => {
      if (image === '') return { text }
      const hashed = context.images?.byPath.get(image)
      if (hashed === undefined) throw new Error(`image '${image}' was not hashed`)
      return { text, image: { file: hashed.path, sha256: hashed.sha256, mime: imageMimeType(hashed.format) } }
    }
    const placeOf = (pair: PairRecord): string => {
      const f = [...context.files].reverse().find((x) => x.firstRow <= pair.row) as PairFile
      return `${f.file}:${pair.row - f.firstRow + 1}`
    }
    const info = (row: MinedRow): { pair: PairRecord; removed: FalseNegativeCounts; query: QueryOutcome } => {
      const held = this.pending.get(row)
      if (held === undefined) throw new Error(`row ${row.id} reached the rescore stage without its outcome`)
      return held
    }
    return rescoreRows(rows, {
      rescorer: this.rescorer,
      rule: this.rule,
      select: context.select,
      keepFiltered: context.keepFiltered,
      side,
      rowOf: (row) => {
        const { pair } = info(row)
        return { row: pair.row, label: placeOf(pair) }
      },
      onRow: (row, outcome, input, decision) => {
        const { pair, removed, query } = info(input)
        this.pending.delete(input)
        if (decision.positiveOutranked) this.positiveOutranked++
        const counts = { ...removed, rescore: decision.removed.length }
        record(pair, row, outcome, counts, { ...query, removed: counts })
      },
      ...(context.onProgress ? { onPairs: (done: number) => context.onProgress?.({ phase: 'rescore', done, total: context.total }) } : {}),
    })
  }

  /** What the manifest records; call after the rows are written. */
  record(): RescoreRecord {
    return { url: this.rescorer.url, identity: this.rescorer.identity, rule: this.rule, cache: this.cacheFile, counts: { ...this.rescorer.stats, positiveOutranked: this.positiveOutranked } }
  }

  close(): Promise<void> {
    return this.rescorer.close()
  }
}
