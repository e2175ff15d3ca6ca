import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { describe, expect, it } from 'vitest'
import { mineNegatives, readShards, type MineOptions, type ShardRow } from '../src/index.js'
import { at, randomUnit, tempDir, writeCsv, writeNpy } from './_helpers.js'

/** Query and positive angles (degrees) of six pairs on the unit circle; pair i's texts are `q{i}`, `p{i}`. */
const ANGLES: [number, number][] = [[0, 60], [200, 20], [250, 45], [300, 100], [10, 120], [90, 200]]

async function circle(dir: string): Promise<Pick<MineOptions, 'pairs' | 'queryEmbeddings' | 'positiveEmbeddings'>> {
  const files = { pairs: path.join(dir, 'pairs.csv'), queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy') }
  await writeCsv(files.pairs, ['query', 'positive'], ANGLES.map((_, i) => [`q${i}`, `p${i}`]))
  await writeNpy(files.queryEmbeddings, ANGLES.map(([q]) => at(q)))
  await writeNpy(files.positiveEmbeddings, ANGLES.map(([, p]) => at(p)))
  return files
}

async function firstRow(out: string): Promise<ShardRow> {
  for await (const row of readShards(out)) return row
  throw new Error('no rows')
}

const cosDeg = (a: number, b: number): number => Math.fround(Math.cos(((a - b) * Math.PI) / 180))

describe('--keep-filtered', () => {
  // Row 0: q0 at 0 deg, its positive p0 at 60 deg (pos 0.5). p1 at 20 deg scores 0.94,
  // p2 at 45 deg 0.71; p2 is 15 deg from the positive; q4 (owner of p4) is 10 deg from q0.
  it.each<[string, Partial<MineOptions>, [string, string][]]>([
    ['the margin rule', { threshold: 0.1 }, [['p1', 'margin'], ['p2', 'margin']]],
    ['an absolute cap under a wide margin', { threshold: 0.5, maxScore: 0.8 }, [['p1', 'max_score']]],
    ['the relative margin under a wide margin', { threshold: 0.5, relativeMargin: 0.5 }, [['p1', 'relative_margin'], ['p2', 'relative_margin']]],
    ['near-duplicates of the positive', { threshold: 2, posSim: 0.9 }, [['p2', 'pos_sim']]],
    ['similar queries', { threshold: 2, querySim: 0.9 }, [['p4', 'query_sim']]],
    ['the first rule in order when two remove a candidate', { threshold: 0.1, posSim: 0.9 }, [['p1', 'margin'], ['p2', 'margin']]],
  ])('names %s', async (_, rules, want) => {
    for (const search of ['exact', 'hnsw'] as const) {
      const dir = await tempDir()
      await mineNegatives({ ...(await circle(dir)), out: path.join(dir, 'out'), k: 2, keepFiltered: 3, search, ...rules })
      const row = await firstRow(path.join(dir, 'out'))
      expect(row.filtered?.map((f) => [f.text, f.rule])).toEqual(want)
      expect(row.filtered?.map((f) => f.id)).toEqual(want.map(([text]) => text.slice(1)))
      expect(row.filtered?.length).toBeLessThanOrEqual(row.nFalseNegatives)
      const angle = (text: string): number => ANGLES[Number(text.slice(1))]![1]
      expect(row.filtered?.map((f) => f.score)).toEqual(want.map(([text]) => expect.closeTo(cosDeg(0, angle(text)), 6)))
      expect(row.extra).toEqual({})
    }
  })

  it('keeps at most N per row, highest score first, and never the own positive or query', async () => {
    const dir = await tempDir()
    await mineNegatives({ ...(await circle(dir)), out: path.join(dir, 'out'), k: 2, keepFiltered: 1, search: 'exact' })
    const rows: ShardRow[] = []
    for await (const r of readShards(path.join(dir, 'out'))) rows.push(r)
    expect(rows[0]!.filtered).toEqual([{ text: 'p1', id: '1', score: expect.closeTo(cosDeg(0, 20), 6), rule: 'margin' }])
    for (const r of rows) {
      expect(r.filtered!.length).toBe(Math.min(1, r.nFalseNegatives))
      for (const f of r.filtered!) expect([r.positive, r.query]).not.toContain(f.text)
    }
  })

  it('writes filtered_* list columns that DuckDB reads, and records keepFiltered in the manifest', async () => {
    const dir = await tempDir()
    const n = 400
    await writeCsv(path.join(dir, 'pairs.csv'), ['query', 'positive'], Array.from({ length: n }, (_, i) => [`q${i}`, `p${i}`]))
    await writeNpy(path.join(dir, 'q.npy'), randomUnit(n, 16, 5, 8))
    await writeNpy(path.join(dir, 'p.npy'), randomUnit(n, 16, 6, 8))
    const base = { pairs: path.join(dir, 'pairs.csv'), queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy'), search: 'exact' as const }
    const on = await mineNegatives({ ...base, out: path.join(dir, 'on'), keepFiltered: 4 })
    const off = await mineNegatives({ ...base, out: path.join(dir, 'off'), keepFiltered: 0 })
    const plain = await mineNegatives({ ...base, out: path.join(dir, 'plain') })
    expect(on.manifest.options.keepFiltered).toBe(4)
    expect(off.manifest.options.keepFiltered).toBe(0)
    expect(JSON.parse(await readFile(path.join(dir, 'plain', 'manifest.json'), 'utf8')).options.keepFiltered).toBe(0)
    // Off is the shard layout without the option, byte for byte.
    expect(off.manifest.shards.map((s) => s.sha256)).toEqual(plain.manifest.shards.map((s) => s.sha256))

    const instance = await DuckDBInstance.create(':memory:')
    const connection = await instance.connect()
    try {
      const read = async (sql: string) => (await connection.runAndReadAll(sql)).getRowObjectsJS()
      const types = Object.fromEntries((await read(`DESCRIBE SELECT * FROM read_parquet('${dir}/on/*.parquet')`)).map((r) => [r.column_name, r.column_type]))
      expect(types).toMatchObject({ filtered_texts: 'VARCHAR[]', filtered_ids: 'VARCHAR[]', filtered_scores: 'FLOAT[]', filtered_rules: 'VARCHAR[]' })
      expect(Object.keys(types).slice(-4)).toEqual(['filtered_texts', 'filtered_ids', 'filtered_scores', 'filtered_rules'])
      const offTypes = (await read(`DESCRIBE SELECT * FROM read_parquet('${dir}/off/*.parquet')`)).map((r) => r.column_name)
      expect(offTypes.filter((c) => String(c).startsWith('filtered'))).toEqual([])
      const [stats] = await read(
        `SELECT count(*)::INT AS n,
                sum(CASE WHEN len(filtered_texts) = least(4, n_false_negatives) THEN 1 ELSE 0 END)::INT AS sized,
                sum(CASE WHEN len(filtered_scores) = len(filtered_texts) AND len(filtered_rules) = len(filtered_texts) THEN 1 ELSE 0 END)::INT AS parallel,
                sum(CASE WHEN n_false_negatives > 0 THEN 1 ELSE 0 END)::INT AS with_fn,
                min(list_min(filtered_scores) - pos_score)::DOUBLE AS closest
         FROM read_parquet('${dir}/on/*.parquet')`,
      )
      expect(stats).toMatchObject({ n, sized: n, parallel: n })
      expect(stats!.with_fn as number).toBeGreaterThan(20)
      expect(stats!.closest as number).toBeGreaterThan(0.1)
    } finally {
      connection.closeSync()
      instance.closeSync()
    }
  })

  it('rejects a negative count', async () => {
    const dir = await tempDir()
    await expect(mineNegatives({ ...(await circle(dir)), out: path.join(dir, 'out'), keepFiltered: -1 })).rejects.toThrow(
      'keepFiltered: -1, expected an integer >= 0',
    )
  })
})
