/**
 * What the opt-in false-negative filters cost and catch, measured on the fixtures.
 *
 *   npm run build && node dist/bench/filters.js [--reps N] [--data coco-multi,coco-mmeb,snli]
 *                                               [--captions FILE] [--write-derived DIR]
 *
 * For every dataset and every filter configuration it runs `mineNegatives` (k = 8, top
 * sampling, pad repeat, search auto = exact on these sizes), reads the shards back with
 * `readShards`, and prints one markdown table per dataset.
 *
 * Datasets (all vectors come from the fixtures; nothing is re-embedded):
 * - coco-multi: the layout the issue describes, "two caption pairs per image", built from
 *   fixtures/coco-mini. 160 rows MSCOCO_i2t: for each of the 80 images one row
 *   (image -> caption 1) and one row (image -> caption 2). Query vector = the image proxy
 *   (qry.npy of the image's i2t row); caption 1 = the t2i query text without its
 *   instruction prefix, vector qry.npy of the t2i row; caption 2 = the i2t pos_text,
 *   vector pos.npy of the i2t row. One pool of 160 captions; each row's pool holds exactly
 *   one caption of its own image (the other row's positive). Written to a temp dir as
 *   JSONL + .npy and mined with `--preset mmeb`.
 * - coco-mmeb: fixtures/coco-mini/mmeb-style.parquet as shipped, `--preset mmeb`.
 * - snli: fixtures/snli (the embedded default), `--preset simcse`, sent0 -> sent1.
 *
 * Ground truth ("false negative"): coco: a candidate caption of the same image as the row
 * (caption -> image from the parquet, and from captions.json when it is found); snli: an
 * entailment hypothesis (sent1) of another row with the same premise (sent0).
 *
 * Per config: rows whose final top-8 still holds a ground-truth false negative; ground
 * truth false negatives removed / present in the pools (from a second run with k = pool
 * size and --pad none, which lists every kept candidate); candidates removed and
 * FalseNeg% (from the summary); padded/short/dropped rows; mean chosen-negative score
 * (summary) and its change against margin-only; median wall time of `mineNegatives` and of
 * its search phase (manifest timings) over --reps runs, configs interleaved round-robin
 * after one untimed warm-up run per dataset.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  collectPairs,
  loadEmbeddingMatrix,
  mineNegatives,
  readShards,
  type EmbeddingMatrix,
  type MineOptions,
  type MineResult,
  type PairRecord,
} from '../src/index.js'

const K = 8

type RuleOptions = Pick<MineOptions, 'threshold' | 'maxScore' | 'relativeMargin' | 'posSim' | 'querySim'>

interface Config {
  name: string // short label
  flags: string // the CLI flags that give this config
  rules: RuleOptions
}

/** The configurations measured; every one keeps the margin rule (threshold 0.1 unless it sets threshold). */
export const CONFIGS: readonly Config[] = [
  { name: 'margin only (default)', flags: '--threshold 0.1', rules: {} },
  { name: 'margin β=0.05', flags: '--threshold 0.05', rules: { threshold: 0.05 } },
  { name: 'margin β=0', flags: '--threshold 0', rules: { threshold: 0 } },
  { name: 'max-score 0.9', flags: '--max-score 0.9', rules: { maxScore: 0.9 } },
  { name: 'max-score 0.8', flags: '--max-score 0.8', rules: { maxScore: 0.8 } },
  { name: 'relative-margin 0.05', flags: '--relative-margin 0.05', rules: { relativeMargin: 0.05 } },
  { name: 'relative-margin 0.1', flags: '--relative-margin 0.1', rules: { relativeMargin: 0.1 } },
  { name: 'pos-sim 0.9', flags: '--pos-sim 0.9', rules: { posSim: 0.9 } },
  { name: 'pos-sim 0.8', flags: '--pos-sim 0.8', rules: { posSim: 0.8 } },
  { name: 'pos-sim 0.7', flags: '--pos-sim 0.7', rules: { posSim: 0.7 } },
  { name: 'query-sim 0.9', flags: '--query-sim 0.9', rules: { querySim: 0.9 } },
  { name: 'query-sim 0.8', flags: '--query-sim 0.8', rules: { querySim: 0.8 } },
  {
    name: 'combo',
    flags: '--relative-margin 0.05 --pos-sim 0.9 --query-sim 0.9',
    rules: { relativeMargin: 0.05, posSim: 0.9, querySim: 0.9 },
  },
]

/** Inputs of one dataset plus its ground truth. */
interface Dataset {
  name: string
  title: string // table heading
  note: string // what a ground-truth false negative is here
  input: Omit<MineOptions, 'out' | 'overwrite' | 'k'>
  pairs: PairRecord[]
  isFalseNegative: (pair: PairRecord, candidate: string) => boolean
}

interface Measured {
  config: Config
  result: MineResult // the last timed k = 8 run
  wallMs: number[] // per timed k = 8 run: wall time of mineNegatives
  cpuMs: number[] // per timed run: process CPU time (user + system, all threads) during mineNegatives
  searchMs: number[] // per timed run: the manifest's search phase
  leakRows: number // rows out whose distinct negatives hold a ground-truth false negative
  topRows: number // rows out whose first negative is a ground-truth false negative
  rowsOut: number
  fnInPool: number // ground-truth false negatives in the pools, summed over rows
  rowsWithFnInPool: number
  fnRemoved: number | null // ground-truth false negatives the rules removed (null when none are in the pools)
}

// ---------- paths and arguments ----------

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'fixtures'))) return dir
    dir = dirname(dir)
  }
  throw new Error('cannot find the repository root (package.json next to fixtures/) above this script')
}

interface Args {
  reps: number
  data: string[]
  captions: string | undefined
  writeDerived: string | undefined
}

function parseArgs(argv: readonly string[], root: string): Args {
  const args: Args = { reps: 5, data: ['coco-multi', 'coco-mmeb', 'snli'], captions: undefined, writeDerived: undefined }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--reps') args.reps = Number(value())
    else if (a === '--data') args.data = value().split(',')
    else if (a === '--captions') args.captions = value()
    else if (a === '--write-derived') args.writeDerived = value()
    else if (a === '-h' || a === '--help') {
      console.log('node dist/bench/filters.js [--reps N] [--data coco-multi,coco-mmeb,snli] [--captions FILE] [--write-derived DIR]')
      process.exit(0)
    } else throw new Error(`unknown argument ${a}`)
  }
  if (!Number.isInteger(args.reps) || args.reps < 1) throw new Error('--reps: expected an integer >= 1')
  if (args.captions === undefined) {
    const guess = [join(root, '..', 'shared', 'data', 'coco-mini', 'captions.json'), '/work/shared/data/coco-mini/captions.json']
    args.captions = guess.find((f) => existsSync(f))
  }
  return args
}

// ---------- helpers ----------

function row(m: EmbeddingMatrix, i: number): Float32Array {
  return m.data.subarray(i * m.dim, (i + 1) * m.dim)
}

/** A float32 C-order .npy file as numpy.save writes it (format 1.0). */
async function writeNpyF32(file: string, rows: number, dim: number, data: Float32Array): Promise<void> {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`
  const total = 10 + header.length + 1
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n'
  const head = Buffer.alloc(10)
  head.write('\x93NUMPY', 0, 'latin1')
  head[6] = 1
  head[7] = 0
  head.writeUInt16LE(header.length, 8)
  await writeFile(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]))
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  return n % 2 === 1 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2
}

function pct(n: number, d: number): string {
  return d === 0 ? '–' : `${((100 * n) / d).toFixed(1)}%`
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : ''
}

// ---------- COCO: caption -> image ----------

const T2I_PREFIX = 'Find me an everyday image that matches the given caption: '

/** caption text -> image path ('images/<file>') from the parquet rows, and from captions.json when given. */
async function captionImages(pairs: readonly PairRecord[], captionsFile: string | undefined): Promise<Map<string, string>> {
  const map = new Map<string, string>()
  const add = (text: string, image: string): void => {
    const had = map.get(text)
    if (had !== undefined && had !== image) throw new Error(`caption '${text}' belongs to ${had} and ${image}`)
    map.set(text, image)
  }
  for (const p of pairs) {
    const qImage = str(p.carried.qry_image_path)
    const pImage = str(p.carried.pos_image_path)
    if (p.group === 'MSCOCO_t2i') {
      if (!p.query.startsWith(T2I_PREFIX)) throw new Error(`t2i row ${p.id}: query lacks the instruction prefix`)
      add(p.query.slice(T2I_PREFIX.length), pImage)
    } else if (p.group === 'MSCOCO_i2t') add(p.positive, qImage)
  }
  if (captionsFile !== undefined) {
    const images = JSON.parse(await readFile(captionsFile, 'utf8')) as { file: string; caps: string[] }[]
    for (const im of images) for (const c of im.caps) add(c, `images/${im.file}`)
  }
  return map
}

// ---------- datasets ----------

async function cocoMmeb(root: string, captionsFile: string | undefined): Promise<Dataset> {
  const dir = join(root, 'fixtures', 'coco-mini')
  const input = {
    pairs: join(dir, 'mmeb-style.parquet'),
    preset: 'mmeb' as const,
    queryEmbeddings: join(dir, 'mmeb-style.qry.npy'),
    positiveEmbeddings: join(dir, 'mmeb-style.pos.npy'),
  }
  const pairs = await collectPairs({ file: input.pairs, preset: 'mmeb' })
  const imageOf = await captionImages(pairs, captionsFile)
  return {
    name: 'coco-mmeb',
    title: 'coco-mini as shipped (`mmeb-style.parquet`, `--preset mmeb`, 160 rows in 2 subsets)',
    note: 'candidate caption of the same image as the row (query image for i2t, positive image for t2i)',
    input,
    pairs,
    isFalseNegative: (p, c) => {
      const image = str(p.carried.qry_image_path) || str(p.carried.pos_image_path)
      return image !== '' && imageOf.get(c) === image
    },
  }
}

/** The layout: two caption pairs per image, built from the fixture's own vectors. */
async function cocoMulti(root: string, captionsFile: string | undefined, dir: string): Promise<Dataset> {
  const src = join(root, 'fixtures', 'coco-mini')
  const shipped = await collectPairs({ file: join(src, 'mmeb-style.parquet'), preset: 'mmeb' })
  const qry = await loadEmbeddingMatrix({ file: join(src, 'mmeb-style.qry.npy') })
  const pos = await loadEmbeddingMatrix({ file: join(src, 'mmeb-style.pos.npy') })
  const dim = qry.dim
  const t2i = new Map<string, PairRecord>() // image -> t2i row (caption 1)
  const i2t = new Map<string, PairRecord>() // image -> i2t row (caption 2, image proxy)
  for (const p of shipped) {
    if (p.group === 'MSCOCO_t2i') t2i.set(str(p.carried.pos_image_path), p)
    else if (p.group === 'MSCOCO_i2t') i2t.set(str(p.carried.qry_image_path), p)
  }
  const images = [...i2t.keys()]
  if (images.length !== 80 || images.some((im) => !t2i.has(im))) throw new Error('coco-mini: expected the same 80 images in both subsets')
  // rows 0..79: image -> caption 1; rows 80..159: image -> caption 2
  const lines: string[] = []
  const q = new Float32Array(2 * images.length * dim)
  const p = new Float32Array(2 * images.length * dim)
  let r = 0
  for (const second of [false, true]) {
    for (const image of images) {
      const a = t2i.get(image) as PairRecord
      const b = i2t.get(image) as PairRecord
      const caption = second ? b.positive : a.query.slice(T2I_PREFIX.length)
      lines.push(JSON.stringify({ subset: 'MSCOCO_i2t', qry: b.query, qry_image_path: image, pos_text: caption, pos_image_path: '' }))
      q.set(row(qry, b.row), r * dim)
      p.set(second ? row(pos, b.row) : row(qry, a.row), r * dim)
      r++
    }
  }
  await mkdir(dir, { recursive: true })
  const input = {
    pairs: join(dir, 'coco-multi.jsonl'),
    preset: 'mmeb' as const,
    queryEmbeddings: join(dir, 'coco-multi.qry.npy'),
    positiveEmbeddings: join(dir, 'coco-multi.pos.npy'),
  }
  await writeFile(input.pairs, lines.join('\n') + '\n')
  await writeNpyF32(input.queryEmbeddings, r, dim, q)
  await writeNpyF32(input.positiveEmbeddings, r, dim, p)
  const pairs = await collectPairs({ file: input.pairs, preset: 'mmeb' })
  const imageOf = await captionImages(shipped, captionsFile)
  return {
    name: 'coco-multi',
    title: 'coco-mini, two caption pairs per image (the issue\'s layout; 160 rows MSCOCO_i2t, one pool of 160 captions)',
    note: 'candidate caption of the same image as the row',
    input,
    pairs,
    isFalseNegative: (pair, c) => imageOf.get(c) === str(pair.carried.qry_image_path),
  }
}

async function snli(root: string): Promise<Dataset> {
  const dir = join(root, 'fixtures', 'snli')
  const input = {
    pairs: join(dir, 'snli-test-triplets.csv'),
    preset: 'simcse' as const,
    queryEmbeddings: join(dir, 'snli-test-sent0.use512.f16.npy'),
    positiveEmbeddings: join(dir, 'snli-test-sent1.use512.f16.npy'),
  }
  const pairs = await collectPairs({ file: input.pairs, preset: 'simcse' })
  const hyps = new Map<string, Set<string>>() // premise -> its entailment hypotheses
  for (const p of pairs) {
    let s = hyps.get(p.query)
    if (!s) hyps.set(p.query, (s = new Set()))
    s.add(p.positive)
  }
  return {
    name: 'snli',
    title: 'SNLI test triplets (`--preset simcse`, sent0 -> sent1, 2,921 rows, one pool)',
    note: 'entailment hypothesis of another row with the same premise',
    input,
    pairs,
    isFalseNegative: (pair, c) => c !== pair.positive && (hyps.get(pair.query)?.has(c) ?? false),
  }
}

// ---------- measuring ----------

/** Per row: ground-truth false negatives in its pool (the doc's pool: distinct positive texts of the group, minus own positive and own query text). */
function truthInPools(ds: Dataset): Map<string, number> {
  const poolOf = new Map<string, string[]>()
  for (const p of ds.pairs) {
    let pool = poolOf.get(p.group)
    if (!pool) poolOf.set(p.group, (pool = []))
    if (p.positive !== '' && !pool.includes(p.positive)) pool.push(p.positive)
  }
  const out = new Map<string, number>()
  for (const p of ds.pairs) {
    let n = 0
    for (const c of poolOf.get(p.group) ?? []) {
      if (c === p.positive || c === p.query) continue
      if (ds.isFalseNegative(p, c)) n++
    }
    out.set(p.id, n)
  }
  return out
}

function poolSize(ds: Dataset): number {
  const sizes = new Map<string, Set<string>>()
  for (const p of ds.pairs) {
    let s = sizes.get(p.group)
    if (!s) sizes.set(p.group, (s = new Set()))
    if (p.positive !== '') s.add(p.positive)
  }
  return Math.max(1, ...[...sizes.values()].map((s) => s.size))
}

interface Timed {
  result: MineResult
  wallMs: number
  cpuMs: number
}

async function mine(ds: Dataset, config: Config, out: string, extra: Partial<MineOptions> = {}): Promise<Timed> {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const result = await mineNegatives({ ...ds.input, ...config.rules, out, overwrite: true, k: K, ...extra })
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { result, wallMs, cpuMs: (cpu.user + cpu.system) / 1000 }
}

async function measure(ds: Dataset, reps: number, work: string): Promise<Measured[]> {
  const byId = new Map(ds.pairs.map((p) => [p.id, p]))
  const inPool = truthInPools(ds)
  const fnInPool = [...inPool.values()].reduce((a, b) => a + b, 0)
  const rowsWithFnInPool = [...inPool.values()].filter((n) => n > 0).length
  const out = join(work, ds.name)
  await mine(ds, CONFIGS[0] as Config, out) // warm-up: loads onnxruntime, fills the page cache
  const runs = CONFIGS.map((config) => ({
    config,
    wallMs: [] as number[],
    cpuMs: [] as number[],
    searchMs: [] as number[],
    result: undefined as MineResult | undefined,
    leakRows: 0,
    topRows: 0,
    rowsOut: 0,
  }))
  // Round-robin over the configs, so that drift in machine load spreads over all of them.
  for (let rep = 0; rep < reps; rep++) {
    for (const run of runs) {
      const { result, wallMs, cpuMs } = await mine(ds, run.config, out)
      run.wallMs.push(wallMs)
      run.cpuMs.push(cpuMs)
      run.searchMs.push((result.manifest.timings.search ?? 0) * 1000)
      run.result = result
      if (rep > 0) continue // same inputs and options give byte-identical shards: read them once
      for await (const r of readShards(out)) {
        run.rowsOut++
        const pair = byId.get(r.id)
        if (!pair) throw new Error(`${ds.name}: shard row id ${r.id} is not a pair id`)
        const distinct = r.negatives.slice(0, r.nValid)
        if (distinct.some((c) => ds.isFalseNegative(pair, c))) run.leakRows++
        if (distinct.length > 0 && ds.isFalseNegative(pair, distinct[0] as string)) run.topRows++
      }
    }
  }
  const measured: Measured[] = []
  for (const run of runs) {
    const result = run.result as MineResult
    let fnRemoved: number | null = null
    if (fnInPool > 0) {
      // Every kept candidate: k = pool size, no padding. Ground truth in the pool but not kept was removed
      // (a row left with no candidate is dropped even under --pad none; all of its ground truth was removed).
      const audit = await mine(ds, run.config, out, { k: poolSize(ds), pad: 'none' })
      if (audit.result.summary.falseNegatives !== result.summary.falseNegatives) throw new Error('removed count differs between k = 8 and k = pool')
      let keptFn = 0
      for await (const r of readShards(out)) {
        const pair = byId.get(r.id) as PairRecord
        keptFn += r.negatives.filter((c) => ds.isFalseNegative(pair, c)).length
      }
      fnRemoved = fnInPool - keptFn
    }
    const { config, wallMs, cpuMs, searchMs, leakRows, topRows, rowsOut } = run
    measured.push({ config, result, wallMs, cpuMs, searchMs, leakRows, topRows, rowsOut, fnInPool, rowsWithFnInPool, fnRemoved })
  }
  return measured
}

// ---------- report ----------

function times(xs: readonly number[], base: readonly number[], digits: number): string {
  const m = median(xs)
  return `${m.toFixed(digits)} (${(m / median(base)).toFixed(2)}×)`
}

function table(ds: Dataset, ms: readonly Measured[]): string {
  const base = ms[0] as Measured
  const baseMean = base.result.summary.negativeScores.mean ?? 0
  const truth = base.fnInPool > 0
  const head = truth
    ? ['config', 'flags', 'FN in top-8 (rows)', 'FN is top-1 (rows)', 'FN removed / in pools', 'removed (all)', 'removed, not FN']
    : ['config', 'flags', 'removed (all)']
  head.push('FalseNeg%', 'padded / short / dropped', 'mean neg score (Δ vs margin)', 'wall ms (×)', 'CPU ms (×)', 'search ms (×)')
  const lines = [
    `### ${ds.title}`,
    '',
    `False negative (FN) = ${ds.note}. Ground-truth FN in the pools: ${base.fnInPool} (rows with at least one: ${base.rowsWithFnInPool} of ${ds.pairs.length})` +
      (truth ? '.' : ', so no config can leave one in a top-8 and every removed candidate is "not FN".'),
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
  ]
  for (const m of ms) {
    const s = m.result.summary
    const mean = s.negativeScores.mean
    const cells = [m.config.name, `\`${m.config.flags}\``]
    if (truth) {
      const removed = m.fnRemoved ?? 0
      cells.push(
        `${m.leakRows} / ${m.rowsOut} (${pct(m.leakRows, m.rowsOut)})`,
        `${m.topRows} / ${m.rowsOut} (${pct(m.topRows, m.rowsOut)})`,
        `${removed} / ${m.fnInPool} (${pct(removed, m.fnInPool)})`,
        String(s.falseNegatives),
        String(s.falseNegatives - removed),
      )
    } else cells.push(String(s.falseNegatives))
    cells.push(
      pct(s.queriesWithFalseNegatives, s.rowsIn),
      `${s.padded} / ${s.short} / ${s.dropped}`,
      mean === null ? '–' : `${mean.toFixed(4)} (${mean - baseMean >= 0 ? '+' : ''}${(mean - baseMean).toFixed(4)})`,
      times(m.wallMs, base.wallMs, 0),
      times(m.cpuMs, base.cpuMs, 0),
      times(m.searchMs, base.searchMs, 1),
    )
    lines.push(`| ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

async function main(): Promise<void> {
  const root = repoRoot()
  const args = parseArgs(process.argv.slice(2), root)
  const work = await mkdtemp(join(tmpdir(), 'hardneg-bench-filters-'))
  try {
    const derivedDir = args.writeDerived !== undefined ? resolve(args.writeDerived) : join(work, 'derived')
    const builders: Record<string, () => Promise<Dataset>> = {
      'coco-multi': () => cocoMulti(root, args.captions, derivedDir),
      'coco-mmeb': () => cocoMmeb(root, args.captions),
      snli: () => snli(root),
    }
    console.log(`# Opt-in false-negative filters, measured (k = ${K}, top, pad repeat, exact search)\n`)
    console.log(
      `node ${process.version}, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}), ${args.reps} timed runs per config (median), ` +
        `captions.json: ${args.captions ?? 'not found (caption -> image from the parquet only)'}, ` +
        `load average at the start (1/5/15 min): ${loadavg().map((x) => x.toFixed(2)).join(' / ')}\n`,
    )
    for (const name of args.data) {
      const build = builders[name]
      if (!build) throw new Error(`--data: unknown dataset '${name}', expected ${Object.keys(builders).join(', ')}`)
      const ds = await build()
      const measured = await measure(ds, args.reps, work)
      console.log(table(ds, measured) + '\n')
    }
    console.log(`Load average at the end (1/5/15 min): ${loadavg().map((x) => x.toFixed(2)).join(' / ')}`)
    if (args.writeDerived !== undefined) console.log(`Derived coco-multi inputs kept in ${derivedDir}`)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

await main()
