/**
 * `embedPairs`: the embeddings `mine` takes, computed by the embedding server a user
 * already runs (OpenAI-compatible: vLLM, TEI, Infinity, Ollama, NIM; or TEI's own API).
 * Each distinct input is sent once; the vectors stream into preallocated `.npy` files by
 * positional writes; finished batches are journaled so that a killed run, re-run with the
 * same command, continues where it stopped and ends byte-identical to an uninterrupted run.
 */
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { HardnegError } from '../errors.js'
import { apiKeyFromEnv, HttpClient } from '../http/client.js'
import { IMAGE_CACHE_FILE } from '../images/images.js'
import { hashPairImages, type PairImages } from '../images/pair-images.js'
import { toolVersion } from '../mine/mine.js'
import { describeInput, hashFile, type ManifestInput } from '../output/manifest.js'
import { readCorpus } from '../pairs/corpus.js'
import { listOf, readPairFiles } from '../pairs/files.js'
import type { PairsFormat, PresetName } from '../pairs/pairs.js'
import type { CorpusRecord } from '../types.js'
import { InputPlan, type Side } from './_inputs.js'
import { fingerprintChange, JournalWriter, rangeDigest, readUnfinished, removeWork, startWork, WORK_DIR, type Fingerprint } from './_journal.js'
import { commitMatrices, EMBED_MANIFEST_FILE, finishedRun, OUTPUT_FILES, writeEmbedManifest, type EmbedManifest } from './_manifest.js'
import { NpyWriter, type EmbedDtype } from './_npy-writer.js'
import { openaiApi, openaiModel, type WireApi } from './_openai.js'
import { runBatches } from './_run.js'
import { readInfo, teiApi, type ServerInfo } from './_tei.js'

export { EMBED_MANIFEST_FILE, OUTPUT_FILES as EMBED_OUTPUT_FILES } from './_manifest.js'
export type { EmbedManifest, EmbedManifestOutput, EmbedManifestSkip } from './_manifest.js'
export type { EmbedDtype } from './_npy-writer.js'

/** Options of {@link embedPairs}; every field has the CLI flag of the same name. */
export interface EmbedOptions {
  pairs: string | readonly string[] // pairs file(s), read and numbered across files exactly as `mine` reads them
  format?: PairsFormat // pairs format (default: from the extension); the CLI's --pairs-format
  preset?: PresetName // column layout, as mine's (default: none)
  queryCol?: string // query column (default: the preset's, else 'query')
  positiveCol?: string // positive column (default: the preset's, else 'positive')
  queryImageCol?: string // query image path column (default: the preset's; else none)
  positiveImageCol?: string // positive image path column (default: the preset's; else none)
  imageRoot?: string // directory image paths are relative to (default: the first pairs file's directory)
  onBadImage?: 'error' | 'skip' // a missing or undecodable image: stop with mine's error, or leave the row out (zeros; listed in the manifest; mine skips the same row) (default 'error')
  corpus?: string // external candidate pool (id,text): also writes corpus.npy (default: none)
  server: string // base URL: for 'openai' the OpenAI base including /v1 (http://gpu1:8000/v1); for 'tei' the server root
  api: 'openai' | 'tei' // wire format: POST {server}/embeddings, or TEI's POST {server}/embed and GET {server}/info
  model?: string // model named in OpenAI requests (default: the only model GET {server}/models lists); TEI ignores it
  dtype?: EmbedDtype // element type of the .npy files (default 'float16')
  batchSize?: number // inputs per request (default: TEI's /info max_client_batch_size when the server answers it, else 32); halved when the server answers 413, or 422 "batch too large"
  concurrency?: number // requests in flight (default 4)
  queryPrefix?: string // prepended to every query text, e.g. 'query: ' (default '')
  positivePrefix?: string // prepended to every positive and corpus text, e.g. 'passage: ' (default '')
  apiKeyEnv?: string // environment variable holding the API key, sent as a bearer token (default: none)
  apiKey?: string // the API key itself, for library callers (default: from apiKeyEnv, else none)
  timeoutMs?: number // one request attempt, in ms (default 300000)
  maxAttempts?: number // attempts per request before the run fails (default 8)
  retryBaseMs?: number // backoff base between attempts, in ms; doubles per retry, with jitter (default 500)
  overwrite?: boolean // discard an unfinished run and replace a finished one in `out` (default false)
  out: string // output directory
  onProgress?: (event: EmbedProgressEvent) => void // progress of long phases
}

/** Progress of a long phase. */
export interface EmbedProgressEvent {
  phase: 'read' | 'images' | 'embed' | 'hash' // reading pairs, decoding images, embedding, hashing the outputs
  done: number // units done: rows (read), distinct images (images), distinct inputs sent by this run (embed), files (hash)
  total: number // units in all (embed: the distinct inputs left, after a checkpoint's)
}

/** The end-of-run numbers. */
export interface EmbedSummary {
  texts: number // (side, row) slots written
  distinct: number // distinct inputs
  embedded: number // distinct inputs this run sent (the rest came from a checkpoint)
  resumed: number // distinct inputs taken from the checkpoint
  requests: number // HTTP requests, retries included
  retries: number // retried requests
  seconds: number // wall time of the run
  textsPerSecond: number // distinct inputs embedded per second of the embedding phase
  skippedRows: number // pair rows left out for a bad image
  dim: number // vector dimension
  dtype: EmbedDtype // element type written
}

/** What {@link embedPairs} returns. */
export interface EmbedResult {
  out: string // the output directory
  files: Partial<Record<Side, string>> // paths of queries.npy, positives.npy and (with a corpus) corpus.npy
  manifest: EmbedManifest // as written to embed-manifest.json
  summary: EmbedSummary // the summary line's numbers
}

/**
 * Embeds the queries and positives of every pair (and the corpus) through an embedding
 * server and writes `queries.npy`, `positives.npy` (`corpus.npy`) and
 * `embed-manifest.json` into `out`, ready for `mineNegatives`.
 *
 * @example
 * import { embedPairs, mineNegatives } from 'hardneg'
 * const { files } = await embedPairs({
 *   pairs: 'nli_for_simcse.csv', preset: 'simcse', out: 'emb',
 *   server: 'http://localhost:8080/v1', api: 'openai', model: 'BAAI/bge-base-en-v1.5',
 * })
 * await mineNegatives({ pairs: 'nli_for_simcse.csv', preset: 'simcse', out: 'shards',
 *   queryEmbeddings: files.queries!, positiveEmbeddings: files.positives! })
 */
export async function embedPairs(options: EmbedOptions): Promise<EmbedResult> {
  const t0 = performance.now()
  const timings: Record<string, number> = {}
  const lap = (name: string, since: number): number => {
    const now = performance.now()
    timings[name] = (now - since) / 1000
    return now
  }
  const { api: apiName, out } = options
  if (apiName !== 'openai' && apiName !== 'tei') throw new HardnegError('E_BAD_OPTION', `api: '${String(apiName)}', expected 'openai' or 'tei'`)
  const dtype = options.dtype ?? 'float16'
  if (dtype !== 'float16' && dtype !== 'float32') throw new HardnegError('E_BAD_OPTION', `dtype: '${String(dtype)}', expected 'float16' or 'float32'`)
  const onBadImage = options.onBadImage ?? 'error'
  if (onBadImage !== 'error' && onBadImage !== 'skip') throw new HardnegError('E_BAD_OPTION', `onBadImage: '${String(onBadImage)}', expected 'error' or 'skip'`)
  for (const [name, value] of [['batchSize', options.batchSize], ['concurrency', options.concurrency]] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new HardnegError('E_BAD_OPTION', `${name}: ${String(value)}, expected an integer >= 1`)
  }
  const concurrency = options.concurrency ?? 4
  const queryPrefix = options.queryPrefix ?? ''
  const positivePrefix = options.positivePrefix ?? ''
  const apiKey = options.apiKey ?? (options.apiKeyEnv !== undefined ? apiKeyFromEnv(options.apiKeyEnv) : undefined)
  const http = new HttpClient({
    baseUrl: options.server, concurrency,
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
    ...(options.retryBaseMs !== undefined ? { backoffMs: options.retryBaseMs } : {}),
  })
  const pairFiles = listOf('pairs', options.pairs)

  try {
    await mkdir(out, { recursive: true })
  } catch (err) {
    throw new HardnegError('E_OUTPUT', `cannot create the output directory (${(err as NodeJS.ErrnoException).code}), expected a writable path`, { file: out })
  }
  const earlier = await finishedRun(out)
  if (earlier.length > 0 && options.overwrite !== true) {
    throw new HardnegError('E_OUTPUT', `holds a finished embed run (${earlier.join(', ')}); expected an empty directory, or pass --overwrite`, { file: out })
  }

  // Inputs.
  let t = performance.now()
  const columns = pick(options, ['format', 'preset', 'queryCol', 'positiveCol', 'queryImageCol', 'positiveImageCol'])
  const files = await readPairFiles(pairFiles, columns)
  const pairCount = files.reduce((n, f) => n + f.pairs.length, 0)
  options.onProgress?.({ phase: 'read', done: pairCount, total: pairCount })
  let corpus: { file: string; records: CorpusRecord[] } | undefined
  if (options.corpus !== undefined) corpus = { file: options.corpus, records: await readCorpus({ file: options.corpus }) }
  const inputs: ManifestInput[] = []
  for (const f of pairFiles) inputs.push(await describeInput('pairs', f))
  if (options.corpus !== undefined) inputs.push(await describeInput('corpus', options.corpus))
  t = lap('read', t)

  const withImages = files.some((f) => f.pairs.some((p) => p.queryImage !== '' || p.positiveImage !== ''))
  const imageRoot = path.resolve(options.imageRoot ?? path.dirname(pairFiles[0] as string))
  let images: PairImages | undefined
  if (withImages) {
    if (apiName === 'tei') {
      throw new HardnegError('E_BAD_OPTION', `api 'tei': the pairs have image columns and TEI embeds text only, expected --api openai (vLLM's chat-style embedding request)`)
    }
    images = await hashPairImages(files, {
      root: imageRoot, cache: path.join(out, IMAGE_CACHE_FILE), onBadImage,
      ...(options.onProgress ? { onProgress: (done: number, total: number) => options.onProgress?.({ phase: 'images', done, total }) } : {}),
    })
    t = lap('images', t)
  }
  const plan = new InputPlan({
    files, corpus, queryPrefix, positivePrefix,
    skipRows: images?.badRows ?? new Set(), images: images?.byPath,
  })
  if (plan.inputs.length === 0) {
    throw new HardnegError('E_EMPTY', `nothing to embed: every pair row has a bad image (${pairCount} rows skipped), expected at least one row to embed`, { file: pairFiles[0] })
  }
  const sides: Side[] = corpus ? ['queries', 'positives', 'corpus'] : ['queries', 'positives']

  // The server.
  let info: ServerInfo | undefined
  let model: string | undefined
  let api: WireApi
  const models = new Set<string>()
  if (apiName === 'tei') {
    info = await readInfo(http, false)
    model = info?.modelId
    api = teiApi(http)
  } else {
    if (/\/v1\/?$/.test(options.server)) {
      // TEI also serves the OpenAI shape under /v1; its /info sits at the root.
      const root = new HttpClient({ baseUrl: options.server.replace(/\/v1\/?$/, ''), maxAttempts: 1, timeoutMs: 10_000 })
      info = await readInfo(root, true)
      root.close()
    }
    model = await openaiModel(http, options.model)
    api = openaiApi(http, model, models)
  }
  const firstBatchSize = options.batchSize ?? info?.maxClientBatchSize ?? 32

  // Resume, or start.
  const fingerprint: Fingerprint = {
    server: http.baseUrl, api: apiName, model: model ?? null, dtype, queryPrefix, positivePrefix,
    pairs: inputs.filter((i) => i.role === 'pairs').map((i) => ({ path: i.path, sha256: i.sha256 })),
    corpus: inputs.filter((i) => i.role === 'corpus').map((i) => ({ path: i.path, sha256: i.sha256 })),
    columns, imageRoot: withImages ? imageRoot : null, onBadImage,
    rows: plan.rows, inputs: plan.inputs.length,
  }
  const unfinished = options.overwrite === true ? undefined : await readUnfinished(out)
  if (unfinished !== undefined) {
    const change = fingerprintChange(unfinished.fingerprint, fingerprint)
    if (change !== undefined) {
      throw new HardnegError('E_OUTPUT',
        `holds an unfinished embed run of another command (${change}); expected the same command to resume it, or pass --overwrite to start over`, { file: out })
    }
  }
  const done = new Uint8Array(plan.inputs.length)
  let work = path.join(out, WORK_DIR)
  const writers: Partial<Record<Side, NpyWriter>> = {}
  let dim: number | undefined
  if (unfinished !== undefined) {
    dim = await reopenWriters(work, sides, plan, dtype, writers)
    if (dim !== undefined) await restoreDone(unfinished, plan, writers, done)
  }
  if (unfinished === undefined || (dim === undefined && unfinished.trusted.length + unfinished.unsynced.length > 0)) {
    // Nothing to resume, or journaled batches whose matrices are gone: start over.
    dim = undefined
    done.fill(0)
    await removeWork(out)
    work = await startWork(out, fingerprint)
  }
  const resumed = done.reduce((n, x) => n + x, 0)
  const syncAll = async (): Promise<void> => {
    for (const s of sides) await writers[s]?.sync()
  }
  const journal = new JournalWriter(work, syncAll)

  // Embed.
  // Progress counts what this run sends, so a resumed run's rate and ETA are its own.
  const left = plan.inputs.length - resumed
  options.onProgress?.({ phase: 'embed', done: 0, total: left })
  let progressed = 0
  const tEmbed = performance.now()
  let outcome
  try {
    outcome = await runBatches({
      plan, api, batchSize: firstBatchSize, concurrency, done, dim, dtype, journal,
      writers: async (d) => {
        if (writers.queries === undefined) {
          for (const s of sides) writers[s] = await NpyWriter.create(path.join(work, OUTPUT_FILES[s]), plan.rows[s], d, dtype)
        }
        return writers
      },
      onInputs: (count) => {
        progressed += count
        options.onProgress?.({ phase: 'embed', done: progressed, total: left })
      },
    })
    await journal.sync()
  } finally {
    http.close()
    await journal.close()
    await closeAll(writers)
  }
  t = lap('embed', tEmbed)
  const finalDim = (outcome.dim ?? dim) as number

  // Finish: hash, move into place, manifest last.
  const outputs = []
  for (const [k, s] of sides.entries()) {
    const { bytes, sha256 } = await hashFile(path.join(work, OUTPUT_FILES[s]))
    outputs.push({ file: OUTPUT_FILES[s], role: s, rows: plan.rows[s], dim: finalDim, dtype, bytes, sha256 })
    options.onProgress?.({ phase: 'hash', done: k + 1, total: sides.length })
  }
  await commitMatrices(out, work, sides)
  t = lap('finish', t)
  timings.total = (performance.now() - t0) / 1000
  const skipped = (images?.bad ?? [])
    .filter((b, i, all) => all.findIndex((x) => x.pairRow === b.pairRow) === i)
    .map((b) => ({ row: b.pairRow, file: b.file, fileRow: b.row, side: b.role, path: b.path, reason: b.reason }))
  const manifest: EmbedManifest = {
    tool: { name: 'hardneg', version: await toolVersion() },
    createdAt: new Date().toISOString(),
    server: http.baseUrl, api: apiName, model: model ?? null, modelsReported: [...models],
    info: info?.info ?? null, dim: finalDim, dtype,
    prefixes: { query: queryPrefix, positive: positivePrefix },
    inputs, outputs,
    counts: {
      pairs: pairCount, corpus: plan.rows.corpus, texts: plan.carried, distinct: plan.inputs.length,
      skippedRows: images?.badRows.size ?? 0, resumed, embedded: outcome.embedded,
      requests: http.stats.requests, retries: http.stats.retries, halvings: outcome.halvings,
      batchSize: { first: firstBatchSize, last: outcome.batchSize }, concurrency,
    },
    skipped,
    options: { ...columns, ...(withImages ? { imageRoot, onBadImage } : {}) },
    timings,
  }
  await writeEmbedManifest(out, manifest)
  await removeWork(out)
  const embedSeconds = timings.embed ?? 0
  return {
    out,
    files: Object.fromEntries(sides.map((s) => [s, path.join(out, OUTPUT_FILES[s])])),
    manifest,
    summary: {
      texts: plan.carried, distinct: plan.inputs.length, embedded: outcome.embedded, resumed,
      requests: http.stats.requests, retries: http.stats.retries, seconds: timings.total,
      textsPerSecond: embedSeconds > 0 ? outcome.embedded / embedSeconds : 0,
      skippedRows: manifest.counts.skippedRows, dim: finalDim, dtype,
    },
  }
}

/** Reopens an unfinished run's matrices; their dimension, or undefined when any is missing or not as planned. */
async function reopenWriters(work: string, sides: readonly Side[], plan: InputPlan, dtype: EmbedDtype, writers: Partial<Record<Side, NpyWriter>>): Promise<number | undefined> {
  let dim: number | undefined
  for (const s of sides) {
    const w = await NpyWriter.reopen(path.join(work, OUTPUT_FILES[s]), plan.rows[s], dtype)
    if (w === undefined || (dim !== undefined && w.dim !== dim)) {
      await w?.close()
      await closeAll(writers)
      for (const x of sides) delete writers[x]
      return undefined
    }
    writers[s] = w
    dim = w.dim
  }
  return dim
}

/**
 * Marks the journaled batches done: those before the last sync as they are; those after
 * it only when the bytes read back match their sha1, and then their rows are rewritten
 * from the first copy (a power loss may have kept some rows of a batch and not others).
 */
async function restoreDone(unfinished: { trusted: { start: number; end: number }[]; unsynced: { start: number; end: number; sha1: string }[] }, plan: InputPlan, writers: Partial<Record<Side, NpyWriter>>, done: Uint8Array): Promise<void> {
  for (const r of unfinished.trusted) done.fill(1, r.start, r.end)
  for (const r of unfinished.unsynced) {
    const rows: Buffer[] = []
    for (let i = r.start; i < r.end; i++) {
      const { side, row } = plan.firstSlot(i)
      rows.push(await (writers[side] as NpyWriter).readRow(row))
    }
    const bytes = Buffer.concat(rows)
    if (rangeDigest(bytes) !== r.sha1) continue
    const rowBytes = (rows[0] as Buffer).length
    for (const slot of plan.slots(r.start, r.end)) {
      const data = new Uint8Array(slot.rows.length * rowBytes)
      slot.input.forEach((k, j) => data.set(rows[k] as Buffer, j * rowBytes))
      await (writers[slot.side] as NpyWriter).writeRows(slot.rows, data)
    }
    done.fill(1, r.start, r.end)
  }
}

async function closeAll(writers: Partial<Record<Side, NpyWriter>>): Promise<void> {
  for (const w of Object.values(writers)) await w?.close()
}

function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {}
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k]
  return out
}
