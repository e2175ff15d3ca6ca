/**
 * One worker of a distributed run: `mine-negatives ... --worker-index I --worker-count N`.
 * It reads every input as a one-process run does, mines its share of the queries (against
 * the whole pool, or one part of it), and writes a part under `--out` for `hardneg merge`:
 * the rows it mined and every count it made, as data, exactly as the one-process run
 * would have made them.
 */
import { mkdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { HardnegError, isHardnegError } from '../errors.js'
import { runMining, type MineOptions } from '../mine/mine.js'
import { partialGroupOf, searchPoolPart } from '../mine/partial.js'
import type { GroupShare, GroupSize, PoolPartJob, RunRole } from '../mine/role.js'
import { MiningStats, type MineSummary } from '../mine/stats.js'
import type { KernelLogState } from '../mine/kernels.js'
import type { OutputFormat, RowLayout } from '../output/formats.js'
import type { ManifestHead } from '../output/manifest.js'
import { prepareOutput } from '../output/output.js'
import type { MinedRow } from '../types.js'
import type { WorkerSpec } from './engine.js'
import { commitPart, fingerprintOf, partsDir, RECORDS_FILE, tempPartDir, writeFailure, type PartManifest, type PartRun } from './_parts.js'
import { planRun, type RunPlan } from './_plan.js'
import { RecordWriter } from './_records.js'
import type { PartRecord, StatsCall } from './_segments.js'

/** What {@link mineWorkerPart} returns. */
export interface WorkerResult {
  out: string // the run's output directory
  part: string // the folder the part was written to
  manifest: PartManifest // its part.json
}

/**
 * Mines worker `worker.index`'s share of the run `options` describes and writes its part
 * under `options.out`. Every worker of a run gets the same options; `hardneg merge`
 * (`mergeParts`) then writes the shards and manifest a one-process run would have. On
 * failure it leaves a marker that `hardneg merge --status` reports, and rethrows.
 *
 * @example
 * import { detectWorker, mineWorkerPart } from 'hardneg'
 * const worker = detectWorker({ workerCount: 4 }) // index from SLURM_ARRAY_TASK_ID, say
 * if (worker) await mineWorkerPart({ pairs, queryEmbeddings, positiveEmbeddings, out: 'shards' }, worker)
 */
export async function mineWorkerPart(options: MineOptions, worker: WorkerSpec): Promise<WorkerResult> {
  let role: PartRole | undefined
  try {
    role = new PartRole(worker, options)
    return await runMining(options, role)
  } catch (err) {
    await writeFailure(options.out, {
      index: worker.index,
      count: worker.count,
      ...(role?.fingerprint ? { fingerprint: role.fingerprint } : {}),
      code: isHardnegError(err) ? err.code : 'internal',
      message: err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err),
      host: os.hostname(),
      pid: process.pid,
      failedAt: new Date().toISOString(),
    }).catch(() => undefined)
    throw err
  }
}

/** A segment of the record stream being filled; `keep` false drops it (another worker writes it). */
interface OpenSegment {
  record: PartRecord
  keep: boolean
}

class PartRole implements RunRole<WorkerResult> {
  fingerprint: string | undefined
  private readonly startedAt = new Date().toISOString()
  private temp = ''
  private writer: RecordWriter | undefined
  private writing: Promise<void> = Promise.resolve()
  private runPlan: RunPlan | undefined
  private groups: GroupSize[] = []
  private mine: (GroupShare | undefined)[] = []
  private statsArgs: unknown[] = []
  private current: OpenSegment
  private group = -1
  private queries = 0
  private rowsOut = 0

  constructor(
    private readonly worker: WorkerSpec,
    private readonly options: MineOptions,
  ) {
    // Run-wide counts made before any group (bad images) are worker 0's to write.
    this.current = { record: { k: 'run', calls: [] }, keep: worker.index === 0 }
    // The rescore stage selects each query's final negatives; with a split pool no worker holds a query's whole ranking.
    if (options.rescoreUrl !== undefined && worker.poolParts > 1) {
      throw new HardnegError('E_BAD_OPTION', `--rescore-url with --pool-parts ${worker.poolParts}, expected --pool-parts 1: the rescore stage needs each query's whole ranking, which a split pool has only at the merge`)
    }
    if (worker.poolParts > 1 && options.search === 'hnsw') {
      throw new HardnegError('E_BAD_OPTION', `--pool-parts ${worker.poolParts} with --search hnsw, expected --search exact (or auto): a split pool merges exactly only from exact scores`)
    }
  }

  async open(out: string, overwrite: boolean): Promise<void> {
    await prepareOutput(out, overwrite)
    await mkdir(partsDir(out), { recursive: true })
    this.temp = tempPartDir(out, this.worker.index, this.worker.count)
    await rm(this.temp, { recursive: true, force: true })
    await mkdir(this.temp)
    this.writer = await RecordWriter.create(path.join(this.temp, RECORDS_FILE))
  }

  plan(groups: readonly GroupSize[]): (GroupShare | undefined)[] {
    this.groups = [...groups]
    this.runPlan = planRun(groups, this.worker.count, this.worker.poolParts)
    const split = groups.findIndex((g, i) => (this.runPlan?.partsOf[i] ?? 1) > 1 && g.method !== 'exact')
    if (split >= 0) {
      const g = groups[split] as GroupSize
      throw new HardnegError('E_BAD_OPTION', `--pool-parts ${this.worker.poolParts}: group '${g.name}' (${g.rows} queries x ${g.poolRows} pool rows) would be searched with ${g.method}, expected exact search for every group whose pool is split: pass --search exact`)
    }
    this.mine = this.runPlan.byWorker[this.worker.index] ?? []
    return this.mine
  }

  stats(args: ConstructorParameters<typeof MiningStats>): MiningStats {
    this.statsArgs = args
    const stats = new MiningStats(...args)
    // Every call is kept as data ([method, arguments]), for the merge to make again in order.
    return new Proxy(stats, {
      get: (target, name, receiver) => {
        const value: unknown = Reflect.get(target, name, receiver)
        if (typeof value !== 'function' || name === 'summarise' || typeof name !== 'string') return value
        return (...callArgs: unknown[]) => {
          const record = this.current.record
          if (this.current.keep && 'calls' in record) record.calls.push([name, callArgs] satisfies StatsCall)
          return (value as (...a: unknown[]) => unknown).apply(target, callArgs)
        }
      },
    })
  }

  enterGroup(index: number): void {
    this.group = index
    const share = this.mine[index]
    // A group's own counts (made before its first query) are written once: by the worker that mines its first query against the start of its pool.
    this.begin({ k: 'group', group: index, calls: [] }, share?.rows[0] === 0 && share.pool[0] === 0)
  }

  enterQuery(row: number): void {
    this.queries++
    this.begin({ k: 'query', group: this.group, row, calls: [], rows: [] }, true)
  }

  async writeRows(rows: AsyncIterable<MinedRow>, format: OutputFormat, layout: RowLayout): Promise<void> {
    this.push({ k: 'setup', stats: this.statsArgs, format, layout })
    for await (const row of rows) {
      const record = this.current.record
      if (record.k !== 'query') throw new Error(`row ${row.id} yielded outside a query's outcome`)
      record.rows.push(row)
      this.rowsOut++
      await this.writing
    }
  }

  async minePoolPart(job: PoolPartJob): Promise<void> {
    this.enterPartial(job.group)
    this.push({ k: 'split', group: job.group, settings: partialGroupOf(job.options) })
    await searchPoolPart(job.options, async (query) => {
      this.queries++
      this.push({ k: 'partial', group: job.group, row: query.pair.row, query })
      await this.writing
    })
  }

  async finish(head: ManifestHead, _summary: MineSummary, timings: Record<string, number>, kernels: KernelLogState): Promise<WorkerResult> {
    this.begin({ k: 'run', calls: [] }, false)
    await this.writing
    const records = await (this.writer as RecordWriter).close()
    this.writer = undefined
    const run: PartRun = {
      tool: head.tool,
      inputs: head.inputs,
      options: head.options,
      search: { method: head.search.method, falseNegativeCounts: head.search.falseNegativeCounts },
      ...(head.images ? { images: { root: head.images.root, distinct: head.images.distinct, badRows: head.images.badRows } } : {}),
      workers: this.worker.count,
      poolParts: this.worker.poolParts,
      groups: this.groups,
    }
    this.fingerprint = fingerprintOf(run)
    const { index, count, poolParts } = this.worker
    const manifest: PartManifest = {
      format: 'hardneg-part/1',
      fingerprint: this.fingerprint,
      run,
      head,
      kernels,
      worker: {
        index,
        count,
        share: Math.floor(index / poolParts),
        poolPart: index % poolParts,
        engine: this.worker.engine,
        source: this.worker.source,
        host: os.hostname(),
        pid: process.pid,
        startedAt: this.startedAt,
        finishedAt: new Date().toISOString(),
      },
      mined: this.mine.flatMap((share, group) => (share ? [{ group, rows: share.rows, pool: share.pool }] : [])),
      records: { file: RECORDS_FILE, ...records },
      rows: { in: this.queries, out: this.rowsOut },
      timings,
    }
    const part = await commitPart(this.options.out, this.temp, manifest)
    return { out: this.options.out, part, manifest }
  }

  async abandon(): Promise<void> {
    await this.writer?.abort()
    if (this.temp !== '') await rm(this.temp, { recursive: true, force: true })
  }

  /** Partial results of a split pool are whole records of their own; they follow the group's segment. */
  private enterPartial(group: number): void {
    this.begin({ k: 'run', calls: [] }, false)
    this.group = group
  }

  /** Closes the open segment (written when kept) and opens `record`. */
  private begin(record: PartRecord, keep: boolean): void {
    if (this.current.keep) this.push(this.current.record)
    this.current = { record, keep }
  }

  private push(record: PartRecord): void {
    const writer = this.writer as RecordWriter
    this.writing = this.writing.then(() => writer.write(record))
  }
}
