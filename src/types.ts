/**
 * Shapes shared by the pipeline stages: pairs in, embedding blocks, mined rows out.
 */

/** Scalar values a carried column may hold. */
export type CellValue = string | number | boolean | bigint | null

/** One training pair as read from the pairs file. */
export interface PairRecord {
  row: number // 0-based data row index; row i owns embedding row i
  id: string // from --id-col, else the row index as a decimal string
  query: string // query text ('' when the query has no text)
  positive: string // positive text ('' when the positive has no text)
  group: string // pool group (from --group-col or the preset); '' = one global group
  queryImage: string // query image path as written in the pairs file ('' = no image, or no image column)
  positiveImage: string // positive image path as written ('' = no image)
  carried: Record<string, CellValue> // extra columns copied to the output, by output name
}

/**
 * A row-major block of float32 vectors, `rows` x `dim`, covering embedding rows
 * `start` .. `start + rows - 1` of its file.
 */
export interface EmbeddingBlock {
  start: number // index of the first row in the file
  rows: number // rows in this block
  dim: number // vector dimension
  data: Float32Array // rows * dim values, row-major
}

/** A whole embedding matrix in memory, row-major float32. */
export interface EmbeddingMatrix {
  rows: number // number of vectors
  dim: number // vector dimension
  data: Float32Array // rows * dim values, row-major
}

/** One mined output row, as written to the shards. */
export interface MinedRow {
  id: string // pair id
  query: string // query text
  positive: string // positive text
  group: string // pool group
  posScore: number // sim(query, positive)
  negatives: string[] // hard-negative texts, best first (may repeat under --pad repeat)
  negIds: string[] // ids of the hard negatives (pair id of the first row carrying the text, or corpus id)
  negScores: number[] // sim(query, negative), aligned with `negatives`
  nValid: number // distinct negatives found before padding
  nFalseNegatives: number // pool candidates removed by the false-negative rules
  carried: Record<string, CellValue> // carried columns, by output name
  queryImage?: string // query image path as written ('' = none); set in runs with images
  positiveImage?: string // positive image path as written ('' = none); set in runs with images
  negImages?: string[] // image path of each negative ('' = text-only), aligned with `negatives`; set in runs with images
  filtered?: FilteredCandidate[] // with --keep-filtered N: up to N candidates the rules removed, highest score first (absent when off)
  posRescore?: number // with --rescore-url: the rescorer's score of (query, positive), in its own score space
  negRescores?: number[] // with --rescore-url: the rescorer's score of each negative, aligned with `negatives`
}

/** A candidate a false-negative rule removed, kept for inspection (`--keep-filtered`). */
export interface FilteredCandidate {
  text: string // candidate text
  id: string // candidate id, as in `negIds`
  score: number // sim(query, candidate)
  rule: string // the first rule that removed it: margin, max_score, relative_margin, pos_sim, query_sim, image_duplicate or text_duplicate (readers should accept other names too)
  image?: string // candidate image path in runs with images ('' = none)
}

/**
 * One query's false negatives by the rule that removed them; a candidate several rules
 * remove counts once, under the first of: margin, other, image duplicate, text duplicate
 * (the score rules run over the whole pool in the search; the duplicate rules over the
 * ranked survivors, down to the last negative served).
 */
export interface FalseNegativeCounts {
  margin: number // UniME's margin rule: sim(q, c) > sim(q, pos) + threshold
  other: number // --max-score, --relative-margin, --pos-sim, --query-sim
  imageDuplicate: number // image a near-duplicate of the query's or positive's image
  textDuplicate: number // same normalised text as the query or positive, one side without an image
  rescore?: number // the second-stage rescorer's rule: r(c) > r(pos) - margin, or above its max score (runs with --rescore-url; default 0)
}

/** One external corpus entry (from --corpus). */
export interface CorpusRecord {
  row: number // 0-based row in the corpus file; owns corpus embedding row `row`
  id: string // corpus id
  text: string // candidate text
}
