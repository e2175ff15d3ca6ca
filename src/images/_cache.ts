/**
 * The image hash cache: one compact binary file of decoded-image facts and perceptual
 * hashes, keyed by absolute path and valid while the file's size and mtime are unchanged.
 * Read whole at the start of a run, written to a temporary name and renamed at the end.
 * Several processes may share one cache file (the workers of a distributed run on one
 * output directory): each write first reads the file as it is now and keeps the entries
 * other writers added, then renames its own complete file over it. A reader sees one
 * writer's whole file, never a mix; an entry that loses a race is decoded again later.
 *
 * Layout, little-endian:
 *   magic 'HNIMGC' + u16 format version (1)
 *   u32 length + UTF-8 hash id (the hash algorithm and its parameters; another id = stale)
 *   u32 perceptual hash bytes per entry, u32 entry count
 *   per entry: u32 path length + UTF-8 absolute path, f64 size in bytes, f64 mtimeMs,
 *              u32 width, u32 height, u8 length + ASCII format, 32 bytes sha256, hash bytes
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

/** One cached image, by absolute path. */
export interface CachedImage {
  path: string // absolute path
  bytes: number // file size when hashed
  mtimeMs: number // file mtime when hashed
  width: number
  height: number
  format: string
  sha256: string // hex
  hash: Uint8Array // perceptual hash
}

/** What the cache file held when it was read. */
export type ImageCacheStatus = 'absent' | 'loaded' | 'stale' | 'unreadable'

const MAGIC = Buffer.from('HNIMGC', 'latin1')
const VERSION = 1
const WRITE_CHUNK = 4 << 20

/**
 * Reads a cache file. A missing file is `absent`, one written for another hash id is
 * `stale`, one that cannot be parsed is `unreadable`: all three give no entries, so the
 * images are decoded again and the file is rewritten.
 */
export async function readImageCache(file: string, hashId: string, hashBytes: number): Promise<{ status: ImageCacheStatus; entries: Map<string, CachedImage> }> {
  const entries = new Map<string, CachedImage>()
  let data: Buffer
  try {
    data = await readFile(file)
  } catch (err) {
    return { status: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'unreadable', entries }
  }
  try {
    let at = 0
    const need = (n: number): number => {
      if (at + n > data.length) throw new RangeError('truncated')
      const start = at
      at += n
      return start
    }
    if (!data.subarray(need(MAGIC.length), at).equals(MAGIC) || data.readUInt16LE(need(2)) !== VERSION) return { status: 'unreadable', entries }
    const idLength = data.readUInt32LE(need(4))
    const id = data.toString('utf8', need(idLength), at)
    const bytesPerHash = data.readUInt32LE(need(4))
    if (id !== hashId || bytesPerHash !== hashBytes) return { status: 'stale', entries }
    const count = data.readUInt32LE(need(4))
    for (let i = 0; i < count; i++) {
      const pathLength = data.readUInt32LE(need(4))
      const file = data.toString('utf8', need(pathLength), at)
      const bytes = data.readDoubleLE(need(8))
      const mtimeMs = data.readDoubleLE(need(8))
      const width = data.readUInt32LE(need(4))
      const height = data.readUInt32LE(need(4))
      const formatLength = data.readUInt8(need(1))
      const format = data.toString('latin1', need(formatLength), at)
      const sha256 = data.toString('hex', need(32), at)
      const hash = Uint8Array.from(data.subarray(need(hashBytes), at))
      entries.set(file, { path: file, bytes, mtimeMs, width, height, format, sha256, hash })
    }
    if (at !== data.length) throw new RangeError('trailing bytes')
  } catch {
    entries.clear()
    return { status: 'unreadable', entries }
  }
  return { status: 'loaded', entries }
}

/**
 * Writes every entry to `file` atomically: a temporary file in the same directory (named
 * by host, pid and a random part, so writers on several machines never share one),
 * renamed when complete. Entries another writer put in `file` since it was read, for
 * paths `entries` lacks, are kept.
 */
export async function writeImageCache(file: string, hashId: string, hashBytes: number, entries: Iterable<CachedImage>): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true })
  const ours = new Map<string, CachedImage>()
  for (const e of entries) ours.set(e.path, e)
  const current = await readImageCache(file, hashId, hashBytes)
  for (const [p, e] of current.entries) if (!ours.has(p)) ours.set(p, e)
  const temp = `${file}.tmp-${os.hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`
  const handle = await open(temp, 'w')
  let done = false
  try {
    const chunks: Buffer[] = []
    let pending = 0
    const flush = async (): Promise<void> => {
      if (pending > 0) await handle.write(Buffer.concat(chunks.splice(0), pending))
      pending = 0
    }
    const list = [...ours.values()]
    const id = Buffer.from(hashId, 'utf8')
    const head = Buffer.alloc(MAGIC.length + 2 + 4 + id.length + 8)
    let at = MAGIC.copy(head, 0)
    at = head.writeUInt16LE(VERSION, at)
    at = head.writeUInt32LE(id.length, at)
    at += id.copy(head, at)
    at = head.writeUInt32LE(hashBytes, at)
    head.writeUInt32LE(list.length, at)
    chunks.push(head)
    pending += head.length
    for (const e of list) {
      if (e.hash.length !== hashBytes) throw new RangeError(`cache entry ${e.path}: ${e.hash.length} hash bytes, expected ${hashBytes}`)
      const name = Buffer.from(e.path, 'utf8')
      const format = Buffer.from(e.format, 'latin1')
      const record = Buffer.alloc(4 + name.length + 8 + 8 + 4 + 4 + 1 + format.length + 32 + hashBytes)
      let p = record.writeUInt32LE(name.length, 0)
      p += name.copy(record, p)
      p = record.writeDoubleLE(e.bytes, p)
      p = record.writeDoubleLE(e.mtimeMs, p)
      p = record.writeUInt32LE(e.width, p)
      p = record.writeUInt32LE(e.height, p)
      p = record.writeUInt8(format.length, p)
      p += format.copy(record, p)
      p += Buffer.from(e.sha256, 'hex').copy(record, p)
      record.set(e.hash, p)
      chunks.push(record)
      pending += record.length
      if (pending >= WRITE_CHUNK) await flush()
    }
    await flush()
    await handle.sync()
    done = true
  } finally {
    await handle.close()
    if (!done) await rm(temp, { force: true })
  }
  await rename(temp, file)
}
