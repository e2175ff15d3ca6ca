/**
 * `mineNegatives`: the whole job. Reads the pairs, checks the embeddings against them,
 * mines every group and writes shards and a manifest into `out`.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { createDuplicateCheck } from './duplicates.js'
import { EmbeddingSet } from './_embedding-set.js'
import { HardnegError } from '../errors.js'
import { readEmbeddingHeader, type EmbeddingFileOptions, type EmbeddingHeader } from '../embeddings/embeddings.js'
import { TEXT_ONLY_FORMATS, writeRowsAs, type OutputFormat, type RowLayout } from '../output/formats.js'
import { IMAGE_CACHE_FILE } from '../images/images.js'
import { hashPairImages, type PairImages } from '../images/pair-images.js'
import { readPairFiles, type PairFile } from '../pairs/files.js'
import { composeManifest, describeInput, writeManifest, type Manifest, type ManifestHead, type ManifestInput } from '../output/manifest.js'
import { mineGroup, type HnswParams, type MarginAnchor, type MineGroupOptions, type QueryOutcome, type SearchMethod } from './negatives.js'
import { effectiveOptions, pick, resolveOptions } from './_options.js'
import { KernelLog } from './kernels.js'
import type { GroupSize, RunRole } from './role.js'
import { candidateSelect, checkRescoreImages, checkRescoreWindow, rescoreRuleOf, RescoreRun } from './_rescore.js'
import type { RescoreApi } from '../rescore/rescore.js'
import { abandonOutput, commitOutput, openOutput } from '../output/output.js'
import type { PairsFormat, PresetName } from '../pairs/pairs.js'
import { buildPool, collectQueryPositives, type CorpusRecord, type PoolOptions } from './pool.js'
import { readCorpus } from '../pairs/corpus.js'
import type { CarriedColumn } from '../output/shards.js'
import { MiningStats, type MineSummary } from './stats.js'
import type { EmbeddingMatrix, FalseNegativeCounts, MinedRow, PairRecord } from '../types.js'
import type { SelectOutcome } from './select.js'

export { subsetName } from '../pairs/files.js'

/** Options of {@link mineNegatives}; every field has the CLI flag of the same name. */
export interface MineOptions {
  pairs: string | readonly string[] // pairs file(s): CSV/TSV with header, JSONL, or Parquet; several = one per subset, each its own pool unless it has a group column
  format?: PairsFormat // pairs format (default: from the extension); the CLI's --pairs-format
  preset?: PresetName // column layout: 'simcse' (sent0,sent1,hard_neg) or 'mmeb' (qry,qry_image_path,pos_text,pos_image_path,subset) (default: none)
  idCol?: string // id column (default: the 0-based row number)
  queryCol?: string // query column (default: the preset's, else 'query')
  positiveCol?: string // positive column (default: the preset's, else 'positive')
  groupCol?: string // group column; pools are built per group (default: the preset's, else one global group)
  carry?: string[] // extra columns copied to the shards (default: the preset's)
  queryImageCol?: string // query image path column (default: the preset's, e.g. mmeb's qry_image_path; else none)
  positiveImageCol?: string // positive image path column (default: the preset's, e.g. mmeb's pos_image_path; else none)
  globalPool?: boolean // one pool over every group and file instead of one per group (default false)
  queryEmbeddings: string | readonly string[] // float32/float16 [rows, dim]: .npy or .safetensors (row i = pair row i), Arrow IPC or Parquet (matched by id; see docs/embedding-formats.md); one per pairs file, or one for all
  positiveEmbeddings: string | readonly string[] // as queryEmbeddings
  imageRoot?: string // directory the image paths are relative to (default: the first pairs file's directory)
  onBadImage?: 'error' | 'skip' // a missing or undecodable image: stop with an error naming file, row and path, or drop the row and count it (default 'error')
  imageDupDistance?: number // images at most this many bits apart (of 256) are near-duplicates; a candidate near-duplicate of the query's or positive's image is a false negative (default 58, measured in docs/images.md)
  outputFormat?: OutputFormat // 'parquet' (hardneg's shards), 'mmeb' (MMEB-train columns + neg_text/neg_image_path lists) or 'unime-v2' (JSON Lines) (default 'parquet'); the CLI's --format
  corpus?: string // external candidate pool with columns id,text (CSV/TSV/JSONL/Parquet) (default: none)
  corpusEmbeddings?: string // embeddings for the corpus as queryEmbeddings, row i = corpus row i or matched by corpus id (required with corpus)
  embeddingKey?: string // safetensors: the tensor to read in every embedding file (default: the file's only 2-D tensor)
  embeddingIdCol?: string // Arrow/Parquet embeddings: id column matched to the pair (corpus) ids (default 'id'; a file without it is read by position)
  embeddingCol?: string // Arrow/Parquet embeddings: vector column (default 'embedding', else 'vector')
  out: string // output directory (the CLI defaults it to ./negatives)
  overwrite?: boolean // replace an earlier run in `out` (default false)
  k?: number // hard negatives per row (default 8)
  threshold?: number // margin above the positive's score; candidates scoring higher are false negatives (default 0.1)
  maxScore?: number // absolute score cap for negatives (default: off)
  relativeMargin?: number // drop candidates scoring above posScore * (1 - M) (default: off)
  posSim?: number // drop candidates whose similarity to the positive exceeds this (default: off)
  querySim?: number // drop candidates whose owning query's similarity to the query exceeds this (default: off)
  marginAnchor?: MarginAnchor // the positive score margins are measured from: 'own' (the row's own positive, UniME) or 'lowest' (the lowest-scoring labeled positive of the row's query, sentence-transformers/NeMo) (default 'own')
  minScore?: number // candidates scoring below this are too easy and never picked, like sentence-transformers' min_score (default: off)
  sweepThresholds?: number[] // also count, in the same pass, the margin rule's false negatives and FalseNeg% at each of these margins (default: none)
  sampling?: 'top' | 'random' // top k, or k drawn from the rank window `range` (default 'top')
  range?: [number, number] // 0-based ranks [min, max) to pick from: top takes the best k from rank min on (sentence-transformers' range_min/range_max), random draws k (default: top from rank 0, random [0, 100])
  seed?: number // random sampling seed (default 0)
  pad?: 'repeat' | 'none' | 'drop' // rows with fewer than k negatives (default 'repeat')
  keepFiltered?: number // removed candidates stored per row (filtered_* columns), highest score first, for `hardneg report` (default 0: none, and no such columns)
  search?: SearchMethod | 'auto' // exact, hnsw, or auto by pool size and dimension (default 'auto')
  m?: number // hnsw graph degree (default 16)
  ef?: number // hnsw search list size (default 128)
  efConstruction?: number // hnsw build list size (default 200)
  shardRows?: number // rows per Parquet shard (default 100000)
  threads?: number // onnxruntime threads for exact search (default: all cores)
  exactKernel?: 'auto' | 'fp32' | 'int8' // exact search's kernel: float32 sgemm, int8 with exact rescoring (same results, up to float32 near-ties; byte-identical across CPUs), or auto by CPU and size (default 'auto'); groups with --pos-sim/--query-sim use fp32
  queryBlockRows?: number // queries scored per call (default 512)
  poolBlockRows?: number // pool rows scored per exact call (default 16384)
  rescoreUrl?: string // second stage: the reranker's or judge's server root; its rule removes more false negatives (default: off; docs/rescore.md)
  rescoreApi?: RescoreApi // tei-rerank, cohere-rerank, vllm-score or chat-judge (required with rescoreUrl)
  rescoreModel?: string // model named in requests (default: TEI's /info model_id, else the only model /v1/models lists)
  rescoreTop?: number // embedding survivors rescored per query, best first; negatives come only from these (default 50)
  rescoreMargin?: number // a candidate scoring above r(pos) - margin is a false negative, in the rescorer's score space (default 0.01)
  rescoreMaxScore?: number // a candidate scoring above this is a false negative too (default: off)
  rescoreRank?: 'embedding' | 'rescore' // order of the survivors the negatives are taken from (default 'embedding')
  rescoreBatch?: number // candidates per reranker request, halved on 413/422 (default 32)
  rescoreConcurrency?: number // requests in flight (default 4)
  rescoreCache?: string // the score cache file (default <out>/.hardneg-rescore-cache.bin, kept by --overwrite)
  rescoreRawScores?: boolean // tei-rerank: raw logits instead of sigmoid probabilities (default false)
  rescoreTimeout?: number // seconds one rescore request may take, answer included (default 300)
  rescoreMaxAttempts?: number // attempts per rescore request before the run stops (default 8)
  rescoreApiKeyEnv?: string // environment variable holding the server's API key, sent as a bearer token (default: none)
  judgePrompt?: string // chat-judge: a file with the prompt template, {query} and {candidate} once each (default: docs/rescore.md's)
  onProgress?: (event: ProgressEvent) => void // progress of long phases
}

/** Progress of a long phase. */
export interface ProgressEvent {
  phase: 'read' | 'hash' | 'images' | 'load' | 'index' | 'search' | 'rescore' | 'write' // what is running
  done: number // units done: rows (read, search, write), input files (hash), distinct image files (images), groups (load), pairs (rescore)
  total: number // units in all
  group?: string // the group being mined
}

/** What {@link mineNegatives} returns. */
export interface MineResult {
  out: string // the output directory
  manifest: Manifest // as written to out/manifest.json
  summary: MineSummary // counts and score percentiles
}

/** exact when the group needs at most this many multiply-adds (2 * queries * pool * dim FLOP), else hnsw. */
export const AUTO_EXACT_MAX_FLOP = 4e14

/**
 * Mines hard negatives for every pair and writes them as Parquet shards plus a
 * manifest. Rejects bad input with a {@link HardnegError} before writing anything that
 * looks complete.
 *
 * @example
 * import { mineNegatives } from 'hardneg'
 * const { summary } = await mineNegatives({
 *   pairs: 'nli_for_simcse.csv', preset: 'simcse',
 *   queryEmbeddings: 'sent0.npy', positiveEmbeddings: 'sent1.npy',
 *   out: 'shards', k: 8, threshold: 0.1,
 * })
 * console.log(summary.falseNegativeQueryShare)
 */
export async function mineNegatives(options: MineOptions): Promise<MineResult> {
  return runMining(options)
}

/**
 * {@link mineNegatives} with an optional role in a distributed run (src/scale/): without
 * one it is the one-process run; with one, the role decides which queries (and which pool
 * rows) are mined and where rows, counts and the manifest's head go. Every other step is
 * the same code for both.
 */
export async function runMining(options: MineOptions): Promise<MineResult>
export async function runMining<R>(options: MineOptions, role: RunRole<R>): Promise<R>
export async function runMining<R>(options: MineOptions, role?: RunRole<R>): Promise<MineResult | R> {
  const t0 = performance.now()
  const timings: Record<string, number> = {}
  const lap = (name: string, since: number): number => {
    const now = performance.now()
    timings[name] = (timings[name] ?? 0) + (now - since) / 1000
    return now
  }
  const { rules, select, method, outputFormat, onBadImage, imageDupDistance, keepFiltered, marginAnchor, sweep, pairFiles, queryFiles, positiveFiles } = resolveOptions(options)
  const rescoreRule = rescoreRuleOf(options)
  if (rescoreRule !== undefined) checkRescoreWindow(select, rescoreRule)

  // Inputs: headers first, so a shape error costs nothing.
  let t = performance.now()
  const embeddingFile: EmbeddingFileOptions = {
    ...(options.embeddingKey !== undefined ? { key: options.embeddingKey } : {}),
    ...(options.embeddingIdCol !== undefined ? { idCol: options.embeddingIdCol } : {}),
    ...(options.embeddingCol !== undefined ? { vectorCol: options.embeddingCol } : {}),
  }
  const qHeaders = await Promise.all(queryFiles.map((f) => readEmbeddingHeader(f, embeddingFile)))
  const pHeaders = await Promise.all(positiveFiles.map((f) => readEmbeddingHeader(f, embeddingFile)))
  const dim = (qHeaders[0] as EmbeddingHeader).dim
  const files = await readPairFiles(pairFiles, pick(options, ['format', 'preset', 'idCol', 'queryCol', 'positiveCol', 'groupCol', 'carry', 'queryImageCol', 'positiveImageCol', 'globalPool']))
  const pairs = files.flatMap((f) => f.pairs)
  options.onProgress?.({ phase: 'read', done: pairs.length, total: pairs.length })
  const embeddingSet = (headers: EmbeddingHeader[]): EmbeddingSet =>
    new EmbeddingSet(
      headers.length === 1
        ? [{ header: headers[0] as EmbeddingHeader, firstRow: 0, rows: pairs.length, ids: pairs.map((p) => p.id), idsFrom: pairFiles.join(', ') }]
        : headers.map((header, i) => {
            const f = files[i] as PairFile
            return { header, firstRow: f.firstRow, rows: f.pairs.length, ids: f.pairs.map((p) => p.id), idsFrom: f.file }
          }),
      embeddingFile,
      dim,
    )
  const querySet = embeddingSet(qHeaders)
  const positiveSet = embeddingSet(pHeaders)
  // Ids of files keyed by id are matched now, before any output exists; the loads below reuse the match.
  await querySet.check(queryFiles[0] as string)
  await positiveSet.check(queryFiles[0] as string)
  let corpus: CorpusRecord[] = []
  let corpusSet: EmbeddingSet | undefined
  if (options.corpus !== undefined && options.corpusEmbeddings !== undefined) {
    const cHeader = await readEmbeddingHeader(options.corpusEmbeddings, embeddingFile)
    corpus = await readCorpus({ file: options.corpus })
    corpusSet = new EmbeddingSet([{ header: cHeader, firstRow: 0, rows: corpus.length, ids: corpus.map((c) => c.id), idsFrom: options.corpus }], embeddingFile, dim)
    await corpusSet.check(queryFiles[0] as string)
  }
  const withImages = pairs.some((p) => p.queryImage !== '' || p.positiveImage !== '')
  if (rescoreRule !== undefined) checkRescoreImages(options.rescoreApi as RescoreApi, pairs)
  if (withImages && TEXT_ONLY_FORMATS.includes(outputFormat)) {
    const first = pairs.find((p) => p.queryImage !== '' || p.positiveImage !== '') as PairRecord
    throw new HardnegError('E_BAD_OPTION',
      `outputFormat '${outputFormat}' holds texts only, but pair ${first.id} has an image ('${first.queryImage || first.positiveImage}'); expected a text-only run, or --format mmeb or unime-v2`)
  }
  const imageRoot = path.resolve(options.imageRoot ?? path.dirname(pairFiles[0] as string))
  if (outputFormat === 'mmeb' && options.carry !== undefined && options.carry.length > 0) {
    throw new HardnegError('E_BAD_OPTION', "carry: not available with outputFormat 'mmeb', expected MMEB-train's columns only")
  }
  t = lap('read', t)

  let staging = ''
  let rescore: RescoreRun | undefined
  if (role) await role.open(options.out, options.overwrite ?? false)
  else staging = await openOutput(options.out, options.overwrite ?? false)
  try {
    const inputs: ManifestInput[] = []
    const described: [string, string | undefined][] = [
      ...pairFiles.map((f): [string, string] => ['pairs', f]),
      ...queryFiles.map((f): [string, string] => ['query-embeddings', f]),
      ...positiveFiles.map((f): [string, string] => ['positive-embeddings', f]),
      ['corpus', options.corpus],
      ['corpus-embeddings', options.corpusEmbeddings],
    ]
    const present = described.filter((f): f is [string, string] => f[1] !== undefined)
    for (const [role, file] of present) {
      inputs.push(await describeInput(role, file))
      options.onProgress?.({ phase: 'hash', done: inputs.length, total: present.length })
    }
    t = lap('hash', t)

    const stats = role ? role.stats([sweep]) : new MiningStats(sweep)
    let images: PairImages | undefined
    let kept = pairs
    if (withImages) {
      images = await hashPairImages(files, {
        root: imageRoot,
        cache: path.join(options.out, IMAGE_CACHE_FILE),
        onBadImage,
        ...(options.onProgress ? { onProgress: (done: number, total: number) => options.onProgress?.({ phase: 'images', done, total }) } : {}),
      })
      const bad = images.badRows
      if (bad.size > 0) {
        kept = pairs.filter((p) => !bad.has(p.row))
        for (const p of pairs) if (bad.has(p.row)) stats.recordBadImage(p.group)
      }
      t = lap('images', t)
    }
    const duplicates = images
      ? createDuplicateCheck({ hashOf: (p) => images?.byPath.get(p)?.hash, maxDistance: imageDupDistance })
      : undefined
    const poolOptions: PoolOptions = images ? { imageKey: (p) => images?.byPath.get(p)?.sha256 ?? missingImage(p) } : {}

    if (rescoreRule !== undefined) rescore = await RescoreRun.open(options, rescoreRule)
    // When rescoring, the embedding stage hands on its top N survivors and the rescore stage selects.
    const searchSelect = rescore ? candidateSelect(select, rescore.rule) : select
    const groups = groupPairs(kept)
    const methods = new Set<SearchMethod>()
    const chooseMethod = (queries: number, poolRows: number): SearchMethod =>
      method === 'auto' ? (2 * queries * poolRows * dim <= AUTO_EXACT_MAX_FLOP ? 'exact' : 'hnsw') : method
    // A worker's share depends on every group's size, and the manifest's search on every group's method.
    const sizes: GroupSize[] | undefined = role
      ? [...groups].map(([name, members]) => {
          const poolRows = buildPool(name, members, corpus, poolOptions).entries.length
          return { name, rows: members.length, poolRows, method: chooseMethod(members.length, poolRows) }
        })
      : undefined
    for (const size of sizes ?? []) methods.add(size.method)
    const shares = sizes ? role?.plan(sizes) : undefined
    const carriedColumns = outputFormat === 'unime-v2' ? [] : carriedColumnsOf(kept)
    const hnsw: HnswParams = { m: options.m ?? 16, ef: options.ef ?? 128, efConstruction: options.efConstruction ?? 200 }
    const kernels = new KernelLog(options.exactKernel ?? 'auto')
    let searched = 0
    let loadedGroups = 0

    async function* allRows(): AsyncGenerator<MinedRow> {
      let groupIndex = -1
      for (const [group, groupMembers] of groups) {
        groupIndex++
        const share = shares?.[groupIndex]
        if (shares && !share) continue
        role?.enterGroup(groupIndex)
        let tg = performance.now()
        const pool = buildPool(group, groupMembers, corpus, poolOptions)
        // Siblings and their counts are the whole group's, whoever mines which of its queries.
        const queryPositives = collectQueryPositives(pool, groupMembers)
        stats.recordMultiPositive(group, queryPositives.multiPositiveQueries)
        // The queries mined here: the group's, or a worker's share of them (the pool stays the whole group's).
        const members = share ? groupMembers.slice(share.rows[0], share.rows[1]) : groupMembers
        const rows = Int32Array.from(members, (p) => p.row)
        const queries = await querySet.load(rows)
        const positives = await positiveSet.load(rows)
        // A pool-part worker holds its part's vectors only: the part is what does not fit one machine.
        const split = share !== undefined && (share.pool[0] > 0 || share.pool[1] < pool.entries.length)
        const scored = split ? pool.entries.slice(share.pool[0], share.pool[1]) : pool.entries
        const poolVectors = await loadPoolVectors(scored, (r) => positiveSet.load(r), corpusSet ? (r) => corpusSet.load(r) : undefined, dim)
        const owners = rules.querySim !== undefined ? await loadOwners(scored, (r) => querySet.load(r), dim) : undefined
        tg = lap('load', tg)
        loadedGroups++
        options.onProgress?.({ phase: 'load', done: loadedGroups, total: groups.size, group })
        // By the whole group, so that a worker's share is searched as the one-process run searches it.
        const chosen = chooseMethod(groupMembers.length, pool.entries.length)
        methods.add(chosen)
        const groupOptions: MineGroupOptions = {
          pairs: members,
          groupQueryRows: groupMembers.length,
          queries,
          positives,
          pool,
          poolVectors,
          ...(owners ? { owners } : {}),
          rules,
          queryPositives,
          marginAnchor,
          ...(sweep.length > 0 ? { sweepThresholds: sweep } : {}),
          ...(duplicates ? { duplicates, images: true } : {}),
          select: searchSelect,
          keepFiltered,
          search: chosen,
          hnsw,
          ...pick(options, ['threads', 'queryBlockRows', 'poolBlockRows', 'exactKernel']),
          onExactKernel: (choice, counts) => kernels.record(group, choice, counts, split),
          onIndex: (done, total) => options.onProgress?.({ phase: 'index', done, total, group }),
          onRows: (n) => {
            searched += n
            options.onProgress?.({ phase: 'search', done: searched, total: kept.length, group })
          },
          onOutcome: rescore ? (row, _outcome, pair, removed, query) => rescore?.hold(row, pair, removed, query) : outcomeRecorder(stats, role),
          ...(split ? { poolOffset: share.pool[0] } : {}),
        }
        if (split && role) await role.minePoolPart({ group: groupIndex, share, options: groupOptions })
        else for await (const row of mineGroup(groupOptions)) yield row
        lap('search', tg)
      }
    }

    const rows = rescore
      ? rescore.rows(allRows(), {
          select, keepFiltered, images, files, total: kept.length * (rescore.rule.top + 1),
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        }, (() => {
          const record = outcomeRecorder(stats, role)
          return (pair: PairRecord, row: MinedRow | null, outcome: SelectOutcome, removed: FalseNegativeCounts, query: QueryOutcome) => record(row, outcome, pair, removed, query)
        })())
      : allRows()
    const layout: RowLayout = {
      ...(options.shardRows !== undefined ? { shardRows: options.shardRows } : {}),
      carriedColumns,
      images: withImages,
      keepFiltered: keepFiltered > 0,
      rescored: rescore !== undefined,
      k: select.k,
    }
    // After the rows: the search methods are known once every group was mined.
    const headOf = async (): Promise<ManifestHead> => ({
      tool: { name: 'hardneg', version: await toolVersion() },
      inputs,
      options: effectiveOptions(options, rules, select, marginAnchor, method, hnsw, outputFormat, withImages ? { onBadImage, imageDupDistance, imageRoot } : undefined),
      search: {
        method: methods.has('hnsw') ? 'hnsw' : 'exact',
        falseNegativeCounts: methods.has('hnsw') ? 'fetched-candidates' : 'whole-pool',
        ...(kernels.summary() ? { exactKernel: kernels.summary() } : {}),
      },
      ...(images ? { images: images.summary } : {}),
      ...(rescore ? { rescore: rescore.record() } : {}),
    })
    if (role) {
      await role.writeRows(rows, outputFormat, layout)
      timings.total = (performance.now() - t0) / 1000
      return await role.finish(await headOf(), stats.summarise(), timings, kernels.snapshot())
    }
    const shards = await writeRowsAs(outputFormat, rows, { dir: staging, ...layout })
    t = performance.now()
    await commitOutput(options.out, staging, shards.map((s) => s.file))
    const summary = stats.summarise()
    timings.total = (performance.now() - t0) / 1000
    const manifest = composeManifest(await headOf(), summary, shards, timings)
    await writeManifest(options.out, manifest)
    return { out: options.out, manifest, summary }
  } catch (err) {
    if (role) await role.abandon()
    else await abandonOutput(staging)
    throw err
  } finally {
    await rescore?.close()
  }
}

/**
 * What a run does with each query's outcome (mineGroup's `onOutcome`): count it in
 * `stats`, after telling `role` which query it is. The merge of a split pool finishes
 * queries through the same function.
 */
export function outcomeRecorder(stats: MiningStats, role?: Pick<RunRole<unknown>, 'enterQuery'>): NonNullable<MineGroupOptions['onOutcome']> {
  return (row, outcome, pair, ...rest) => {
    role?.enterQuery(pair.row)
    stats.record(pair.group, row, outcome, ...rest)
  }
}

function missingImage(imagePath: string): never {
  throw new Error(`image '${imagePath}' was not hashed`)
}



/** Groups in order of first appearance; members in input order. */
function groupPairs(pairs: readonly PairRecord[]): Map<string, PairRecord[]> {
  const groups = new Map<string, PairRecord[]>()
  for (const p of pairs) {
    const g = groups.get(p.group)
    if (g) g.push(p)
    else groups.set(p.group, [p])
  }
  return groups
}

/** Carried columns in first-seen order, typed by the values they hold. */
function carriedColumnsOf(pairs: readonly PairRecord[]): CarriedColumn[] {
  const kinds = new Map<string, Set<string>>()
  for (const p of pairs) {
    for (const [name, v] of Object.entries(p.carried)) {
      let s = kinds.get(name)
      if (!s) kinds.set(name, (s = new Set()))
      if (v !== null) s.add(typeof v)
    }
  }
  return [...kinds].map(([name, s]) => ({ name, type: columnType(s) }))
}

function columnType(kinds: Set<string>): CarriedColumn['type'] {
  if (kinds.size === 1 && kinds.has('number')) return 'float64'
  if (kinds.size === 1 && kinds.has('bigint')) return 'int64'
  if (kinds.size === 1 && kinds.has('boolean')) return 'boolean'
  return 'string'
}

type LoadRows = (rows: number[]) => Promise<EmbeddingMatrix>

async function loadPoolVectors(
  entries: readonly { source: 'pair' | 'corpus'; row: number }[],
  loadPositives: LoadRows,
  loadCorpus: LoadRows | undefined,
  dim: number,
): Promise<EmbeddingMatrix> {
  const pairRows = entries.filter((e) => e.source === 'pair').map((e) => e.row)
  const corpusRows = entries.filter((e) => e.source === 'corpus').map((e) => e.row)
  const fromPairs = await loadPositives(pairRows)
  if (corpusRows.length === 0 || loadCorpus === undefined) return fromPairs
  // buildPool puts every pair entry before every corpus entry.
  const fromCorpus = await loadCorpus(corpusRows)
  const data = new Float32Array(entries.length * dim)
  data.set(fromPairs.data)
  data.set(fromCorpus.data, fromPairs.data.length)
  return { rows: entries.length, dim, data }
}

async function loadOwners(entries: readonly { owner: number }[], loadQueries: LoadRows, dim: number): Promise<EmbeddingMatrix> {
  const owned = entries.filter((e) => e.owner >= 0).map((e) => e.owner)
  const m = await loadQueries(owned)
  if (owned.length === entries.length) return m
  const data = new Float32Array(entries.length * dim).fill(Number.NaN)
  data.set(m.data)
  return { rows: entries.length, dim, data }
}


let version: string | undefined
/** The package version from package.json (found from src/mine/ and from dist/src/mine/ alike). */
export async function toolVersion(): Promise<string> {
  if (version !== undefined) return version
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(await readFile(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'hardneg' && pkg.version) return (version = pkg.version)
    } catch {
      // not at this level
    }
  }
  return (version = 'unknown')
}

