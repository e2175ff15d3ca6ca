/** Test helpers: temp dirs, .npy writers and small dataset builders. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach } from 'vitest'
import { mulberry32 } from '../src/random.js'

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

/** A fresh temporary directory, removed after the test. */
export async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'hardneg-test-'))
  dirs.push(d)
  return d
}

/** float32 -> IEEE half bits (round to nearest even), for writing float16 test files. */
export function toHalf(value: number): number {
  const f = new Float32Array([value])
  const u = new Uint32Array(f.buffer)[0] as number
  const sign = (u >>> 16) & 0x8000
  const exp = (u >>> 23) & 0xff
  let mant = u & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0)
  let e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const mid = 1 << (shift - 1)
    if (rem > mid || (rem === mid && (half & 1))) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++
  return sign | half
}

/** Writes a 2-D C-order .npy (format 1.0) of float32 or float16. */
export async function writeNpy(file: string, rows: number[][] | { rows: number; dim: number; data: Float32Array }, dtype: 'f4' | 'f2' = 'f4'): Promise<void> {
  const m = Array.isArray(rows)
    ? { rows: rows.length, dim: rows[0]?.length ?? 0, data: Float32Array.from(rows.flat()) }
    : rows
  let header = `{'descr': '<${dtype}', 'fortran_order': False, 'shape': (${m.rows}, ${m.dim}), }`
  const pre = 10
  const total = Math.ceil((pre + header.length + 1) / 64) * 64
  header = header + ' '.repeat(total - pre - header.length - 1) + '\n'
  const head = Buffer.alloc(pre)
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0])
  head.writeUInt16LE(header.length, 8)
  let body: Buffer
  if (dtype === 'f4') body = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength)
  else {
    const h = new Uint16Array(m.data.length)
    for (let i = 0; i < m.data.length; i++) h[i] = toHalf(m.data[i] as number)
    body = Buffer.from(h.buffer)
  }
  await writeFile(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]))
}

/** A unit vector in 2-D at `degrees`. */
export function at(degrees: number): number[] {
  const r = (degrees * Math.PI) / 180
  return [Math.cos(r), Math.sin(r)]
}

/** Seeded uniform generator for generated data (the project's own mulberry32). */
export const rng = mulberry32

/** `rows` random unit vectors of `dim`, as a row-major matrix; `clusters` > 0 makes them clump. */
export function randomUnit(rows: number, dim: number, seed: number, clusters = 0): { rows: number; dim: number; data: Float32Array } {
  const r = rng(seed)
  const gauss = (): number => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r())
  const centres = Array.from({ length: clusters }, () => Array.from({ length: dim }, gauss))
  const data = new Float32Array(rows * dim)
  for (let i = 0; i < rows; i++) {
    const c = clusters > 0 ? centres[Math.floor(r() * clusters)] : undefined
    let n = 0
    for (let j = 0; j < dim; j++) {
      const v = (c ? (c[j] as number) * 0.8 : 0) + gauss()
      data[i * dim + j] = v
      n += v * v
    }
    n = Math.sqrt(n)
    for (let j = 0; j < dim; j++) data[i * dim + j] = Math.fround((data[i * dim + j] as number) / n)
  }
  return { rows, dim, data }
}

/** Writes a CSV with a header; values are quoted as RFC 4180 asks. */
export async function writeCsv(file: string, header: string[], rows: string[][]): Promise<void> {
  const q = (v: string): string => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)
  await writeFile(file, [header, ...rows].map((r) => r.map(q).join(',')).join('\n') + '\n')
}

/** The embedded SNLI sample (fixtures/snli) as mining inputs: pairs, preset and the USE-lite vectors. */
export const SNLI_INPUTS = (() => {
  const snli = path.resolve(import.meta.dirname, '..', 'fixtures', 'snli')
  return {
    pairs: path.join(snli, 'snli-test-triplets.csv'),
    preset: 'simcse' as const,
    queryEmbeddings: path.join(snli, 'snli-test-sent0.use512.f16.npy'),
    positiveEmbeddings: path.join(snli, 'snli-test-sent1.use512.f16.npy'),
  }
})()
