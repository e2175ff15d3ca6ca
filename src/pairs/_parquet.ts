/**
 * Parquet pairs files (as pyarrow, Hugging Face `datasets` and DuckDB write them), read
 * one row group at a time through hyparquet, so memory holds one row group's selected
 * columns rather than the file.
 */

import type { FileHandle } from 'node:fs/promises'
import { parquetMetadataAsync, parquetRead, parquetSchema } from 'hyparquet'
import type { AsyncBuffer, FileMetaData } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { emptyFileError, openInput, readFailure } from './_source.js'
import type { PairSource, SourceRow } from './_source.js'

/** Open a Parquet file and read its footer; `place` is the 1-based row in the file. */
export async function openParquetSource(file: string): Promise<PairSource> {
  const { handle, size } = await openInput(file)
  const close = (): Promise<void> => handle.close()
  let metadata: FileMetaData
  let columns: string[]
  try {
    if (size === 0) throw emptyFileError(file)
    const buffer = fileBuffer(handle, size)
    try {
      metadata = await parquetMetadataAsync(buffer)
      columns = parquetSchema(metadata).children.map(child => child.element.name)
    } catch (err) {
      throw readFailure(file, err, 'not a readable Parquet file')
    }
    if (metadata.num_rows === 0n) throw emptyFileError(file)

    async function* rows(select: readonly string[]): AsyncGenerator<SourceRow> {
      let rowStart = 0
      for (const [index, group] of metadata.row_groups.entries()) {
        const rowEnd = rowStart + Number(group.num_rows)
        let data: unknown[][] = []
        try {
          await parquetRead({
            file: buffer,
            metadata,
            columns: [...select],
            rowStart,
            rowEnd,
            compressors,
            onComplete: (rows: unknown[][]) => {
              data = rows
            },
          })
        } catch (err) {
          const where = `cannot decode row group ${index + 1} of ${metadata.row_groups.length}, rows ${rowStart + 1}-${rowEnd}`
          throw readFailure(file, err, where)
        }
        for (const [i, values] of data.entries()) yield { place: rowStart + i + 1, values }
        rowStart = rowEnd
      }
    }

    return { columns, rows, close }
  } catch (err) {
    await close()
    throw err
  }
}

/** An AsyncBuffer that reads byte ranges through `handle`, never the whole file. */
export function fileBuffer(handle: FileHandle, size: number): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end: number = size): Promise<ArrayBuffer> {
      const bytes = new Uint8Array(end - start)
      let done = 0
      while (done < bytes.length) {
        const { bytesRead } = await handle.read(bytes, done, bytes.length - done, start + done)
        if (bytesRead === 0) break
        done += bytesRead
      }
      return bytes.buffer
    },
  }
}
