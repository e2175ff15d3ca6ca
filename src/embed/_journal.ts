/**
 * The checkpoint of an unfinished `embed` run, in a hidden work directory inside `--out`:
 * `plan.json` (the command's fingerprint, written first), the output matrices under their
 * final names, and `journal.jsonl`, one line per finished batch appended as it arrives
 * (the input range and a sha1 of the bytes written for it). Every few seconds the
 * matrices are synced and a `sync` line follows; on resume, batches before the last sync
 * line are trusted and those after it are read back and checked against their sha1 (a
 * machine that lost power may have kept the journal line but not the data). A killed
 * process loses nothing it had journaled. Private to the embed folder.
 */
import { createHash } from 'node:crypto'
import { mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { HardnegError } from '../errors.js'

/** The hidden work directory inside `--out`. */
export const WORK_DIR = '.hardneg-embed'
const PLAN = 'plan.json'
const JOURNAL = 'journal.jsonl'
const SYNC_EVERY_MS = 5000

/** What a run's outputs depend on: a resumed run must match it field by field. */
export type Fingerprint = Record<string, unknown>

/** A finished batch: inputs [start, end) and the sha1 of their encoded vectors in input order. */
export interface DoneRange {
  start: number
  end: number
  sha1: string
}

/** sha1 of encoded bytes, as the journal records it. */
export function rangeDigest(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex')
}

/**
 * The first field whose value differs between an unfinished run's fingerprint and this
 * command's, as `name 'old' -> 'new'`; undefined when they agree.
 */
export function fingerprintChange(before: Fingerprint, now: Fingerprint): string | undefined {
  const keys = [...new Set([...Object.keys(now), ...Object.keys(before)])]
  for (const k of keys) {
    const a = JSON.stringify(before[k] ?? null)
    const b = JSON.stringify(now[k] ?? null)
    if (a !== b) return `${k} ${short(a)} -> ${short(b)}`
  }
  return undefined
}

function short(json: string): string {
  return json.length > 120 ? `${json.slice(0, 117)}...` : json
}

/** An unfinished run found in the work directory. */
export interface Unfinished {
  fingerprint: Fingerprint // as plan.json holds it
  trusted: DoneRange[] // batches journaled before the last sync line
  unsynced: DoneRange[] // batches journaled after it: to be read back and checked
}

/** Reads the work directory of `out`, if an unfinished run left one. */
export async function readUnfinished(out: string): Promise<Unfinished | undefined> {
  const dir = path.join(out, WORK_DIR)
  let plan: string
  try {
    plan = await readFile(path.join(dir, PLAN), 'utf8')
  } catch {
    return undefined
  }
  let fingerprint: Fingerprint
  try {
    fingerprint = JSON.parse(plan) as Fingerprint
  } catch {
    return undefined
  }
  let text = ''
  try {
    text = await readFile(path.join(dir, JOURNAL), 'utf8')
  } catch {
    // no batch finished yet
  }
  const trusted: DoneRange[] = []
  let unsynced: DoneRange[] = []
  // The last line may be torn (killed while appending): only whole lines count.
  const lines = text.endsWith('\n') ? text.split('\n') : text.split('\n').slice(0, -1)
  for (const line of lines) {
    if (line === '') continue
    let entry: { r?: [number, number]; h?: string; sync?: number }
    try {
      entry = JSON.parse(line) as typeof entry
    } catch {
      continue
    }
    if (entry.sync !== undefined) {
      trusted.push(...unsynced)
      unsynced = []
    } else if (Array.isArray(entry.r) && typeof entry.h === 'string') {
      unsynced.push({ start: entry.r[0], end: entry.r[1], sha1: entry.h })
    }
  }
  return { fingerprint, trusted, unsynced }
}

/** Removes the work directory of `out`. */
export async function removeWork(out: string): Promise<void> {
  await rm(path.join(out, WORK_DIR), { recursive: true, force: true })
}

/** Starts a fresh work directory holding `fingerprint`; returns its path. */
export async function startWork(out: string, fingerprint: Fingerprint): Promise<string> {
  const dir = path.join(out, WORK_DIR)
  await rm(dir, { recursive: true, force: true })
  try {
    await mkdir(dir, { recursive: true })
    const tmp = path.join(dir, `${PLAN}.tmp`)
    await writeFile(tmp, JSON.stringify(fingerprint, null, 2) + '\n')
    await rename(tmp, path.join(dir, PLAN))
  } catch (err) {
    throw new HardnegError('E_OUTPUT', `cannot create the work directory (${(err as NodeJS.ErrnoException).code ?? String(err)}), expected a writable path`, { file: dir })
  }
  return dir
}

/** Appends finished batches, one line each and in the order they finish; syncs the data now and then. */
export class JournalWriter {
  private chain: Promise<void> = Promise.resolve()
  private lastSync = performance.now()
  private fh: FileHandle | undefined

  constructor(
    private readonly dir: string,
    private readonly syncData: () => Promise<void>, // makes the matrices' written rows durable
  ) {}

  /** Records a finished batch; resolves once its line is written. */
  record(range: DoneRange): Promise<void> {
    const line = JSON.stringify({ r: [range.start, range.end], h: range.sha1 }) + '\n'
    return this.enqueue(async () => {
      this.fh ??= await open(path.join(this.dir, JOURNAL), 'a')
      await this.fh.write(line)
      if (performance.now() - this.lastSync >= SYNC_EVERY_MS) await this.syncNow()
    })
  }

  /** Syncs the data, then marks every line so far as durable. */
  sync(): Promise<void> {
    return this.enqueue(() => this.syncNow())
  }

  async close(): Promise<void> {
    await this.enqueue(async () => {
      await this.fh?.close()
      this.fh = undefined
    })
  }

  private async syncNow(): Promise<void> {
    await this.syncData()
    this.fh ??= await open(path.join(this.dir, JOURNAL), 'a')
    await this.fh.write('{"sync":1}\n')
    this.lastSync = performance.now()
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.chain.then(task)
    this.chain = next.catch(() => undefined)
    return next
  }
}
