/**
 * The rescore cache: every score a rescorer returned, keyed by a 64-bit hash of
 * (rescorer identity, query side, candidate side), appended to one file as it arrives so
 * that a re-run, or a run killed mid-way and started again, pays for nothing already
 * scored. Private to the rescore folder.
 *
 * File: a 24-byte header (`HNRESCORE1` and padding), then 24-byte records: key (8 bytes),
 * score (float64, 8 bytes), check (8 bytes, a hash of the first 16). Records are appended
 * with one write each batch on an O_APPEND handle, so several processes (scale-out
 * workers) can share the file; a record whose check fails (a torn tail after a kill) is
 * skipped when the file is read. In memory the keys live in an open-addressing table of
 * typed arrays: 13.7M scores (273k rows x 50) take ~350 MB.
 */
import { createHash } from 'node:crypto'
import { open, readFile, type FileHandle } from 'node:fs/promises'
import { HardnegError } from '../errors.js'

const MAGIC = Buffer.from('HNRESCORE1\n'.padEnd(24, ' '), 'latin1')
const RECORD = 24

/** A 64-bit key as two unsigned 32-bit halves. */
export interface CacheKey {
  hi: number
  lo: number
}

/** The key of one (identity, query side, candidate side): the first 8 bytes of their sha256. */
export function cacheKey(identity: string, query: string, candidate: string): CacheKey {
  const h = createHash('sha256').update(identity).update('\u0000').update(query).update('\u0000').update(candidate).digest()
  return { hi: h.readUInt32LE(0), lo: h.readUInt32LE(4) }
}

function check(bytes: Buffer, at: number): [number, number] {
  // FNV-1a over the 16 bytes, two lanes: enough to tell a torn or shifted record from a written one.
  let a = 0x811c9dc5
  let b = 0x01000193 ^ 0x5bd1e995
  for (let i = 0; i < 16; i++) {
    const x = bytes[at + i] as number
    a = Math.imul(a ^ x, 0x01000193) >>> 0
    b = Math.imul(b ^ x ^ i, 0x5bd1e995) >>> 0
  }
  return [a, b]
}

/** Scores by key, loaded from and appended to one cache file. */
export class ScoreCache {
  private hi: Uint32Array
  private lo: Uint32Array
  private values: Float64Array
  private used: Uint8Array
  private mask: number
  private count = 0
  private pending: Buffer[] = []
  private pendingRecords = 0

  private constructor(
    readonly file: string,
    private handle: FileHandle,
    readonly loaded: number, // records read when the cache was opened
    readonly skipped: number, // records whose check failed (a torn tail), left out
  ) {
    this.hi = new Uint32Array(1024)
    this.lo = new Uint32Array(1024)
    this.values = new Float64Array(1024)
    this.used = new Uint8Array(1024)
    this.mask = 1023
  }

  /** Opens (or creates) the cache file and reads every record it holds. */
  static async open(file: string): Promise<ScoreCache> {
    let bytes: Buffer
    try {
      bytes = await readFile(file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw cacheError(file, err, 'cannot read')
      bytes = Buffer.alloc(0)
    }
    if (bytes.length > 0 && !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new HardnegError('E_BAD_FILE', `not a hardneg rescore cache (starts with ${JSON.stringify(bytes.subarray(0, 10).toString('latin1'))}), expected 'HNRESCORE1'; remove it or choose another --rescore-cache`, { file })
    }
    let handle: FileHandle
    try {
      handle = await open(file, 'a')
      if (bytes.length === 0) await handle.write(MAGIC)
    } catch (err) {
      throw cacheError(file, err, 'cannot write')
    }
    const records = Math.floor(Math.max(0, bytes.length - MAGIC.length) / RECORD)
    let skipped = 0
    const entries: [number, number, number][] = []
    for (let r = 0; r < records; r++) {
      const at = MAGIC.length + r * RECORD
      const [a, b] = check(bytes, at)
      if (bytes.readUInt32LE(at + 16) !== a || bytes.readUInt32LE(at + 20) !== b) {
        skipped++
        continue
      }
      entries.push([bytes.readUInt32LE(at), bytes.readUInt32LE(at + 4), bytes.readDoubleLE(at + 8)])
    }
    // A torn tail (a kill mid-write) leaves a partial record: count it as skipped.
    if ((bytes.length - MAGIC.length) % RECORD !== 0 && bytes.length > MAGIC.length) skipped++
    const cache = new ScoreCache(file, handle, entries.length, skipped)
    for (const [hi, lo, v] of entries) cache.set({ hi, lo }, v)
    return cache
  }

  /** Scores held. */
  get size(): number {
    return this.count
  }

  /** The score for `key`, or undefined. */
  get(key: CacheKey): number | undefined {
    for (let i = key.lo & this.mask; ; i = (i + 1) & this.mask) {
      if (this.used[i] === 0) return undefined
      if (this.hi[i] === key.hi && this.lo[i] === key.lo) return this.values[i]
    }
  }

  /** Records a new score in memory and queues it for the file (see {@link flush}). */
  put(key: CacheKey, score: number): void {
    if (this.get(key) !== undefined) return
    this.set(key, score)
    const rec = Buffer.alloc(RECORD)
    rec.writeUInt32LE(key.hi, 0)
    rec.writeUInt32LE(key.lo, 4)
    rec.writeDoubleLE(score, 8)
    const [a, b] = check(rec, 0)
    rec.writeUInt32LE(a, 16)
    rec.writeUInt32LE(b, 20)
    this.pending.push(rec)
    this.pendingRecords++
  }

  /** Appends the queued records in one write: a batch of scores is on disk when this resolves. */
  async flush(): Promise<void> {
    if (this.pendingRecords === 0) return
    const data = Buffer.concat(this.pending)
    this.pending = []
    this.pendingRecords = 0
    try {
      await this.handle.write(data)
    } catch (err) {
      throw cacheError(this.file, err, 'cannot append to')
    }
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    try {
      await this.flush()
    } finally {
      await this.handle.close()
    }
  }

  private set(key: CacheKey, score: number): void {
    let i = key.lo & this.mask
    while (this.used[i] === 1) {
      if (this.hi[i] === key.hi && this.lo[i] === key.lo) return
      i = (i + 1) & this.mask
    }
    this.used[i] = 1
    this.hi[i] = key.hi
    this.lo[i] = key.lo
    this.values[i] = score
    if (++this.count > (this.mask + 1) * 0.6) this.grow()
  }

  private grow(): void {
    const { hi, lo, values, used } = this
    const size = hi.length * 2
    this.hi = new Uint32Array(size)
    this.lo = new Uint32Array(size)
    this.values = new Float64Array(size)
    this.used = new Uint8Array(size)
    this.mask = size - 1
    this.count = 0
    for (let j = 0; j < hi.length; j++) if (used[j] === 1) this.set({ hi: hi[j] as number, lo: lo[j] as number }, values[j] as number)
  }
}

function cacheError(file: string, err: unknown, what: string): HardnegError {
  return new HardnegError('E_OUTPUT', `${what} the rescore cache (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { file })
}
