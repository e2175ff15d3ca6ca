/**
 * Checks of `.npy` embedding files: header, row count against the pairs, one dimension
 * across files, then every row (or a seeded sample) for NaN/Inf, all zeros and norms far
 * from 1. Rows stream in blocks through `loadEmbeddings`, so memory is two read buffers
 * whatever the file size. Private to the validate files.
 */

import { stat } from 'node:fs/promises'
import { HardnegError, isHardnegError } from '../errors.js'
import { loadEmbeddingMatrix, loadEmbeddings, readNpyHeader, type BadVector, type NpyHeader } from '../embeddings/embeddings.js'
import type { FindingLog } from './_findings.js'
import { sampleRows } from './_sample.js'

/** What {@link checkEmbeddings} needs. */
export interface EmbeddingsCheckOptions {
  files: readonly string[] // embedding files, row i = pair i; the first sets the dimension
  pairRows?: number | undefined // records in the pairs file (undefined: no pairs file, or it has no rows)
  pairsFile?: string | undefined // the pairs file, for messages
  normTolerance: number // |norm - 1| above this is V_EMB_NORM
  sample?: number | undefined // check this many seeded rows per file instead of all
  seed: number // sample seed
}

const SAMPLE_BLOCK = 8192

/** Checks every file of `options.files`; throws E_BAD_FILE only for a file that cannot be opened. */
export async function checkEmbeddings(options: EmbeddingsCheckOptions, log: FindingLog): Promise<void> {
  log.ran('V_EMB_HEADER', 'V_EMB_ROWS', 'V_EMB_DIM', 'V_EMB_NAN', 'V_EMB_ZERO', 'V_EMB_NORM')
  let first: NpyHeader | undefined
  for (const file of options.files) {
    const header = await readHeader(file, log)
    if (header === undefined) continue
    if (options.pairRows !== undefined && header.rows !== options.pairRows) {
      log.add('V_EMB_ROWS', { file }, `${header.rows} embedding rows, expected ${options.pairRows} (one per row of ${options.pairsFile})`)
    } else if (options.pairRows === undefined && first !== undefined && header.rows !== first.rows) {
      log.add('V_EMB_ROWS', { file }, `${header.rows} embedding rows, expected ${first.rows} (as ${first.file}; row i of each belongs to pair i)`)
    }
    if (first !== undefined && header.dim !== first.dim) {
      log.add('V_EMB_DIM', { file }, `embedding dim ${header.dim}, expected ${first.dim} (from ${first.file})`)
    }
    first ??= header
    await scanRows(header, options, log)
  }
}

/** The header, or undefined after a V_EMB_HEADER finding; a file that cannot be opened throws. */
async function readHeader(file: string, log: FindingLog): Promise<NpyHeader | undefined> {
  const info = await stat(file).catch((err: unknown) => {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err)
    throw new HardnegError('E_BAD_FILE', `cannot open (${reason}), expected a readable .npy file`, { file })
  })
  if (!info.isFile()) throw new HardnegError('E_BAD_FILE', 'not a regular file, expected a .npy file', { file })
  try {
    return await readNpyHeader(file)
  } catch (err) {
    if (!isHardnegError(err) || (err.code !== 'E_BAD_FILE' && err.code !== 'E_NPY_HEADER')) throw err
    log.add('V_EMB_HEADER', { file }, err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message)
    return undefined
  }
}

async function scanRows(header: NpyHeader, options: EmbeddingsCheckOptions, log: FindingLog): Promise<void> {
  const { file, dim } = header
  const tolerance = options.normTolerance
  const bad = new Set<number>()
  const onBadVector = (v: BadVector): void => {
    bad.add(v.row)
    log.add('V_EMB_NAN', { file, row: v.row + 1 }, `embedding row ${v.row} (0-based) contains ${v.problem} at column ${v.column}, expected finite values`)
  }
  const checkRow = (data: Float32Array, at: number, row: number): void => {
    if (bad.delete(row)) return
    let sum = 0
    for (let j = at; j < at + dim; j++) sum += data[j]! * data[j]!
    if (sum === 0) {
      log.add('V_EMB_ZERO', { file, row: row + 1 }, `embedding row ${row} (0-based) is all zeros, expected a non-zero vector`)
      return
    }
    const norm = Math.sqrt(sum)
    if (Math.abs(norm - 1) > tolerance) {
      log.add('V_EMB_NORM', { file, row: row + 1 }, () =>
        `embedding row ${row} (0-based) has L2 norm ${norm.toPrecision(4)}, expected 1 ± ${tolerance} ` +
        '(mining normalises every row, but a norm this far off often means the wrong tensor was saved)')
    }
  }

  if (options.sample === undefined || options.sample >= header.rows) {
    for await (const block of loadEmbeddings({ file, normalize: false, onBadVector })) {
      for (let r = 0; r < block.rows; r++) checkRow(block.data, r * dim, block.start + r)
    }
    return
  }
  const rows = sampleRows(header.rows, options.sample, options.seed)
  log.add('V_SAMPLED', { file }, `row checks covered ${rows.length} of ${header.rows} rows (--sample ${options.sample}, --seed ${options.seed})`)
  for (let from = 0; from < rows.length; from += SAMPLE_BLOCK) {
    const part = rows.subarray(from, from + SAMPLE_BLOCK)
    const m = await loadEmbeddingMatrix({ file, rows: part, normalize: false, onBadVector })
    for (let i = 0; i < part.length; i++) checkRow(m.data, i * dim, part[i]!)
  }
}
