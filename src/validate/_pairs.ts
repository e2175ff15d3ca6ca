/**
 * Checks of a pairs file, in one streaming pass: columns, record syntax, value types,
 * empty texts, duplicate ids and pairs, group sizes and forbidden texts. The column
 * mapping is `readPairs`'s (presets, flags, defaults); where `readPairs` would stop at
 * the first bad row, this records a finding and reads on. Memory: the 64-bit hash tables
 * of ids, pairs and (group, positive) texts, 20-40 bytes per row each, plus a counter
 * per group. Private to the validate files.
 */

import { HardnegError, isHardnegError } from '../errors.js'
import { PRESETS, type PairsFormat, type PresetName } from '../pairs/pairs.js'
import { HashIndex64, hashTexts } from './_hash.js'
import { quote, type FindingLog } from './_findings.js'
import type { ForbidSet } from './_forbid.js'
import { formatOf, openCheckedTable, type CheckedTable } from './_rows.js'
import { describe } from '../pairs/sources.js'
import type { PlacedImage } from './_images.js'

/** What {@link checkPairs} needs: `readPairs`'s options plus k and a forbid set. */
export interface PairsCheckOptions {
  file: string
  format?: PairsFormat | undefined
  preset?: PresetName | undefined
  idCol?: string | undefined
  queryCol?: string | undefined
  positiveCol?: string | undefined
  groupCol?: string | undefined
  carry?: readonly string[] | undefined
  queryImageCol?: string | undefined // query image path column (default: the preset's; a preset's column may be absent)
  positiveImageCol?: string | undefined // positive image path column (default: the preset's)
  images?: PlacedImage[] | undefined // when given, receives every non-empty image path, in row order
  k: number // negatives per row the mining run asks for
  forbid?: ForbidSet | undefined
}

interface Wish {
  role: 'query' | 'positive' | 'id' | 'group' | 'carried' | 'query image' | 'positive image'
  name: string
  source: string // where the name came from, quoted when it is missing
  required: boolean
}

/** Per-group counts for V_SMALL_GROUP. */
interface GroupCount {
  firstRow: number
  positives: number // distinct non-empty positive texts: the group's pool
}

/**
 * Checks `options.file` and returns its number of records (the pair count embeddings
 * must match), or undefined when it has none. Throws only when the file cannot be read
 * at all (E_BAD_FILE) or an option is bad (E_BAD_OPTION).
 */
export async function checkPairs(options: PairsCheckOptions, log: FindingLog): Promise<number | undefined> {
  const { file } = options
  const format = options.format ?? formatOf(file)
  if (format === undefined) {
    throw new HardnegError('E_BAD_FILE', 'unknown extension, expected .csv, .tsv, .jsonl, .json, .ndjson or .parquet (or set --pairs-format)', { file })
  }
  const wishes = columnWishes(options)
  log.ran('V_NO_ROWS', 'V_BAD_ROW', 'V_MISSING_COLUMN', 'V_BAD_TYPE', 'V_EMPTY_TEXT', 'V_BLANK_TEXT', 'V_DUPLICATE_PAIR', 'V_SMALL_GROUP')
  if (options.idCol !== undefined) log.ran('V_EMPTY_ID', 'V_DUPLICATE_ID')
  if (options.forbid !== undefined) log.ran('V_CONTAMINATION')

  let table: CheckedTable
  try {
    table = await openCheckedTable(file, format)
  } catch (err) {
    if (isHardnegError(err) && err.code === 'E_EMPTY') {
      log.add('V_NO_ROWS', { file }, 'no data rows, expected at least 1')
      return undefined
    }
    throw err
  }
  try {
    return await checkRows(table, options, wishes, log)
  } finally {
    await table.close()
  }
}

function columnWishes(options: PairsCheckOptions): Wish[] {
  const { preset: presetName } = options
  if (presetName !== undefined && !Object.hasOwn(PRESETS, presetName)) {
    throw new HardnegError('E_BAD_OPTION', `--preset '${presetName}', expected one of: ${Object.keys(PRESETS).join(', ')}`)
  }
  const preset = presetName === undefined ? undefined : PRESETS[presetName]
  const fromPreset = `from preset ${presetName}`
  const text = (role: 'query' | 'positive', flag: string, given: string | undefined, fallback: string): Wish => {
    if (given !== undefined) return { role, name: given, source: `from ${flag}`, required: true }
    const presetCol = role === 'query' ? preset?.queryCol : preset?.positiveCol
    if (presetCol !== undefined) return { role, name: presetCol, source: fromPreset, required: true }
    return { role, name: fallback, source: `the default; choose with ${flag} or --preset`, required: true }
  }
  const wishes: Wish[] = [
    text('query', '--query-col', options.queryCol, 'query'),
    text('positive', '--positive-col', options.positiveCol, 'positive'),
  ]
  if (options.idCol !== undefined) wishes.push({ role: 'id', name: options.idCol, source: 'from --id-col', required: true })
  if (options.groupCol !== undefined) wishes.push({ role: 'group', name: options.groupCol, source: 'from --group-col', required: true })
  else if (preset?.groupCol !== undefined) wishes.push({ role: 'group', name: preset.groupCol, source: fromPreset, required: false })
  for (const [role, given, flag, presetCol] of [
    ['query image', options.queryImageCol, '--query-image-col', preset?.queryImageCol],
    ['positive image', options.positiveImageCol, '--positive-image-col', preset?.positiveImageCol],
  ] as const) {
    if (given !== undefined) wishes.push({ role, name: given, source: `from ${flag}`, required: true })
    else if (presetCol !== undefined) wishes.push({ role, name: presetCol, source: fromPreset, required: false })
  }
  for (const c of preset?.carry ?? []) wishes.push({ role: 'carried', name: c.from, source: fromPreset, required: !c.optional })
  for (const name of options.carry ?? []) wishes.push({ role: 'carried', name, source: 'from --carry', required: true })
  return wishes
}

async function checkRows(table: CheckedTable, options: PairsCheckOptions, wishes: Wish[], log: FindingLog): Promise<number | undefined> {
  const { file, forbid, k } = options
  const available = new Set(table.columns)
  const select: string[] = []
  const indexOf = (name: string | undefined): number => {
    if (name === undefined || !available.has(name)) return -1
    const at = select.indexOf(name)
    return at >= 0 ? at : select.push(name) - 1
  }
  const shown = table.columns.length === 0 ? '(none)' : table.columns.join(',')
  for (const w of wishes) {
    if (w.required && !available.has(w.name)) {
      log.add('V_MISSING_COLUMN', { file }, `${w.role} column '${w.name}' (${w.source}) not found, columns are: ${shown}`)
    }
  }
  const column = (role: Wish['role']): number => indexOf(wishes.find(w => w.role === role)?.name)
  const query = column('query')
  const positive = column('positive')
  const id = column('id')
  const group = column('group')
  const carried = wishes.filter(w => w.role === 'carried').map(w => indexOf(w.name)).filter(i => i >= 0)
  const queryImage = column('query image')
  const positiveImage = column('positive image')
  const { images } = options
  if (images !== undefined && (queryImage >= 0 || positiveImage >= 0)) log.ran('V_IMAGE_MISSING', 'V_IMAGE_UNDECODABLE', 'V_IMAGE_SIZE')

  const ids = id >= 0 ? new HashIndex64() : undefined
  const pairs = new HashIndex64()
  const poolTexts = new HashIndex64()
  const groups = new Map<string, GroupCount>()
  let records = 0

  for await (const record of table.rows(select)) {
    records++
    const place = { file, row: record.place, ...(record.line !== undefined ? { line: record.line } : {}) }
    if ('problem' in record) {
      log.add('V_BAD_ROW', place, record.problem)
      continue
    }
    const { values } = record
    const name = (index: number): string => `column '${select[index]}'`

    // A side is usable text, '' for an image-only side, or undefined when it was reported.
    const side = (role: 'query' | 'positive', index: number, imageIndex: number): string | undefined => {
      if (index < 0) return undefined
      const value = values[index]
      if (typeof value === 'string' && value !== '') {
        if (value.trim() === '') log.add('V_BLANK_TEXT', place, () => `${role} (${name(index)}) is whitespace only, expected text`)
        return value
      }
      if (value === '' || value === null || value === undefined) {
        const image = imageIndex >= 0 ? values[imageIndex] : undefined
        if (typeof image === 'string' ? image !== '' : image !== null && image !== undefined) return ''
        const expected = imageIndex >= 0 ? `text or an image path in ${name(imageIndex)}` : 'text'
        log.add('V_EMPTY_TEXT', place, () => `${role} (${name(index)}) is ${describe(value)}, expected ${expected}`)
        return undefined
      }
      log.add('V_BAD_TYPE', place, () => `${role} (${name(index)}) is ${describe(value)}, expected a string`)
      return undefined
    }
    const q = side('query', query, queryImage)
    const p = side('positive', positive, positiveImage)
    for (const [role, index] of [['query', queryImage], ['positive', positiveImage]] as const) {
      if (index < 0) continue
      const value = values[index]
      if (typeof value === 'string') {
        if (value !== '') images?.push({ path: value, place, role })
      } else if (value !== null && value !== undefined) {
        log.add('V_BAD_TYPE', place, () => `${role} image path (${name(index)}) is ${describe(value)}, expected a string`)
      }
    }

    if (id >= 0 && ids !== undefined) {
      const value = values[id]
      if (value === '' || value === null || value === undefined) {
        log.add('V_EMPTY_ID', place, () => `id (${name(id)}) is ${describe(value)}, expected text`)
      } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') {
        const text = String(value)
        const first = ids.putIfAbsent(hashTexts(text), record.place)
        if (first >= 0) log.add('V_DUPLICATE_ID', place, () => `id ${quote(text)} already at row ${first}, expected unique ids`)
      } else {
        log.add('V_BAD_TYPE', place, () => `id (${name(id)}) is ${describe(value)}, expected a string or number`)
      }
    }

    let groupName = ''
    if (group >= 0) {
      const value = values[group]
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') groupName = String(value)
      else if (value !== null && value !== undefined) {
        log.add('V_BAD_TYPE', place, () => `group (${name(group)}) is ${describe(value)}, expected a string or number`)
      }
    }
    for (const index of carried) {
      const value = values[index]
      const type = typeof value
      if (value === null || value === undefined || type === 'string' || type === 'number' || type === 'boolean' || type === 'bigint') continue
      log.add('V_BAD_TYPE', place, () => `carried value (${name(index)}) is ${describe(value)}, expected a string, number, boolean or null`)
    }

    let counts = groups.get(groupName)
    if (counts === undefined) groups.set(groupName, (counts = { firstRow: record.place, positives: 0 }))
    if (p !== undefined && p !== '' && poolTexts.putIfAbsent(hashTexts(groupName, p), 0) < 0) counts.positives++

    if (q !== undefined && p !== undefined) {
      // Image paths are part of the pair: MMEB rows often share an instruction text and differ in the image.
      const image = (i: number): string => (i >= 0 && typeof values[i] === 'string' ? (values[i] as string) : '')
      const first = pairs.putIfAbsent(hashTexts(q, image(queryImage), p, image(positiveImage)), record.place)
      if (first >= 0) log.add('V_DUPLICATE_PAIR', place, () => `(query, positive) ${quote(q)}, ${quote(p)} already at row ${first}, expected each pair once`)
    }

    if (forbid !== undefined) {
      for (const [role, text] of [['query', q], ['positive', p]] as const) {
        if (text === undefined || text === '') continue
        const hit = forbid.find(text)
        if (hit !== undefined) log.add('V_CONTAMINATION', place, () => `${role} ${quote(text)} is in ${hit.file}:${hit.row} (normalised text), expected no text of the forbid sets`)
      }
    }
  }

  if (records === 0) {
    log.add('V_NO_ROWS', { file }, 'no data rows, expected at least 1')
    return undefined
  }
  if (positive >= 0) {
    for (const [name, g] of groups) {
      // Each query leaves out its own positive, so a pool of n texts gives at most n - 1 candidates.
      if (g.positives - 1 >= k) continue
      const pool = group < 0 ? 'the one pool (no group column)' : `group ${quote(name)}`
      const most = Math.max(0, g.positives - 1)
      log.add('V_SMALL_GROUP', { file, row: g.firstRow },
        `${pool} has ${g.positives} distinct positive text${g.positives === 1 ? '' : 's'}, so at most ${most} candidate${most === 1 ? '' : 's'} per query, ` +
        `expected at least ${k + 1} for k = ${k} (its rows will be padded, short or dropped; a --corpus adds candidates)`)
    }
  }
  return records
}
