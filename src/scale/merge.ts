/**
 * `hardneg merge`: the parts of a distributed run in, the run out. Checks that every
 * worker's part is there, that they share one fingerprint and that together they cover
 * every row exactly once; then replays their records, in worker order, into one
 * MiningStats and the same shard writers and manifest code a one-process run uses, so the
 * shards and manifest are byte-identical to that run's (but for `createdAt` and
 * `timings`, which hold each worker's). And `--status`: which workers to resubmit.
 */
import { rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { HardnegError } from '../errors.js'
import { outcomeRecorder, toolVersion, type MineResult, type ProgressEvent } from '../mine/mine.js'
import { finishPartials, type PartialGroup } from '../mine/partial.js'
import { MiningStats } from '../mine/stats.js'
import { KernelLog } from '../mine/kernels.js'
import { writeRowsAs } from '../output/formats.js'
import { composeManifest, MANIFEST_FILE, writeManifest, type ManifestHead } from '../output/manifest.js'
import { abandonOutput, commitOutput, openOutput } from '../output/output.js'
import type { MinedRow } from '../types.js'
import { formatIndexList } from './engine.js'
import { findParts, firstDifference, partName, partsDir, type PartFailure, type PartManifest } from './_parts.js'
import { planRun } from './_plan.js'
import { readRecords } from './_records.js'
import type { PartRecord, StatsCall } from './_segments.js'

/** Options of {@link mergeParts}. */
export interface MergeOptions {
  out: string // the run's output directory, where the workers wrote their parts
  keepParts?: boolean // keep the parts folder after a successful merge (default false: it is removed)
  onProgress?: (event: ProgressEvent) => void // rows written so far ('write' phase)
}

/** What {@link mergeParts} returns: the run, as {@link mineNegatives} returns it. */
export interface MergeResult extends MineResult {
  workers: number // parts merged
}

/** The state of a distributed run's parts. */
export interface PartsStatus {
  out: string // the output directory
  merged: boolean // it holds a finished run (manifest.json) and no parts are left
  workers: number | undefined // N of the run the parts agree on (undefined when no part says)
  poolParts: number | undefined // M
  fingerprint: string | undefined // the run's fingerprint
  done: number[] // workers whose part is finished and of this run
  failed: { index: number; why: string }[] // workers whose last attempt failed (and no part of this run exists)
  mismatched: { index: number; why: string }[] // workers whose part is of another run (other inputs, options or tool)
  missing: number[] // workers with neither part nor failure: not run, still running, or killed
  stale: string[] // parts of a run with another worker count, ignored
  resubmit: number[] // failed, mismatched and missing, sorted
}

/**
 * Where a distributed run stands. `resubmit` lists the workers to run again, which
 * {@link formatIndexList} writes as `sbatch --array=` takes them.
 *
 * @example
 * const status = await readPartsStatus('shards')
 * if (status.resubmit.length > 0) console.log(`sbatch --array=${formatIndexList(status.resubmit)} mine.sbatch`)
 */
export async function readPartsStatus(out: string): Promise<PartsStatus> {
  const finished = await stat(path.join(out, MANIFEST_FILE)).then(() => true, () => false)
  const empty: PartsStatus = { out, merged: false, workers: undefined, poolParts: undefined, fingerprint: undefined, done: [], failed: [], mismatched: [], missing: [], stale: [], resubmit: [] }
  const noParts = await stat(partsDir(out)).then(() => false, () => true)
  if (noParts && finished) return { ...empty, merged: true }
  const found = await findParts(out)
  // The run most parts agree on (the newest on a tie) is the one to complete.
  const byFingerprint = new Map<string, PartManifest[]>()
  for (const { manifest } of found.parts) byFingerprint.set(manifest.fingerprint, [...(byFingerprint.get(manifest.fingerprint) ?? []), manifest])
  const newest = (list: PartManifest[]): string => list.map((m) => m.worker.finishedAt).sort().at(-1) ?? ''
  const reference = [...byFingerprint.values()].sort((a, b) => b.length - a.length || newest(b).localeCompare(newest(a)))[0]
  const run = reference?.[0]?.run
  const workers = run?.workers ?? mostCommon(found.failures.map((f) => f.count))
  if (workers === undefined) {
    if (found.unreadable.length > 0) throw new HardnegError('E_BAD_FILE', `no readable part (${found.unreadable.map((u) => `${u.name}: ${u.why}`).join('; ')}), expected at least one finished worker's part.json`, { file: partsDir(out) })
    throw new HardnegError('E_BAD_FILE', 'holds no part and no failed worker, expected the parts that mine-negatives --worker-index I --worker-count N writes', { file: partsDir(out) })
  }
  const status: PartsStatus = { ...empty, merged: false, workers, poolParts: run?.poolParts, fingerprint: reference?.[0]?.fingerprint }
  for (let index = 0; index < workers; index++) {
    const name = partName(index, workers)
    const mine = found.parts.filter((p) => p.name === name).map((p) => p.manifest)
    const failure = found.failures.find((f: PartFailure) => f.index === index && f.count === workers)
    const unreadable = found.unreadable.find((u) => u.name === name)
    if (mine.some((m) => m.fingerprint === status.fingerprint)) status.done.push(index)
    else if (failure) status.failed.push({ index, why: `${failure.code}: ${failure.message} (on ${failure.host}, ${failure.failedAt})` })
    else if (unreadable) status.failed.push({ index, why: `its part.json is unreadable (${unreadable.why})` })
    else if (mine[0] && run) status.mismatched.push({ index, why: firstDifference(mine[0].run, run) })
    else status.missing.push(index)
  }
  status.stale = found.parts.filter((p) => p.manifest.worker.count !== workers).map((p) => p.name)
  status.resubmit = [...status.failed.map((f) => f.index), ...status.mismatched.map((m) => m.index), ...status.missing].sort((a, b) => a - b)
  return status
}

function mostCommon(values: readonly number[]): number | undefined {
  const counts = new Map<number, number>()
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
  return [...counts].sort((a, b) => b[1] - a[1] || b[0] - a[0])[0]?.[0]
}

/** The one-line reason a run cannot be merged yet, naming the workers. */
export function describeIncomplete(status: PartsStatus): string {
  const n = status.workers ?? 0
  const list = (items: { index: number; why: string }[]): string => items.map((f) => `${f.index} (${f.why})`).join(', ')
  const parts = [
    status.missing.length > 0 ? `missing: ${formatIndexList(status.missing)}` : '',
    status.failed.length > 0 ? `failed: ${list(status.failed)}` : '',
    status.mismatched.length > 0 ? `mismatched: ${list(status.mismatched)}` : '',
  ].filter((p) => p !== '')
  const ids = formatIndexList(status.resubmit)
  return `${status.resubmit.length} of ${n} workers not done (${parts.join('; ')}); expected a finished part from every worker: resubmit workers ${ids} (sbatch --array=${ids}), then merge again`
}

/**
 * Merges the parts under `options.out` into shards and a manifest, byte-identical to a
 * one-process run with the same options. Throws E_PARTS_INCOMPLETE naming the workers when
 * a part is missing, failed or of another run, and writes nothing that looks finished.
 *
 * @example
 * import { mergeParts } from 'hardneg'
 * const { manifest } = await mergeParts({ out: 'shards' })
 */
export async function mergeParts(options: MergeOptions): Promise<MergeResult> {
  const t0 = performance.now()
  const { out } = options
  const status = await readPartsStatus(out)
  if (status.merged) throw new HardnegError('E_PARTS_INCOMPLETE', `holds a merged run (${MANIFEST_FILE}) and no parts, expected the parts of a run not merged yet`, { file: out })
  if (status.resubmit.length > 0 || status.workers === undefined) throw new HardnegError('E_PARTS_INCOMPLETE', describeIncomplete(status), { file: out })
  const found = await findParts(out)
  const parts = status.done.map((index) => found.parts.find((p) => p.name === partName(index, status.workers as number) && p.manifest.fingerprint === status.fingerprint) as (typeof found.parts)[number])
  const run = (parts[0] as (typeof parts)[number]).manifest.run
  const version = await toolVersion()
  if (run.tool.version !== version) throw new HardnegError('E_BAD_OPTION', `parts written by hardneg ${run.tool.version}, this is ${version}, expected the version the workers ran`, { file: out })
  checkCoverage(parts.map((p) => p.manifest), out)
  // Before any output: the workers must agree on each group's kernel.
  const head = mergedHead(parts.map((p) => p.manifest), out)

  const staging = await openOutput(out, run.options.overwrite === true)
  try {
    const streams = parts.map((p) => records(path.join(p.dir, p.manifest.records.file), p.manifest))
    const setups = await Promise.all(streams.map((s) => s.next('setup')))
    const setup = setups[0] as Extract<PartRecord, { k: 'setup' }>
    const stats = new MiningStats(...(setup.stats as ConstructorParameters<typeof MiningStats>))
    const record = outcomeRecorder(stats)
    const total = parts.reduce((n, p) => n + p.manifest.rows.in, 0) / run.poolParts
    let written = 0
    async function* rows(): AsyncGenerator<MinedRow> {
      for (let share = 0; share < run.workers / run.poolParts; share++) {
        const main = streams[share * run.poolParts] as RecordStream
        const others = streams.slice(share * run.poolParts + 1, (share + 1) * run.poolParts)
        const mined = new Map(main.manifest.mined.map((m) => [m.group, m]))
        for (let r = await main.peek(); r !== undefined; r = await main.peek()) {
          await main.next()
          if (r.k === 'run' || r.k === 'group') replay(stats, r.calls)
          else if (r.k === 'query') {
            replay(stats, r.calls)
            for (const row of r.rows) {
              written++
              yield row
            }
          } else if (r.k === 'split') {
            const parts = others.slice(0, (planOf(run).partsOf[r.group] ?? 1) - 1)
            for (const p of parts) await p.next('split')
            const queries = mined.get(r.group)
            for (let q = queries ? queries.rows[1] - queries.rows[0] : 0; q > 0; q--) {
              const pieces = [(await main.next('partial')), ...(await Promise.all(parts.map((p) => p.next('partial'))))].map((x) => (x as Extract<PartRecord, { k: 'partial' }>).query)
              const done = await finishPartials(pieces, r.settings as PartialGroup)
              record(done.row, done.outcome, done.searched.pair, done.counts, done.query)
              if (done.row) {
                written++
                yield done.row
              }
            }
          } else throw new HardnegError('E_BAD_FILE', `record of kind '${r.k}' in the middle of the part, expected run, group, query or split records`, { file: main.file })
          options.onProgress?.({ phase: 'write', done: written, total })
        }
        for (const p of others) await p.end()
      }
    }
    const shards = await writeRowsAs(setup.format, rows(), { dir: staging, ...setup.layout })
    await commitOutput(out, staging, shards.map((s) => s.file))
    const manifest = composeManifest(head, stats.summarise(), shards, mergedTimings(parts.map((p) => p.manifest), (performance.now() - t0) / 1000))
    await writeManifest(out, manifest)
    if (options.keepParts !== true) await rm(partsDir(out), { recursive: true, force: true })
    return { out, manifest, summary: stats.summarise(), workers: parts.length }
  } catch (err) {
    await abandonOutput(staging)
    throw err
  }
}

const plans = new WeakMap<PartManifest['run'], ReturnType<typeof planRun>>()
function planOf(run: PartManifest['run']): ReturnType<typeof planRun> {
  let plan = plans.get(run)
  if (!plan) plans.set(run, (plan = planRun(run.groups, run.workers, run.poolParts)))
  return plan
}

/** Every part mines what the plan gives its worker, and the plan gives every query of every group to one share, every pool row to one part. */
function checkCoverage(parts: readonly PartManifest[], out: string): void {
  const run = parts[0]?.run
  if (!run) return
  const plan = planOf(run)
  for (const part of parts) {
    const expected = (plan.byWorker[part.worker.index] ?? []).flatMap((share, group) => (share ? [{ group, rows: share.rows, pool: share.pool }] : []))
    const why = firstDifference(part.mined, expected)
    if (why !== '') throw new HardnegError('E_PARTS_INCOMPLETE', `worker ${part.worker.index} mined other rows than its plan (mined.${why}), expected the share every worker computes from the same inputs`, { file: out })
  }
  run.groups.forEach((g, group) => {
    const rows: [number, number][] = []
    const pools = new Map<number, [number, number][]>()
    for (const part of parts) {
      const m = part.mined.find((x) => x.group === group)
      if (!m) continue
      if (part.worker.poolPart === 0) rows.push(m.rows)
      pools.set(part.worker.share, [...(pools.get(part.worker.share) ?? []), m.pool])
    }
    const tiles = (ranges: [number, number][], end: number): boolean => {
      let at = 0
      for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
        if (a !== at) return false
        at = b
      }
      return at === end
    }
    if (!tiles(rows, g.rows) || [...pools.values()].some((p) => !tiles(p, g.poolRows))) {
      throw new HardnegError('E_PARTS_INCOMPLETE', `group '${g.name}': the parts cover queries ${JSON.stringify(rows)} and pool rows ${JSON.stringify([...pools.values()])}, expected every one of its ${g.rows} queries and ${g.poolRows} pool rows exactly once`, { file: out })
    }
  })
}

function replay(stats: MiningStats, calls: readonly StatsCall[]): void {
  for (const [name, args] of calls) {
    const method = (stats as unknown as Record<string, unknown>)[name]
    if (typeof method !== 'function') throw new Error(`a part calls MiningStats.${name}, which this hardneg does not have`)
    ;(method as (...a: unknown[]) => unknown).apply(stats, args)
  }
}

/** The manifest head: the workers agree on all of it but what the image cache saved each, which is summed. */
function mergedHead(parts: readonly PartManifest[], out: string): ManifestHead {
  const first = (parts[0] as PartManifest).head
  const sum = (key: 'decoded' | 'cached'): number => parts.reduce((n, p) => n + (p.head.images?.[key] ?? 0), 0)
  const images = first.images ? { ...first, images: { ...first.images, decoded: sum('decoded'), cached: sum('cached') } } : first
  // Which kernel ran which group, and the int8 kernel's rescoring per query, are each worker's own: added up.
  const exactKernel = KernelLog.merge(parts.map((p) => p.kernels), out).summary()
  const { method, falseNegativeCounts } = first.search
  const head = { ...images, search: { method, falseNegativeCounts, ...(exactKernel ? { exactKernel } : {}) } }
  if (!first.rescore) return head
  // What the rescorer did is counted per worker: pairs, cache hits, requests. Summed, as the image counters are.
  const counts = { ...first.rescore.counts }
  for (const key of Object.keys(counts) as (keyof typeof counts)[]) counts[key] = parts.reduce((n, p) => n + (p.head.rescore?.counts[key] ?? 0), 0)
  return { ...head, rescore: { ...first.rescore, counts } }
}

/** Each phase summed over the workers, the merge's own time, the total of all, then every worker's timings. */
function mergedTimings(parts: readonly PartManifest[], merge: number): Record<string, number> {
  const timings: Record<string, number> = {}
  let total = merge
  for (const p of parts) {
    for (const [k, v] of Object.entries(p.timings)) {
      if (k === 'total') total += v
      else timings[k] = (timings[k] ?? 0) + v
    }
  }
  timings.merge = merge
  timings.total = total
  for (const p of parts) for (const [k, v] of Object.entries(p.timings)) timings[`worker.${p.worker.index}.${k}`] = v
  return timings
}

/** A part's records with one record of look-ahead, and checks of what comes next. */
interface RecordStream {
  file: string
  manifest: PartManifest
  peek(): Promise<PartRecord | undefined>
  next<K extends PartRecord['k']>(kind?: K): Promise<Extract<PartRecord, { k: K }> | undefined>
  end(): Promise<void>
}

function records(file: string, manifest: PartManifest): RecordStream {
  const iterator = readRecords(file, manifest.records)
  let ahead: PartRecord | undefined
  let loaded = false
  const peek = async (): Promise<PartRecord | undefined> => {
    if (!loaded) {
      const r = await iterator.next()
      ahead = r.done ? undefined : (r.value as PartRecord)
      loaded = true
    }
    return ahead
  }
  const where = `worker ${manifest.worker.index}`
  return {
    file,
    manifest,
    peek,
    async next(kind) {
      const r = await peek()
      loaded = false
      if (kind !== undefined && r?.k !== kind) throw new HardnegError('E_BAD_FILE', `${where}: a ${r?.k ?? 'missing'} record, expected a ${kind} record`, { file })
      return r as never
    },
    async end() {
      const r = await peek()
      if (r !== undefined) throw new HardnegError('E_BAD_FILE', `${where}: a ${r.k} record after its last query, expected the end of the part`, { file })
    },
  }
}
