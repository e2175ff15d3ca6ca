/**
 * Sibling positives on real captions: each of coco-mini's 80 images gives a query (its
 * first caption) on two rows with different labeled positives (its second and third
 * captions), embedded with USE lite (the fixture model, in-process). Mined twice in one
 * invocation: once with the two rows' queries made distinct (what happened before sibling
 * exclusion: each row's pool holds its sibling's positive), once as they are. Counts the
 * rows whose negatives hold the query's other labeled positive, and at which rank.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/siblings.js
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { mineNegatives, readShards, type MinedRow } from '../src/index.js'
import { loadUse } from '../test/_model-server.js'
import { npyHeader } from './generate.js'

const ROOT = path.resolve(import.meta.dirname, '..', '..')

interface Image { caps: string[] }

async function writeNpy(file: string, m: { rows: number; dim: number; data: Float32Array }): Promise<void> {
  await writeFile(file, Buffer.concat([npyHeader('<f4', m.rows, m.dim), Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength)]))
}

async function writeCsv(file: string, header: string[], rows: string[][]): Promise<void> {
  const q = (v: string): string => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)
  await writeFile(file, [header, ...rows].map((r) => r.map(q).join(',')).join('\n') + '\n')
}

async function main(): Promise<void> {
  const images = JSON.parse(await readFile(path.join(ROOT, 'fixtures', 'coco-mini', 'captions.json'), 'utf8')) as Image[]
  const rows = images.flatMap((im) => [[im.caps[0]!, im.caps[1]!], [im.caps[0]!, im.caps[2]!]])
  const embed = await loadUse()
  const q = await embed(rows.map((r) => r[0]!))
  const p = await embed(rows.map((r) => r[1]!))
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hardneg-siblings-'))
  const matrix = (vs: Float32Array[]) => ({ rows: vs.length, dim: vs[0]!.length, data: Float32Array.from(vs.flatMap((v) => Array.from(v))) })
  await writeNpy(path.join(dir, 'q.npy'), matrix(q))
  await writeNpy(path.join(dir, 'p.npy'), matrix(p))
  try {
    console.log(`coco-mini: ${images.length} images, ${rows.length} rows (each query caption on two rows with two other captions of its image), USE lite 512-d, k 8, beta 0.1, exact`)
    for (const [name, distinct] of [['before (queries made distinct: no siblings)', true], ['with sibling exclusion', false]] as const) {
      await writeCsv(path.join(dir, 'pairs.csv'), ['query', 'positive'], rows.map((r, i) => [distinct ? `${r[0]} #${i}` : r[0]!, r[1]!]))
      const out = path.join(dir, distinct ? 'before' : 'after')
      const { summary } = await mineNegatives({ pairs: path.join(dir, 'pairs.csv'), queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy'), out, k: 8, search: 'exact' })
      const mined: MinedRow[] = []
      for await (const r of readShards(out)) mined.push(r)
      let served = 0
      let first = 0
      mined.forEach((r, i) => {
        const sibling = rows[i % 2 === 0 ? i + 1 : i - 1]![1]!
        const at = r.negatives.indexOf(sibling)
        if (at >= 0) served++
        if (at === 0) first++
      })
      console.log(`${name}: sibling positive served in ${served} of ${mined.length} rows (${((100 * served) / mined.length).toFixed(1)} %), at rank 1 in ${first}; multi-positive queries ${summary.multiPositiveQueries}, sibling positives left out ${summary.siblingPositivesExcluded}`)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
