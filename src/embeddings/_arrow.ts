/**
 * Embeddings in Arrow IPC files (`.arrow`, Feather v2 `.feather`) and streams (`.arrows`)
 * through apache-arrow, one record batch at a time. The file format is read at random:
 * row counts come from each batch's message header, and only the batches asked for are
 * read. A stream has no index, so every pass reads it from the start. Buffers compressed
 * with zstd are decoded (the codec from hyparquet-compressors); lz4 is refused with advice.
 * Private to `src/embeddings/`; imported on demand so that `.npy` runs never load apache-arrow.
 */

import { open, type FileHandle } from 'node:fs/promises'
import {
  CompressionType, DataType, Message, RecordBatchReader, compressionRegistry, Precision,
  type AsyncRecordBatchFileReader, type Data, type Field, type RecordBatch,
} from 'apache-arrow'
import { compressors } from 'hyparquet-compressors'
import { HardnegError } from '../errors.js'
import { halfTable } from './_float16.js'
import { emptyFileError, openInput, readFailure } from '../pairs/sources.js'
import { badListRow, idText, pickColumns, type TableColumns, type TableSource, type VectorBatch } from './_table.js'
import { copyRow, decodeHalfRow } from './_vectors.js'

const FILE_MAGIC = 'ARROW1'

/** Opens an Arrow IPC file or stream of embeddings and reads its schema and batch sizes. */
export async function openArrowSource(file: string, columns: TableColumns): Promise<TableSource> {
  registerZstd()
  const { handle, size } = await openInput(file)
  try {
    if (size === 0) throw emptyFileError(file)
    const magic = Buffer.alloc(Math.min(size, 6))
    await handle.read(magic, 0, magic.length, 0)
    return magic.toString('latin1') === FILE_MAGIC ? await openFile(file, handle, columns) : await openStream(file, handle, columns)
  } catch (err) {
    await handle.close()
    throw err
  }
}

/** The IPC file format: footer, then per-batch message headers; bodies only on demand. */
async function openFile(file: string, handle: FileHandle, options: TableColumns): Promise<TableSource> {
  const reader = await openReader(file, handle) as AsyncRecordBatchFileReader
  const footer = reader.footer
  const batchRows: number[] = []
  for (let i = 0; i < reader.numRecordBatches; i++) {
    const block = footer?.getRecordBatch(i)
    if (!block) throw new HardnegError('E_BAD_FILE', `Arrow footer lists no record batch ${i + 1}, expected ${reader.numRecordBatches}`, { file })
    const bytes = new Uint8Array(block.metaDataLength)
    await handle.read(bytes, 0, bytes.length, Number(block.offset))
    // A message starts with 0xFFFFFFFF and its length (pre-1.0 writers: the length alone).
    const skip = new DataView(bytes.buffer).getInt32(0, true) === -1 ? 8 : 4
    let message: Message
    try {
      message = Message.decode(bytes.subarray(skip))
    } catch (err) {
      throw readFailure(file, err, `cannot read the header of record batch ${i + 1}`)
    }
    if (!message.isRecordBatch()) throw new HardnegError('E_BAD_FILE', `Arrow block ${i + 1} is not a record batch`, { file })
    const header = message.header()
    checkCompression(header.compression?.type, i, file)
    batchRows.push(Number(header.length))
  }
  const layout = describe(file, reader.schema.fields, options, batchRows)
  const readBatch = async (i: number): Promise<RecordBatch> => {
    try {
      const batch = await reader.readRecordBatch(i)
      if (batch !== null) return batch
    } catch (err) {
      throw readFailure(file, err, `cannot decode record batch ${i + 1} of ${batchRows.length}`)
    }
    throw new HardnegError('E_BAD_FILE', `cannot read record batch ${i + 1} of ${batchRows.length}`, { file })
  }
  let dim = layout.dim
  for (let i = 0, start = 0; dim === undefined && i < batchRows.length; start += batchRows[i]!, i++) {
    if (batchRows[i]! > 0) dim = firstListLength(await readBatch(i), layout, start)
  }
  if (dim === undefined) throw noVectors(layout)
  const found = dim
  return {
    ...source(layout, found),
    async ids() {
      const out: string[] = []
      for (let i = 0; i < batchRows.length; i++) idsOf(await readBatch(i), layout, out)
      return out
    },
    async* vectors(batches) {
      const starts = startsOf(batchRows)
      for (const i of batches) yield vectorBatch(await readBatch(i), layout, found, starts[i]!)
    },
    close: () => handle.close(),
  }
}

/** The IPC stream format: one pass to count rows now, one more for each later read. */
async function openStream(file: string, handle: FileHandle, options: TableColumns): Promise<TableSource> {
  const reader = await openReader(file, handle)
  const batchRows: number[] = [] // filled by the pass below; `layout` holds the same array
  const layout = describe(file, reader.schema.fields, options, batchRows)
  let dim = layout.dim
  let start = 0
  for await (const batch of guard(reader, file)) {
    batchRows.push(batch.numRows)
    dim ??= firstListLength(batch, layout, start)
    start += batch.numRows
  }
  await handle.close()
  if (dim === undefined) throw noVectors(layout)
  const pass = async function* (): AsyncGenerator<RecordBatch> {
    const again = await open(file, 'r')
    try {
      yield* guard(await openReader(file, again), file)
    } finally {
      await again.close()
    }
  }
  const found = dim
  return {
    ...source(layout, found),
    async ids() {
      const out: string[] = []
      for await (const batch of pass()) idsOf(batch, layout, out)
      return out
    },
    async* vectors(batches) {
      const wanted = new Set(batches)
      const last = Math.max(-1, ...batches)
      let i = 0
      let start = 0
      for await (const batch of pass()) {
        if (i > last) break
        if (wanted.has(i)) yield vectorBatch(batch, layout, found, start)
        start += batch.numRows
        i++
      }
    },
    close: async () => {},
  }
}

type Layout = Omit<TableSource, 'dim' | 'ids' | 'vectors' | 'close'> & { dim: number | undefined, vectorIndex: number, idIndex: number }

/** Checks the schema: the id column's type, the vector column's list and element types. */
function describe(file: string, fields: readonly Field[], options: TableColumns, batchRows: number[]): Layout {
  const names = fields.map((f) => f.name)
  const { idCol, vectorCol } = pickColumns(names, options, file)
  const vectorIndex = names.indexOf(vectorCol)
  const type = fields[vectorIndex]!.type
  const element = DataType.isFixedSizeList(type) || DataType.isList(type) || DataType.isLargeList(type) ? type.children[0]?.type : undefined
  const dtype = DataType.isFloat(element) && element.precision === Precision.HALF ? 'float16'
    : DataType.isFloat(element) && element.precision === Precision.SINGLE ? 'float32' : undefined
  if (dtype === undefined) {
    throw new HardnegError('E_EMBEDDING_HEADER',
      `column '${vectorCol}' has type ${String(type)}, expected a fixed-size list (or list) of Float32 or Float16`, { file })
  }
  const idIndex = idCol === undefined ? -1 : names.indexOf(idCol)
  if (idCol !== undefined) {
    const idType = fields[idIndex]!.type
    if (!DataType.isUtf8(idType) && !DataType.isLargeUtf8(idType) && !DataType.isInt(idType)) {
      throw new HardnegError('E_EMBEDDING_HEADER', `id column '${idCol}' has type ${String(idType)}, expected strings or integers`, { file })
    }
  }
  const dim = DataType.isFixedSizeList(type) ? type.listSize : undefined
  if (dim === 0) throw new HardnegError('E_EMBEDDING_HEADER', `column '${vectorCol}' has type ${String(type)}, expected a list size >= 1`, { file })
  return { file, format: 'arrow', dtype, dim, idCol, vectorCol, batchRows, vectorIndex, idIndex }
}

/** The fields every source shares. */
function source(layout: Layout, dim: number): Pick<TableSource, 'file' | 'format' | 'dtype' | 'dim' | 'idCol' | 'vectorCol' | 'batchRows'> {
  const { file, format, dtype, idCol, vectorCol, batchRows } = layout
  return { file, format, dtype, dim, idCol, vectorCol, batchRows }
}

/** A variable-size list column's vector length: that of the batch's first non-null row (undefined: all null). */
function firstListLength(batch: RecordBatch, layout: Layout, start: number): number | undefined {
  const data = columnData(batch, layout.vectorIndex)
  const offsets = data.valueOffsets as ArrayLike<number | bigint>
  for (let r = 0; r < batch.numRows; r++) {
    if (data.nullCount > 0 && !data.getValid(r)) continue
    const length = Number(offsets[r + 1]!) - Number(offsets[r]!)
    if (length === 0) throw badListRow(layout.file, start + r, 'has 0 values, expected a vector of length >= 1')
    return length
  }
  return undefined
}

/** No row to take a variable-size list's length from: an empty table, or all rows null. */
function noVectors(layout: Layout): HardnegError {
  if (layout.batchRows.every((n) => n === 0)) return emptyFileError(layout.file)
  return new HardnegError('E_BAD_VECTOR', `every row of column '${layout.vectorCol}' is null, expected vectors`, { file: layout.file })
}

function idsOf(batch: RecordBatch, layout: Layout, out: string[]): void {
  const column = batch.getChildAt(layout.idIndex)!
  const start = out.length
  for (let r = 0; r < batch.numRows; r++) out.push(idText(column.get(r), layout.file, start + r, layout.idCol!))
}

function vectorBatch(batch: RecordBatch, layout: Layout, dim: number, start: number): VectorBatch {
  const { file } = layout
  const data = columnData(batch, layout.vectorIndex)
  const child = data.children[0]!
  const values = child.values as Float32Array | Uint16Array
  const offsets = DataType.isFixedSizeList(data.type) ? undefined : data.valueOffsets as ArrayLike<number | bigint>
  const table = layout.dtype === 'float16' ? halfTable() : undefined
  return {
    start,
    rows: batch.numRows,
    copyRow(r, out, at) {
      const row = start + r
      if (data.nullCount > 0 && !data.getValid(r)) throw badListRow(file, row, `is null, expected ${dim} values`)
      let begin = r * dim
      if (offsets !== undefined) {
        begin = Number(offsets[r]!)
        const length = Number(offsets[r + 1]!) - begin
        if (length !== dim) throw badListRow(file, row, `has ${length} values, expected ${dim} (the file's vector length)`)
      }
      if (child.nullCount > 0) {
        for (let j = 0; j < dim; j++) {
          if (!child.getValid(begin + j)) throw badListRow(file, row, `holds a null at column ${j}, expected ${dim} numbers`)
        }
      }
      return table === undefined
        ? copyRow(values as Float32Array, begin, out, at, dim)
        : decodeHalfRow(table, values as Uint16Array, begin, out, at, dim)
    },
  }
}

function columnData(batch: RecordBatch, index: number): Data {
  // A record batch's column is one contiguous Data.
  return batch.getChildAt(index)!.data[0]!
}

function startsOf(batchRows: readonly number[]): number[] {
  const starts: number[] = []
  let start = 0
  for (const n of batchRows) {
    starts.push(start)
    start += n
  }
  return starts
}

async function openReader(file: string, handle: FileHandle): Promise<RecordBatchReader> {
  try {
    const reader = await RecordBatchReader.from(handle)
    await reader.open()
    return reader
  } catch (err) {
    throw readFailure(file, err, 'not a readable Arrow IPC file or stream')
  }
}

/** The reader's batches, with decoding failures reported as E_BAD_FILE naming the batch. */
async function* guard(reader: RecordBatchReader, file: string): AsyncGenerator<RecordBatch> {
  let i = 0
  const batches = reader[Symbol.asyncIterator]()
  for (;;) {
    let next: IteratorResult<RecordBatch>
    try {
      next = await batches.next()
    } catch (err) {
      // A stream's message headers are not ours to read first; apache-arrow names the missing codec this way.
      if (err instanceof Error && err.message === 'Record batch is compressed but codec not found') {
        checkCompression(CompressionType.LZ4_FRAME, i, file)
      }
      throw readFailure(file, err, `cannot decode record batch ${i + 1}`)
    }
    if (next.done === true) return
    i++
    yield next.value
  }
}

function checkCompression(type: CompressionType | undefined, index: number, file: string): void {
  if (type === undefined || type === CompressionType.ZSTD) return
  throw new HardnegError('E_BAD_FILE',
    `record batch ${index + 1} is ${CompressionType[type] ?? `codec ${type}`}-compressed, expected uncompressed or zstd buffers ` +
      "(pyarrow: feather.write_feather(table, path, compression='zstd'))", { file })
}

function registerZstd(): void {
  if (compressionRegistry.get(CompressionType.ZSTD) !== null) return
  const zstd = compressors.ZSTD
  if (zstd !== undefined) compressionRegistry.set(CompressionType.ZSTD, { decode: (bytes) => zstd(bytes, 0) })
}
