/**
 * Reading a mined shard set for the report, streaming: a first pass over the score
 * columns, one row group at a time, bins every distribution per group and draws a seeded
 * reservoir sample of row positions; a second pass reads just the row groups that hold
 * the sampled rows, with every column the gallery shows. Private to the report files.
 */
import { HardnegError } from '../errors.js'
import { scoreCeiling, type FalseNegativeRules } from '../mine/filters.js'
import { ScoreBins, type Histogram } from './_bins.js'
import { mulberry32 } from '../random.js'
import { openShardColumns, type ShardColumns } from '../output/shards.js'

/** The columns every hardneg shard has that the report reads. */
const MINED = ['id', 'query', 'positive', 'group', 'pos_score', 'negatives', 'neg_ids', 'neg_scores', 'n_valid', 'n_false_negatives'] as const

/** Image path columns, by side: the multimodal shard columns, else the MMEB preset's carried columns. */
export const IMAGE_COLUMNS = {
  query: ['query_image', 'qry_image_path'],
  positive: ['pos_image', 'pos_image_path'],
  negatives: ['neg_images'],
  filtered: ['filtered_images'],
} as const

/** Which optional columns the shard set has. */
export interface ShardLayout {
  filtered: boolean // filtered_texts/_scores/_rules (mined with --keep-filtered)
  rescored: boolean // pos_rescore/neg_rescores (mined with --rescore-url)
  images: { query?: string; positive?: string; negatives?: string; filtered?: string } // the image column found for each side
}

/** One group's distributions and counts, as read from its written rows. */
export interface GroupScan {
  name: string // group name ('' = the global group)
  rows: number // rows in the shards
  rowsWithFalseNegatives: number // rows with n_false_negatives > 0
  falseNegatives: number // sum of n_false_negatives
  positive: Histogram // pos_score
  negative: Histogram // neg_scores[0 .. n_valid): the distinct negatives, no padding repeats
  ceiling: Histogram // each row's ceiling: min(pos_score + threshold, max_score, pos_score (1 - relative_margin))
  filtered: Histogram | undefined // filtered_scores, when the shards have them
  rescore: { positive: Histogram; negative: Histogram } | undefined // pos_rescore and the distinct negatives' neg_rescores, when the shards have them (over the rescorer's own range)
  storedByRule: Record<string, number> // filtered candidates stored, by rule name
}

/** A sampled row, as the gallery shows it. */
export interface SampleRow {
  index: number // 0-based position over the shards, in shard order
  id: string
  group: string
  query: string
  positive: string
  posScore: number
  posRescore?: number // the rescorer's score of the positive (runs with --rescore-url)
  ceiling: number // the row's score ceiling under the run's rules
  nValid: number // distinct negatives
  nFalseNegatives: number // candidates the rules removed for this query
  queryImage?: string // image path as the shard holds it ('' and absent = none)
  positiveImage?: string
  negatives: { text: string; id: string; score: number; repeat: boolean; image?: string; rescore?: number }[] // as stored; repeat marks padding
  filtered?: { text: string; id: string; score: number; rule: string; image?: string }[] // as stored (with --keep-filtered)
}

/** What the first pass yields. */
export interface ScanResult {
  shards: ShardColumns[] // opened shards, in order
  layout: ShardLayout
  rows: number // rows read
  overall: GroupScan
  groups: GroupScan[] // in order of first appearance
  sampled: number[] // sampled row positions, ascending
}

/** Options of {@link scanShards}. */
export interface ScanOptions {
  files: readonly string[] // shard files in order
  rules: FalseNegativeRules // the run's rules, for the ceilings
  bins: number // bins over [-1, 1]
  rescoreRange?: [number, number] // the range the rescorer's scores are binned over (default [0, 1])
  samples: number // rows to sample
  seed: number // sample seed
  onProgress?: (done: number, total: number) => void // rows scanned
}

class GroupAccumulator {
  rows = 0
  rowsWithFalseNegatives = 0
  falseNegatives = 0
  readonly positive: ScoreBins
  readonly negative: ScoreBins
  readonly ceiling: ScoreBins
  readonly filtered: ScoreBins
  readonly posRescore: ScoreBins
  readonly negRescore: ScoreBins
  readonly storedByRule = new Map<string, number>()

  constructor(readonly name: string, bins: number, rescoreRange: [number, number] = [0, 1]) {
    this.posRescore = new ScoreBins(rescoreRange[0], rescoreRange[1], bins)
    this.negRescore = new ScoreBins(rescoreRange[0], rescoreRange[1], bins)
    this.positive = new ScoreBins(-1, 1, bins)
    this.negative = new ScoreBins(-1, 1, bins)
    this.ceiling = new ScoreBins(-1, 1, bins)
    this.filtered = new ScoreBins(-1, 1, bins)
  }

  result(layout: ShardLayout): GroupScan {
    const byRule = [...this.storedByRule].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    return {
      name: this.name,
      rows: this.rows,
      rowsWithFalseNegatives: this.rowsWithFalseNegatives,
      falseNegatives: this.falseNegatives,
      positive: this.positive.histogram(),
      negative: this.negative.histogram(),
      ceiling: this.ceiling.histogram(),
      filtered: layout.filtered ? this.filtered.histogram() : undefined,
      rescore: layout.rescored ? { positive: this.posRescore.histogram(), negative: this.negRescore.histogram() } : undefined,
      storedByRule: Object.fromEntries(byRule),
    }
  }
}

/** A group with no written rows (every row dropped): empty distributions. */
export function emptyGroupScan(name: string, bins: number, layout: ShardLayout, rescoreRange?: [number, number]): GroupScan {
  return new GroupAccumulator(name, bins, rescoreRange).result(layout)
}

/** Opens every shard's footer and checks the columns the report needs. */
export async function openShardSet(files: readonly string[]): Promise<{ shards: ShardColumns[]; layout: ShardLayout }> {
  const shards: ShardColumns[] = []
  for (const file of files) shards.push(await openShardColumns(file))
  const first = shards[0]
  if (first === undefined) throw new HardnegError('E_BAD_FILE', 'no shards listed, expected at least part-00000.parquet')
  for (const shard of shards) {
    const missing = MINED.filter(c => !shard.columns.includes(c))
    if (missing.length > 0) {
      throw new HardnegError('E_MISSING_COLUMN', `no column ${missing.map(c => `"${c}"`).join(', ')}, expected the hardneg shard columns (${MINED.join(', ')})`, { file: shard.file })
    }
  }
  const everywhere = (column: string): boolean => shards.every(s => s.columns.includes(column))
  const pick = (names: readonly string[]): string | undefined => names.find(everywhere)
  const images: ShardLayout['images'] = {}
  for (const side of ['query', 'positive', 'negatives', 'filtered'] as const) {
    const column = pick(IMAGE_COLUMNS[side])
    if (column !== undefined) images[side] = column
  }
  return { shards, layout: { filtered: ['filtered_texts', 'filtered_scores', 'filtered_rules'].every(everywhere), rescored: ['pos_rescore', 'neg_rescores'].every(everywhere), images } }
}

/** The first pass: binned distributions per group and overall, and the sampled positions. */
export async function scanShards(options: ScanOptions): Promise<ScanResult> {
  const { shards, layout } = await openShardSet(options.files)
  const total = shards.reduce((n, s) => n + s.rows, 0)
  const columns = ['group', 'pos_score', 'neg_scores', 'n_valid', 'n_false_negatives', ...(layout.filtered ? ['filtered_scores', 'filtered_rules'] : []), ...(layout.rescored ? ['pos_rescore', 'neg_rescores'] : [])]
  const groups = new Map<string, GroupAccumulator>()
  const overall = new GroupAccumulator('', options.bins, options.rescoreRange)
  const reservoir: number[] = []
  const random = mulberry32(options.seed)
  let index = 0
  for (const shard of shards) {
    for (const { rowStart, rowEnd } of shard.rowGroups) {
      for (const row of await shard.read(columns, rowStart, rowEnd)) {
        const name = String(row.group ?? '')
        let group = groups.get(name)
        if (group === undefined) groups.set(name, (group = new GroupAccumulator(name, options.bins, options.rescoreRange)))
        for (const acc of [overall, group]) addRow(acc, row, options.rules)
        // Algorithm R: every row ends up sampled with the same chance, in one pass.
        if (reservoir.length < options.samples) reservoir.push(index)
        else if (options.samples > 0) {
          const j = Math.floor(random() * (index + 1))
          if (j < options.samples) reservoir[j] = index
        }
        index++
      }
      options.onProgress?.(index, total)
    }
  }
  if (index === 0) options.onProgress?.(0, 0)
  return {
    shards,
    layout,
    rows: index,
    overall: overall.result(layout),
    groups: [...groups.values()].map(g => g.result(layout)),
    sampled: reservoir.sort((a, b) => a - b),
  }
}

function addRow(acc: GroupAccumulator, row: Record<string, unknown>, rules: FalseNegativeRules): void {
  const pos = Number(row.pos_score)
  const nValid = Number(row.n_valid)
  const removed = Number(row.n_false_negatives)
  acc.rows++
  acc.falseNegatives += removed
  if (removed > 0) acc.rowsWithFalseNegatives++
  acc.positive.add(pos)
  acc.ceiling.add(scoreCeiling(pos, rules))
  const negatives = numbers(row.neg_scores)
  for (let i = 0; i < Math.min(nValid, negatives.length); i++) acc.negative.add(negatives[i] as number)
  if (row.pos_rescore !== undefined) {
    acc.posRescore.add(Number(row.pos_rescore))
    const rescores = numbers(row.neg_rescores)
    for (let i = 0; i < Math.min(nValid, rescores.length); i++) acc.negRescore.add(rescores[i] as number)
  }
  if (row.filtered_scores !== undefined) {
    for (const s of numbers(row.filtered_scores)) acc.filtered.add(s)
    for (const rule of strings(row.filtered_rules)) acc.storedByRule.set(rule, (acc.storedByRule.get(rule) ?? 0) + 1)
  }
}

/** The second pass: the sampled rows with every column the gallery shows. */
export async function readSamples(scan: ScanResult, rules: FalseNegativeRules): Promise<SampleRow[]> {
  const { layout } = scan
  const columns: string[] = [...MINED]
  if (layout.filtered) columns.push('filtered_texts', 'filtered_scores', 'filtered_rules')
  if (layout.rescored) columns.push('pos_rescore', 'neg_rescores')
  if (layout.filtered && scan.shards.every(s => s.columns.includes('filtered_ids'))) columns.push('filtered_ids')
  for (const column of Object.values(layout.images)) columns.push(column)
  const out: SampleRow[] = []
  let base = 0
  let next = 0
  for (const shard of scan.shards) {
    for (const { rowStart, rowEnd } of shard.rowGroups) {
      const wanted: number[] = []
      while (next < scan.sampled.length && (scan.sampled[next] as number) < base + rowEnd) wanted.push((scan.sampled[next++] as number) - base)
      if (wanted.length === 0) continue
      const first = wanted[0] as number
      const rows = await shard.read(columns, first, (wanted[wanted.length - 1] as number) + 1)
      for (const local of wanted) out.push(toSample(rows[local - first] ?? {}, base + local, layout, rules))
    }
    base += shard.rows
  }
  return out
}

function toSample(row: Record<string, unknown>, index: number, layout: ShardLayout, rules: FalseNegativeRules): SampleRow {
  const posScore = Number(row.pos_score)
  const nValid = Number(row.n_valid)
  const image = (column: string | undefined): string | undefined => {
    const v = column === undefined ? undefined : row[column]
    return typeof v === 'string' && v !== '' ? v : undefined
  }
  const listImages = (column: string | undefined): (string | undefined)[] => (column === undefined ? [] : strings(row[column]).map(v => v || undefined))
  const negImages = listImages(layout.images.negatives)
  const negIds = strings(row.neg_ids)
  const negScores = numbers(row.neg_scores)
  const negRescores = layout.rescored ? numbers(row.neg_rescores) : undefined
  const sample: SampleRow = {
    index,
    id: String(row.id ?? ''),
    group: String(row.group ?? ''),
    query: String(row.query ?? ''),
    positive: String(row.positive ?? ''),
    posScore,
    ceiling: scoreCeiling(posScore, rules),
    nValid,
    nFalseNegatives: Number(row.n_false_negatives),
    negatives: strings(row.negatives).map((text, i) => ({
      text,
      id: negIds[i] ?? '',
      score: negScores[i] ?? Number.NaN,
      repeat: i >= nValid,
      ...withImage(negImages[i]),
      ...(negRescores ? { rescore: negRescores[i] ?? Number.NaN } : {}),
    })),
    ...(layout.rescored ? { posRescore: Number(row.pos_rescore) } : {}),
  }
  const queryImage = image(layout.images.query)
  const positiveImage = image(layout.images.positive)
  if (queryImage !== undefined) sample.queryImage = queryImage
  if (positiveImage !== undefined) sample.positiveImage = positiveImage
  if (layout.filtered) {
    const ids = strings(row.filtered_ids)
    const scores = numbers(row.filtered_scores)
    const ruleNames = strings(row.filtered_rules)
    const images = listImages(layout.images.filtered)
    sample.filtered = strings(row.filtered_texts).map((text, i) => {
      return { text, id: ids[i] ?? '', score: scores[i] ?? Number.NaN, rule: ruleNames[i] || 'unknown', ...withImage(images[i]) }
    })
  }
  return sample
}

function withImage(path: string | undefined): { image?: string } {
  return path === undefined ? {} : { image: path }
}

function numbers(value: unknown): number[] {
  return Array.isArray(value) ? value.map(Number) : []
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(v => (v === null || v === undefined ? '' : String(v))) : []
}
