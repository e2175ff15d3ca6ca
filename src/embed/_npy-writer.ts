/**
 * The `.npy` files `embed` writes: preallocated at their full size under a temporary name
 * (header first, the data region sparse until written), filled by positional writes in
 * any order, synced, then renamed by the caller. float32 or float16 (round to nearest
 * even, as numpy's `astype(float16)`). Private to the embed folder.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { HardnegError } from '../errors.js'

/** Element types `embed` writes. */
export type EmbedDtype = 'float16' | 'float32'

/** The `.npy` format 1.0 header of a C-order [rows, dim] little-endian matrix, padded to 64 bytes. */
export function npyHeader(rows: number, dim: number, dtype: EmbedDtype): Buffer {
  const dict = `{'descr': '<${dtype === 'float16' ? 'f2' : 'f4'}', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64
  const head = Buffer.alloc(total, 0x20)
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0])
  head.writeUInt16LE(total - 10, 8)
  head.write(dict, 10, 'latin1')
  head[total - 1] = 0x0a
  return head
}

/** An open output matrix. */
export class NpyWriter {
  private constructor(
    readonly file: string, // the temporary path
    private readonly fh: FileHandle,
    readonly rows: number,
    readonly dim: number,
    readonly dtype: EmbedDtype,
    readonly dataOffset: number,
  ) {}

  /** Bytes of one row on disk. */
  get rowBytes(): number {
    return this.dim * (this.dtype === 'float16' ? 2 : 4)
  }

  /** Creates `file` (replacing any) with the header and its full size, rows all zero until written. */
  static async create(file: string, rows: number, dim: number, dtype: EmbedDtype): Promise<NpyWriter> {
    const header = npyHeader(rows, dim, dtype)
    const fh = await openOrFail(file, 'w+')
    try {
      await fh.write(header, 0, header.length, 0)
      await fh.truncate(header.length + rows * dim * (dtype === 'float16' ? 2 : 4))
    } catch (err) {
      await fh.close()
      throw outputError(file, err)
    }
    return new NpyWriter(file, fh, rows, dim, dtype, header.length)
  }

  /** Reopens a file this module created, checking its header is the one expected. */
  static async reopen(file: string, rows: number, dtype: EmbedDtype): Promise<NpyWriter | undefined> {
    let fh: FileHandle
    try {
      fh = await open(file, 'r+')
    } catch {
      return undefined
    }
    const head = Buffer.alloc(10)
    await fh.read(head, 0, 10, 0)
    const len = head.readUInt16LE(8)
    const dictBytes = Buffer.alloc(len)
    await fh.read(dictBytes, 0, len, 10)
    const m = /'shape': \((\d+), (\d+)\)/.exec(dictBytes.toString('latin1'))
    const dim = m ? Number(m[2]) : 0
    const expected = npyHeader(rows, dim, dtype)
    const size = (await fh.stat()).size
    if (!m || Number(m[1]) !== rows || !expected.subarray(10).equals(dictBytes) || size !== expected.length + rows * dim * (dtype === 'float16' ? 2 : 4)) {
      await fh.close()
      return undefined
    }
    return new NpyWriter(file, fh, rows, dim, dtype, expected.length)
  }

  /**
   * Writes encoded rows: `rows[i]` (ascending) gets `data` bytes [i * rowBytes, (i+1) *
   * rowBytes). Runs of consecutive rows go out as one write.
   */
  async writeRows(rows: ArrayLike<number>, data: Uint8Array): Promise<void> {
    const rb = this.rowBytes
    let i = 0
    try {
      while (i < rows.length) {
        let j = i + 1
        while (j < rows.length && (rows[j] as number) === (rows[j - 1] as number) + 1) j++
        const position = this.dataOffset + (rows[i] as number) * rb
        const chunk = data.subarray(i * rb, j * rb)
        let done = 0
        while (done < chunk.length) {
          const { bytesWritten } = await this.fh.write(chunk, done, chunk.length - done, position + done)
          done += bytesWritten
        }
        i = j
      }
    } catch (err) {
      throw outputError(this.file, err)
    }
  }

  /** Reads row `row`'s bytes as stored. */
  async readRow(row: number): Promise<Buffer> {
    const out = Buffer.alloc(this.rowBytes)
    await this.fh.read(out, 0, out.length, this.dataOffset + row * this.rowBytes)
    return out
  }

  /** Flushes written data to the disk. */
  async sync(): Promise<void> {
    await this.fh.datasync()
  }

  async close(): Promise<void> {
    await this.fh.close()
  }
}

/**
 * Encodes float32 vectors as `dtype` bytes. float16 rounds to nearest even; a value beyond
 * float16's range is reported through `onOverflow` (index of the value) rather than
 * written as infinity.
 */
export function encodeRows(values: Float32Array, dtype: EmbedDtype, onOverflow: (index: number) => never): Uint8Array {
  if (dtype === 'float32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
  const out = new Uint16Array(values.length)
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length)
  for (let i = 0; i < values.length; i++) {
    const u = bits[i] as number
    const exp = (u >>> 23) & 0xff
    let h: number
    if (exp > 112 && exp < 142) {
      // Normal halves (the common case): round the 13 dropped bits to nearest even, a
      // carry moving into the exponent as it should; then rebias the exponent.
      const r = u + 0xfff + ((u >>> 13) & 1)
      h = ((r >>> 16) & 0x8000) | (((r & 0x7fffffff) >>> 13) - 0x1c000)
    } else {
      h = halfBits(u)
    }
    if ((h & 0x7c00) === 0x7c00) onOverflow(i)
    out[i] = h
  }
  return new Uint8Array(out.buffer)
}

/** IEEE half bits of the float32 with bits `u`, round to nearest even. */
function halfBits(u: number): number {
  const sign = (u >>> 16) & 0x8000
  const exp = (u >>> 23) & 0xff
  let mant = u & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0)
  const e = exp - 112
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const mid = 1 << (shift - 1)
    if (rem > mid || (rem === mid && half & 1)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++
  return sign | half
}

async function openOrFail(file: string, flags: string): Promise<FileHandle> {
  try {
    return await open(file, flags)
  } catch (err) {
    throw outputError(file, err)
  }
}

function outputError(file: string, err: unknown): HardnegError {
  return new HardnegError('E_OUTPUT', `cannot write (${(err as NodeJS.ErrnoException).code ?? String(err)}), expected a writable path with room for the embeddings`, { file })
}
