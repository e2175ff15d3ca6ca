/**
 * Row checks of mined shards: value types, k and n_valid under the pad policy, no
 * negative equal to the row's positive or query, scores within the ceiling and sorted,
 * and forbidden texts. Rows are decoded one row group at a time; with a sample, only
 * the row ranges that hold sampled rows. Also hands back the rows drawn for rescoring.
 * Private to the validate files.
 */

import { parquetReadObjects } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { scoreCeiling } from '../mine/filters.js'
import { quote, type FindingLog, type FindingPlace } from './_findings.js'
import type { ForbidSet } from './_forbid.js'
import { HashIndex64, hashTexts } from './_hash.js'
import { normaliseText } from '../mine/pool.js'
import { lowerBound, sampleRows } from './_sample.js'
import { MINED_SCHEMA, type ShardSet } from './_shard-set.js'
import type { PlacedImage } from './_images.js'

/** A mined row with checked types. */
export interface MinedFields {
  id: string
  query: string
  positive: string
  group: string
  posScore: number
  negatives: string[]
  negIds: string[]
  negScores: number[]
  nValid: number
  images?: { query: string; positive: string; negatives: string[] } // image paths of a run with images ('' = none)
}

/** A row drawn for rescoring, with its place. */
export interface DrawnRow extends MinedFields {
  place: { file: string; row: number }
}

/** What {@link checkMinedRows} needs besides the shard set. */
export interface MinedRowsCheckOptions {
  sample?: number | undefined // check this many seeded rows instead of all
  rescore?: number | undefined // draw this many seeded rows for rescoring
  seed: number
  forbid?: ForbidSet | undefined
  images?: PlacedImage[] | undefined // when given, receives the image paths (query_image, pos_image, neg_images) of checked rows
}

/** Image columns of a run with images, and the side each belongs to. */
const IMAGE_COLUMNS = [['query_image', 'query'], ['pos_image', 'positive']] as const
const IMAGE_COLUMN_NAMES = ['query_image', 'pos_image', 'neg_images']

const COLUMNS = Object.keys(MINED_SCHEMA)
// float32 dot products of unit vectors can land a few ulps past +-1.
const SCORE_LIMIT = 1 + 1e-4
// neg_score <= ceiling, with room for a float32 rounding step; see docs/validate.md.
const CEILING_SLACK = 1e-6

/** Checks the rows of `set.shards` and returns the rows drawn for rescoring. */
export async function checkMinedRows(set: ShardSet, options: MinedRowsCheckOptions, log: FindingLog): Promise<DrawnRow[]> {
  const total = set.shards.reduce((n, s) => n + s.rows, 0)
  const checked = options.sample === undefined || options.sample >= total ? undefined : sampleRows(total, options.sample, options.seed)
  const drawn = options.rescore === undefined ? new Int32Array(0) : sampleRows(total, options.rescore, options.seed ^ 0x2c1b3c6d)
  log.ran('V_SCHEMA', 'V_N_VALID', 'V_NEG_IS_POSITIVE', 'V_NEG_IS_QUERY', 'V_NEG_IS_LABELED_POSITIVE', 'V_NEG_LIKE_POSITIVE', 'V_SCORE_RANGE', 'V_SCORES_UNSORTED', 'V_POS_BELOW_NEG')
  if (set.selection !== undefined) log.ran('V_SHORT_ROW', 'V_SCORE_ABOVE_MARGIN')
  if (options.forbid !== undefined) log.ran('V_CONTAMINATION')
  if (checked !== undefined) {
    log.add('V_SAMPLED', { file: set.dir }, `row checks covered ${checked.length} of ${total} rows (--sample ${options.sample}, --seed ${options.seed}); duplicate ids were not checked`)
  } else {
    log.ran('V_DUPLICATE_ID')
  }
  const ids = checked === undefined ? new HashIndex64() : undefined
  const out: DrawnRow[] = []
  const labeled = await labeledPositives(set, total)
  const below = { rows: 0, first: undefined as string | undefined }

  let offset = 0
  for (const shard of set.shards) {
    const names = new Set(shard.metadata.schema.map(e => e.name))
    const imageColumns = options.images === undefined ? [] : IMAGE_COLUMNS.filter(([name]) => names.has(name))
    // A run with images identifies candidates by (text, image); read its image columns whenever they are there.
    const columns = [...COLUMNS, ...IMAGE_COLUMN_NAMES.filter(name => names.has(name))]
    let start = 0
    for (const group of shard.metadata.row_groups) {
      const end = start + Number(group.num_rows)
      const range = wantedRange(offset + start, offset + end, checked, drawn)
      if (range !== undefined) {
        const rows = await parquetReadObjects({
          file: shard.buffer, metadata: shard.metadata, columns, compressors,
          rowStart: range[0] - offset, rowEnd: range[1] - offset,
        })
        for (const [i, raw] of rows.entries()) {
          const global = range[0] + i
          const place = { file: shard.file, row: global - offset + 1 }
          const isChecked = checked === undefined || isIn(checked, global)
          const isDrawn = isIn(drawn, global)
          if (!isChecked && !isDrawn) continue
          const fields = readFields(raw, place, isChecked ? log : undefined)
          if (fields === undefined) continue
          if (isChecked) {
            checkRow(fields, place, set, options.forbid, log, labeled)
            const best = Math.max(...fields.negScores.slice(0, fields.nValid))
            if (fields.nValid > 0 && fields.posScore < best && below.rows++ === 0) {
              below.first = `${place.file}:${place.row} (pos_score ${fmt(fields.posScore)} < best negative ${fmt(best)})`
            }
            for (const [name, role] of imageColumns) {
              const value = raw[name]
              if (typeof value === 'string' && value !== '') options.images?.push({ path: value, place, role })
            }
            if (options.images !== undefined && fields.images !== undefined) {
              fields.images.negatives.forEach((value, i) => {
                if (value !== '' && fields.images?.negatives.indexOf(value) === i) options.images?.push({ path: value, place, role: `negative ${i}` })
              })
            }
            const first = ids?.putIfAbsent(hashTexts(fields.id), global) ?? -1
            if (first >= 0) log.add('V_DUPLICATE_ID', place, () => `id ${quote(fields.id)} already at ${locate(set, first)}, expected unique ids`)
          }
          if (isDrawn) out.push({ ...fields, place })
        }
      }
      start = end
    }
    offset += shard.rows
  }
  const scope = checked === undefined ? `${total} rows` : `${checked.length} checked rows`
  log.addCount('V_POS_BELOW_NEG', { file: set.dir }, below.rows,
    `${below.rows} of ${scope} score their positive below their best negative (first: ${below.first}), expected the positive to score highest; such pairs may be noise (a mislabeled or weak positive)`)
  return out
}

/**
 * Every labeled positive of the shard set: the hash of (group, query, positive) of each
 * row (with image paths in a run with images), mapped to the first row that labels it.
 * One pass over the query, positive and group columns, before the row checks.
 */
async function labeledPositives(set: ShardSet, total: number): Promise<HashIndex64> {
  const labels = new HashIndex64(total * 2)
  let offset = 0
  for (const shard of set.shards) {
    const names = new Set(shard.metadata.schema.map(e => e.name))
    const images = names.has('query_image') && names.has('pos_image')
    const columns = ['query', 'positive', 'group', ...(images ? ['query_image', 'pos_image'] : [])]
    if (!columns.every(c => names.has(c))) {
      offset += shard.rows
      continue // V_SCHEMA reports it
    }
    const rows = await parquetReadObjects({ file: shard.buffer, metadata: shard.metadata, columns, compressors })
    for (const [i, r] of rows.entries()) {
      const side = (text: unknown, image: unknown): string => (images ? `${String(text)}\u0000${String(image)}` : String(text))
      labels.putIfAbsent(hashTexts(String(r.group), side(r.query, r.query_image), side(r.positive, r.pos_image)), offset + i)
    }
    offset += shard.rows
  }
  return labels
}

/** The global rows [from, to) to decode for one row group, or undefined when none is wanted. */
function wantedRange(from: number, to: number, checked: Int32Array | undefined, drawn: Int32Array): [number, number] | undefined {
  if (checked === undefined) return to > from ? [from, to] : undefined
  let lo = Infinity
  let hi = -Infinity
  for (const rows of [checked, drawn]) {
    const a = lowerBound(rows, from)
    const b = lowerBound(rows, to)
    if (b > a) {
      lo = Math.min(lo, rows[a]!)
      hi = Math.max(hi, rows[b - 1]! + 1)
    }
  }
  return hi > lo ? [lo, hi] : undefined
}

function isIn(rows: Int32Array, row: number): boolean {
  const i = lowerBound(rows, row)
  return i < rows.length && rows[i] === row
}

/** `part-00000.parquet:12` for a global row index. */
function locate(set: ShardSet, global: number): string {
  let offset = 0
  for (const s of set.shards) {
    if (global < offset + s.rows) return `${s.file}:${global - offset + 1}`
    offset += s.rows
  }
  return `row ${global + 1}`
}

/** The row's values with their types checked; undefined (after a V_SCHEMA finding when `log` is given) when one is off. */
function readFields(raw: Record<string, unknown>, place: FindingPlace, log: FindingLog | undefined): MinedFields | undefined {
  const fail = (detail: string): undefined => {
    log?.add('V_SCHEMA', place, detail)
    return undefined
  }
  for (const name of ['id', 'query', 'positive', 'group'] as const) {
    if (typeof raw[name] !== 'string') return fail(`column '${name}' is ${describe(raw[name])}, expected a string`)
  }
  for (const name of ['pos_score', 'n_valid', 'n_false_negatives'] as const) {
    if (typeof raw[name] !== 'number') return fail(`column '${name}' is ${describe(raw[name])}, expected a number`)
  }
  for (const [name, type] of [['negatives', 'string'], ['neg_ids', 'string'], ['neg_scores', 'number']] as const) {
    const list = raw[name]
    if (!Array.isArray(list)) return fail(`column '${name}' is ${describe(list)}, expected a list of ${type}s`)
    const bad = list.findIndex(v => typeof v !== type)
    if (bad >= 0) return fail(`column '${name}' element ${bad} is ${describe(list[bad])}, expected a ${type}`)
  }
  const negatives = raw.negatives as string[]
  const negIds = raw.neg_ids as string[]
  const negScores = raw.neg_scores as number[]
  if (negIds.length !== negatives.length || negScores.length !== negatives.length) {
    return fail(`negatives, neg_ids and neg_scores have ${negatives.length}, ${negIds.length} and ${negScores.length} values, expected equal lengths`)
  }
  const nValid = raw.n_valid as number
  if (!Number.isInteger(nValid) || nValid < 0 || nValid > negatives.length) {
    log?.add('V_N_VALID', place, `n_valid is ${nValid}, expected an integer from 0 to the ${negatives.length} negatives`)
    return undefined
  }
  let images: MinedFields['images']
  if ('neg_images' in raw) {
    const negImages = raw.neg_images
    if (!Array.isArray(negImages) || negImages.length !== negatives.length || negImages.some(v => typeof v !== 'string')) {
      return fail(`column 'neg_images' is ${describe(negImages)}, expected a list of ${negatives.length} strings (one per negative)`)
    }
    for (const name of ['query_image', 'pos_image'] as const) {
      if (typeof raw[name] !== 'string') return fail(`column '${name}' is ${describe(raw[name])}, expected a string`)
    }
    images = { query: raw.query_image as string, positive: raw.pos_image as string, negatives: negImages as string[] }
  }
  return {
    id: raw.id as string, query: raw.query as string, positive: raw.positive as string, group: raw.group as string,
    posScore: raw.pos_score as number, negatives, negIds, negScores, nValid, ...(images ? { images } : {}),
  }
}

function checkRow(r: MinedFields, place: FindingPlace, set: ShardSet, forbid: ForbidSet | undefined, log: FindingLog, labeled: HashIndex64): void {
  const { negScores, nValid, posScore } = r
  // A candidate is its text, or in a run with images its (text, image path).
  const side = (text: string, image: string | undefined): string => (r.images === undefined ? text : `${text}\u0000${image}`)
  const show = (text: string, image: string | undefined): string => (image ? `${quote(text)} with image '${image}'` : quote(text))
  const negatives = r.negatives.map((t, i) => side(t, r.images?.negatives[i]))
  const shown = (i: number): string => show(r.negatives[i]!, r.images?.negatives[i])
  const positive = side(r.positive, r.images?.positive)
  const query = side(r.query, r.images?.query)
  const n = negatives.length
  const { selection, rules } = set

  // Distinct first, then padding as the pad policy says.
  const seen = new Set<string>()
  for (let i = 0; i < nValid; i++) {
    if (seen.has(negatives[i]!)) {
      log.add('V_N_VALID', place, () => `negative ${i} ${shown(i)} repeats an earlier one within the first n_valid = ${nValid}, expected ${nValid} distinct ${r.images ? 'candidates' : 'texts'}`)
      break
    }
    seen.add(negatives[i]!)
  }
  if (selection !== undefined) {
    const { k, pad } = selection
    if (pad === 'none' ? n > k : n !== k) {
      const expected = pad === 'none' ? `at most k = ${k}` : `k = ${k} (pad ${pad}${pad === 'repeat' ? ' fills every row to k' : ' drops short rows'})`
      log.add('V_SHORT_ROW', place, `${n} negative${n === 1 ? '' : 's'}, expected ${expected}`)
    } else if (pad === 'repeat' && nValid === 0) {
      log.add('V_N_VALID', place, 'n_valid is 0, expected the row dropped (pad repeat cannot pad a row with no negative)')
    } else if (pad === 'repeat') {
      for (let i = nValid; i < n; i++) {
        if (negatives[i] !== negatives[i % nValid]) {
          log.add('V_N_VALID', place, () => `negative ${i} is ${shown(i)}, expected ${shown(i % nValid)} (pad repeat cycles the first n_valid = ${nValid})`)
          break
        }
      }
    } else if (nValid !== n) {
      log.add('V_N_VALID', place, `n_valid is ${nValid}, expected ${n} (pad ${pad} keeps only distinct negatives)`)
    }
  }

  const normalisedPositive = r.positive === '' ? '' : normaliseText(r.positive)
  for (const [i, key] of negatives.entries()) {
    if (negatives.indexOf(key) !== i) continue
    const text = r.negatives[i]!
    // With images, a shared text (one instruction over many pictures) is no duplicate unless a side has no picture.
    const textOnly = r.images === undefined || r.images.negatives[i] === '' || r.images.positive === ''
    if (key === positive) {
      log.add('V_NEG_IS_POSITIVE', place, () => `negative ${i} is the positive ${shown(i)}, expected another ${r.images ? 'candidate' : 'text'}`)
    } else if (key === query) {
      log.add('V_NEG_IS_QUERY', place, () => `negative ${i} is the query ${shown(i)}, expected another ${r.images ? 'candidate' : 'text'}`)
    } else if (labeled.get(hashTexts(r.group, query, key)) >= 0) {
      const first = labeled.get(hashTexts(r.group, query, key))
      log.add('V_NEG_IS_LABELED_POSITIVE', place, () => `negative ${i} ${shown(i)} is a labeled positive of this row's query (the positive of ${locate(set, first)}), expected a candidate no row of the query labels`)
    } else if (textOnly && normalisedPositive !== '' && normaliseText(text) === normalisedPositive) {
      log.add('V_NEG_LIKE_POSITIVE', place, () => `negative ${i} ${quote(text)} equals the positive ${quote(r.positive)} up to case and whitespace, expected another text`)
    }
  }

  const badScore = [posScore, ...negScores].findIndex(s => !Number.isFinite(s) || Math.abs(s) > SCORE_LIMIT)
  if (badScore >= 0) {
    const what = badScore === 0 ? 'pos_score' : `neg_scores[${badScore - 1}]`
    log.add('V_SCORE_RANGE', place, `${what} is ${badScore === 0 ? posScore : negScores[badScore - 1]}, expected a cosine similarity from -1 to 1`)
  } else {
    if (rules !== undefined) {
      const ceiling = scoreCeiling(posScore, rules)
      const over = negScores.findIndex(s => s > ceiling + CEILING_SLACK)
      if (over >= 0) {
        const caps = [`pos_score ${fmt(posScore)} + threshold ${rules.threshold}`]
        if (rules.maxScore !== undefined) caps.push(`max score ${rules.maxScore}`)
        if (rules.relativeMargin !== undefined) caps.push(`pos_score * (1 - ${rules.relativeMargin})`)
        const formula = caps.length === 1 ? caps[0] : `min(${caps.join(', ')})`
        log.add('V_SCORE_ABOVE_MARGIN', place, `neg_scores[${over}] is ${fmt(negScores[over]!)}, expected at most the ceiling ${fmt(ceiling)} = ${formula}`)
      }
    }
    for (let i = 1; i < Math.min(nValid, n); i++) {
      if (negScores[i]! > negScores[i - 1]!) {
        const mode = selection === undefined ? '' : ` (sampling ${selection.sampling} writes ranks in order)`
        log.add('V_SCORES_UNSORTED', place, `neg_scores[${i}] ${fmt(negScores[i]!)} is above neg_scores[${i - 1}] ${fmt(negScores[i - 1]!)}, expected descending scores over the first n_valid = ${nValid}${mode}`)
        break
      }
    }
  }

  if (forbid !== undefined) {
    const texts: [string, string][] = [['query', r.query], ['positive', r.positive]]
    for (const [i, text] of r.negatives.entries()) if (r.negatives.indexOf(text) === i) texts.push([`negative ${i}`, text])
    for (const [role, text] of texts) {
      if (text === '') continue
      const hit = forbid.find(text)
      if (hit !== undefined) log.add('V_CONTAMINATION', place, () => `${role} ${quote(text)} is in ${hit.file}:${hit.row} (normalised text), expected no text of the forbid sets`)
    }
  }
}

/** A score for a message: enough digits to see a difference of 1e-6. */
export function fmt(x: number): string {
  return Number(x.toPrecision(7)).toString()
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return `a list of ${value.length}`
  if (typeof value === 'string') return `${quote(value)} (a string)`
  return `${String(value)} (a ${typeof value})`
}
