/**
 * What `embed` sends: every distinct input (its prefixed text, and its image when the
 * side has one) once, in a fixed order (all queries by row, then all positives, then the
 * corpus), and for each input the output rows that carry it. Private to the embed folder.
 */
import type { PairFile } from '../pairs/files.js'
import { imageMimeType, type HashedImage } from '../images/images.js'
import type { CorpusRecord } from '../types.js'

/** The output matrices, in the order their inputs are numbered. */
export const SIDES = ['queries', 'positives', 'corpus'] as const
export type Side = (typeof SIDES)[number]

/** One distinct input. */
export interface EmbedInput {
  text: string // the side's text with its prefix ('' = an image alone, without a prefix)
  image?: InputImage // the side's image, when it has one
}

/** An image input as sent: the file to read and its MIME type. */
export interface InputImage {
  path: string // as written in the pairs file
  file: string // absolute path read when sending
  mime: string // e.g. image/jpeg
  sha256: string // content digest: one picture under two names is one input
}

/** Where an input is first carried, for messages: `file:row` and which side. */
export interface InputPlace {
  file: string // pairs (or corpus) file as given
  row: number // 1-based data row within it
  side: 'query' | 'positive' | 'corpus'
}

/** Options of {@link planInputs}. */
export interface PlanOptions {
  files: readonly PairFile[] // the pairs files as read, rows numbered across them
  corpus: { file: string; records: readonly CorpusRecord[] } | undefined // the corpus, when given
  queryPrefix: string // prepended to every query text
  positivePrefix: string // prepended to every positive and corpus text
  skipRows: ReadonlySet<number> // pair rows left out (a bad image under --on-bad-image skip): both sides stay zero
  images: ReadonlyMap<string, HashedImage> | undefined // decoded images by path as written (runs with images)
}

/** Inputs and where they go. */
export class InputPlan {
  readonly inputs: EmbedInput[] = []
  readonly rows: Record<Side, number> // rows of each output matrix
  readonly carried: number // (side, row) slots filled: the texts of the summary
  private readonly carrierStart: Int32Array // input i's carriers are [carrierStart[i], carrierStart[i + 1])
  private readonly carrierSide: Uint8Array // index into SIDES
  private readonly carrierRow: Int32Array // row within that side's matrix

  constructor(private readonly options: PlanOptions) {
    const pairRows = options.files.reduce((n, f) => n + f.pairs.length, 0)
    this.rows = { queries: pairRows, positives: pairRows, corpus: options.corpus?.records.length ?? 0 }
    const index = new Map<string, number>()
    const slotInput: number[] = []
    const slotSide: number[] = []
    const slotRow: number[] = []
    const add = (side: number, row: number, text: string, imagePath: string): void => {
      let image: InputImage | undefined
      if (imagePath !== '') {
        const hashed = options.images?.get(imagePath)
        if (hashed === undefined) throw new Error(`image '${imagePath}' was not hashed`)
        image = { path: imagePath, file: hashed.path, mime: imageMimeType(hashed.format), sha256: hashed.sha256 }
      }
      const key = image ? `i${image.sha256}\u0000${text}` : `t${text}`
      let i = index.get(key)
      if (i === undefined) {
        i = this.inputs.length
        index.set(key, i)
        this.inputs.push(image ? { text, image } : { text })
      }
      slotInput.push(i)
      slotSide.push(side)
      slotRow.push(row)
    }
    for (const [side, prefix] of [[0, options.queryPrefix], [1, options.positivePrefix]] as const) {
      for (const f of options.files) {
        for (const p of f.pairs) {
          if (options.skipRows.has(p.row)) continue
          if (side === 0) add(0, p.row, prefix + p.query, p.queryImage)
          else add(1, p.row, prefix + p.positive, p.positiveImage)
        }
      }
    }
    for (const c of options.corpus?.records ?? []) add(2, c.row, options.positivePrefix + c.text, '')
    this.carried = slotInput.length
    // Carriers grouped by input (counting sort keeps row order within an input).
    const start = new Int32Array(this.inputs.length + 1)
    for (const i of slotInput) start[i + 1]!++
    for (let i = 0; i < this.inputs.length; i++) start[i + 1]! += start[i]!
    const fill = start.slice(0, this.inputs.length)
    this.carrierSide = new Uint8Array(slotInput.length)
    this.carrierRow = new Int32Array(slotInput.length)
    for (let s = 0; s < slotInput.length; s++) {
      const at = fill[slotInput[s]!]!++
      this.carrierSide[at] = slotSide[s]!
      this.carrierRow[at] = slotRow[s]!
    }
    this.carrierStart = start
  }

  /**
   * The output slots of inputs [start, end): per side, rows ascending and, aligned with
   * them, the offset of the input (from `start`) whose vector goes there.
   */
  slots(start: number, end: number): { side: Side; rows: Int32Array; input: Int32Array }[] {
    const per = SIDES.map(() => [] as [number, number][])
    for (let i = start; i < end; i++) {
      for (let c = this.carrierStart[i]!; c < this.carrierStart[i + 1]!; c++) per[this.carrierSide[c]!]!.push([this.carrierRow[c]!, i - start])
    }
    return per.flatMap((list, s) => {
      if (list.length === 0) return []
      list.sort((a, b) => a[0] - b[0])
      return [{ side: SIDES[s] as Side, rows: Int32Array.from(list, (x) => x[0]), input: Int32Array.from(list, (x) => x[1]) }]
    })
  }

  /** The first slot of input `i`: side and row within that side's matrix. */
  firstSlot(i: number): { side: Side; row: number } {
    const c = this.carrierStart[i]!
    return { side: SIDES[this.carrierSide[c]!] as Side, row: this.carrierRow[c]! }
  }

  /** Where input `i` is first carried: the pairs (or corpus) file and its 1-based row there. */
  place(i: number): InputPlace {
    const { side, row } = this.firstSlot(i)
    if (side === 'corpus') return { file: this.options.corpus?.file ?? 'corpus', row: row + 1, side: 'corpus' }
    const f = this.options.files.find((x) => row >= x.firstRow && row < x.firstRow + x.pairs.length) as PairFile
    return { file: f.file, row: row - f.firstRow + 1, side: side === 'queries' ? 'query' : 'positive' }
  }

  /** `the positive of pairs.csv row 7` */
  describe(i: number): string {
    const p = this.place(i)
    return `the ${p.side} of ${p.file} row ${p.row}`
  }
}
