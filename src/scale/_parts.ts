/**
 * The layout of a distributed run's parts under `--out`, and what each part says about
 * itself. Private to scale/.
 *
 *   DIR/.hardneg-parts/worker-00002-of-00004/part.json       a finished part: its manifest ...
 *   DIR/.hardneg-parts/worker-00002-of-00004/records.bin.gz  ... and its records (_records.ts)
 *   DIR/.hardneg-parts/worker-00002-of-00004.failed.json     the last failure of worker 2
 *   DIR/.hardneg-parts/.worker-00002-of-00004.tmp-HOST-PID/  a part being written
 *
 * The folder is hidden and holds no manifest.json or part-NNNNN shard, so nothing a
 * worker writes looks like a finished run; each worker writes only names with its own
 * index, so workers on one shared directory never touch each other's files.
 */
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { HardnegError } from '../errors.js'
import type { GroupSize } from '../mine/role.js'
import type { KernelLogState } from '../mine/kernels.js'
import type { ManifestHead } from '../output/manifest.js'
import type { RecordFileInfo } from './_records.js'
import type { WorkerEngine } from './engine.js'

/** The hidden folder of parts inside `--out`. */
export const PARTS_DIR = '.hardneg-parts'

/** The record file inside a part's folder. */
export const RECORDS_FILE = 'records.bin.gz'

/** The manifest inside a part's folder. */
export const PART_MANIFEST = 'part.json'

const PART_FORMAT = 'hardneg-part/1'

/** Everything the workers of one run must agree on; its sha256 is the run's fingerprint. */
export interface PartRun {
  tool: ManifestHead['tool'] // hardneg and its version
  inputs: ManifestHead['inputs'] // input files with sha256
  options: ManifestHead['options'] // the effective options (the worker flags are not among them)
  search: Omit<ManifestHead['search'], 'exactKernel'> // as the manifest will say (the kernels are each worker's, in `kernels`)
  images?: { root: string; distinct: number; badRows: number } // runs with images: what every worker found
  workers: number // N
  poolParts: number // M
  groups: GroupSize[] // every group's size, in order: what the plan is made from
}

/** A finished part's manifest (`part.json`). */
export interface PartManifest {
  format: typeof PART_FORMAT
  fingerprint: string // sha256 of the run (below)
  run: PartRun
  head: ManifestHead // the manifest head this worker computed (images with its own cache counts)
  kernels: KernelLogState // the exact kernels this worker's groups ran and its int8 rescoring counts, which the merge adds up
  worker: {
    index: number // 0-based
    count: number // N
    share: number // query share, index / M
    poolPart: number // index mod M
    engine: WorkerEngine // where the index came from
    source: string // the flags and variables read
    host: string // os.hostname()
    pid: number
    startedAt: string // ISO 8601
    finishedAt: string
  }
  mined: { group: number; rows: [number, number]; pool: [number, number] }[] // per group mined: query range and pool range
  records: RecordFileInfo & { file: string } // the record file
  rows: { in: number; out: number } // queries this worker mined, rows it produced (of a split pool: none until the merge)
  timings: Record<string, number> // seconds per phase, and 'total'
}

/** A failed worker's marker (`worker-IIIII-of-NNNNN.failed.json`). */
export interface PartFailure {
  index: number
  count: number
  fingerprint?: string // when the worker got that far
  code: string // the error's code (E_...), or 'internal' for a bug
  message: string // its one-line message
  host: string
  pid: number
  failedAt: string
}

/** `worker-00002-of-00004`. */
export function partName(index: number, count: number): string {
  return `worker-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}`
}

/** The parts folder of `out`. */
export function partsDir(out: string): string {
  return path.join(out, PARTS_DIR)
}

/** A fresh temporary folder name for worker `index` of `count`, unique across hosts. */
export function tempPartDir(out: string, index: number, count: number): string {
  return path.join(partsDir(out), `.${partName(index, count)}.tmp-${os.hostname()}-${process.pid}`)
}

/** The run's fingerprint: sha256 of its canonical JSON. */
export function fingerprintOf(run: PartRun): string {
  return createHash('sha256').update(JSON.stringify(run)).digest('hex')
}

/** Puts a finished part in place of any earlier part of the same worker, then clears its failure marker. */
export async function commitPart(out: string, temp: string, manifest: PartManifest): Promise<string> {
  await writeFile(path.join(temp, PART_MANIFEST), JSON.stringify(manifest, null, 2) + '\n')
  const name = partName(manifest.worker.index, manifest.worker.count)
  const final = path.join(partsDir(out), name)
  await rm(final, { recursive: true, force: true })
  await rename(temp, final)
  await rm(path.join(partsDir(out), `${name}.failed.json`), { force: true })
  return final
}

/** Records that worker `failure.index` failed (an earlier finished part of it stays). */
export async function writeFailure(out: string, failure: PartFailure): Promise<void> {
  const file = path.join(partsDir(out), `${partName(failure.index, failure.count)}.failed.json`)
  await mkdir(partsDir(out), { recursive: true })
  const temp = `${file}.tmp-${os.hostname()}-${process.pid}`
  await writeFile(temp, JSON.stringify(failure, null, 2) + '\n')
  await rename(temp, file)
}

/** What the parts folder holds: finished parts and failure markers, each with the name it was found under. */
export interface PartsFound {
  parts: { name: string; dir: string; manifest: PartManifest }[]
  failures: PartFailure[]
  unreadable: { name: string; why: string }[] // a part.json that cannot be parsed (a damaged part)
}

/** Reads the parts folder of `out`. Throws E_BAD_FILE when there is none. */
export async function findParts(out: string): Promise<PartsFound> {
  const dir = partsDir(out)
  const names = await readdir(dir).catch((err: unknown) => {
    throw new HardnegError('E_BAD_FILE', `no ${PARTS_DIR}/ folder (${(err as NodeJS.ErrnoException).code ?? String(err)}), expected the parts that mine-negatives --worker-index I --worker-count N writes into this --out`, { file: out })
  })
  const found: PartsFound = { parts: [], failures: [], unreadable: [] }
  for (const name of names.sort()) {
    if (/^worker-\d{5,}-of-\d{5,}$/.test(name)) {
      try {
        const manifest = JSON.parse(await readFile(path.join(dir, name, PART_MANIFEST), 'utf8')) as PartManifest
        if (manifest.format !== PART_FORMAT) throw new Error(`format ${JSON.stringify(manifest.format)}, expected ${PART_FORMAT}`)
        found.parts.push({ name, dir: path.join(dir, name), manifest })
      } catch (err) {
        found.unreadable.push({ name, why: (err as Error).message })
      }
    } else if (/^worker-\d{5,}-of-\d{5,}\.failed\.json$/.test(name)) {
      try {
        found.failures.push(JSON.parse(await readFile(path.join(dir, name), 'utf8')) as PartFailure)
      } catch {
        // a marker being replaced; the next look sees it
      }
    }
  }
  return found
}

/** The first place two runs differ, as `options.k: 9, expected 8`; '' when they agree. */
export function firstDifference(found: unknown, expected: unknown, at = ''): string {
  if (JSON.stringify(found) === JSON.stringify(expected)) return ''
  if (found !== null && expected !== null && typeof found === 'object' && typeof expected === 'object' && Array.isArray(found) === Array.isArray(expected)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(found)])]
    for (const key of keys) {
      const d = firstDifference((found as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key], at === '' ? key : `${at}.${key}`)
      if (d !== '') return d
    }
  }
  const show = (v: unknown): string => {
    const text = v === undefined ? 'absent' : JSON.stringify(v)
    return text.length > 60 ? `${text.slice(0, 57)}...` : text
  }
  return `${at || 'run'}: ${show(found)}, expected ${show(expected)}`
}
