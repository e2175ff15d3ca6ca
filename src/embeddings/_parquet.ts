/**
 * Embeddings in Parquet files through hyparquet, one row group at a time: the id column
 * for matching, the vector column (a LIST of FLOAT or FLOAT16, as pyarrow writes
 * `fixed_size_list<float32|halffloat>` and `list<...>`) only for the row groups that hold
 * a requested row. hyparquet hands nested columns back as JS arrays of numbers, so memory
 * is one row group's vectors at 8 bytes a value: write big files in row groups of at most
 * ~64k rows. Private to `src/embeddings/`; imported on demand.
 */

import { parquetMetadataAsync, parquetRead, parquetSchema } from 'hyparquet'
import type { FileMetaData, SchemaTree } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { HardnegError } from '../errors.js'
import { emptyFileError, fileBuffer, openInput, readFailure } from '../pairs/sources.js'
import { badListRow, idText, pickColumns, type TableColumns, type TableSource } from './_table.js'

/** Opens a Parquet file of embeddings and checks its schema. */
export async function openParquetEmbeddings(file: string, options: TableColumns): Promise<TableSource> {
  const { handle, size } = await openInput(file)
  try {
    if (size === 0) throw emptyFileError(file)
    const buffer = fileBuffer(handle, size)
    let metadata: FileMetaData
    try {
      metadata = await parquetMetadataAsync(buffer)
    } catch (err) {
      throw readFailure(file, err, 'not a readable Parquet file')
    }
    const tree = parquetSchema(metadata)
    const { idCol, vectorCol } = pickColumns(tree.children.map((c) => c.element.name), options, file)
    const dtype = vectorType(tree.children.find((c) => c.element.name === vectorCol)!, vectorCol, file)
    if (idCol !== undefined) checkIdType(tree.children.find((c) => c.element.name === idCol)!, idCol, file)
    const batchRows = metadata.row_groups.map((g) => Number(g.num_rows))
    const starts: number[] = []
    let total = 0
    for (const n of batchRows) {
      starts.push(total)
      total += n
    }
    if (total === 0) throw emptyFileError(file)

    const readGroup = async (i: number, column: string): Promise<unknown[]> => {
      let values: unknown[] = []
      try {
        await parquetRead({
          file: buffer, metadata, columns: [column], rowStart: starts[i]!, rowEnd: starts[i]! + batchRows[i]!, compressors,
          onComplete: (rows: unknown[][]) => {
            values = rows.map((row) => row[0])
          },
        })
      } catch (err) {
        throw readFailure(file, err, `cannot decode row group ${i + 1} of ${batchRows.length}, rows ${starts[i]! + 1}-${starts[i]! + batchRows[i]!}`)
      }
      return values
    }

    let dim = await listSizeFromArrowSchema(metadata, vectorCol)
    for (let i = 0; dim === undefined && i < batchRows.length; i++) {
      const rows = await readGroup(i, vectorCol)
      const first = rows.findIndex((v) => v !== null && v !== undefined)
      if (first === -1) continue
      dim = (rows[first] as ArrayLike<unknown>).length
      if (dim === 0) throw badListRow(file, starts[i]! + first, 'has 0 values, expected a vector of length >= 1')
    }
    if (dim === undefined) throw new HardnegError('E_BAD_VECTOR', `every row of column '${vectorCol}' is null, expected vectors`, { file })
    const found = dim

    return {
      file, format: 'parquet', dtype, dim: found, idCol, vectorCol, batchRows,
      async ids() {
        const out: string[] = []
        for (let i = 0; i < batchRows.length; i++) {
          for (const value of await readGroup(i, idCol!)) out.push(idText(value, file, out.length, idCol!))
        }
        return out
      },
      async* vectors(batches) {
        for (const i of batches) {
          const rows = await readGroup(i, vectorCol)
          const start = starts[i]!
          yield {
            start,
            rows: rows.length,
            copyRow(r, out, at) {
              const row = start + r
              const v = rows[r] as ArrayLike<unknown> | null | undefined
              if (v === null || v === undefined) throw badListRow(file, row, `is null, expected ${found} values`)
              if (v.length !== found) throw badListRow(file, row, `has ${v.length} values, expected ${found} (the file's vector length)`)
              let sum = 0
              for (let j = 0; j < found; j++) {
                const x = v[j]
                if (typeof x !== 'number') throw badListRow(file, row, `holds a null at column ${j}, expected ${found} numbers`)
                // hyparquet widens FLOAT and FLOAT16 to exact JS numbers; fround is the identity on them.
                const f = Math.fround(x)
                out[at + j] = f
                sum += f * f
              }
              return sum
            },
          }
        }
      },
      close: () => handle.close(),
    }
  } catch (err) {
    await handle.close()
    throw err
  }
}

/** The element type of a LIST column (3-level or legacy 2-level); anything else is an error. */
function vectorType(column: SchemaTree, name: string, file: string): 'float32' | 'float16' {
  let node = column
  let repeated = node.element.repetition_type === 'REPEATED'
  while (node.children.length === 1) {
    node = node.children[0]!
    if (node.element.repetition_type === 'REPEATED') repeated = true
  }
  const leaf = node.element
  if (node.children.length > 0 || !repeated) {
    throw new HardnegError('E_EMBEDDING_HEADER', `column '${name}' is ${typeName(column)}, expected a list of FLOAT or FLOAT16`, { file })
  }
  if (leaf.type === 'FLOAT') return 'float32'
  if (leaf.type === 'FIXED_LEN_BYTE_ARRAY' && leaf.logical_type?.type === 'FLOAT16') return 'float16'
  throw new HardnegError('E_EMBEDDING_HEADER', `column '${name}' is a list of ${typeName(node)}, expected a list of FLOAT or FLOAT16`, { file })
}

function checkIdType(column: SchemaTree, name: string, file: string): void {
  const t = column.element.type
  if (column.children.length === 0 && (t === 'BYTE_ARRAY' || t === 'INT32' || t === 'INT64')) return
  throw new HardnegError('E_EMBEDDING_HEADER', `id column '${name}' is ${typeName(column)}, expected strings or integers`, { file })
}

/** A schema node's type as a reader would name it: the logical type, else the physical one. */
function typeName(node: SchemaTree): string {
  const e = node.element
  return e.logical_type?.type ?? e.converted_type ?? e.type ?? 'a group'
}

/**
 * The list size of `column` when pyarrow stored it as a fixed_size_list: the ARROW:schema
 * key holds the Arrow schema, so the vector length is known without decoding any data.
 */
async function listSizeFromArrowSchema(metadata: FileMetaData, column: string): Promise<number | undefined> {
  const value = metadata.key_value_metadata?.find((kv) => kv.key === 'ARROW:schema')?.value
  if (value === undefined) return undefined
  try {
    const { DataType, Message } = await import('apache-arrow')
    const bytes = Buffer.from(value, 'base64')
    const message = Message.decode(bytes.subarray(bytes.readInt32LE(0) === -1 ? 8 : 4))
    if (!message.isSchema()) return undefined
    const type = message.header().fields.find((f) => f.name === column)?.type
    return DataType.isFixedSizeList(type) && type.listSize > 0 ? type.listSize : undefined
  } catch {
    return undefined // a schema we cannot decode: fall back to the first row's length
  }
}
