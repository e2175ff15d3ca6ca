/**
 * Scale-out on one machine: the 273k benchmark (bench/generate.ts) mined by N workers at
 * once (`mine-negatives ... --worker-index I --worker-count N`, one thread each, as N
 * array tasks on N cores would), then `hardneg merge`; the merge's wall time and peak RSS,
 * each worker's, and the total against a single run. With --single, the single exact run
 * is made in the same invocation (same flags, all cores); else docs/benchmarks.md's figure
 * is the baseline. Checks that the merged shards equal the single run's when both exist.
 * Prints numbers, writes bench/out/scale.json; never fails on time.
 *
 *   npm run build && node dist/bench/scale.js [--rows 273000] [--dim 1024] [--workers 2] [--pool-parts 1] [--single]
 */
import { readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { readManifest } from '../src/index.js'
import { runMeasured, type Measured } from './_measure.js'
import { generateDataset } from './generate.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const OUT = path.join(REPO, 'bench', 'out')

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '273000' },
      dim: { type: 'string', default: '1024' },
      workers: { type: 'string', default: '2' },
      'pool-parts': { type: 'string', default: '1' },
      single: { type: 'boolean', default: false },
    },
  })
  const rows = Number(values.rows)
  const workers = Number(values.workers)
  const poolParts = Number(values['pool-parts'])
  const log = (line: string): void => console.error(`[scale ${new Date().toISOString().slice(11, 19)}] ${line}`)
  const ds = await generateDataset({ rows, dim: Number(values.dim) })
  log(`data: ${ds.dir} (${ds.rows} x ${ds.dim}${ds.generated ? `, generated in ${ds.seconds.toFixed(1)} s` : ''})`)
  await mkdir(OUT, { recursive: true })
  const common = [
    path.join(REPO, 'bin', 'mine-negatives.js'),
    '--pairs', ds.pairs, '--preset', 'simcse', '--query-embeddings', ds.queries, '--positive-embeddings', ds.positives,
    '--search', 'exact', '--k', '8', '--threshold', '0.1', '--quiet',
  ]
  const cpu = [...new Set(os.cpus().map((c) => c.model))].join(', ')
  const load = (): number[] => os.loadavg().map((x) => Number(x.toFixed(2)))

  let single: (Measured & { load: number[][] }) | undefined
  const singleOut = path.join(OUT, 'scale-single')
  if (values.single) {
    const before = load()
    log('single run: all cores')
    const m = await runMeasured(process.execPath, [...common, '--out', singleOut, '--overwrite'], { cwd: REPO })
    single = { ...m, load: [before, load()] }
    log(`single: ${m.wallSeconds.toFixed(1)} s, peak ${(m.peakRssBytes / 2 ** 30).toFixed(2)} GiB, exit ${m.code}`)
  }

  const out = path.join(OUT, 'scale')
  await rm(out, { recursive: true, force: true })
  const before = load()
  log(`${workers} workers at once, 1 thread each${poolParts > 1 ? `, ${poolParts} pool parts` : ''}`)
  const t0 = performance.now()
  const parts = await Promise.all(
    Array.from({ length: workers }, (_, i) =>
      runMeasured(process.execPath, [...common, '--out', out, '--threads', '1', '--worker-index', String(i), '--worker-count', String(workers), '--pool-parts', String(poolParts)], { cwd: REPO }),
    ),
  )
  const workersWall = (performance.now() - t0) / 1000
  for (const [i, p] of parts.entries()) log(`worker ${i}: ${p.wallSeconds.toFixed(1)} s, peak ${(p.peakRssBytes / 2 ** 30).toFixed(2)} GiB, exit ${p.code}${p.code !== 0 ? `\n${p.stderr}` : ''}`)
  const afterWorkers = load()
  const merge = await runMeasured(process.execPath, [path.join(REPO, 'bin', 'hardneg.js'), 'merge', '--out', out, '--quiet'], { cwd: REPO })
  log(`merge: ${merge.wallSeconds.toFixed(1)} s, peak ${(merge.peakRssBytes / 2 ** 30).toFixed(2)} GiB, exit ${merge.code}${merge.code !== 0 ? `\n${merge.stderr}` : ''}`)
  const total = workersWall + merge.wallSeconds

  let identical: boolean | undefined
  if (single?.code === 0 && merge.code === 0) {
    const a = await readManifest(singleOut)
    const b = await readManifest(out)
    identical = JSON.stringify(a.shards) === JSON.stringify(b.shards)
    log(`merged shards ${identical ? 'are' : 'are NOT'} byte-identical to the single run's (sha256 per shard)`)
  }
  const partBytes = merge.code === 0 ? (await readManifest(out)).shards.reduce((n, s) => n + s.bytes, 0) : 0
  const result = {
    machine: { cpu, cores: os.availableParallelism(), memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)), flags: await cpuFlags() },
    rows, dim: ds.dim, workers, poolParts,
    loadAverage: { before, afterWorkers, afterMerge: load() },
    workers_: parts.map((p) => ({ wallSeconds: p.wallSeconds, peakRssBytes: p.peakRssBytes, code: p.code })),
    workersWallSeconds: workersWall,
    merge: { wallSeconds: merge.wallSeconds, peakRssBytes: merge.peakRssBytes, code: merge.code, shardBytes: partBytes },
    totalSeconds: total,
    ...(single ? { single: { wallSeconds: single.wallSeconds, peakRssBytes: single.peakRssBytes, code: single.code, load: single.load } } : {}),
    ...(identical !== undefined ? { identical } : {}),
  }
  await writeFile(path.join(OUT, 'scale.json'), JSON.stringify(result, null, 2) + '\n')
  console.log(JSON.stringify(result, null, 2))
  console.log(
    `\n| run | wall | peak RSS |\n|---|---|---|\n` +
      parts.map((p, i) => `| worker ${i} (1 thread) | ${(p.wallSeconds / 60).toFixed(1)} min | ${(p.peakRssBytes / 2 ** 30).toFixed(2)} GiB |`).join('\n') +
      `\n| merge | ${merge.wallSeconds.toFixed(1)} s | ${(merge.peakRssBytes / 2 ** 30).toFixed(2)} GiB |\n| total (workers at once + merge) | ${(total / 60).toFixed(1)} min | |` +
      (single ? `\n| single run (all cores) | ${(single.wallSeconds / 60).toFixed(1)} min | ${(single.peakRssBytes / 2 ** 30).toFixed(2)} GiB |` : ''),
  )
}

async function cpuFlags(): Promise<string[]> {
  const text = await readFile('/proc/cpuinfo', 'utf8').catch(() => '')
  return [...new Set(text.match(/avx512[a-z_]*|avx_vnni|avx2/g) ?? [])].sort()
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
