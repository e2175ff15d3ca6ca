/**
 * `npm run bench`: exact mining with both kernels (fp32 and int8) and hnsw mining end to end
 * on synthetic clustered embeddings, next to a numpy baseline doing the same exact search
 * and the peer (sentence-transformers' mine_hard_negatives with faiss), with agreement
 * and recall. Prints numbers and a markdown table, writes bench/out/results.json; never
 * fails on time.
 *
 * Flags: --rows N (default 273000), --dim D (default 1024), --clusters C, --seed S,
 * --skip-int8, --skip-hnsw, --skip-baseline, --skip-peer, --only exact|int8|hnsw|baseline|peer,
 * --m, --ef, --ef-construction (hnsw), --query-block-rows N, --pool-block-rows N (passed to
 * both exact runs when given), --sample N (rows for recall, default 2000), --python PATH
 * (default python3), --peer-python PATH (an interpreter with sentence-transformers, faiss-cpu
 * and datasets; default $HARDNEG_PEER_PYTHON, else python3).
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { readManifest, type Manifest } from '../src/index.js'
import { compareTables, evenSample, readBaseline, readMined, type Agreement } from './_compare.js'
import { GNU_TIME, runMeasured, searchRate, type Measured } from './_measure.js'
import { generateDataset, type Dataset } from './generate.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const OUT = path.join(REPO, 'bench', 'out')
const K = 8
const THRESHOLD = 0.1
const FULL_ROWS = 273000
/** Env vars that pin OpenBLAS's kernel on some machines here (see the env README). */
const OPENBLAS_PINS = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] as const

/** One hardneg run as the benchmark reports it. */
interface MineRun {
  method: 'exact' | 'hnsw'
  kernel?: 'fp32' | 'int8' // exact: the kernel forced with --exact-kernel
  out: string // output directory
  args: string[] // mine-negatives arguments
  loadAverageBefore: number[] // 1/5/15-minute load averages when the run started: other work on the machine skews every number
  loadAverageAfter: number[] // ... and when it ended
  wallSeconds: number // child wall time (process start to exit)
  cpuSeconds?: number // child user + system CPU seconds (GNU time): less moved by other work than wall time
  peakRssBytes: number // child peak RSS
  timings: Record<string, number> // manifest.timings (seconds per phase)
  gflops?: number // exact: 2 * rows * pool * dim / timings.search / 1e9 (GOP/s for int8: the same operation count)
  rescore?: NonNullable<Manifest['search']['exactKernel']>['rescore'] // int8: exact dot products per query, band at the ceiling
  searchRowsPerSecond?: number // from progress lines
  hnswBuildSecondsEst?: number // hnsw: timings.search minus rows / rate (graph build, estimated)
  hnswParams?: { m: number; ef: number; efConstruction: number }
  falseNegatives: number // manifest counts
  counts: Manifest['counts']
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: String(FULL_ROWS) },
      dim: { type: 'string', default: '1024' },
      clusters: { type: 'string' },
      seed: { type: 'string', default: '1' },
      'skip-int8': { type: 'boolean', default: false },
      'skip-hnsw': { type: 'boolean', default: false },
      'skip-baseline': { type: 'boolean', default: false },
      'skip-peer': { type: 'boolean', default: false },
      'peer-python': { type: 'string', default: process.env.HARDNEG_PEER_PYTHON ?? 'python3' },
      only: { type: 'string' },
      m: { type: 'string', default: '16' },
      ef: { type: 'string', default: '128' },
      'ef-construction': { type: 'string', default: '200' },
      sample: { type: 'string', default: '2000' },
      'query-block-rows': { type: 'string' },
      'pool-block-rows': { type: 'string' },
      python: { type: 'string', default: 'python3' },
    },
  })
  const only = values.only
  if (only !== undefined && !['exact', 'int8', 'hnsw', 'baseline', 'peer'].includes(only)) {
    throw new Error(`bench: --only '${only}', expected exact, int8, hnsw, baseline or peer`)
  }
  const want = {
    exact: only === undefined || only === 'exact',
    int8: only === undefined ? !values['skip-int8'] : only === 'int8',
    baseline: only === undefined ? !values['skip-baseline'] : only === 'baseline',
    peer: only === undefined ? !values['skip-peer'] : only === 'peer',
    hnsw: only === undefined ? !values['skip-hnsw'] : only === 'hnsw',
  }
  const int = (name: string, v: string | undefined): number => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 1) throw new Error(`bench: --${name} '${v}', expected an integer >= 1`)
    return n
  }
  const rows = int('rows', values.rows)
  const dim = int('dim', values.dim)
  const hnswParams = { m: int('m', values.m), ef: int('ef', values.ef), efConstruction: int('ef-construction', values['ef-construction']) }
  const sampleSize = int('sample', values.sample)
  const exactArgs: string[] = []
  for (const flag of ['query-block-rows', 'pool-block-rows'] as const) {
    if (values[flag] !== undefined) exactArgs.push(`--${flag}`, String(int(flag, values[flag])))
  }
  await mkdir(OUT, { recursive: true })

  const machine = await describeMachine()
  log(`machine: ${machine.cpu}, ${machine.cores} cores at ${machine.mhz} MHz, ${machine.memoryGiB} GiB; AVX2 ${machine.avx2 ? 'yes' : 'no'}, ` +
    `AVX-512 ${machine.avx512 ? 'yes' : 'no'}; float32 FMA peak at that clock ~${machine.fp32PeakGflops} GFLOP/s; load average ${machine.loadAverage.join(' ')}`)
  if (machine.loadAverage[0] !== undefined && machine.loadAverage[0] > 0.5) {
    log(`note: load average ${machine.loadAverage[0]} before starting: other work on this ${machine.cores}-core machine will slow every number below`)
  }
  if (!existsSync(GNU_TIME)) log(`note: ${GNU_TIME} not found (apt-get install time); peak RSS is polled from /proc VmHWM instead`)

  const ds = await generateDataset({
    rows,
    dim,
    ...(values.clusters !== undefined ? { clusters: int('clusters', values.clusters) } : {}),
    seed: int('seed', String(Number(values.seed) + 1)) - 1, // any integer >= 0
    log,
  })
  log(ds.generated ? `data: generated ${ds.dir} in ${ds.seconds.toFixed(1)} s` : `data: reusing ${ds.dir}`)

  const results: Record<string, unknown> = { createdAt: new Date().toISOString(), machine, source: gitState(), dataset: ds }
  const exactDir = path.join(OUT, 'exact')
  const int8Dir = path.join(OUT, 'exact-int8')
  const peerDir = path.join(OUT, 'peer')
  const hnswDir = path.join(OUT, 'hnsw')
  const baselineDir = path.join(OUT, 'baseline')
  const baselineUnsetDir = path.join(OUT, 'baseline-openblas-unpinned')

  if (want.exact) {
    results.exact = await runMine(ds, 'exact', exactDir, hnswParams, [...exactArgs, '--exact-kernel', 'fp32'])
  }
  if (want.int8) {
    results.int8 = await runMine(ds, 'exact', int8Dir, hnswParams, [...exactArgs, '--exact-kernel', 'int8'])
  }
  if (want.baseline) {
    results.baseline = await runBaseline(ds, baselineDir, process.env, values.python ?? 'python3', 'numpy')
    const pinned = OPENBLAS_PINS.filter((v) => process.env[v] !== undefined)
    if (pinned.length > 0) {
      const env = { ...process.env }
      for (const v of OPENBLAS_PINS) delete env[v]
      log(`baseline: ${pinned.join(', ')} set here; running it again with both unset`)
      results.baselineUnpinned = await runBaseline(ds, baselineUnsetDir, env, values.python ?? 'python3', 'numpy (OPENBLAS_* unset)')
    }
  }
  // Agreement needs both outputs for this dataset, from this run or an earlier one.
  const exactFresh = await isFresh(exactDir, 'manifest.json', ds)
  const baselineFresh = await isFresh(baselineDir, 'result.json', ds)
  let exactTable: Awaited<ReturnType<typeof readMined>> | undefined
  if (exactFresh && (want.exact || want.int8 || want.baseline || want.peer || want.hnsw)) {
    exactTable = await readMined(exactDir, rows, K)
  }
  if (exactTable && baselineFresh && (want.exact || want.baseline)) {
    const agreement = compareTables(exactTable, await readBaseline(baselineDir))
    results.agreement = agreement
    log(`agreement hardneg exact vs numpy: same top-${K} list ${pct(agreement.sameList)}, same set ${pct(agreement.sameSet)}, ` +
      `same false-negative count ${pct(agreement.sameFalseNegatives)} of ${agreement.rows} rows; ` +
      `max |score diff| ${agreement.maxScoreDiff.toExponential(2)}; ${agreement.differingRows} rows differ, ${agreement.nearTieDiffs} of them only in near-ties`)
  }
  if (want.peer) {
    results.peer = await runPeer(ds, peerDir, values['peer-python'] ?? 'python3')
  }
  // The int8 kernel against the fp32 one and numpy; the peer against hardneg.
  const int8Fresh = await isFresh(int8Dir, 'manifest.json', ds)
  const peerFresh = await isFresh(peerDir, 'result.json', ds)
  const int8Table = int8Fresh && (want.exact || want.int8 || want.baseline || want.peer) ? await readMined(int8Dir, rows, K) : undefined
  if (int8Table && exactTable && (want.exact || want.int8)) {
    results.agreementInt8Fp32 = compareTables(int8Table, exactTable)
    logAgreement('int8 vs fp32', results.agreementInt8Fp32 as Agreement)
  }
  if (int8Table && baselineFresh && (want.int8 || want.baseline)) {
    results.agreementInt8Numpy = compareTables(int8Table, await readBaseline(baselineDir))
    logAgreement('int8 vs numpy', results.agreementInt8Numpy as Agreement)
  }
  const hardnegTable = int8Table ?? exactTable
  if (peerFresh && hardnegTable && (want.peer || want.exact || want.int8)) {
    results.agreementPeer = { reference: int8Table ? 'hardneg exact int8' : 'hardneg exact fp32', ...compareTables(await readBaseline(peerDir), hardnegTable) }
    logAgreement(`peer vs ${int8Table ? 'int8' : 'fp32'}`, results.agreementPeer as Agreement)
  }
  if (want.hnsw) {
    const run = await runMine(ds, 'hnsw', hnswDir, hnswParams, [])
    results.hnsw = run
    let reference = exactTable
    let referenceName = 'hardneg exact'
    if (!reference && baselineFresh) {
      reference = await readBaseline(baselineDir)
      referenceName = 'numpy baseline'
    }
    if (reference) {
      const hnswTable = await readMined(hnswDir, rows, K)
      const sample = evenSample(rows, sampleSize)
      const recall = compareTables(hnswTable, reference, sample)
      const recallAll = compareTables(hnswTable, reference)
      results.hnswRecall = { reference: referenceName, sampleRows: sample.length, recallAtK: recall.overlap, recallAtKAllRows: recallAll.overlap, sameSetAllRows: recallAll.sameSet }
      log(`hnsw recall@${K} vs ${referenceName}: ${recall.overlap.toFixed(4)} on ${sample.length} sampled rows (${recallAll.overlap.toFixed(4)} on all ${rows})`)
    } else {
      log('hnsw: no exact output for this dataset (run without --only, or --only exact first); recall not measured')
    }
  }

  await writeFile(path.join(OUT, 'results.json'), JSON.stringify(results, null, 2) + '\n')
  console.log(table(results, ds, machine))
  log(`wrote ${path.relative(REPO, path.join(OUT, 'results.json'))}`)
}

async function runMine(
  ds: Dataset,
  method: 'exact' | 'hnsw',
  out: string,
  hnsw: { m: number; ef: number; efConstruction: number },
  extra: readonly string[],
): Promise<MineRun | { failed: string }> {
  const args = [
    path.join(REPO, 'bin', 'mine-negatives.js'),
    '--pairs', ds.pairs, '--preset', 'simcse',
    '--query-embeddings', ds.queries, '--positive-embeddings', ds.positives,
    '--out', out, '--overwrite', '--search', method,
    '--k', String(K), '--threshold', String(THRESHOLD), '--json',
    ...(method === 'hnsw' ? ['--m', String(hnsw.m), '--ef', String(hnsw.ef), '--ef-construction', String(hnsw.efConstruction)] : []),
    ...extra,
  ]
  const loadBefore = loadAverage()
  const name = extra.includes('int8') ? 'int8' : method
  log(`${name}: node ${args.map((a) => path.relative(REPO, a) || a).join(' ')}`)
  // Progress lines (not --quiet) show the run is alive and give the search rate.
  const m = await runMeasured(process.execPath, args, { cwd: REPO, echo: (l) => log(`  ${name} | ${l}`) })
  if (m.code !== 0) return failed(name, m)
  const manifest = await readManifest(out)
  const t = manifest.timings
  const rate = searchRate(m.stderrLines)
  const kernel = extra.includes('int8') ? 'int8' : extra.includes('fp32') ? 'fp32' : undefined
  const run: MineRun = {
    method,
    ...(kernel ? { kernel } : {}),
    ...(manifest.search.exactKernel?.rescore ? { rescore: manifest.search.exactKernel.rescore } : {}),
    out,
    args: args.slice(1),
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadAverage(),
    wallSeconds: m.wallSeconds,
    ...(m.cpuSeconds !== undefined ? { cpuSeconds: m.cpuSeconds } : {}),
    peakRssBytes: m.peakRssBytes,
    timings: t,
    falseNegatives: manifest.counts.falseNegatives ?? NaN,
    counts: manifest.counts,
    ...(rate !== undefined ? { searchRowsPerSecond: rate } : {}),
  }
  if (method === 'exact' && t.search) run.gflops = (2 * ds.rows * ds.rows * ds.dim) / t.search / 1e9
  if (method === 'hnsw') {
    run.hnswParams = hnsw
    if (rate !== undefined && t.search !== undefined) run.hnswBuildSecondsEst = Math.max(0, t.search - ds.rows / rate)
  }
  log(`${name}: wall ${m.wallSeconds.toFixed(1)} s, peak RSS ${gib(m.peakRssBytes)}, timings ${JSON.stringify(roundAll(t))}` +
    (run.gflops !== undefined ? `, ${run.gflops.toFixed(1)} GFLOP/s` : ''))
  return run
}

async function runBaseline(ds: Dataset, out: string, env: NodeJS.ProcessEnv, python: string, label: string): Promise<Record<string, unknown>> {
  const args = [
    path.join(REPO, 'bench', 'baseline.py'),
    '--queries', ds.queries, '--positives', ds.positives, '--out', out,
    '--k', String(K), '--threshold', String(THRESHOLD),
    '--sample-stride', String(Math.max(1, Math.floor(ds.rows / 2000))), '--label', label,
  ]
  log(`baseline: ${python} ${args.map((a) => path.relative(REPO, a) || a).join(' ')}`)
  const loadBefore = loadAverage()
  const m = await runMeasured(python, args, { cwd: REPO, env, echo: (l) => log(`  baseline | ${l}`) })
  if (m.code !== 0) return failed('baseline', m)
  const result = JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8')) as Record<string, unknown>
  return { ...result, wallSeconds: m.wallSeconds, cpuSeconds: m.cpuSeconds, peakRssBytesMeasured: m.peakRssBytes, loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() }
}

async function runPeer(ds: Dataset, out: string, python: string): Promise<Record<string, unknown>> {
  const args = [path.join(REPO, 'bench', 'peer.py'), '--queries', ds.queries, '--positives', ds.positives, '--out', out, '--k', String(K), '--threshold', String(THRESHOLD)]
  log(`peer: ${python} ${args.map((a) => path.relative(REPO, a) || a).join(' ')}`)
  const loadBefore = loadAverage()
  const m = await runMeasured(python, args, { cwd: REPO, echo: (l) => log(`  peer | ${l}`) })
  if (m.code !== 0) return failed('peer', m)
  const result = JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8')) as Record<string, unknown>
  log(`peer: wall ${m.wallSeconds.toFixed(1)} s, peak RSS ${gib(m.peakRssBytes)}`)
  return { ...result, wallSeconds: m.wallSeconds, cpuSeconds: m.cpuSeconds, peakRssBytesMeasured: m.peakRssBytes, loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() }
}

function logAgreement(what: string, a: Agreement): void {
  log(`agreement ${what}: same top-${K} list ${pct(a.sameList)}, same set ${pct(a.sameSet)}, same false-negative count ${pct(a.sameFalseNegatives)} of ${a.rows} rows; ` +
    `max |score diff| ${a.maxScoreDiff.toExponential(2)}; ${a.differingRows} rows differ, ${a.nearTieDiffs} of them only in near-ties`)
}

/** True when `dir/file` was written after the dataset (so it belongs to these inputs). */
async function isFresh(dir: string, file: string, ds: Dataset): Promise<boolean> {
  const [a, b] = await Promise.all([stat(path.join(dir, file)).catch(() => undefined), stat(path.join(ds.dir, 'params.json')).catch(() => undefined)])
  if (!a || !b || a.mtimeMs < b.mtimeMs) return false
  const text = await readFile(path.join(dir, file), 'utf8')
  return text.includes(JSON.stringify(ds.queries).slice(1, -1))
}

function failed(what: string, m: Measured): { failed: string } {
  log(`${what}: exited with ${m.code}\n${m.stderr.slice(-4000)}`)
  return { failed: `exit ${m.code}: ${m.stderr.trim().split('\n').slice(-3).join(' | ')}` }
}

/** What the machine is, and the float32 FMA peak it could reach. */
interface Machine {
  cpu: string // CPU model
  cores: number // available parallelism
  mhz: number // clock as /proc/cpuinfo reports it (a VM may report the base clock; the core may run faster)
  memoryGiB: number // total memory
  avx2: boolean
  avx512: boolean
  fma: boolean
  f16c: boolean
  fp32PeakGflops: number // cores * MHz * FLOP per cycle (2 FMA units * 8 lanes * 2 with AVX2; 2 * 16 * 2 with AVX-512)
  node: string
  loadAverage: number[] // 1/5/15-minute load averages at the start
}

async function describeMachine(): Promise<Machine> {
  const info = await readFile('/proc/cpuinfo', 'utf8').catch(() => '')
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(/\s+/))
  const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1] ?? os.cpus()[0]?.speed ?? 0)
  const cores = os.availableParallelism()
  const flopPerCycle = flags.has('avx512f') ? 64 : flags.has('fma') ? 32 : 8
  return {
    mhz,
    fp32PeakGflops: Math.round((cores * mhz * flopPerCycle) / 1000),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    avx2: flags.has('avx2'),
    avx512: flags.has('avx512f'),
    fma: flags.has('fma'),
    f16c: flags.has('f16c'),
    node: process.version,
    loadAverage: loadAverage(),
  }
}

/** The commit measured, and whether src/ differed from it (numbers then describe uncommitted code). */
function gitState(): { commit: string; srcDirty: boolean } | undefined {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: REPO, encoding: 'utf8' }).trim() !== ''
    return { commit, srcDirty: dirty }
  } catch {
    return undefined
  }
}

function loadAverage(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100)
}

function table(results: Record<string, unknown>, ds: Dataset, machine: Machine): string {
  const scale = ds.rows === FULL_ROWS && ds.dim === 1024 ? 'full size' : `SMALL SCALE, not the 273k target`
  const flop = 2 * ds.rows * ds.rows * ds.dim
  const lines = [
    `\n### ${ds.rows.toLocaleString('en-US')} pairs x ${ds.dim}-d float16 (${scale}); pool ${ds.rows.toLocaleString('en-US')}, k ${K}, threshold ${THRESHOLD}\n`,
    `${machine.cpu}, ${machine.cores} cores at ${machine.mhz} MHz, AVX2 ${machine.avx2 ? 'yes' : 'no'}, AVX-512 ${machine.avx512 ? 'yes' : 'no'}; ` +
      `float32 FMA peak at that clock ~${machine.fp32PeakGflops} GFLOP/s; load average at start ${machine.loadAverage.join(' ')}. ` +
      `Search work ${(flop / 1e12).toFixed(2)} TFLOP; exact search within 15 min at 273k x 1024 needs ${((2 * FULL_ROWS * FULL_ROWS * 1024) / 900 / 1e9).toFixed(0)} GFLOP/s. ` +
      `hardneg at ${sourceLabel(results.source)}.\n`,
    '| run | wall (s) | peak RSS | load (s) | search (s) | GFLOP/s | machine load avg before/after | notes |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ]
  const exact = results.exact as MineRun | { failed: string } | undefined
  for (const [label, run] of [['hardneg exact, fp32 kernel', exact], ['hardneg exact, int8 kernel', results.int8]] as const) {
    const r = run as MineRun | { failed: string } | undefined
    if (r && 'failed' in r) lines.push(`| ${label} | failed | | | | | | ${r.failed} |`)
    else if (r) {
      const rescore = r.rescore ? `; rescored per query mean ${r.rescore.rescoredMean}, p99 ${r.rescore.rescoredP99}, max ${r.rescore.rescoredMax}; ceiling band mean ${r.rescore.ceilingBandMean}, p99 ${r.rescore.ceilingBandP99}` : ''
      lines.push(`| ${label} | ${f1(r.wallSeconds)} | ${gib(r.peakRssBytes)} | ${f1(r.timings.load)} | ${f1(r.timings.search)} | ${f1(r.gflops)} | ${loads(r)} | ` +
        `CPU ${f1(r.cpuSeconds)} s; read ${f1(r.timings.read)} s, hash ${f1(r.timings.hash)} s; search includes shard writes${rescore} |`)
    }
  }
  const peer = results.peer as Record<string, unknown> | undefined
  if (peer && 'failed' in peer) lines.push(`| peer | failed | | | | | | ${String(peer.failed)} |`)
  else if (peer) {
    const s = peer.seconds as Record<string, number>
    const v = peer.versions as Record<string, string>
    lines.push(`| sentence-transformers mine_hard_negatives + faiss | ${f1(peer.wallSeconds as number)} | ${gib(peer.peakRssBytesMeasured as number)} | ${f1(s.load)} | ${f1(s.mine)} | - | ${loads(peer as { loadAverageBefore?: number[]; loadAverageAfter?: number[] })} | ` +
      `CPU ${f1(peer.cpuSeconds as number | undefined)} s; sentence-transformers ${v.sentence_transformers}, faiss ${v.faiss}, torch ${v.torch}; absolute_margin -${THRESHOLD}, ${String(peer.rows_out)} rows out |`)
  }
  for (const key of ['baseline', 'baselineUnpinned']) {
    const b = results[key] as Record<string, unknown> | undefined
    if (!b) continue
    if ('failed' in b) {
      lines.push(`| ${key} | failed | | | | | | ${String(b.failed)} |`)
      continue
    }
    const s = b.seconds as Record<string, number>
    const blas = b.blas as { summary?: string }
    lines.push(`| ${String(b.label)} | ${f1(b.wallSeconds as number)} | ${gib(b.peakRssBytesMeasured as number)} | ${f1(s.load)} | ${f1(s.search)} | ${f1(b.gflops as number)} | ${loads(b as { loadAverageBefore?: number[]; loadAverageAfter?: number[] })} | ` +
      `sgemm ${f1(s.gemm)} s (${f1(b.gflops_gemm_only as number)} GFLOP/s), select ${f1(s.select)} s; numpy ${String(b.numpy)}, ${blas.summary ?? ''} |`)
  }
  const hnsw = results.hnsw as MineRun | { failed: string } | undefined
  if (hnsw && 'failed' in hnsw) lines.push(`| hardneg hnsw | failed | | | | | | ${hnsw.failed} |`)
  else if (hnsw) {
    const r = results.hnswRecall as { recallAtK: number; sampleRows: number; recallAtKAllRows: number; reference: string } | undefined
    lines.push(`| hardneg hnsw (m ${hnsw.hnswParams?.m}, ef ${hnsw.hnswParams?.ef}, efC ${hnsw.hnswParams?.efConstruction}) | ${f1(hnsw.wallSeconds)} | ${gib(hnsw.peakRssBytes)} | ${f1(hnsw.timings.load)} | ${f1(hnsw.timings.search)} | - | ${loads(hnsw)} | ` +
      `build ~${f1(hnsw.hnswBuildSecondsEst)} s, queries ~${f1(hnsw.searchRowsPerSecond ? ds.rows / hnsw.searchRowsPerSecond : undefined)} s; ` +
      (r ? `recall@${K} ${r.recallAtK.toFixed(4)} (${r.sampleRows} rows; all rows ${r.recallAtKAllRows.toFixed(4)}) vs ${r.reference}` : 'recall not measured') + ' |')
  }
  const a = results.agreement as Agreement | undefined
  if (a) {
    lines.push('', `Agreement, hardneg exact vs numpy over ${a.rows.toLocaleString('en-US')} rows: same top-${K} list ${pct(a.sameList)}, ` +
      `same set ${pct(a.sameSet)}, mean overlap ${pct(a.overlap)}, same false-negative count ${pct(a.sameFalseNegatives)}; ` +
      `max |score diff| ${a.maxScoreDiff.toExponential(2)}, max |pos diff| ${a.maxPosDiff.toExponential(2)}; ` +
      `${a.differingRows} rows differ, ${a.nearTieDiffs} of them only where the swapped candidates score within 1e-5.`)
  }
  for (const [key, what] of [['agreementInt8Fp32', 'hardneg int8 vs fp32'], ['agreementInt8Numpy', 'hardneg int8 vs numpy'], ['agreementPeer', 'peer vs hardneg']] as const) {
    const x = results[key] as Agreement | undefined
    if (x) {
      lines.push('', `Agreement, ${what} over ${x.rows.toLocaleString('en-US')} rows: same top-${K} list ${pct(x.sameList)}, same set ${pct(x.sameSet)}, ` +
        `mean overlap ${pct(x.overlap)}, same false-negative count ${pct(x.sameFalseNegatives)}; max |score diff| ${x.maxScoreDiff.toExponential(2)}; ` +
        `${x.differingRows} rows differ, ${x.nearTieDiffs} of them only where the swapped candidates score within 1e-5.`)
    }
  }
  const ratio = (a: unknown, b: unknown): string => {
    const x = a as { wallSeconds?: number } | undefined
    const y = b as { wallSeconds?: number } | undefined
    return x?.wallSeconds && y?.wallSeconds ? (y.wallSeconds / x.wallSeconds).toFixed(2) : '-'
  }
  if (results.int8 || peer) {
    lines.push('', `Whole-process speed-ups (wall): int8 over fp32 ${ratio(results.int8, exact)}x; int8 over the peer ${ratio(results.int8, peer)}x; fp32 over the peer ${ratio(exact, peer)}x.`)
  }
  if (exact && !('failed' in exact)) {
    const c = exact.counts as unknown as Record<string, unknown>
    lines.push('', `Exact counts: ${JSON.stringify(c)}`)
  }
  return lines.join('\n')
}

function sourceLabel(source: unknown): string {
  const s = source as { commit: string; srcDirty: boolean } | undefined
  return s ? `${s.commit.slice(0, 7)}${s.srcDirty ? ' with uncommitted changes in src/' : ''}` : 'unknown commit'
}

function loads(r: { loadAverageBefore?: number[]; loadAverageAfter?: number[] }): string {
  return `${r.loadAverageBefore?.[0] ?? '-'} / ${r.loadAverageAfter?.[0] ?? '-'}`
}

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

function gib(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? '-' : `${(bytes / 2 ** 30).toFixed(2)} GiB`
}

function f1(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(1)
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : '-'
}

function roundAll(t: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(v * 100) / 100]))
}

await main()
