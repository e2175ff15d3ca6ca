/**
 * `mineNegatives`: the whole job. Reads the pairs, checks the embeddings against them,
 * mines every group and writes shards and a manifest into `out`.
 */
import { readFile } from 'node:fs/promises'
import { HardnegError } from './errors.js'
import { checkEmbeddingShape, loadEmbeddingMatrix, readEmbeddingHeader, type EmbeddingFileOptions, type EmbeddingHeader } from './embeddings.js'
import { checkRules, type FalseNegativeRules } from './filters.js'
import { describeInput, writeManifest, type Manifest } from './manifest.js'
import { mineGroup, type HnswParams, type SearchMethod } from './negatives.js'
import { abandonOutput, commitOutput, openOutput } from './output.js'
import { collectPairs, type PairsFormat, type PresetName } from './pairs.js'
import { buildPool, type CorpusRecord } from './pool.js'
import { readCorpus } from './corpus.js'
import { checkSelectOptions, type SelectOptions } from './select.js'
import { FILTERED_COLUMNS, writeShards, type CarriedColumn } from './shards.js'
import { MiningStats, type MineSummary } from './stats.js'
import type { EmbeddingMatrix, MinedRow, PairRecord } from './types.js'

/** Options of {@link mineNegatives}; every field has the CLI flag of the same name. */
export interface MineOptions {
  pairs: string // pairs file: CSV/TSV with header, JSONL, or Parquet
  format?: PairsFormat // pairs format (default: from the extension)
  preset?: PresetName // column layout: 'simcse' (sent0,sent1,hard_neg) or 'mmeb' (qry,pos_text) (default: none)
  idCol?: string // id column (default: the 0-based row number)
  queryCol?: string // query column (default: the preset's, else 'query')
  positiveCol?: string // positive column (default: the preset's, else 'positive')
  groupCol?: string // group column; pools are built per group (default: the preset's, else one global group)
  carry?: string[] // extra columns copied to the shards (default: the preset's)
  queryEmbeddings: string // float32/float16 [rows, dim]: .npy or .safetensors (row i = pair row i), Arrow IPC or Parquet (matched by id; see docs/embedding-formats.md)
  positiveEmbeddings: string // as queryEmbeddings
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
  sampling?: 'top' | 'random' // top k, or k drawn from the rank window `range` (default 'top')
  range?: [number, number] // random sampling: 0-based ranks [min, max) (default [0, 100])
  seed?: number // random sampling seed (default 0)
  pad?: 'repeat' | 'none' | 'drop' // rows with fewer than k negatives (default 'repeat')
  keepFiltered?: number // removed candidates stored per row (filtered_* columns), highest score first, for `hardneg report` (default 0: none, and no such columns)
  search?: SearchMethod | 'auto' // exact, hnsw, or auto by pool size and dimension (default 'auto')
  m?: number // hnsw graph degree (default 16)
  ef?: number // hnsw search list size (default 128)
  efConstruction?: number // hnsw build list size (default 200)
  shardRows?: number // rows per Parquet shard (default 100000)
  threads?: number // onnxruntime threads for exact search (default: all cores)
  queryBlockRows?: number // queries scored per call (default 512)
  poolBlockRows?: number // pool rows scored per exact call (default 16384)
  onProgress?: (event: ProgressEvent) => void // progress of long phases
}

/** Progress of a long phase. */
export interface ProgressEvent {
  phase: 'read' | 'hash' | 'images' | 'load' | 'index' | 'search' | 'write' // what is running
  done: number // units done: rows (read, search, write), input files (hash), distinct image files (images), groups (load)
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
  const t0 = performance.now()
  const timings: Record<string, number> = {}
  const lap = (name: string, since: number): number => {
    const now = performance.now()
    timings[name] = (timings[name] ?? 0) + (now - since) / 1000
    return now
  }
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
  }
  checkSelectOptions(select)
  checkRules(rules)
  const method = options.search ?? 'auto'
  if (!['exact', 'hnsw', 'auto'].includes(method)) {
    throw new HardnegError('E_BAD_OPTION', `search: '${String(method)}', expected 'exact', 'hnsw' or 'auto'`)
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

  // Inputs: headers first, so a shape error costs nothing.
  let t = performance.now()
  const embeddingFile: EmbeddingFileOptions = {
    ...(options.embeddingKey !== undefined ? { key: options.embeddingKey } : {}),
    ...(options.embeddingIdCol !== undefined ? { idCol: options.embeddingIdCol } : {}),
    ...(options.embeddingCol !== undefined ? { vectorCol: options.embeddingCol } : {}),
  }
  const qHeader = await readEmbeddingHeader(options.queryEmbeddings, embeddingFile)
  const pHeader = await readEmbeddingHeader(options.positiveEmbeddings, embeddingFile)
  const pairs = await collectPairs({
    file: options.pairs,
    ...pick(options, ['format', 'preset', 'idCol', 'queryCol', 'positiveCol', 'groupCol', 'carry']),
  })
  if (pairs.length === 0) throw new HardnegError('E_EMPTY', 'no data rows, expected at least 1', { file: options.pairs })
  options.onProgress?.({ phase: 'read', done: pairs.length, total: pairs.length })
  checkEmbeddingShape(qHeader, { rows: pairs.length, rowsFrom: options.pairs })
  checkEmbeddingShape(pHeader, { rows: pairs.length, rowsFrom: options.pairs, dim: qHeader.dim, dimFrom: options.queryEmbeddings })
  let corpus: CorpusRecord[] = []
  let cHeader: EmbeddingHeader | undefined
  if (options.corpus !== undefined && options.corpusEmbeddings !== undefined) {
    cHeader = await readEmbeddingHeader(options.corpusEmbeddings, embeddingFile)
    corpus = await readCorpus({ file: options.corpus })
    checkEmbeddingShape(cHeader, { rows: corpus.length, rowsFrom: options.corpus, dim: qHeader.dim, dimFrom: options.queryEmbeddings })
  }
  // Files keyed by id return their rows in pair (corpus) order; the others ignore the ids.
  const pairIds = pairs.map((p) => p.id)
  const corpusIds = corpus.map((c) => c.id)
  const pairRows = (file: string, rows: Int32Array | number[]): Promise<EmbeddingMatrix> =>
    loadEmbeddingMatrix({ file, rows, ids: pairIds, idsFrom: options.pairs, ...embeddingFile })
  const corpusRows = (file: string, rows: Int32Array | number[]): Promise<EmbeddingMatrix> =>
    loadEmbeddingMatrix({ file, rows, ids: corpusIds, ...(options.corpus !== undefined ? { idsFrom: options.corpus } : {}), ...embeddingFile })
  // Match the ids of files keyed by id now, before any output exists; the loads below reuse the match.
  for (const [header, load] of [[qHeader, pairRows], [pHeader, pairRows], [cHeader, corpusRows]] as const) {
    if (header?.idCol !== undefined) await load(header.file, [])
  }
  t = lap('read', t)

  const staging = await openOutput(options.out, options.overwrite ?? false)
  try {
    const inputs = []
    const files: [string, string | undefined][] = [
      ['pairs', options.pairs],
      ['query-embeddings', options.queryEmbeddings],
      ['positive-embeddings', options.positiveEmbeddings],
      ['corpus', options.corpus],
      ['corpus-embeddings', options.corpusEmbeddings],
    ]
    const present = files.filter((f): f is [string, string] => f[1] !== undefined)
    for (const [role, file] of present) {
      inputs.push(await describeInput(role, file))
      options.onProgress?.({ phase: 'hash', done: inputs.length, total: present.length })
    }
    t = lap('hash', t)

    const stats = new MiningStats()
    const groups = groupPairs(pairs)
    const methods = new Set<SearchMethod>()
    const carriedColumns = carriedColumnsOf(pairs)
    const hnsw: HnswParams = { m: options.m ?? 16, ef: options.ef ?? 128, efConstruction: options.efConstruction ?? 200 }
    let searched = 0
    let loadedGroups = 0

    async function* allRows(): AsyncGenerator<MinedRow> {
      for (const [group, members] of groups) {
        let tg = performance.now()
        const pool = buildPool(group, members, corpus)
        const rows = Int32Array.from(members, (p) => p.row)
        const queries = await pairRows(options.queryEmbeddings, rows)
        const positives = await pairRows(options.positiveEmbeddings, rows)
        const poolVectors = await loadPoolVectors(pool.entries, (r) => pairRows(options.positiveEmbeddings, r),
          options.corpusEmbeddings === undefined ? undefined : (r) => corpusRows(options.corpusEmbeddings!, r), qHeader.dim)
        const owners = rules.querySim !== undefined ? await loadOwners(pool.entries, (r) => pairRows(options.queryEmbeddings, r), qHeader.dim) : undefined
        tg = lap('load', tg)
        loadedGroups++
        options.onProgress?.({ phase: 'load', done: loadedGroups, total: groups.size, group })
        const flop = 2 * members.length * pool.entries.length * qHeader.dim
        const chosen: SearchMethod = method === 'auto' ? (flop <= AUTO_EXACT_MAX_FLOP ? 'exact' : 'hnsw') : method
        methods.add(chosen)
        const mined = mineGroup({
          pairs: members,
          queries,
          positives,
          pool,
          poolVectors,
          ...(owners ? { owners } : {}),
          rules,
          select,
          keepFiltered,
          search: chosen,
          hnsw,
          ...pick(options, ['threads', 'queryBlockRows', 'poolBlockRows']),
          onIndex: (done, total) => options.onProgress?.({ phase: 'index', done, total, group }),
          onRows: (n) => {
            searched += n
            options.onProgress?.({ phase: 'search', done: searched, total: pairs.length, group })
          },
          onOutcome: (row, outcome, pair, removed) => stats.record(pair.group, row, outcome, removed),
        })
        for await (const row of mined) yield row
        lap('search', tg)
      }
    }

    const shards = await writeShards(allRows(), {
      dir: staging,
      shardRows: options.shardRows ?? 100000,
      carriedColumns,
      extraColumns: keepFiltered > 0 ? FILTERED_COLUMNS : [],
    })
    t = performance.now()
    await commitOutput(options.out, staging, shards.map((s) => s.file))
    const summary = stats.summarise()
    const { groups: groupCounts, positiveScores, negativeScores, ...counts } = summary
    timings.total = (performance.now() - t0) / 1000
    const manifest: Manifest = {
      tool: { name: 'hardneg', version: await toolVersion() },
      createdAt: new Date().toISOString(),
      inputs,
      options: effectiveOptions(options, rules, select, method, hnsw),
      search: {
        method: methods.has('hnsw') ? 'hnsw' : 'exact',
        falseNegativeCounts: methods.has('hnsw') ? 'fetched-candidates' : 'whole-pool',
      },
      rows: { in: summary.rowsIn, out: summary.rowsOut },
      shards,
      counts,
      groups: groupCounts,
      scores: { positive: positiveScores, negative: negativeScores },
      timings,
    }
    await writeManifest(options.out, manifest)
    return { out: options.out, manifest, summary }
  } catch (err) {
    await abandonOutput(staging)
    throw err
  }
}

function checkPositiveInt(name: string, value: number | undefined): void {
  if (value === undefined) return
  if (!Number.isInteger(value) || value < 1) throw new HardnegError('E_BAD_OPTION', `${name}: ${String(value)}, expected an integer >= 1`)
}

function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {}
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k]
  return out
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

function effectiveOptions(
  options: MineOptions,
  rules: FalseNegativeRules,
  select: SelectOptions,
  method: string,
  hnsw: HnswParams,
): Record<string, unknown> {
  const { onProgress: _progress, ...rest } = options
  return { ...rest, ...rules, ...select, keepFiltered: options.keepFiltered ?? 0, search: method, ...(method !== 'exact' ? hnsw : {}) }
}

let version: string | undefined
/** The package version from package.json (found from src/ and from dist/src/ alike). */
export async function toolVersion(): Promise<string> {
  if (version !== undefined) return version
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(await readFile(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'hardneg' && pkg.version) return (version = pkg.version)
    } catch {
      // not at this level
    }
  }
  return (version = 'unknown')
}

