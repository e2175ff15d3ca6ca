/**
 * Inputs and checks the scale-out tests share: SNLI cut to a size that mines in a
 * second, with groups, sibling queries and a corpus; and the comparison of a distributed
 * run's merged output with a one-process run's, byte for byte.
 */
import { readFile, readdir, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { expect } from 'vitest'
import type { Manifest } from '../src/index.js'
import { writeCsv } from './_helpers.js'

export const SNLI = path.join(import.meta.dirname, '..', 'fixtures', 'snli')
export const SNLI_FULL = {
  pairs: path.join(SNLI, 'snli-test-triplets.csv'),
  preset: 'simcse' as const,
  queryEmbeddings: path.join(SNLI, 'snli-test-sent0.use512.f16.npy'),
  positiveEmbeddings: path.join(SNLI, 'snli-test-sent1.use512.f16.npy'),
  threads: 1,
}

/** Rows [start, start + rows) of a 2-D .npy, raw (no re-encoding). */
async function sliceNpy(from: string, to: string, rows: number, start = 0): Promise<void> {
  const data = await readFile(from)
  const headerLength = data.readUInt16LE(8)
  const header = data.toString('latin1', 10, 10 + headerLength)
  const m = /'shape': \((\d+), (\d+)\)/.exec(header)
  if (!m) throw new Error(`no shape in ${from}`)
  const dim = Number(m[2])
  const itemBytes = header.includes("'<f2'") ? 2 : 4
  const newHeader = header.replace(/'shape': \(\d+, /, `'shape': (${rows}, `).padEnd(headerLength - 1, ' ') + '\n'
  const head = Buffer.from(data.subarray(0, 10))
  head.writeUInt16LE(newHeader.length, 8)
  await writeFile(to, Buffer.concat([head, Buffer.from(newHeader, 'latin1'), data.subarray(10 + headerLength + start * dim * itemBytes, 10 + headerLength + (start + rows) * dim * itemBytes)]))
}

function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let cell = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++
      else if (c === '"') quoted = false
      else cell += c
    } else if (c === '"') quoted = true
    else if (c === ',') row.push(cell), (cell = '')
    else if (c === '\n') row.push(cell), rows.push(row), (row = []), (cell = '')
    else if (c !== '\r') cell += c
  }
  if (cell !== '' || row.length > 0) row.push(cell), rows.push(row)
  return rows
}

/**
 * SNLI's first `rows` rows in `dir`: columns id, query, positive, group (three groups,
 * interleaved), label (int-like carried column); every 40th row repeats the previous
 * row's query (siblings); a corpus of 300 SNLI hard negatives.
 */
export async function snliSubset(dir: string, rows = 1200) {
  const [, ...body] = parseCsv(await readFile(path.join(SNLI, 'snli-test-triplets.csv'), 'utf8'))
  const cut = body.slice(0, rows)
  const pairs = cut.map((r, i) => [`q${i}`, i % 40 === 1 ? (cut[i - 1]?.[0] as string) : (r[0] as string), r[1] as string, ['alpha', 'beta', 'gamma'][i % 3] as string, String(i % 5)])
  await writeCsv(path.join(dir, 'pairs.csv'), ['id', 'query', 'positive', 'group', 'label'], pairs)
  await sliceNpy(path.join(SNLI, 'snli-test-sent0.use512.f16.npy'), path.join(dir, 'q.npy'), rows)
  await sliceNpy(path.join(SNLI, 'snli-test-sent1.use512.f16.npy'), path.join(dir, 'p.npy'), rows)
  const corpus = body.slice(rows, rows + 300).map((r, i) => [`c${i}`, r[2] as string])
  await writeCsv(path.join(dir, 'corpus.csv'), ['id', 'text'], corpus)
  await sliceNpy(path.join(SNLI, 'snli-test-hard_neg.use512.f16.npy'), path.join(dir, 'corpus.npy'), 300, rows)
  return {
    pairs: path.join(dir, 'pairs.csv'),
    idCol: 'id',
    queryCol: 'query',
    positiveCol: 'positive',
    queryEmbeddings: path.join(dir, 'q.npy'),
    positiveEmbeddings: path.join(dir, 'p.npy'),
    corpus: path.join(dir, 'corpus.csv'),
    corpusEmbeddings: path.join(dir, 'corpus.npy'),
    threads: 1,
  }
}

/** Shard files (part-*) of a directory, by name. */
export async function shardFiles(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {}
  for (const n of (await readdir(dir)).sort()) if (/^part-\d+\./.test(n)) out[n] = await readFile(path.join(dir, n))
  return out
}

/**
 * A manifest as JSON, without what may differ between two runs of the same job: when, how
 * long, what the image cache saved, and with `splitPool` the int8 kernel's rescoring counts
 * (a split pool's are counted per query and pool part).
 */
export async function comparableManifest(dir: string, splitPool = false): Promise<string> {
  const m = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Partial<Manifest> & { images?: Record<string, unknown> }
  delete m.createdAt
  delete m.timings
  if (m.images) for (const k of ['decoded', 'cached', 'cache']) delete m.images[k]
  if (splitPool) delete m.search?.exactKernel?.rescore
  return JSON.stringify(m, null, 2)
}

/** Moves a finished one-process run out of the way, so the distributed run gets the very same `out` (it is in the manifest). */
export async function setAside(out: string, to: string, splitPool = false): Promise<{ shards: Record<string, Buffer>; manifest: string }> {
  await rename(out, to)
  return { shards: await shardFiles(to), manifest: await comparableManifest(to, splitPool) }
}

/** The merged run in `out` is the one-process run `ref`, byte for byte (but for createdAt, timings and image-cache counts). */
export async function expectSameRun(out: string, ref: { shards: Record<string, Buffer>; manifest: string }, splitPool = false): Promise<void> {
  const shards = await shardFiles(out)
  expect(Object.keys(shards)).toEqual(Object.keys(ref.shards))
  for (const [name, bytes] of Object.entries(shards)) expect(bytes.equals(ref.shards[name] as Buffer), name).toBe(true)
  expect(await comparableManifest(out, splitPool)).toBe(ref.manifest)
}
