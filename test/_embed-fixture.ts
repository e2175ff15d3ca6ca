/**
 * Data for the embed tests: a few hundred SNLI texts (with repeated texts, so that "each
 * distinct text once" is visible), the fixture's own USE vectors for the same rows, the
 * model's vectors computed in-process, and a model server answering from that model.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parse } from 'csv-parse/sync'
import type { CliIO } from '../src/cli/main.js'
import { cached, loadUse, startModelServer, type Embedder, type ModelServer, type ModelServerOptions } from './_model-server.js'
import { toHalf, writeCsv } from './_helpers.js'

export const ROOT = path.resolve(import.meta.dirname, '..')
export const SNLI = path.join(ROOT, 'fixtures', 'snli')

/** SNLI rows as the fixture holds them. */
export const snliRows = (parse(readFileSync(path.join(SNLI, 'snli-test-triplets.csv')), { columns: true }) as Record<string, string>[])

/**
 * A pairs table from fixture rows: row k takes sent0 of fixture row `query[k]`, sent1 of
 * fixture row `positive[k]` (and hard_neg of the query's row, for the simcse preset).
 */
export interface SnliSubset {
  query: number[]
  positive: number[]
  rows: { sent0: string; sent1: string; hard_neg: string }[]
}

/** The first `n` fixture rows, then `repeats` rows repeating an earlier query with the positive of a later fixture row. */
export function snliSubset(n: number, repeats: number): SnliSubset {
  const query = Array.from({ length: n }, (_, i) => i)
  const positive = [...query]
  for (let i = 0; i < repeats; i++) {
    query.push(i * 3)
    positive.push(n + i)
  }
  const rows = query.map((q, k) => ({ sent0: snliRows[q]!.sent0!, sent1: snliRows[positive[k]!]!.sent1!, hard_neg: snliRows[q]!.hard_neg! }))
  return { query, positive, rows }
}

export async function writeSubset(file: string, subset: SnliSubset): Promise<void> {
  await writeCsv(file, ['sent0', 'sent1', 'hard_neg'], subset.rows.map((r) => [r.sent0, r.sent1, r.hard_neg]))
}

/** Rows of a float16 .npy as raw half bits. */
export async function halfRows(file: string): Promise<{ rows: number; dim: number; bits: Uint16Array }> {
  const buf = await readFile(file)
  const len = buf.readUInt16LE(8)
  const header = buf.subarray(10, 10 + len).toString('latin1')
  const m = /'shape': \((\d+), (\d+)\)/.exec(header) as RegExpExecArray
  if (!header.includes("'<f2'")) throw new Error(`${file}: not float16: ${header}`)
  const data = buf.subarray(10 + len)
  return { rows: Number(m[1]), dim: Number(m[2]), bits: new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) }
}

/** Rows of a float32 .npy. */
export async function floatRows(file: string): Promise<{ rows: number; dim: number; data: Float32Array }> {
  const buf = await readFile(file)
  const len = buf.readUInt16LE(8)
  const header = buf.subarray(10, 10 + len).toString('latin1')
  const m = /'shape': \((\d+), (\d+)\)/.exec(header) as RegExpExecArray
  if (!header.includes("'<f4'")) throw new Error(`${file}: not float32: ${header}`)
  const data = buf.subarray(10 + len)
  return { rows: Number(m[1]), dim: Number(m[2]), data: new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) }
}

/** float32 vectors as float16 bits, as numpy's astype(float16) gives them. */
export function toHalfBits(vectors: readonly Float32Array[]): Uint16Array {
  const out = new Uint16Array(vectors.length * (vectors[0]?.length ?? 0))
  let k = 0
  for (const v of vectors) for (const x of v) out[k++] = toHalf(x)
  return out
}

/** The model, its in-process vectors of `texts` (one call, batches of 64), and a server answering from the same model. */
export async function modelAndServer(texts: readonly string[], serverOptions: Partial<ModelServerOptions> = {}): Promise<{
  use: Embedder
  reference: Map<string, Float32Array>
  server: ModelServer
}> {
  const use = await loadUse()
  const distinct = [...new Set(texts)]
  const reference = new Map<string, Float32Array>()
  for (let i = 0; i < distinct.length; i += 64) {
    const part = distinct.slice(i, i + 64)
    const vectors = await use(part)
    part.forEach((t, k) => reference.set(t, vectors[k] as Float32Array))
  }
  // The server computes with the same model; texts the tests embedded above are answered
  // from that computation, any other text (an image proxy, a prefixed text) by the model.
  const embed = cached(async (batch) => Promise.all(batch.map(async (t) => reference.get(t) ?? ((await use([t]))[0] as Float32Array))))
  const server = await startModelServer({ embed, ...serverOptions })
  return { use, reference, server }
}

/** CLI output captured. */
export function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), stderrIsTTY: false }
}
