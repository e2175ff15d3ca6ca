/**
 * `embed-manifest.json`, written last: what the server was and said, what went in (with
 * sha256), what came out (with sha256), counts and timings. Its presence marks a finished
 * run. Also the finished run's file names and the step that moves the matrices into
 * place. Private to the embed folder.
 */
import { readdir, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { ManifestInput } from '../output/manifest.js'
import type { Side } from './_inputs.js'
import type { EmbedDtype } from './_npy-writer.js'

/** The manifest's file name inside `--out`. */
export const EMBED_MANIFEST_FILE = 'embed-manifest.json'

/** The output matrix of each side. */
export const OUTPUT_FILES: Readonly<Record<Side, string>> = { queries: 'queries.npy', positives: 'positives.npy', corpus: 'corpus.npy' }

/** One output matrix. */
export interface EmbedManifestOutput {
  file: string // file name inside --out
  role: Side // queries, positives or corpus
  rows: number // row i = pair row i (corpus row i)
  dim: number // values per row
  dtype: EmbedDtype // element type
  bytes: number // file size
  sha256: string // hex digest of the file's bytes
}

/** A pair row left out because one of its images is bad (`--on-bad-image skip`); its rows hold zeros. */
export interface EmbedManifestSkip {
  row: number // 0-based pair row across all pairs files (the .npy row)
  file: string // pairs file
  fileRow: number // 1-based data row within it
  side: 'query' | 'positive' // the side whose image is bad
  path: string // the image path as written
  reason: string // missing, unreadable or undecodable
}

/** Everything `embed-manifest.json` holds. */
export interface EmbedManifest {
  tool: { name: 'hardneg'; version: string } // who wrote it
  createdAt: string // ISO 8601 time the run finished
  server: string // the base URL (--server)
  api: 'openai' | 'tei' // the wire format
  model: string | null // the model named in requests (openai), or TEI's model_id
  modelsReported: string[] // the `model` fields of OpenAI responses
  info: Record<string, unknown> | null // what GET /info answered (TEI), or null
  dim: number // values per vector
  dtype: EmbedDtype // element type of every matrix
  prefixes: { query: string; positive: string } // prepended to query texts, and to positive and corpus texts
  inputs: ManifestInput[] // pairs and corpus files with sha256
  outputs: EmbedManifestOutput[] // the matrices
  counts: {
    pairs: number // pair rows (rows of queries.npy and positives.npy)
    corpus: number // corpus rows
    texts: number // (side, row) slots embedded: 2 per kept pair plus the corpus
    distinct: number // distinct inputs: each sent once
    skippedRows: number // pair rows left out for a bad image
    resumed: number // distinct inputs taken from an interrupted run's checkpoint
    embedded: number // distinct inputs this run sent
    requests: number // HTTP requests this run sent, retries included
    retries: number // retried requests this run
    halvings: number // batches split because the server found them too large
    batchSize: { first: number; last: number } // inputs per request at the start and at the end
    concurrency: number // requests in flight
  }
  skipped: EmbedManifestSkip[] // rows left out, by row
  options: Record<string, unknown> // the column options, image root and bad-image policy
  timings: Record<string, number> // seconds per phase, and 'total'
}

/** Names in `out` that belong to a finished embed run. */
export async function finishedRun(out: string): Promise<string[]> {
  const names = new Set(await readdir(out))
  return [EMBED_MANIFEST_FILE, ...Object.values(OUTPUT_FILES)].filter((n) => names.has(n))
}

/**
 * Moves the finished matrices from the work directory into `out`: an earlier run's
 * manifest goes first and its matrices after, so no mix of old and new looks complete.
 */
export async function commitMatrices(out: string, work: string, sides: readonly Side[]): Promise<void> {
  await rm(path.join(out, EMBED_MANIFEST_FILE), { force: true })
  for (const f of Object.values(OUTPUT_FILES)) await rm(path.join(out, f), { force: true })
  for (const side of sides) await rename(path.join(work, OUTPUT_FILES[side]), path.join(out, OUTPUT_FILES[side]))
}

/** Writes the manifest through a temporary name. */
export async function writeEmbedManifest(out: string, manifest: EmbedManifest): Promise<void> {
  const target = path.join(out, EMBED_MANIFEST_FILE)
  const tmp = `${target}.tmp-${process.pid}`
  await writeFile(tmp, JSON.stringify(manifest, null, 2) + '\n')
  await rename(tmp, target)
}
