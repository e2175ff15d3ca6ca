/**
 * The table-reading layer other folders share: opening an input file with file-level
 * errors, the CSV record stream and the Parquet row source that pairs reading is built
 * on. Embedding tables (Arrow/Parquet) and `validate`'s tolerant row reader use it, so
 * every input reads, and fails, the same way.
 */
export { openInput, emptyFileError, readFailure, systemReason, describe } from './_source.js'
export type { PairSource, SourceRow } from './_source.js'
export { openCsvRecords } from './_csv.js'
export { openParquetSource, fileBuffer } from './_parquet.js'
