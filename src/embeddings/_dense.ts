/**
 * Dense row-major matrices on disk (`.npy`, safetensors): where the rows lie, and the row
 * reader that turns byte ranges into normalised float32 rows in chunks of at most 16 MiB,
 * the next read in flight while the current chunk is decoded.
 */

import type { FileHandle } from 'node:fs/promises'
import { endianness } from 'node:os'
import { HardnegError } from '../errors.js'
import { halfTable } from './_float16.js'
import { CHUNK_BYTES, readFully, readHeaderFrom } from './_npy.js'
import { readSafetensorsLayout } from './_safetensors.js'
import {
  copyRow, decodeBf16Row, decodeHalfRow, finishRow, sortedOrder, sumSquares,
  type BadVector, type EmbeddingDtype, type RowRule,
} from './_vectors.js'

/** Where the rows of a `.npy` or safetensors file lie: a dense row-major matrix at `dataOffset`. */
export interface DenseLayout {
  file: string // path as the user gave it
  dtype: EmbeddingDtype // element type on disk, little-endian
  rows: number // number of rows
  dim: number // values per row
  dataOffset: number // byte offset of row 0
  tensor?: string // safetensors: the tensor's name
}

/** The layout of an open `.npy` or safetensors file, checked against its size. */
export async function readDenseLayout(fh: FileHandle, file: string, format: 'npy' | 'safetensors', key: string | undefined): Promise<DenseLayout> {
  if (format === 'npy') return readHeaderFrom(fh, file)
  if (endianness() !== 'LE') throw new Error('hardneg reads safetensors data through typed arrays, which needs a little-endian host')
  const stat = await fh.stat()
  if (!stat.isFile()) throw new HardnegError('E_BAD_FILE', 'not a regular file, expected a .safetensors file', { file })
  return readSafetensorsLayout((target, position) => readFully(fh, target, position, file), stat.size, file, key)
}

/** File rows `first` .. `first + count - 1`, bound for rows `outRow` .. `outRow + count - 1` of `out`. */
export interface Chunk {
  first: number
  count: number
  out: Float32Array
  outRow: number
}

/** A scratch read buffer with a view for each dtype. */
interface Slot {
  bytes: Uint8Array
  half: Uint16Array
  single: Float32Array
}

/**
 * Reads rows of one open file and turns them into (normalised) float32 rows, keeping the
 * next read in flight while the current chunk is decoded.
 */
export class RowReader {
  readonly chunkRows: number
  private readonly rowBytes: number
  private readonly table = halfTable()
  private readonly slots: Slot[] = []
  private readonly rule: RowRule

  constructor(
    private readonly fh: FileHandle,
    private readonly h: DenseLayout,
    normalize: boolean,
    onBadVector?: (bad: BadVector) => void,
  ) {
    this.rowBytes = h.dim * (h.dtype === 'float32' ? 4 : 2)
    this.chunkRows = Math.max(1, Math.floor(CHUNK_BYTES / this.rowBytes))
    this.rule = { file: h.file, dim: h.dim, normalize, onBadVector }
  }

  /** Splits file rows `first` .. `first + count - 1` into read-sized chunks bound for `out`. */
  * split(first: number, count: number, out: Float32Array): Generator<Chunk> {
    for (let done = 0; done < count; done += this.chunkRows) {
      yield { first: first + done, count: Math.min(this.chunkRows, count - done), out, outRow: done }
    }
  }

  /** Reads, decodes and finishes the chunks of `plan` in order, yielding each once its rows are in `out`. */
  async* decode<C extends Chunk>(plan: Iterable<C>): AsyncGenerator<C> {
    const { dim } = this.h
    const half = this.h.dtype !== 'float32' // float16 or bfloat16: 2 bytes, widened in place
    const outBytes = (c: C): Uint8Array => new Uint8Array(c.out.buffer, c.out.byteOffset + c.outRow * dim * 4, c.count * dim * 4)
    // Every chunk is read into its own rows of `out`: float32 is already the output layout,
    // and float16/bfloat16 land in the upper half of the chunk's bytes and are widened in place,
    // front to back (float32 j ends at byte 4j + 4, never past 16-bit value j + 1 at byte 2N + 2j + 2).
    // Reading there also makes the I/O thread, not this one, fault in the pages of a fresh `out`.
    const into = half ? (c: C) => outBytes(c).subarray(c.count * dim * 2) : outBytes
    for await (const { job: c } of this.prefetch(plan, into)) {
      const src = half ? new Uint16Array(c.out.buffer, c.out.byteOffset + c.outRow * dim * 4 + c.count * dim * 2, c.count * dim) : undefined
      const bits = this.h.dtype === 'bfloat16' ? new Uint32Array(c.out.buffer, c.out.byteOffset, c.out.length) : undefined
      for (let r = 0; r < c.count; r++) {
        const at = (c.outRow + r) * dim
        const sum = src === undefined ? sumSquares(c.out, at, dim)
          : bits === undefined ? decodeHalfRow(this.table, src, r * dim, c.out, at, dim)
            : decodeBf16Row(src, r * dim, c.out, bits, at, dim)
        finishRow(this.rule, sum, c.out, at, c.first + r)
      }
      yield c
    }
  }

  /** Gathers `selection` (checked indices) in order, reading only spans that hold selected rows. */
  async gather(selection: Int32Array | number[]): Promise<Float32Array> {
    const { dim } = this.h
    const n = selection.length
    const out = new Float32Array(n * dim)
    const bits = this.h.dtype === 'bfloat16' ? new Uint32Array(out.buffer) : undefined
    const order = sortedOrder(selection)
    const chunkRows = this.chunkRows
    // Spans of at most chunkRows rows, from one selected row to the last selected row within reach.
    function* spans(): Generator<{ first: number, count: number, from: number, to: number }> {
      for (let k = 0; k < n;) {
        const first = selection[order[k]!]!
        let j = k + 1
        while (j < n && selection[order[j]!]! < first + chunkRows) j++
        yield { first, count: selection[order[j - 1]!]! - first + 1, from: k, to: j }
        k = j
      }
    }
    for await (const { job: span, slot } of this.prefetch(spans(), () => undefined)) {
      let prevRow = -1
      let prevAt = 0
      for (let k = span.from; k < span.to; k++) {
        const at = order[k]! * dim
        const row = selection[order[k]!]!
        if (row === prevRow) {
          out.copyWithin(at, prevAt, prevAt + dim)
          continue
        }
        const from = (row - span.first) * dim
        const sum = this.h.dtype === 'float32' ? copyRow(slot!.single, from, out, at, dim)
          : bits === undefined ? decodeHalfRow(this.table, slot!.half, from, out, at, dim)
            : decodeBf16Row(slot!.half, from, out, bits, at, dim)
        finishRow(this.rule, sum, out, at, row)
        prevRow = row
        prevAt = at
      }
    }
    return out
  }

  /**
   * Reads the jobs of `plan` in order, each into the bytes `direct` gives or else into one
   * of two scratch slots, and yields a job once its bytes are in. The next job's read is
   * already running while the consumer works on the yielded one.
   */
  private async* prefetch<J extends { first: number, count: number }>(
    plan: Iterable<J>, direct: (job: J) => Uint8Array | undefined,
  ): AsyncGenerator<{ job: J, slot: Slot | undefined }> {
    const jobs = plan[Symbol.iterator]()
    let turn = 0
    const start = (): Promise<{ job: J, slot: Slot | undefined }> | undefined => {
      const next = jobs.next()
      if (next.done === true) return undefined
      const job = next.value
      const into = direct(job)
      const slot = into === undefined ? this.slot(turn++ % 2) : undefined
      const bytes = into ?? slot!.bytes.subarray(0, job.count * this.rowBytes)
      const read = readFully(this.fh, bytes, this.position(job.first), this.h.file).then(() => ({ job, slot }))
      read.catch(() => {}) // awaited below; this only stops a failure that lands early from counting as unhandled
      return read
    }
    let pending = start()
    try {
      while (pending !== undefined) {
        const ready = await pending
        pending = start()
        yield ready
      }
    } finally {
      // A consumer that stops early (break, bad vector) must not leave a read running
      // into its buffers or on a file handle that is about to close.
      await pending?.catch(() => {})
    }
  }

  private slot(i: number): Slot {
    let slot = this.slots[i]
    if (slot === undefined) {
      // Rounded up to whole float32s so that both views fit whatever the dtype.
      const buffer = new ArrayBuffer(Math.ceil(Math.min(this.chunkRows, this.h.rows) * this.rowBytes / 4) * 4)
      slot = { bytes: new Uint8Array(buffer), half: new Uint16Array(buffer), single: new Float32Array(buffer) }
      this.slots[i] = slot
    }
    return slot
  }

  private position(row: number): number {
    return this.h.dataOffset + row * this.rowBytes
  }
}
