/**
 * The embeddings of one side (queries, positives or corpus) when they come in several
 * files: one per pairs file, in the same order, or one file for all of them. Rows are
 * numbered across the pairs files as one sequence. Private to `mine.ts`.
 */
import { checkEmbeddingShape, loadEmbeddingMatrix, type EmbeddingFileOptions, type EmbeddingHeader } from '../embeddings/embeddings.js'
import type { EmbeddingMatrix } from '../types.js'

/** One embedding file and the pair rows it covers. */
export interface EmbeddingPart {
  header: EmbeddingHeader // the file's header
  firstRow: number // first pair row (across all pairs files) it covers
  rows: number // pair rows it covers
  ids: readonly string[] // ids of those pairs, in order (used by files matched by id)
  idsFrom: string // where the ids come from, for messages
}

/** A side's embeddings: gathers any pair rows from the files that hold them. */
export class EmbeddingSet {
  constructor(
    private readonly parts: readonly EmbeddingPart[],
    private readonly fileOptions: EmbeddingFileOptions,
    readonly dim: number,
  ) {}

  /**
   * Checks every file's shape against the pairs it covers (rows, and `dim` of the first
   * query file) and matches the ids of files keyed by id, before any output exists.
   */
  async check(dimFrom: string): Promise<void> {
    for (const part of this.parts) {
      checkEmbeddingShape(part.header, { rows: part.rows, rowsFrom: part.idsFrom, dim: this.dim, dimFrom })
      if (part.header.idCol !== undefined) await this.loadPart(part, [])
    }
  }

  /** L2-normalised vectors of `rows` (pair rows across all files), in that order. */
  async load(rows: ArrayLike<number>): Promise<EmbeddingMatrix> {
    const [only] = this.parts
    if (this.parts.length === 1 && only) return this.loadPart(only, Array.from(rows))
    const dim = this.dim
    const out = new Float32Array(rows.length * dim)
    for (const part of this.parts) {
      const local: number[] = []
      const at: number[] = []
      for (let j = 0; j < rows.length; j++) {
        const r = rows[j] as number
        if (r >= part.firstRow && r < part.firstRow + part.rows) {
          local.push(r - part.firstRow)
          at.push(j)
        }
      }
      if (local.length === 0) continue
      const m = await this.loadPart(part, local)
      for (let j = 0; j < at.length; j++) out.set(m.data.subarray(j * dim, (j + 1) * dim), (at[j] as number) * dim)
    }
    return { rows: rows.length, dim, data: out }
  }

  private loadPart(part: EmbeddingPart, rows: number[]): Promise<EmbeddingMatrix> {
    return loadEmbeddingMatrix({ file: part.header.file, rows, ids: part.ids, idsFrom: part.idsFrom, ...this.fileOptions })
  }
}
