import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { mergeParts, mineNegatives, mineWorkerPart, type MineOptions } from '../src/index.js'
import { tempDir } from './_helpers.js'

const snli = path.resolve('fixtures/snli')
const base = {
  pairs: path.join(snli, 'snli-test-triplets.csv'),
  preset: 'simcse',
  queryEmbeddings: path.join(snli, 'snli-test-sent0.use512.f16.npy'),
  positiveEmbeddings: path.join(snli, 'snli-test-sent1.use512.f16.npy'),
  threads: 1,
} satisfies Partial<MineOptions>

async function files(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {}
  for (const n of (await readdir(dir)).sort()) if (/^part-/.test(n)) out[n] = await readFile(path.join(dir, n))
  return out
}

describe('scale-out', () => {
  it('4 workers + merge = one process', async () => {
    const dir = await tempDir()
    const one = path.join(dir, 'one')
    const many = path.join(dir, 'many')
    const opts = { ...base, shardRows: 1000 }
    const ref = await mineNegatives({ ...opts, out: one })
    for (let i = 0; i < 4; i++) await mineWorkerPart({ ...opts, out: many }, { index: i, count: 4, poolParts: 1, engine: 'flags', source: 'test' })
    const merged = await mergeParts({ out: many })
    expect(await files(many)).toEqual(await files(one))
    const strip = (m: any) => ({ ...m, createdAt: 0, timings: 0 })
    expect(strip(merged.manifest)).toEqual(strip(ref.manifest))
  })
})
