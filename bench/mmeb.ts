/**
 * The MMEB-train scale benchmark: 662k synthetic pairs in MMEB-train's 20 subsets (sizes as
 * VLM2Vec samples them, capped at 50k), 1024-d float16 embeddings, one exact pool per
 * subset, mined end to end with `mine-negatives --preset mmeb` with the fp32 and the int8
 * exact kernel, next to the numpy baseline doing the same per-subset exact search in the
 * same run. Then, at a reduced
 * scale (a full-size global exact pool is ~900 TFLOP), the same subsets mined against
 * per-subset pools and against one global pool, to show what a global pool costs and
 * changes. Image hashing is measured apart (bench/images.ts); the pairs here are
 * text-side only. Prints numbers and a markdown table; never fails on time.
 *
 * `node dist/bench/mmeb.js [--scale 1] [--global-scale 0.1] [--int8-kernel auto|int8] [--reuse-fp32] [--skip-int8] [--skip-baseline] [--skip-global] [--python python3]`
 * The second run's `--exact-kernel` is `--int8-kernel`: `auto` (default, what a user gets: int8
 * for subsets of at least 2e12 operations on a CPU with a fast int8 dot product) or `int8` (every subset).
 */
import { mkdir, open, readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { readManifest, readShards, type Manifest } from '../src/index.js'
import { compareTables, readBaseline, readMined } from './_compare.js'
import { runMeasured } from './_measure.js'
import { generateDataset, type Dataset } from './generate.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const OUT = path.join(REPO, 'bench', 'out', 'mmeb')
const CAP = 50_000

/**
 * MMEB-train's 20 training subsets and their full sizes (VLM2Vec, TIGER-Lab/MMEB-train);
 * VLM2Vec samples at most 50k per subset, which gives ~662k pairs.
 */
export const MMEB_SUBSETS: readonly [string, number][] = [
  ['ImageNet_1K', 100_000], ['N24News', 48_988], ['HatefulMemes', 8_500], ['VOC2007', 7_844],
  ['SUN397', 19_850], ['OK-VQA', 9_009], ['A-OKVQA', 17_056], ['DocVQA', 39_463],
  ['InfographicsVQA', 23_946], ['ChartQA', 28_299], ['Visual7W', 69_817], ['VisDial', 123_287],
  ['CIRR', 26_116], ['VisualNews_t2i', 99_903], ['VisualNews_i2t', 100_000], ['MSCOCO_t2i', 100_000],
  ['MSCOCO_i2t', 113_287], ['NIGHTS', 15_941], ['WebQA', 17_166], ['MSCOCO', 100_000],
]

interface Subsets {
  names: string[]
  ranges: [number, number][] // contiguous row ranges, one per subset
  rows: number
}

function subsets(scale: number): Subsets {
  const names: string[] = []
  const ranges: [number, number][] = []
  let start = 0
  for (const [name, size] of MMEB_SUBSETS) {
    const n = Math.max(1, Math.round(Math.min(size, CAP) * scale))
    names.push(name)
    ranges.push([start, start + n])
    start += n
  }
  return { names, ranges, rows: start }
}

/** The MMEB-layout pairs CSV over a generated dataset: qry, pos_text, subset. */
async function writeMmebPairs(ds: Dataset, s: Subsets): Promise<string> {
  const file = path.join(ds.dir, `mmeb-pairs-${s.rows}.csv`)
  const fh = await open(file + '.tmp', 'w')
  try {
    await fh.write('qry,pos_text,subset\n')
    for (const [g, [a, b]] of s.ranges.entries()) {
      let chunk = ''
      for (let i = a; i < b; i++) chunk += `query ${i},positive ${i},${s.names[g]}\n`
      await fh.write(chunk)
    }
  } finally {
    await fh.close()
  }
  const { rename } = await import('node:fs/promises')
  await rename(file + '.tmp', file)
  return file
}

interface Run {
  label: string
  wallSeconds: number
  peakRssBytes: number
  cpuSeconds?: number // user + system CPU seconds (GNU time)
  timings: Record<string, number>
  gflops: number
  tflop: number
  counts: Manifest['counts']
  groups: Manifest['groups']
  loadAverage: number[]
  exactKernel?: Manifest['search']['exactKernel'] // the kernel per group, its reasons, the int8 kernel's rescoring
}

async function mine(label: string, pairs: string, ds: Dataset, s: Subsets, out: string, extra: string[]): Promise<Run> {
  const args = [
    path.join(REPO, 'bin', 'mine-negatives.js'),
    '--preset', 'mmeb', '--pairs', pairs,
    '--query-embeddings', ds.queries, '--positive-embeddings', ds.positives,
    '--out', out, '--overwrite', '--search', 'exact', '--k', '8', '--threshold', '0.1', '--json', ...extra,
  ]
  log(`${label}: node ${args.map((a) => path.relative(REPO, a) || a).join(' ')}`)
  const m = await runMeasured(process.execPath, args, { cwd: REPO, echo: (l) => { if (/100%/.test(l)) log(`  ${label} | ${l}`) } })
  if (m.code !== 0) throw new Error(`${label} failed (${m.code}): ${m.stderr.slice(-2000)}`)
  const manifest = await readManifest(out)
  const global = extra.includes('--global-pool')
  const flop = global ? 2 * s.rows * s.rows * ds.dim : s.ranges.reduce((f, [a, b]) => f + 2 * (b - a) * (b - a) * ds.dim, 0)
  const run: Run = {
    label,
    wallSeconds: m.wallSeconds,
    peakRssBytes: m.peakRssBytes,
    ...(m.cpuSeconds !== undefined ? { cpuSeconds: m.cpuSeconds } : {}),
    timings: manifest.timings,
    gflops: flop / (manifest.timings.search ?? NaN) / 1e9,
    tflop: flop / 1e12,
    counts: manifest.counts,
    groups: manifest.groups,
    loadAverage: os.loadavg(),
    ...(manifest.search.exactKernel ? { exactKernel: manifest.search.exactKernel } : {}),
  }
  log(`${label}: wall ${run.wallSeconds.toFixed(1)} s, CPU ${run.cpuSeconds?.toFixed(1) ?? '-'} s, peak RSS ${gib(run.peakRssBytes)}, search ${run.timings.search?.toFixed(1)} s, ` +
    `${run.gflops.toFixed(1)} GFLOP/s, FalseNeg% ${(100 * run.counts.falseNegativeQueryShare).toFixed(2)}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`)
  return run
}

async function baseline(ds: Dataset, s: Subsets, out: string, python: string): Promise<Record<string, unknown>> {
  const args = [path.join(REPO, 'bench', 'baseline.py'), '--queries', ds.queries, '--positives', ds.positives, '--out', out,
    '--ranges', s.ranges.map(([a, b]) => `${a}:${b}`).join(','), '--label', 'numpy per subset']
  log(`baseline: ${python} ${args.map((a) => path.relative(REPO, a) || a).join(' ')}`)
  const m = await runMeasured(python, args, { cwd: REPO, echo: (l) => log(`  baseline | ${l}`) })
  if (m.code !== 0) throw new Error(`baseline failed (${m.code}): ${m.stderr.slice(-2000)}`)
  const result = JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8')) as Record<string, unknown>
  return { ...result, wallSeconds: m.wallSeconds, cpuSeconds: m.cpuSeconds, peakRssBytesMeasured: m.peakRssBytes, loadAverage: os.loadavg() }
}

/** Share of served negatives (the n_valid distinct ones) that come from another subset than the query's. */
async function crossSubsetShare(out: string, s: Subsets): Promise<number> {
  const subsetOf = (row: number): number => s.ranges.findIndex(([a, b]) => row >= a && row < b)
  let cross = 0
  let total = 0
  for await (const r of readShards(out)) {
    const own = subsetOf(Number(r.id))
    for (let i = 0; i < r.nValid; i++) {
      total++
      if (subsetOf(Number(r.negIds[i])) !== own) cross++
    }
  }
  return total === 0 ? 0 : cross / total
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string', default: '1' },
      'global-scale': { type: 'string', default: '0.1' },
      'skip-baseline': { type: 'boolean', default: false },
      'skip-int8': { type: 'boolean', default: false },
      'reuse-fp32': { type: 'boolean', default: false },
      'int8-kernel': { type: 'string', default: 'auto' },
      'skip-global': { type: 'boolean', default: false },
      python: { type: 'string', default: 'python3' },
    },
  })
  const int8Kernel = values['int8-kernel'] ?? 'auto'
  if (!['auto', 'int8'].includes(int8Kernel)) throw new Error(`mmeb: --int8-kernel '${int8Kernel}', expected auto or int8`)
  const scale = Number(values.scale)
  const globalScale = Number(values['global-scale'])
  await mkdir(OUT, { recursive: true })
  const results: Record<string, unknown> = { machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: os.totalmem() / 2 ** 30 } }

  const full = subsets(scale)
  log(`subsets: ${full.names.length}, rows ${full.rows}: ${full.names.map((n, i) => `${n} ${full.ranges[i]![1] - full.ranges[i]![0]}`).join(', ')}`)
  const ds = await generateDataset({ rows: full.rows, log })
  const pairs = await writeMmebPairs(ds, full)
  // --reuse-fp32: the fp32 run of an earlier invocation on the same data (its manifest says which), to rerun only the second.
  results.perSubset = values['reuse-fp32']
    ? { reused: path.join(OUT, 'per-subset'), timings: (await readManifest(path.join(OUT, 'per-subset'))).timings }
    : await mine('hardneg per-subset exact, fp32 kernel', pairs, ds, full, path.join(OUT, 'per-subset'), ['--exact-kernel', 'fp32'])
  const agree = (what: string, a: ReturnType<typeof compareTables>): typeof a => {
    log(`agreement ${what} over ${a.rows} rows: same top-8 sets ${(100 * a.sameSet).toFixed(2)} %, same lists ${(100 * a.sameList).toFixed(2)} %, ` +
      `same false-negative counts ${(100 * a.sameFalseNegatives).toFixed(2)} %, max |score diff| ${a.maxScoreDiff.toExponential(2)}; ${a.differingRows} rows differ, ${a.nearTieDiffs} only in near-ties`)
    return a
  }
  const fp32Table = await readMined(path.join(OUT, 'per-subset'), full.rows, 8)
  let int8Table: Awaited<ReturnType<typeof readMined>> | undefined
  if (!values['skip-int8']) {
    const run = await mine(`hardneg per-subset exact, --exact-kernel ${int8Kernel}`, pairs, ds, full, path.join(OUT, 'per-subset-int8'), ['--exact-kernel', int8Kernel])
    results.perSubsetInt8 = run
    const r = run.exactKernel?.rescore
    const kernels = run.exactKernel?.groups
    if (kernels) log(`--exact-kernel ${int8Kernel}: ${kernels.int8} subsets int8, ${kernels.fp32} fp32 (${run.exactKernel?.reasons.join('; ')})`)
    if (r) log(`int8: rescored per query mean ${r.rescoredMean}, p99 ${r.rescoredP99}, max ${r.rescoredMax}; ceiling band mean ${r.ceilingBandMean}, p99 ${r.ceilingBandP99}, max ${r.ceilingBandMax}`)
    int8Table = await readMined(path.join(OUT, 'per-subset-int8'), full.rows, 8)
    results.agreementInt8Fp32 = agree('int8 vs fp32', compareTables(int8Table, fp32Table))
  }
  if (!values['skip-baseline']) {
    results.baseline = await baseline(ds, full, path.join(OUT, 'baseline'), values.python ?? 'python3')
    const numpy = await readBaseline(path.join(OUT, 'baseline'))
    results.agreement = agree('fp32 vs numpy', compareTables(fp32Table, numpy))
    if (int8Table) results.agreementInt8Numpy = agree('int8 vs numpy', compareTables(int8Table, numpy))
  }

  if (!values['skip-global']) {
    const small = subsets(globalScale)
    const sds = await generateDataset({ rows: small.rows, log })
    const spairs = await writeMmebPairs(sds, small)
    const per = await mine(`per-subset pools at ${small.rows} rows`, spairs, sds, small, path.join(OUT, 'small-per-subset'), [])
    const glob = await mine(`global pool at ${small.rows} rows`, spairs, sds, small, path.join(OUT, 'small-global'), ['--global-pool'])
    results.globalComparison = {
      rows: small.rows,
      perSubset: per,
      global: { ...glob, crossSubsetNegativeShare: await crossSubsetShare(path.join(OUT, 'small-global'), small) },
      fullSizeGlobalTflop: (2 * full.rows * full.rows * ds.dim) / 1e12,
    }
    log(`global pool: ${(100 * ((results.globalComparison as { global: { crossSubsetNegativeShare: number } }).global.crossSubsetNegativeShare)).toFixed(1)} % of served negatives from another subset`)
  }
  await writeFile(path.join(OUT, 'results.json'), JSON.stringify(results, null, 2) + '\n')
  log(`wrote ${path.relative(REPO, path.join(OUT, 'results.json'))}`)
}

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench/mmeb: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
