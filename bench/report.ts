/**
 * `hardneg report` at scale: wall time, rows/s, peak RSS and page size.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/report.js [--rows 935000] [--samples 100] [--shards DIR]
 *
 * Without --shards, writes a synthetic shard set of `--rows` rows first (into
 * bench/out/report-r{rows}/, reused when present): four groups, k = 8 negatives, and the
 * `--keep-filtered 4` columns (0-6 removals per row, up to 4 stored), NLI-length texts,
 * shards of 100,000 rows in row groups of 10,000, as mining writes them. No mining runs,
 * so this measures the report alone. With --shards, reports on an existing run instead
 * (e.g. a copy of the 273k benchmark's exact run). The report runs as a child process
 * (`node bin/hardneg.js report`), measured like the mining benchmark (bench/_measure.ts).
 */
import { existsSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { mulberry32 } from '../src/random.js'
import { writeManifest, type Manifest } from '../src/output/manifest.js'
import { FILTERED_COLUMNS, writeShards } from '../src/output/shards.js'
import type { MinedRow } from '../src/types.js'
import { emptyGroupCounts } from '../src/mine/stats.js'
import { runMeasured } from './_measure.js'

function flag(name: string, fallback: string): string {
  const args = process.argv.slice(2)
  const at = args.indexOf(name)
  return (at >= 0 ? args[at + 1] : undefined) ?? fallback
}

const WORDS = ['man', 'woman', 'dog', 'street', 'playing', 'guitar', 'field', 'children', 'red', 'shirt', 'standing', 'near', 'water', 'a', 'the', 'is', 'on', 'with']

function sentence(next: () => number, words: number): string {
  return Array.from({ length: words }, () => WORDS[Math.floor(next() * WORDS.length)]).join(' ')
}

/** Synthetic mined rows: pos scores around 0.7, negatives below the ceiling, filtered above it. */
async function* syntheticRows(rows: number): AsyncGenerator<MinedRow> {
  const next = mulberry32(7)
  for (let i = 0; i < rows; i++) {
    const posScore = Math.fround(0.35 + 0.6 * next())
    const ceiling = posScore + 0.1
    const negScores = Array.from({ length: 8 }, () => Math.fround(ceiling - 0.4 * next() ** 2)).sort((a, b) => b - a)
    const removed = Math.floor(next() * 7)
    const filtered = Array.from({ length: Math.min(4, removed) }, () => Math.fround(Math.min(1, ceiling + 0.3 * next())))
      .sort((a, b) => b - a)
      .map((score, j) => ({ text: `${sentence(next, 9)} ${i}.${j}`, id: String((i * 7 + j) % rows), score, rule: 'margin' }))
    yield {
      id: String(i),
      query: `${sentence(next, 14)} ${i}`,
      positive: `${sentence(next, 8)} ${i}`,
      group: `g${i % 4}`,
      posScore,
      negatives: negScores.map((_, j) => `${sentence(next, 9)} ${i}.${j}`),
      negIds: negScores.map((_, j) => String((i * 13 + j) % rows)),
      negScores,
      nValid: 8,
      nFalseNegatives: removed,
      filtered,
      carried: {},
    }
  }
}

async function synthesize(dir: string, rows: number): Promise<void> {
  const t0 = performance.now()
  const shards = await writeShards(syntheticRows(rows), { dir, carriedColumns: [], extraColumns: FILTERED_COLUMNS, shardRows: 100_000 })
  const empty = emptyGroupCounts()
  const groups = Object.fromEntries([0, 1, 2, 3].map((g) => [`g${g}`, { ...empty, rowsIn: Math.ceil((rows - g) / 4), rowsOut: Math.ceil((rows - g) / 4) }]))
  const none = { count: 0, mean: null, p1: null, p5: null, p25: null, p50: null, p75: null, p95: null, p99: null }
  const manifest: Manifest = {
    tool: { name: 'hardneg', version: 'bench' },
    createdAt: new Date().toISOString(),
    inputs: [],
    options: { k: 8, threshold: 0.1, keepFiltered: 4, synthetic: true },
    search: { method: 'exact', falseNegativeCounts: 'whole-pool' },
    rows: { in: rows, out: rows },
    shards,
    counts: { ...empty, rowsIn: rows, rowsOut: rows, falseNegativeQueryShare: 0 },
    groups,
    scores: { positive: none, negative: none },
    timings: {},
  }
  await writeManifest(dir, manifest)
  console.error(`wrote ${rows.toLocaleString('en-US')} synthetic rows in ${shards.length} shards in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

async function main(): Promise<void> {
  const rows = Number(flag('--rows', '935000'))
  const samples = flag('--samples', '100')
  let dir = flag('--shards', '')
  if (dir === '') {
    dir = path.resolve('bench', 'out', `report-r${rows}`)
    if (!existsSync(path.join(dir, 'manifest.json'))) await synthesize(dir, rows)
  }
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest
  const shardBytes = manifest.shards.reduce((n, s) => n + s.bytes, 0)
  const out = path.join(dir, 'report.html')
  const run = await runMeasured(process.execPath, ['bin/hardneg.js', 'report', '--shards', dir, '--out', out, '--samples', samples])
  if (run.code !== 0) throw new Error(`report exited ${run.code}: ${run.stderr}`)
  const page = (await stat(out)).size
  const n = manifest.rows.out
  console.log('| run | rows | shards (MB) | wall (s) | rows/s | peak RSS (MiB) | page (MB) |')
  console.log('|---|---|---|---|---|---|---|')
  console.log(
    `| ${path.basename(dir)}, --samples ${samples} | ${n.toLocaleString('en-US')} | ${(shardBytes / 1e6).toFixed(0)} | ${run.wallSeconds.toFixed(1)} | ` +
      `${Math.round(n / run.wallSeconds).toLocaleString('en-US')} | ${(run.peakRssBytes / 2 ** 20).toFixed(0)} (${run.rssSource}) | ${(page / 1e6).toFixed(2)} |`,
  )
}

await main()
