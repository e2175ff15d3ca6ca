/**
 * Rescoring: recompute `pos_score` and every `neg_scores` entry of a seeded sample of
 * shard rows from the embeddings, exactly as docs/mining.md defines similarity, and
 * compare. Ids map to pair rows through the pairs file when given (only the ids the
 * sample needs are kept), else as 0-based row numbers. Private to the validate files.
 */

import { HardnegError } from '../errors.js'
import { checkEmbeddingShape, loadEmbeddingMatrix, readNpyHeader } from '../embeddings/embeddings.js'
import { MANIFEST_FILE, hashFile, type Manifest } from '../output/manifest.js'
import { readPairs, type ReadPairsOptions } from '../pairs/pairs.js'
import { quote, type FindingLog } from './_findings.js'
import { fmt, type DrawnRow } from './_mined-rows.js'

/** What {@link rescoreRows} needs. */
export interface RescoreOptions {
  rows: readonly DrawnRow[] // the rows drawn from the shards
  queryEmbeddings: string // the run's query embeddings
  positiveEmbeddings: string // the run's positive embeddings (negatives from pairs are positives of other rows)
  pairs: ReadPairsOptions | undefined // the run's pairs file, to map ids; undefined: ids are row numbers
  tolerance: number // largest accepted |stored - recomputed|
  manifest: Manifest | undefined // for the inputs' sha256 and whether the run had a corpus or an id column
  dir: string // the shard directory, for run-wide findings
}

interface PairText {
  row: number // 0-based pair row = embedding row
  query?: string // texts when a pairs file was read
  positive?: string
}

/** A drawn row mapped to embedding rows: its own, and one per negative (-1: not rescored). */
interface Task {
  row: DrawnRow
  pair: number
  negatives: number[]
}

/** Rescores `options.rows`; throws (validation cannot run) when an input cannot be read. */
export async function rescoreRows(options: RescoreOptions, log: FindingLog): Promise<void> {
  const { rows, manifest, pairs } = options
  log.ran('V_RESCORE_UNMAPPED', 'V_RESCORE_MISMATCH', 'V_RESCORE_SKIPPED')
  if (pairs !== undefined) log.ran('V_PAIR_MISMATCH')
  await checkInputs(options, log)
  const qHeader = await readNpyHeader(options.queryEmbeddings)
  const pHeader = await readNpyHeader(options.positiveEmbeddings)
  checkEmbeddingShape(pHeader, { dim: qHeader.dim, dimFrom: options.queryEmbeddings, rows: qHeader.rows, rowsFrom: options.queryEmbeddings })

  const runOptions: Record<string, unknown> = manifest?.options ?? {}
  const hadCorpus = manifest?.inputs?.some(i => i.role === 'corpus') === true
  if (pairs === undefined) {
    if (typeof runOptions.idCol === 'string') {
      throw new HardnegError('E_BAD_OPTION', `--rescore: the run mapped ids from column '${runOptions.idCol}', so ids are not row numbers; expected --pairs to map them`)
    }
    if (hadCorpus) {
      throw new HardnegError('E_BAD_OPTION', '--rescore: the run had a --corpus, whose ids can look like row numbers; expected --pairs to tell corpus negatives from pairs')
    }
  }
  const ids = await mapIds(rows, pairs, qHeader.rows)
  const source = pairs?.file ?? options.queryEmbeddings

  const tasks: Task[] = []
  let skipped = 0
  let skippedRows = 0
  for (const row of rows) {
    const own = ids.get(row.id)
    if (own === undefined) {
      const where = pairs === undefined ? `a row number of ${source} (${qHeader.rows} rows)` : `in ${source}`
      log.add('V_RESCORE_UNMAPPED', row.place, `id ${quote(row.id)} is not ${where}, expected the id of a mined pair`)
      continue
    }
    if (own.query !== undefined && (own.query !== row.query || own.positive !== row.positive)) {
      const [side, found, expected] = own.query !== row.query ? ['query', row.query, own.query] : ['positive', row.positive, own.positive!]
      log.add('V_PAIR_MISMATCH', row.place, `${side} ${quote(found)} differs from ${source}:${own.row + 1} (id ${quote(row.id)}), expected ${quote(expected)}`)
      continue
    }
    const negatives: number[] = []
    let unmapped = false
    let corpus = 0
    for (const [i, text] of row.negatives.entries()) {
      const from = ids.get(row.negIds[i]!)
      const fromPairs = from !== undefined && (from.positive === undefined || from.positive === text)
      if (fromPairs) {
        negatives.push(from.row)
      } else if (hadCorpus) {
        negatives.push(-1)
        corpus++
      } else {
        log.add('V_RESCORE_UNMAPPED', row.place, `negative ${i} ${quote(text)} (neg_id ${quote(row.negIds[i]!)}) is not the positive of a pair in ${source}, expected it (the run had no --corpus)`)
        unmapped = true
        break
      }
    }
    if (unmapped) continue
    if (corpus > 0) {
      skipped += corpus
      skippedRows++
    }
    tasks.push({ row, pair: own.row, negatives })
  }

  await compare(tasks, options, log)
  if (skipped > 0) {
    log.add('V_RESCORE_SKIPPED', { file: options.dir },
      `${skipped} corpus negative${skipped === 1 ? '' : 's'} in ${skippedRows} of ${rows.length} drawn rows not rescored (validate reads no corpus embeddings)`)
  }
}

/** V_INPUT_CHANGED: a given input whose sha256 differs from the one the manifest recorded. */
async function checkInputs(options: RescoreOptions, log: FindingLog): Promise<void> {
  const recorded = options.manifest?.inputs
  if (!Array.isArray(recorded)) return
  log.ran('V_INPUT_CHANGED')
  const given: [string, string | undefined][] = [
    ['pairs', options.pairs?.file],
    ['query-embeddings', options.queryEmbeddings],
    ['positive-embeddings', options.positiveEmbeddings],
  ]
  for (const [role, file] of given) {
    const input = recorded.find(i => i.role === role)
    if (file === undefined || input === undefined) continue
    const { sha256 } = await hashFile(file)
    if (sha256 !== input.sha256) {
      log.add('V_INPUT_CHANGED', { file }, `sha256 ${sha256}, expected ${input.sha256} (${MANIFEST_FILE} input ${role}, mined from ${input.path})`)
    }
  }
}

/** The pair row (and texts, when a pairs file is read) of every id the drawn rows name. */
async function mapIds(rows: readonly DrawnRow[], pairs: ReadPairsOptions | undefined, embeddingRows: number): Promise<Map<string, PairText>> {
  const needed = new Set<string>()
  for (const r of rows) {
    needed.add(r.id)
    for (const id of r.negIds) needed.add(id)
  }
  const out = new Map<string, PairText>()
  if (pairs === undefined) {
    for (const id of needed) {
      if (/^(0|[1-9]\d*)$/.test(id) && Number(id) < embeddingRows) out.set(id, { row: Number(id) })
    }
    return out
  }
  for await (const p of readPairs(pairs)) {
    // The first row carrying an id wins, as in the pool (neg_ids name the first carrier).
    if (needed.has(p.id) && !out.has(p.id)) out.set(p.id, { row: p.row, query: p.query, positive: p.positive })
  }
  return out
}

/** sim(a, b) as docs/mining.md defines pos_score: a float64 sum of float32 products, rounded to float32. */
function dot(a: Float32Array, ai: number, b: Float32Array, bi: number, dim: number): number {
  let s = 0
  for (let j = 0; j < dim; j++) s += a[ai * dim + j]! * b[bi * dim + j]!
  return Math.fround(s)
}

async function compare(tasks: readonly Task[], options: RescoreOptions, log: FindingLog): Promise<void> {
  const qRows = tasks.map(t => t.pair)
  const pRows: number[] = []
  for (const t of tasks) pRows.push(t.pair, ...t.negatives.filter(n => n >= 0))
  const q = await loadEmbeddingMatrix({ file: options.queryEmbeddings, rows: qRows })
  const p = await loadEmbeddingMatrix({ file: options.positiveEmbeddings, rows: pRows })
  const { dim } = q
  const tol = options.tolerance
  let at = 0
  for (const [i, t] of tasks.entries()) {
    const mismatches: string[] = []
    const pos = dot(q.data, i, p.data, at++, dim)
    if (!(Math.abs(pos - t.row.posScore) <= tol)) {
      mismatches.push(`pos_score ${fmt(t.row.posScore)}, recomputed ${fmt(pos)} from embedding row ${t.pair}`)
    }
    for (const [j, negRow] of t.negatives.entries()) {
      if (negRow < 0) continue
      const s = dot(q.data, i, p.data, at++, dim)
      const stored = t.row.negScores[j]!
      if (!(Math.abs(s - stored) <= tol)) {
        mismatches.push(`neg_scores[${j}] ${fmt(stored)}, recomputed ${fmt(s)} against positive embedding row ${negRow} (neg_id ${quote(t.row.negIds[j]!)})`)
      }
    }
    if (mismatches.length > 0) {
      const more = mismatches.length > 1 ? ` (and ${mismatches.length - 1} more score${mismatches.length === 2 ? '' : 's'} in this row)` : ''
      log.add('V_RESCORE_MISMATCH', t.row.place, `${mismatches[0]}, expected within ${tol}${more}`)
    }
  }
}
