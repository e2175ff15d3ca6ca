/**
 * The two exact kernels side by side in one process: the same query batches against the
 * same pool, fp32 and int8 alternating batch by batch, so that other work on a shared
 * machine slows both alike. Reports each kernel's rate (GFLOP/s, GOP/s for int8: the same
 * operation count), the int8 kernel's set-up, its rescoring per query, and how the two
 * kernels' results agree. Prints numbers; never fails on time.
 *
 * `node dist/bench/kernels.js [--rows 273000] [--queries 2048] [--query-block-rows 512] [--threads N]`
 * (the data is bench/generate.ts's, generated when missing; the pool is every positive,
 * each query's own positive left out, the ceiling pos + 0.1, k = 8).
 */
import os from 'node:os'
import { parseArgs } from 'node:util'
import { createExactSearcher, dotRows, loadEmbeddingMatrix, scoreCeiling, type QueryBatch, type SearchResult } from '../src/index.js'
import { generateDataset } from './generate.js'

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '273000' },
      queries: { type: 'string', default: '2048' },
      'query-block-rows': { type: 'string', default: '512' },
      threads: { type: 'string' },
    },
  })
  const rows = Number(values.rows)
  const nq = Math.min(rows, Number(values.queries))
  const block = Number(values['query-block-rows'])
  const threads = values.threads !== undefined ? { threads: Number(values.threads) } : {}
  const ds = await generateDataset({ rows, log })
  const queries = await loadEmbeddingMatrix({ file: ds.queries, rows: Array.from({ length: nq }, (_, i) => i) })
  const pool = await loadEmbeddingMatrix({ file: ds.positives })
  const dim = pool.dim
  log(`pool ${rows} x ${dim}, ${nq} queries in blocks of ${block}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`)

  let t = performance.now()
  const fp32 = await createExactSearcher({ pool, keep: 8, kernel: 'fp32', ...threads })
  const fp32Setup = (performance.now() - t) / 1000
  t = performance.now()
  const int8 = await createExactSearcher({ pool, keep: 8, kernel: 'int8', ...threads })
  const int8Setup = (performance.now() - t) / 1000
  log(`set-up: fp32 ${fp32Setup.toFixed(2)} s, int8 ${int8Setup.toFixed(2)} s (quantise, order and pack the pool)`)

  const seconds = { fp32: 0, int8: 0 }
  const cpu = { fp32: 0, int8: 0 }
  let rowsDiffering = 0
  let countsDiffering = 0
  let maxScoreDiff = 0
  for (let start = 0; start < nq; start += block) {
    const n = Math.min(block, nq - start)
    const batch = batchOf(queries.data, pool.data, start, n, dim)
    const out: Record<'fp32' | 'int8', SearchResult[]> = { fp32: [], int8: [] }
    for (const [name, searcher] of [['fp32', fp32], ['int8', int8]] as const) {
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      out[name] = await searcher.search(batch)
      seconds[name] += (performance.now() - t0) / 1000
      const c = process.cpuUsage(c0)
      cpu[name] += (c.user + c.system) / 1e6
    }
    for (let i = 0; i < n; i++) {
      const a = out.fp32[i] as SearchResult
      const b = out.int8[i] as SearchResult
      if (a.removed !== b.removed) countsDiffering++
      if (Array.from(a.index).join() !== Array.from(b.index).join()) rowsDiffering++
      a.score.forEach((s, j) => {
        if (a.index[j] === b.index[j]) maxScoreDiff = Math.max(maxScoreDiff, Math.abs(s - (b.score[j] as number)))
      })
    }
    const ops = 2 * (start + n) * rows * dim
    log(`${start + n} queries: fp32 ${(ops / seconds.fp32 / 1e9).toFixed(1)} GFLOP/s, int8 ${(ops / seconds.int8 / 1e9).toFixed(1)} GOP/s ` +
      `(${(seconds.fp32 / seconds.int8).toFixed(2)}x); load ${os.loadavg()[0]?.toFixed(2)}`)
  }
  const counts = int8.rescoreCounts?.()
  await fp32.close()
  await int8.close()
  const ops = 2 * nq * rows * dim
  const stat = (xs: number[]): string => {
    const s = Float64Array.from(xs).sort()
    return `mean ${(s.reduce((a, b) => a + b, 0) / s.length).toFixed(1)}, p99 ${s[Math.floor(0.99 * (s.length - 1))]}, max ${s[s.length - 1]}`
  }
  console.log([
    `| kernel | search (s) | CPU (s) | G(FL)OP/s | set-up (s) |`,
    `|---|---:|---:|---:|---:|`,
    `| fp32 | ${seconds.fp32.toFixed(1)} | ${cpu.fp32.toFixed(1)} | ${(ops / seconds.fp32 / 1e9).toFixed(1)} | ${fp32Setup.toFixed(2)} |`,
    `| int8 | ${seconds.int8.toFixed(1)} | ${cpu.int8.toFixed(1)} | ${(ops / seconds.int8 / 1e9).toFixed(1)} | ${int8Setup.toFixed(2)} |`,
    '',
    `${rows.toLocaleString('en-US')} x ${dim} pool, ${nq} queries; int8 over fp32 ${(seconds.fp32 / seconds.int8).toFixed(2)}x (search), ` +
      `${((seconds.fp32) / (seconds.int8 + int8Setup * (nq / rows))).toFixed(2)}x with the set-up shared over the ${rows.toLocaleString('en-US')} queries of a full run. ` +
      `int8 rescored per query: ${stat(counts?.rescored ?? [])}; ceiling band: ${stat(counts?.ceilingBand ?? [])}. ` +
      `Rows whose top 8 differ: ${rowsDiffering}; whose false-negative counts differ: ${countsDiffering}; max |score diff| ${maxScoreDiff.toExponential(2)}. ` +
      `Load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}.`,
  ].join('\n'))
}

/** Queries start..start+n against the whole pool: own positive left out, ceiling pos + 0.1. */
function batchOf(queries: Float32Array, positives: Float32Array, start: number, n: number, dim: number): QueryBatch {
  const caps = new Float32Array(n)
  const exclude = new Int32Array(n * 2).fill(-1)
  for (let i = 0; i < n; i++) {
    caps[i] = scoreCeiling(dotRows(queries, start + i, positives, start + i, dim), { threshold: 0.1 })
    exclude[2 * i] = start + i
  }
  return { rows: n, dim, queries: queries.subarray(start * dim, (start + n) * dim), caps, exclude, excludeWidth: 2 }
}

function log(line: string): void {
  process.stderr.write(`[kernels ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

await main()
