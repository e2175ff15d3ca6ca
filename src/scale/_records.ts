/**
 * A part's record file: a gzip stream of length-prefixed records, each one value in V8's
 * structured-clone format (node:v8 `serialize`), which keeps what JSON would lose:
 * bigint carried columns, NaN and -0 scores, undefined fields, typed arrays, shared
 * references (a row counted and written is stored once). The sha256 of the uncompressed
 * record bytes is checked when the file is read back. Private to scale/.
 *
 * Written to a temporary name by the caller's directory rename; read by one merge, with
 * the same or a newer Node.js (V8's format reads older versions).
 */
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { once } from 'node:events'
import { finished } from 'node:stream/promises'
import { deserialize, serialize } from 'node:v8'
import { createGunzip, createGzip, type Gzip } from 'node:zlib'
import { HardnegError } from '../errors.js'

/** What a finished record file is. */
export interface RecordFileInfo {
  records: number // values written
  bytes: number // uncompressed record bytes (length prefixes included)
  sha256: string // hex sha256 of those bytes
}

/** Writes values one record each; `close` flushes, syncs and closes the file. */
export class RecordWriter {
  private readonly hash = createHash('sha256')
  private records = 0
  private bytes = 0

  private constructor(
    private readonly file: string,
    private readonly gzip: Gzip,
    private readonly out: NodeJS.WritableStream & { destroy(): void },
    private readonly done: Promise<void>,
  ) {}

  static async create(file: string): Promise<RecordWriter> {
    const out = createWriteStream(file)
    await once(out, 'open').catch((err: unknown) => {
      throw new HardnegError('E_OUTPUT', `cannot create the part file (${(err as NodeJS.ErrnoException).code ?? String(err)}), expected a writable directory`, { file })
    })
    // Level 1: parts are read once; speed matters more than the last few per cent.
    const gzip = createGzip({ level: 1 })
    gzip.pipe(out)
    const done = finished(out)
    done.catch(() => undefined) // awaited by close; an early failure must not go unhandled
    return new RecordWriter(file, gzip, out, done)
  }

  /** Appends one value; resolves once the stream can take more. */
  async write(value: unknown): Promise<void> {
    const body = serialize(value)
    const head = Buffer.alloc(4)
    head.writeUInt32LE(body.length)
    this.hash.update(head).update(body)
    this.records++
    this.bytes += 4 + body.length
    const a = this.gzip.write(head)
    const b = this.gzip.write(body)
    if (!a || !b) await once(this.gzip, 'drain')
  }

  /** Ends the stream and syncs the file to disk. */
  async close(): Promise<RecordFileInfo> {
    this.gzip.end()
    let handle: FileHandle | undefined
    try {
      await this.done
      // On disk before the part's folder gets its final name.
      handle = await open(this.file, 'r+')
      await handle.sync()
    } catch (err) {
      throw new HardnegError('E_OUTPUT', `cannot write the part file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { file: this.file })
    } finally {
      await handle?.close()
    }
    return { records: this.records, bytes: this.bytes, sha256: this.hash.digest('hex') }
  }

  /** Stops writing without caring what is left; never throws. */
  async abort(): Promise<void> {
    this.gzip.destroy()
    this.out.destroy()
    await this.done.catch(() => undefined)
  }
}

/**
 * The values of a record file, in order. Throws E_BAD_FILE when the file is truncated,
 * corrupt, or its records do not match `expected` (count and sha256 from its part manifest).
 */
export async function* readRecords(file: string, expected: RecordFileInfo): AsyncGenerator<unknown> {
  const hash = createHash('sha256')
  let pending: Buffer = Buffer.alloc(0)
  let records = 0
  const bad = (why: string): HardnegError => new HardnegError('E_BAD_FILE', `${why}, expected the ${expected.records} records its part manifest lists (a worker killed while writing, or a damaged file)`, { file })
  let stream
  try {
    stream = createReadStream(file).pipe(createGunzip())
    for await (const chunk of stream) {
      pending = pending.length === 0 ? (chunk as Buffer) : Buffer.concat([pending, chunk as Buffer])
      let at = 0
      while (pending.length - at >= 4) {
        const length = pending.readUInt32LE(at)
        if (pending.length - at - 4 < length) break
        const record = pending.subarray(at, at + 4 + length)
        hash.update(record)
        records++
        at += 4 + length
        yield deserialize(record.subarray(4))
      }
      pending = pending.subarray(at)
    }
  } catch (err) {
    if (err instanceof HardnegError) throw err
    throw bad(`unreadable after ${records} records (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  } finally {
    stream?.destroy()
  }
  if (pending.length > 0) throw bad(`${pending.length} bytes after record ${records} do not form a record`)
  if (records !== expected.records || hash.digest('hex') !== expected.sha256) throw bad(`${records} records whose sha256 differs from the part manifest's`)
}
