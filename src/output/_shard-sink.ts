/**
 * The byte sink under one shard: a hyparquet-writer `Writer` that streams to a temporary
 * file, hashes every byte on the way, and renames the file only when it is complete; and
 * the shard file names. Shared by the Parquet shards (`shards.ts`) and the JSON Lines
 * layout (`formats.ts`).
 */

import { createHash } from 'node:crypto'
import { open, rename, rm } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { ByteWriter } from 'hyparquet-writer'
import { HardnegError } from '../errors.js'

/** Shard basename for a 0-based index: part-00000.parquet (or another extension). */
export function shardName(index: number, extension = 'parquet'): string {
  return `part-${String(index).padStart(5, '0')}.${extension}`
}

/** What a committed shard file is. */
export interface SinkResult {
  bytes: number // file size in bytes
  sha256: string // hex SHA-256 of the file bytes
}

/**
 * A `Writer` for hyparquet-writer's `ParquetWriter`. The writer calls `flush` after each
 * row group, so at most one encoded row group sits in memory.
 */
export class ShardSink extends ByteWriter {
  private readonly handle: FileHandle
  private readonly tmpPath: string
  private readonly hash = createHash('sha256')
  private closed = false

  private constructor(handle: FileHandle, tmpPath: string) {
    super(1 << 20)
    this.handle = handle
    this.tmpPath = tmpPath
  }

  /** Create (or truncate) `tmpPath` and return a sink writing into it. */
  static async create(tmpPath: string): Promise<ShardSink> {
    return new ShardSink(await open(tmpPath, 'w'), tmpPath)
  }

  /** Write the buffered bytes to the file and empty the buffer. */
  async flush(): Promise<void> {
    if (this.index === 0) return
    const bytes = new Uint8Array(this.buffer, 0, this.index)
    this.hash.update(bytes)
    // The write must finish before the buffer is reused: ParquetWriter awaits this promise.
    await this.io('write', async () => {
      for (let done = 0; done < bytes.length;) {
        done += (await this.handle.write(bytes, done, bytes.length - done)).bytesWritten
      }
    })
    this.index = 0
  }

  /** Called by `ParquetWriter.finish` after the footer: write what is left. */
  override async finish(): Promise<void> {
    await this.flush()
  }

  /** Close the file and rename it to `finalPath`; call after `ParquetWriter.finish`. */
  async commit(finalPath: string): Promise<SinkResult> {
    await this.flush()
    await this.io('write', async () => {
      // On disk before it has its final name, so a crash cannot leave a complete-looking empty file.
      await this.handle.sync()
      this.closed = true
      await this.handle.close()
    })
    await this.io(`rename to ${finalPath}`, () => rename(this.tmpPath, finalPath))
    return { bytes: this.offset, sha256: this.hash.digest('hex') }
  }

  /** Run a file operation, turning an I/O failure (ENOSPC, EACCES, ...) into E_OUTPUT. */
  private async io(what: string, operation: () => Promise<void>): Promise<void> {
    try {
      await operation()
    } catch (err) {
      const code = err instanceof Error && 'code' in err ? String(err.code) : String(err)
      throw new HardnegError('E_OUTPUT', `cannot ${what} (${code})`, { file: this.tmpPath })
    }
  }

  /** Close and delete the temporary file; never throws, so the caller's error survives. */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      await this.handle.close().catch(() => undefined)
    }
    await rm(this.tmpPath, { force: true }).catch(() => undefined)
  }
}
