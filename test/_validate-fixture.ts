/**
 * The clean fixture the validate tests plant defects into: a small pairs CSV (two
 * groups, ids), float16 query and float32 positive embeddings, a forbid set that shares
 * nothing with them, and the shard set `mineNegatives` makes of them (two shards).
 */
import { cp, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { mineNegatives, readShards, writeShards, type MinedRow } from '../src/index.js'
import { randomUnit, tempDir, writeCsv, writeNpy } from './_helpers.js'

export const ROWS = 24
export const DIM = 8
export const K = 4

/** Paths inside one copy of the fixture. */
export interface Fixture {
  dir: string
  pairs: string // pairs.csv: id,query,positive,group
  q: string // q.npy, float16 [24, 8]
  p: string // p.npy, float32 [24, 8]
  forbid: string // eval.jsonl: texts none of the data holds
  shards: string // out/: part-00000.parquet (12 rows), part-00001.parquet (12 rows), manifest.json
}

export type PairRow = [id: string, query: string, positive: string, group: string]

/** The fixture's pair rows: ids p0.., groups a (rows 0-11) and b (12-23). */
export function pairRows(): PairRow[] {
  return Array.from({ length: ROWS }, (_, i) => [`p${i}`, `query ${i} about a topic`, `positive ${i} text`, i < 12 ? 'a' : 'b'])
}

/** Random unit positives. */
export function positiveMatrix(): { rows: number; dim: number; data: Float32Array } {
  return randomUnit(ROWS, DIM, 12)
}

/**
 * Queries near their positives (cosine ~0.6), so that every row keeps k negatives below
 * the ceiling while a few candidates still score above it.
 */
export function queryMatrix(): { rows: number; dim: number; data: Float32Array } {
  const p = positiveMatrix()
  const r = randomUnit(ROWS, DIM, 11)
  const data = new Float32Array(ROWS * DIM)
  for (let i = 0; i < ROWS; i++) {
    let n = 0
    for (let j = 0; j < DIM; j++) n += (data[i * DIM + j] = 0.6 * p.data[i * DIM + j]! + 0.8 * r.data[i * DIM + j]!) ** 2
    for (let j = 0; j < DIM; j++) data[i * DIM + j] = Math.fround(data[i * DIM + j]! / Math.sqrt(n))
  }
  return { rows: ROWS, dim: DIM, data }
}

export function fixturePaths(dir: string): Fixture {
  return {
    dir,
    pairs: path.join(dir, 'pairs.csv'),
    q: path.join(dir, 'q.npy'),
    p: path.join(dir, 'p.npy'),
    forbid: path.join(dir, 'eval.jsonl'),
    shards: path.join(dir, 'out'),
  }
}

/**
 * Builds the clean fixture in `dir` (mining it takes a moment: build once per file in
 * `beforeAll`, outside the per-test temporary directories, and copy it per test).
 */
export async function buildFixture(dir: string): Promise<Fixture> {
  const f = fixturePaths(dir)
  await writeCsv(f.pairs, ['id', 'query', 'positive', 'group'], pairRows())
  await writeNpy(f.q, queryMatrix(), 'f2')
  await writeNpy(f.p, positiveMatrix(), 'f4')
  await writeFile(f.forbid, [
    JSON.stringify({ qry: 'An evaluation question', tgt: ['an evaluation answer', 'another answer'], id: 7 }),
    JSON.stringify({ qry: 'A second evaluation question', tgt: ['a held-out caption'], id: 8 }),
  ].join('\n') + '\n')
  await mineNegatives({
    pairs: f.pairs, idCol: 'id', groupCol: 'group', queryEmbeddings: f.q, positiveEmbeddings: f.p,
    // threshold 0: no negative above its positive, so the clean set has no V_POS_BELOW_NEG warning either.
    out: f.shards, k: K, threshold: 0, search: 'exact', shardRows: 12,
  })
  return f
}

/** A copy of `source` in a fresh temporary directory. */
export async function copyFixture(source: Fixture): Promise<Fixture> {
  const dir = await tempDir()
  await cp(source.dir, dir, { recursive: true })
  return fixturePaths(dir)
}

/** Every row of the shard set, in order. */
export async function shardRows(shards: string): Promise<MinedRow[]> {
  const rows: MinedRow[] = []
  for await (const r of readShards(shards)) rows.push(r)
  return rows
}

/**
 * Changes rows of the shard set and writes it back as a consistent run: the same shard
 * sizes, and a manifest with the new sha256 sums, so only the planted defect shows.
 */
export async function rewriteRows(shards: string, mutate: (rows: MinedRow[]) => void): Promise<void> {
  const rows = await shardRows(shards)
  mutate(rows)
  const manifestFile = path.join(shards, 'manifest.json')
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'))
  for (const s of manifest.shards) await rm(path.join(shards, s.file))
  async function* each(): AsyncGenerator<MinedRow> {
    yield* rows
  }
  manifest.shards = await writeShards(each(), { dir: shards, shardRows: 12, carriedColumns: [] })
  await writeFile(manifestFile, JSON.stringify(manifest, null, 2))
}

/** Edits manifest.json in place. */
export async function editManifest(shards: string, edit: (manifest: Record<string, any>) => void): Promise<void> {
  const file = path.join(shards, 'manifest.json')
  const manifest = JSON.parse(await readFile(file, 'utf8'))
  edit(manifest)
  await writeFile(file, JSON.stringify(manifest, null, 2))
}
