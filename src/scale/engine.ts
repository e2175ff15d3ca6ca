/**
 * Which worker of a distributed run this process is: the index and count from the
 * `--worker-index`/`--worker-count` flags, or else from the environment the job engine
 * sets (Slurm job arrays, Kubernetes Indexed Jobs, AWS Batch array jobs, Google Cloud
 * Batch); and the `1,3-5` index lists that `sbatch --array=` takes.
 */
import { HardnegError } from '../errors.js'

/** The engines whose environment names a worker. */
export type WorkerEngine = 'flags' | 'slurm' | 'kubernetes' | 'aws-batch' | 'gcp-batch'

/** One worker of a distributed run. */
export interface WorkerSpec {
  index: number // 0-based worker index, < count
  count: number // workers in the run (N); with poolParts M, N / M query shares times M pool parts
  poolParts: number // pool parts per group (M, default 1: every worker scores the whole pool)
  engine: WorkerEngine // where the index came from ('flags' when --worker-index was given)
  source: string // the flags or variables read, for messages, e.g. 'SLURM_ARRAY_TASK_ID=3 - SLURM_ARRAY_TASK_MIN=0, --worker-count 4'
}

/** What the command line said about workers (each undefined when its flag was not given). */
export interface WorkerFlags {
  workerIndex?: number | undefined // --worker-index
  workerCount?: number | undefined // --worker-count
  poolParts?: number | undefined // --pool-parts
}

/** One engine's variables: the index, and the count when the engine gives one. */
interface EngineVars {
  engine: Exclude<WorkerEngine, 'flags'>
  index: string
  min?: string // the index is relative to this (Slurm: an array may start at any id)
  count?: string
  label: string // for messages
}

/** In this order when several are set (a Slurm job inside a Kubernetes pod, say). */
const ENGINES: readonly EngineVars[] = [
  { engine: 'slurm', index: 'SLURM_ARRAY_TASK_ID', min: 'SLURM_ARRAY_TASK_MIN', count: 'SLURM_ARRAY_TASK_COUNT', label: 'Slurm job array' },
  { engine: 'kubernetes', index: 'JOB_COMPLETION_INDEX', label: 'Kubernetes Indexed Job' },
  { engine: 'aws-batch', index: 'AWS_BATCH_JOB_ARRAY_INDEX', count: 'AWS_BATCH_JOB_ARRAY_SIZE', label: 'AWS Batch array job' },
  { engine: 'gcp-batch', index: 'BATCH_TASK_INDEX', count: 'BATCH_TASK_COUNT', label: 'Google Cloud Batch job' },
]

/**
 * The worker this process is, or undefined for a one-process run (no worker flag and no
 * engine variable). Rules:
 * - a flag beats the environment; a missing index or count comes from the first engine
 *   (in the order Slurm, Kubernetes, AWS Batch, Google Cloud Batch) whose index variable is set;
 * - Slurm's index is `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` while the whole array
 *   runs; when `--worker-count` differs from `SLURM_ARRAY_TASK_COUNT` a subset of the
 *   array was resubmitted (`sbatch --array=1,3-5`, the list `hardneg merge --status`
 *   prints), and the task id itself is the worker index (when it is below the count);
 * - an index without a count is an error (Kubernetes gives none: pass `--worker-count`),
 *   as are a count without an index, an index >= count, and a count not divisible by
 *   `--pool-parts`.
 *
 * @example
 * const worker = detectWorker({ workerCount: 4 }, { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '4' })
 * // { index: 2, count: 4, poolParts: 1, engine: 'slurm', source: 'SLURM_ARRAY_TASK_ID=2 - SLURM_ARRAY_TASK_MIN=0, --worker-count 4' }
 */
export function detectWorker(flags: WorkerFlags, env: Readonly<Record<string, string | undefined>> = process.env): WorkerSpec | undefined {
  const vars = ENGINES.find((e) => env[e.index] !== undefined && env[e.index] !== '')
  const poolParts = flags.poolParts ?? 1
  checkFlag('--pool-parts', poolParts, 1)
  if (flags.workerIndex === undefined && flags.workerCount === undefined && vars === undefined) {
    if (flags.poolParts !== undefined) {
      throw new HardnegError('E_BAD_OPTION', `--pool-parts ${poolParts}: not a worker, expected --worker-index and --worker-count (or an array job's environment) with it`)
    }
    return undefined
  }
  if (flags.workerIndex !== undefined) checkFlag('--worker-index', flags.workerIndex, 0)
  if (flags.workerCount !== undefined) checkFlag('--worker-count', flags.workerCount, 1)
  const envCount = vars?.count !== undefined && env[vars.count] !== undefined && env[vars.count] !== '' ? envInt(vars.count, env, 1) : undefined
  const count = flags.workerCount ?? envCount
  const sources: string[] = []
  let index: number
  let engine: WorkerEngine = 'flags'
  if (flags.workerIndex !== undefined) {
    index = flags.workerIndex
    sources.push(`--worker-index ${index}`)
  } else if (vars !== undefined) {
    engine = vars.engine
    const id = envInt(vars.index, env, 0)
    const min = vars.min !== undefined && env[vars.min] !== undefined && env[vars.min] !== '' ? envInt(vars.min, env, 0) : 0
    // A resubmitted subset of an array renumbers nothing: its ids are the worker indices.
    // (Unless that id could not be a worker index at all: then the array is numbered from its minimum after all.)
    const resubmitted = vars.engine === 'slurm' && flags.workerCount !== undefined && envCount !== undefined && envCount !== flags.workerCount && id < flags.workerCount
    index = resubmitted ? id : id - min
    sources.push(resubmitted || vars.min === undefined ? `${vars.index}=${id}` : `${vars.index}=${id} - ${vars.min}=${min}`)
    if (index < 0) throw new HardnegError('E_BAD_OPTION', `${vars.index} ${id} is below ${vars.min} ${min}, expected an array task id >= its minimum`)
  } else {
    throw new HardnegError('E_BAD_OPTION', `--worker-count ${String(count)} without a worker index, expected --worker-index I (or an array job's index variable: ${ENGINES.map((e) => e.index).join(', ')})`)
  }
  if (count === undefined) {
    const where = engine === 'flags' ? 'given by --worker-index' : `from ${vars?.index} (${vars?.label})`
    throw new HardnegError('E_BAD_OPTION', `worker index ${index} ${where} without a worker count, expected --worker-count N${vars?.count === undefined && engine !== 'flags' ? ` (a ${vars?.label} gives no count)` : ''}`)
  }
  sources.push(flags.workerCount !== undefined ? `--worker-count ${count}` : `${vars?.count}=${count}`)
  const source = sources.join(', ')
  if (index >= count) throw new HardnegError('E_BAD_OPTION', `worker index ${index} (${source}), expected an index below the worker count ${count}`)
  if (count % poolParts !== 0) {
    throw new HardnegError('E_BAD_OPTION', `--worker-count ${count} with --pool-parts ${poolParts}, expected a count divisible by the pool parts (query shares x pool parts)`)
  }
  return { index, count, poolParts, engine, source }
}

function checkFlag(flag: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) throw new HardnegError('E_BAD_OPTION', `${flag}: ${String(value)}, expected an integer >= ${min}`)
}

function envInt(name: string, env: Readonly<Record<string, string | undefined>>, min: number): number {
  const text = env[name] ?? ''
  const n = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min) throw new HardnegError('E_BAD_OPTION', `${name}: '${text}', expected an integer >= ${min}`)
  return n
}

/**
 * Indices as `sbatch --array=` takes them: sorted, runs of three or more as `a-b`
 * (`[1, 3, 4, 5]` -> `1,3-5`); '' for none.
 */
export function formatIndexList(indices: Iterable<number>): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b)
  const parts: string[] = []
  for (let i = 0; i < sorted.length; ) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] as number) + 1) j++
    const a = sorted[i] as number
    const b = sorted[j] as number
    if (j - i >= 2) parts.push(`${a}-${b}`)
    else for (let k = i; k <= j; k++) parts.push(String(sorted[k]))
    i = j + 1
  }
  return parts.join(',')
}

/** The inverse of {@link formatIndexList} (also `a-b:step` is not accepted); throws E_BAD_OPTION on anything else. */
export function parseIndexList(text: string): number[] {
  const out: number[] = []
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part)
    if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) throw new HardnegError('E_BAD_OPTION', `index list '${text}': '${part}', expected I or A-B with A <= B, comma-separated`)
    for (let i = Number(m[1]); i <= Number(m[2] ?? m[1]); i++) out.push(i)
  }
  return out
}
