/**
 * The run manifest: what went in (with sha256), the options, what came out (each shard
 * with rows and sha256), counts and timings. Written last; its presence marks a run
 * as complete.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, rename, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { HardnegError } from '../errors.js'
import type { MineSummary } from '../mine/stats.js'

/** One input file as the manifest records it. */
export interface ManifestInput {
  role: string // 'pairs', 'query-embeddings', 'positive-embeddings', 'corpus', 'corpus-embeddings'
  path: string // as the user gave it
  bytes: number // file size
  sha256: string // hex digest of the file's bytes
}

/** One output shard. */
export interface ManifestShard {
  file: string // file name inside the output directory
  rows: number // rows in the shard
  bytes: number // file size
  sha256: string // hex digest of the file's bytes
}

/** The images of a run with images. */
export interface ManifestImages {
  root: string // absolute directory the image paths were resolved against
  distinct: number // distinct image files referenced
  decoded: number // decoded by this run
  cached: number // taken from the hash cache unchanged
  cache: string // the cache file as found: absent, loaded, stale, unreadable
  badRows: number // pairs dropped for a bad image (--on-bad-image skip)
}

/** Which exact kernel the run's exact groups used, why, and how much rescoring int8 needed. */
export interface ManifestExactKernel {
  requested: 'auto' | 'fp32' | 'int8' // --exact-kernel
  groups: { fp32: number; int8: number } // exact groups searched by each kernel
  reasons: string[] // the distinct reasons given for the choices (CPU, size rule, a rule only fp32 applies, asked for)
  cpu: { arch: string; int8: string; flags: string[] } // the CPU the choice looked at: its best int8 dot product (vnni, dotprod, avx2, none) and the flags that decide it
  rescore?: { // int8 groups: per query, exact dot products computed, and candidates whose bound straddled the ceiling
    queries: number
    rescoredMean: number
    rescoredP99: number
    rescoredMax: number
    ceilingBandMean: number
    ceilingBandP99: number
    ceilingBandMax: number
    splitGroups?: number // a distributed run with a split pool: this many int8 groups had their pool split, and their queries are counted once per pool part (so `queries` is more than the rows of the run)
  }
}

/** The second stage of a run with --rescore-url. */
export interface ManifestRescore {
  url: string // the endpoint scores came from
  identity: { api: string; model: string; scoreSpace: string; rawScores?: boolean; promptSha256?: string } // what the scores are (the cache's key)
  rule: { top: number; margin: number; maxScore?: number; rank: 'embedding' | 'rescore' } // the rule applied
  cache: string // the score cache file
  counts: { pairsScored: number; cacheHits: number; sent: number; requests: number; retries: number; batchHalvings: number; positiveOutranked: number; positiveLow: number } // pairs scored (cache hits among them), pairs sent, HTTP attempts and retries, batch halvings, rows whose positive a rescored candidate outscored, rows whose r(pos) is below every rescored candidate's score + margin (all removed)
}

/** Everything `manifest.json` holds. */
export interface Manifest {
  tool: { name: 'hardneg'; version: string } // who wrote the run
  createdAt: string // ISO 8601 time the run finished (not part of any shard)
  inputs: ManifestInput[] // input files
  options: Record<string, unknown> // the effective options, defaults filled in
  search: { method: 'exact' | 'hnsw'; falseNegativeCounts: 'whole-pool' | 'fetched-candidates'; exactKernel?: ManifestExactKernel } // what was run, what n_false_negatives covers, and (exact groups) the kernel
  rows: { in: number; out: number } // pairs read, rows written
  shards: ManifestShard[] // in order
  counts: Omit<MineSummary, 'positiveScores' | 'negativeScores' | 'groups'> // run-wide counts
  groups: MineSummary['groups'] // counts per group
  scores: { positive: MineSummary['positiveScores']; negative: MineSummary['negativeScores'] } // score percentiles
  images?: ManifestImages // runs with images: what was decoded
  rescore?: ManifestRescore // runs with --rescore-url: the rescorer, its rule and counts (docs/rescore.md)
  timings: Record<string, number> // seconds per phase, and 'total'
}

/** What a manifest says before the rows are mined: who, from what, with which options and search. */
export type ManifestHead = Pick<Manifest, 'tool' | 'inputs' | 'options' | 'search' | 'images' | 'rescore'>

/**
 * The manifest of a finished run, from its head, the run's summary, its shards and its
 * timings, in the key order every `manifest.json` has. A one-process run and the merge of
 * a distributed one both build theirs here, so the two are byte-identical but for
 * `createdAt` and `timings`.
 */
export function composeManifest(head: ManifestHead, summary: MineSummary, shards: ManifestShard[], timings: Record<string, number>): Manifest {
  const { groups, positiveScores, negativeScores, ...counts } = summary
  return {
    tool: head.tool,
    createdAt: new Date().toISOString(),
    inputs: head.inputs,
    options: head.options,
    search: head.search,
    rows: { in: summary.rowsIn, out: summary.rowsOut },
    shards,
    counts,
    groups,
    scores: { positive: positiveScores, negative: negativeScores },
    ...(head.images ? { images: head.images } : {}),
    ...(head.rescore ? { rescore: head.rescore } : {}),
    timings,
  }
}

/** The manifest file name inside an output directory. */
export const MANIFEST_FILE = 'manifest.json'

/** The file name `hardneg report` (and `mine-negatives --report`) writes into a run's directory by default. */
export const REPORT_FILE = 'report.html'

/** Streams a file through sha256. */
export async function hashFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) {
      hash.update(chunk as Buffer)
      bytes += (chunk as Buffer).length
    }
  } catch (err) {
    throw new HardnegError('E_BAD_FILE', `cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { file })
  }
  return { bytes, sha256: hash.digest('hex') }
}

/** Describes an input file for the manifest. */
export async function describeInput(role: string, file: string): Promise<ManifestInput> {
  return { role, path: file, ...(await hashFile(file)) }
}

/** Writes `manifest.json` into `dir` through a temporary name, so a reader never sees half of it. */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const target = path.join(dir, MANIFEST_FILE)
  const tmp = `${target}.tmp-${process.pid}`
  await writeFile(tmp, JSON.stringify(manifest, null, 2) + '\n')
  await rename(tmp, target)
}

/** Reads `manifest.json` from a run's output directory. */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_FILE)
  try {
    await stat(file)
  } catch {
    throw new HardnegError('E_BAD_FILE', `no ${MANIFEST_FILE}, expected a complete hardneg run`, { file: dir })
  }
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Manifest
  } catch (err) {
    throw new HardnegError('E_BAD_FILE', `invalid JSON (${(err as Error).message}), expected a hardneg manifest`, { file })
  }
}
