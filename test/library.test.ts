import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  collectPairs, loadEmbeddingMatrix, buildPool, writeExclusions, EXCLUDE_WIDTH,
  createExactSearcher, scoreCeiling, dotRows, selectNegatives, writeShards, readShards, mineNegatives,
  type MinedRow, type FalseNegativeRules, type SelectOptions,
} from '../src/index.js'
import { tempDir } from './_helpers.js'

const SNLI = path.resolve(import.meta.dirname, '..', 'fixtures', 'snli')

describe('the stage-by-stage pipeline in docs/library.md', () => {
  it('gives the same rows as mineNegatives', async () => {
    const dir = await tempDir()
    const rules: FalseNegativeRules = { threshold: 0.1 }
    const select: SelectOptions = { k: 8, sampling: 'top', seed: 0, pad: 'repeat' }
    const pairs = await collectPairs({ file: path.join(SNLI, 'snli-test-triplets.csv'), preset: 'simcse' })
    const queries = await loadEmbeddingMatrix({ file: path.join(SNLI, 'snli-test-sent0.use512.f16.npy') })
    const positives = await loadEmbeddingMatrix({ file: path.join(SNLI, 'snli-test-sent1.use512.f16.npy') })
    const pool = buildPool('', pairs)
    const poolVectors = await loadEmbeddingMatrix({ file: path.join(SNLI, 'snli-test-sent1.use512.f16.npy'), rows: pool.entries.map((e) => e.row) })
    const searcher = await createExactSearcher({ pool: poolVectors, keep: select.k })
    async function* mined(): AsyncGenerator<MinedRow> {
      const dim = queries.dim
      try {
        for (let start = 0; start < pairs.length; start += 256) {
          const rows = Math.min(256, pairs.length - start)
          const caps = new Float32Array(rows)
          const exclude = new Int32Array(rows * EXCLUDE_WIDTH)
          const posScores: number[] = []
          for (let i = 0; i < rows; i++) {
            posScores.push(dotRows(queries.data, start + i, positives.data, start + i, dim))
            caps[i] = scoreCeiling(posScores[i]!, rules)
            writeExclusions(pool, pairs[start + i]!, exclude, i * EXCLUDE_WIDTH)
          }
          const results = await searcher.search({
            rows, dim, caps, exclude, excludeWidth: EXCLUDE_WIDTH,
            queries: queries.data.subarray(start * dim, (start + rows) * dim),
          })
          for (let i = 0; i < rows; i++) {
            const pair = pairs[start + i]!
            const r = results[i]!
            const { picks, outcome } = selectNegatives(r.index.length, pair.row, select)
            if (outcome === 'dropped') continue
            const chosen = picks.map((p) => pool.entries[r.index[p]!]!)
            yield {
              id: pair.id, query: pair.query, positive: pair.positive, group: pair.group,
              posScore: posScores[i]!, negatives: chosen.map((c) => c.text), negIds: chosen.map((c) => c.id),
              negScores: picks.map((p) => r.score[p]!), nValid: new Set(picks).size,
              nFalseNegatives: r.removed, carried: pair.carried,
            }
          }
        }
      } finally {
        await searcher.close()
      }
    }
    const shards = await writeShards(mined(), { dir: path.join(dir, 'stages'), carriedColumns: [{ name: 'orig_hard_neg', type: 'string' }] })
    const { manifest } = await mineNegatives({
      pairs: path.join(SNLI, 'snli-test-triplets.csv'), preset: 'simcse', search: 'exact',
      queryEmbeddings: path.join(SNLI, 'snli-test-sent0.use512.f16.npy'),
      positiveEmbeddings: path.join(SNLI, 'snli-test-sent1.use512.f16.npy'),
      out: path.join(dir, 'job'),
    })
    expect(shards.map((s) => s.sha256)).toEqual(manifest.shards.map((s) => s.sha256))
    let n = 0
    for await (const r of readShards(path.join(dir, 'stages'))) {
      expect(r.negatives).not.toContain(r.positive)
      n++
    }
    expect(n).toBe(2921)
  })
})
