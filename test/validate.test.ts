import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  CHECKS, loadEmbeddingMatrix, validateDataset, validateShards, type BadVector, type Finding, type MinedRow, type ValidateDatasetOptions, type ValidationReport,
} from '../src/index.js'
import { randomUnit, writeCsv, writeNpy } from './_helpers.js'
import {
  buildFixture, copyFixture, editManifest, pairRows, positiveMatrix, queryMatrix, rewriteRows, shardRows, DIM, ROWS, type Fixture,
} from './_validate-fixture.js'

let root: string
let clean: Fixture
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'hardneg-validate-'))
  clean = await buildFixture(root)
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

const datasetOf = (f: Fixture): ValidateDatasetOptions => ({ pairs: f.pairs, idCol: 'id', groupCol: 'group', queryEmbeddings: f.q, positiveEmbeddings: f.p })
const problems = (r: ValidationReport): Finding[] => r.findings.filter(f => f.severity !== 'info')
const codes = (r: ValidationReport): string[] => [...new Set(problems(r).map(f => f.code))]
const places = (r: ValidationReport): [string, string, number | undefined][] => problems(r).map(f => [f.code, f.file, f.row])
const part = (f: Fixture, n: number): string => path.join(f.shards, `part-0000${n}.parquet`)

describe('a clean fixture', () => {
  it('passes every dataset check', async () => {
    const report = await validateDataset({ ...datasetOf(clean), forbid: [clean.forbid] })
    expect(report.findings).toEqual([])
    expect(report.checks.every(c => c.status === 'ran' && c.count === 0)).toBe(true)
    expect(report.checks.map(c => c.code)).toContain('V_CONTAMINATION')
  })

  it('passes every shard check, rescoring all rows through the pairs file', async () => {
    const report = await validateShards({
      shards: clean.shards, rescore: ROWS, pairs: clean.pairs, queryEmbeddings: clean.q, positiveEmbeddings: clean.p, forbid: [clean.forbid],
    })
    expect(report.findings).toEqual([])
    expect(report.checks.filter(c => c.status !== 'ran')).toEqual([])
    expect(report.checks.map(c => c.code)).toEqual(expect.arrayContaining(['V_SHARD_SHA', 'V_SCORE_ABOVE_MARGIN', 'V_RESCORE_MISMATCH', 'V_PAIR_MISMATCH']))
  })
})

describe('each pairs defect, planted alone, is reported with its code, file and row', () => {
  async function withPairs(edit: (rows: string[][]) => void): Promise<Fixture> {
    const f = await copyFixture(clean)
    const rows: string[][] = pairRows()
    edit(rows)
    await writeCsv(f.pairs, ['id', 'query', 'positive', 'group'], rows)
    return f
  }

  it.each([
    ['V_EMPTY_TEXT', 5, (r: string[][]): void => void (r[4]![1] = ''), "query (column 'query') is empty, expected text"],
    ['V_BLANK_TEXT', 7, (r: string[][]): void => void (r[6]![2] = '   '), "positive (column 'positive') is whitespace only, expected text"],
    ['V_EMPTY_ID', 6, (r: string[][]): void => void (r[5]![0] = ''), "id (column 'id') is empty, expected text"],
    ['V_DUPLICATE_ID', 10, (r: string[][]): void => void (r[9]![0] = 'p3'), 'id "p3" already at row 4, expected unique ids'],
    ['V_DUPLICATE_PAIR', 11, (r: string[][]): void => void (r[10] = ['p10', ...r[2]!.slice(1)]),
      '(query, positive) "query 2 about a topic", "positive 2 text" already at row 3, expected each pair once'],
    ['V_SMALL_GROUP', 23, (r: string[][]): void => void (r[22]![3] = r[23]![3] = 'c'),
      'group "c" has 2 distinct positive texts, so at most 1 candidate per query, expected at least 9 for k = 8 (its rows will be padded, short or dropped; a --corpus adds candidates)'],
  ] as const)('%s', async (code, row, edit, detail) => {
    const f = await withPairs(edit)
    const report = await validateDataset(datasetOf(f))
    expect(places(report)).toEqual([[code, f.pairs, row]])
    expect(report.findings[0]!.message).toBe(`${f.pairs}:${row}: ${detail}`)
  })

  it('V_BAD_ROW: a record with too many fields, and reading goes on', async () => {
    const f = await withPairs(() => {})
    const lines = (await readFile(f.pairs, 'utf8')).split('\n')
    lines[8] += ',extra' // data row 8
    lines[15] = 'p14,"query 14 about a topic"' // data row 15: too few fields
    await writeFile(f.pairs, lines.join('\n'))
    const report = await validateDataset(datasetOf(f))
    expect(places(report)).toEqual([['V_BAD_ROW', f.pairs, 8], ['V_BAD_ROW', f.pairs, 15]])
    expect(report.findings[0]!.message).toBe(`${f.pairs}:8: 5 fields, expected 4 (header: id,query,positive,group)`)
  })

  it('V_MISSING_COLUMN: every missing column, and the rows are still checked', async () => {
    const f = await withPairs(r => void (r[4]![1] = ''))
    const report = await validateDataset({ ...datasetOf(f), groupCol: 'grp', carry: ['label'] })
    expect(places(report)).toEqual([['V_MISSING_COLUMN', f.pairs, undefined], ['V_MISSING_COLUMN', f.pairs, undefined], ['V_EMPTY_TEXT', f.pairs, 5]])
    expect(report.findings[0]!.message).toBe(`${f.pairs}: group column 'grp' (from --group-col) not found, columns are: id,query,positive,group`)
    expect(report.findings[1]!.message).toBe(`${f.pairs}: carried column 'label' (from --carry) not found, columns are: id,query,positive,group`)
  })

  it('V_BAD_TYPE and V_BAD_ROW in JSONL: the line is the row', async () => {
    const f = await copyFixture(clean)
    const jsonl = path.join(f.dir, 'pairs.jsonl')
    const lines = pairRows().map(([id, query, positive, group]) => JSON.stringify({ id, query, positive, group }))
    lines[2] = JSON.stringify({ id: 'p2', query: 42, positive: 'positive 2 text', group: 'a' })
    lines[5] = '{"id": "p5", "query": '
    await writeFile(jsonl, lines.join('\n') + '\n')
    const report = await validateDataset({ ...datasetOf(f), pairs: jsonl })
    expect(places(report)).toEqual([['V_BAD_TYPE', jsonl, 3], ['V_BAD_ROW', jsonl, 6]])
    expect(report.findings[0]).toMatchObject({ line: 3, message: `${jsonl}:3: query (column 'query') is a number, expected a string` })
  })

  it('V_NO_ROWS: a header without rows', async () => {
    const f = await copyFixture(clean)
    await writeFile(f.pairs, 'id,query,positive,group\n')
    const report = await validateDataset(datasetOf(f))
    expect(report.findings).toEqual([{ code: 'V_NO_ROWS', severity: 'error', file: f.pairs, message: `${f.pairs}: no data rows, expected at least 1` }])
  })
})

describe('each embedding defect, planted alone, is reported with its code, file and row', () => {
  const unit = queryMatrix

  it.each([
    ['V_EMB_ROWS', 'q', undefined, async (f: Fixture) => writeNpy(f.q, randomUnit(ROWS - 1, DIM, 11), 'f2'),
      (f: Fixture) => `23 embedding rows, expected 24 (one per row of ${f.pairs})`],
    ['V_EMB_DIM', 'p', undefined, async (f: Fixture) => writeNpy(f.p, randomUnit(ROWS, DIM + 1, 12)),
      (f: Fixture) => `embedding dim 9, expected 8 (from ${f.q})`],
    ['V_EMB_NAN', 'q', 4, async (f: Fixture) => { const m = unit(); m.data[3 * DIM + 2] = Number.NaN; await writeNpy(f.q, m, 'f2') },
      () => 'embedding row 3 (0-based) contains NaN at column 2, expected finite values'],
    ['V_EMB_ZERO', 'p', 8, async (f: Fixture) => { const m = positiveMatrix(); m.data.fill(0, 7 * DIM, 8 * DIM); await writeNpy(f.p, m) },
      () => 'embedding row 7 (0-based) is all zeros, expected a non-zero vector'],
    ['V_EMB_NORM', 'q', 3, async (f: Fixture) => { const m = unit(); for (let j = 0; j < DIM; j++) m.data[2 * DIM + j]! *= 3; await writeNpy(f.q, m, 'f2') },
      () => 'embedding row 2 (0-based) has L2 norm 3.000, expected 1 ± 0.01 (mining normalises every row, but a norm this far off often means the wrong tensor was saved)'],
    ['V_EMB_HEADER', 'p', undefined, async (f: Fixture) => writeFile(f.p, 'not an npy file'),
      () => "not a .npy file: starts with 'not an', expected '\\x93NUMPY'"],
  ] as const)('%s', async (code, which, row, plant, detail) => {
    const f = await copyFixture(clean)
    await plant(f)
    const report = await validateDataset(datasetOf(f))
    const file = which === 'q' ? f.q : f.p
    expect(places(report)).toEqual([[code, file, row]])
    expect(report.findings[0]!.message).toBe(`${file}${row === undefined ? '' : `:${row}`}: ${detail(f)}`)
  })

  it('lists every bad row of a file in one pass', async () => {
    const f = await copyFixture(clean)
    const m = unit()
    for (const r of [1, 5, 20]) m.data[r * DIM] = Number.POSITIVE_INFINITY
    await writeNpy(f.q, m, 'f2')
    const report = await validateDataset(datasetOf(f))
    expect(places(report)).toEqual([2, 6, 21].map(row => ['V_EMB_NAN', f.q, row]))
  })
})

describe('each shard-set defect, planted alone, is reported with its code and file', () => {
  it.each([
    ['V_MANIFEST_MISSING', async (f: Fixture) => rm(path.join(f.shards, 'manifest.json')), (f: Fixture) => f.shards,
      'no manifest.json, expected a complete hardneg run (mining writes it last)'],
    ['V_MANIFEST_INVALID', async (f: Fixture) => writeFile(path.join(f.shards, 'manifest.json'), '{"shards": ['),
      (f: Fixture) => path.join(f.shards, 'manifest.json'), /^invalid JSON \(.*\), expected a hardneg manifest$/],
    ['V_SHARD_SHA', async (f: Fixture) => editManifest(f.shards, m => void (m.shards[1].sha256 = '0'.repeat(64))), (f: Fixture) => part(f, 1),
      /^sha256 [0-9a-f]{64}, expected 0{64} \(from manifest.json\)$/],
    ['V_SHARD_ROWS', async (f: Fixture) => editManifest(f.shards, m => { m.shards[0].rows = 11; m.rows.out = 23 }), (f: Fixture) => part(f, 0),
      '12 rows, expected 11 (from manifest.json)'],
    ['V_SHARD_STRAY', async (f: Fixture) => copyFile(part(f, 0), part(f, 2)), (f: Fixture) => part(f, 2),
      "not listed in manifest.json, expected only the run's shards (a *.parquet glob would read it)"],
    ['V_SHARD_MISSING', async (f: Fixture) => rm(part(f, 1)), (f: Fixture) => part(f, 1),
      'missing, expected it (listed in manifest.json with 12 rows)'],
    ['V_SHARD_UNREADABLE', async (f: Fixture) => {
      await writeFile(part(f, 1), 'PAR1 this is not parquet PAR1')
      const { createHash } = await import('node:crypto')
      await editManifest(f.shards, m => void (m.shards[1].sha256 = createHash('sha256').update('PAR1 this is not parquet PAR1').digest('hex')))
    }, (f: Fixture) => part(f, 1), /^not a readable Parquet file \(.+\)$/],
  ] as const)('%s', async (code, plant, file, detail) => {
    const f = await copyFixture(clean)
    await plant(f)
    const report = await validateShards({ shards: f.shards })
    expect(places(report)).toEqual([[code, file(f), undefined]])
    const message = report.findings[0]!.message
    expect(message.startsWith(`${file(f)}: `)).toBe(true)
    if (typeof detail === 'string') expect(message).toBe(`${file(f)}: ${detail}`)
    else expect(message.slice(file(f).length + 2)).toMatch(detail)
  })

  it('without a manifest, says which checks it could not run', async () => {
    const f = await copyFixture(clean)
    await rm(path.join(f.shards, 'manifest.json'))
    const report = await validateShards({ shards: f.shards })
    expect(report.checks.filter(c => c.status === 'skipped').map(c => c.code)).toEqual(['V_SHARD_ROWS', 'V_SHARD_SHA', 'V_SHORT_ROW', 'V_SCORE_ABOVE_MARGIN'])
  })

  it('V_SCHEMA: a shard with a wrong type and without the list columns', async () => {
    const f = await copyFixture(clean)
    const strings = (prefix: string) => Array.from({ length: 12 }, (_, i) => `${prefix}${i}`)
    const bytes = parquetWriteBuffer({
      columnData: [
        ...['id', 'query', 'positive', 'group'].map(name => ({ name, data: strings(name), type: 'STRING' as const })),
        { name: 'pos_score', data: Array.from({ length: 12 }, () => 0.5), type: 'DOUBLE' },
        { name: 'n_valid', data: Array.from({ length: 12 }, () => 4), type: 'INT32' },
        { name: 'n_false_negatives', data: Array.from({ length: 12 }, () => 0), type: 'INT32' },
      ],
    })
    await writeFile(part(f, 1), new Uint8Array(bytes))
    const { createHash } = await import('node:crypto')
    await editManifest(f.shards, m => void (m.shards[1].sha256 = createHash('sha256').update(new Uint8Array(bytes)).digest('hex')))
    const report = await validateShards({ shards: f.shards })
    expect(problems(report).map(x => x.message)).toEqual([
      `${part(f, 1)}: column 'pos_score' is float64, expected float32`,
      `${part(f, 1)}: no column 'negatives', expected list<string> (docs/mining.md, output rows)`,
      `${part(f, 1)}: no column 'neg_ids', expected list<string> (docs/mining.md, output rows)`,
      `${part(f, 1)}: no column 'neg_scores', expected list<float32> (docs/mining.md, output rows)`,
    ])
  })
})

describe('each mined-row defect, planted alone, is reported with its code, file and row', () => {
  /** Index of the first row with k distinct negatives whose scores leave room below the ceiling. */
  const fullRow = (rows: MinedRow[]): number => rows.findIndex(r => r.nValid === 4 && r.posScore < 0.65 && r.negScores[1]! > r.negScores[2]!)

  it.each([
    ['V_SHORT_ROW', (r: MinedRow): void => { r.negatives.pop(); r.negIds.pop(); r.negScores.pop(); r.nValid = Math.min(r.nValid, 3) },
      (): string => '3 negatives, expected k = 4 (pad repeat fills every row to k)'],
    ['V_N_VALID', (r: MinedRow): void => void (r.nValid = 3), (r: MinedRow): string => `negative 3 is ${JSON.stringify(r.negatives[3])}, expected ${JSON.stringify(r.negatives[0])} (pad repeat cycles the first n_valid = 3)`],
    ['V_NEG_IS_POSITIVE', (r: MinedRow): void => void (r.negatives[1] = r.positive), (r: MinedRow): string => `negative 1 is the positive ${JSON.stringify(r.positive)}, expected another text`],
    ['V_NEG_IS_QUERY', (r: MinedRow): void => void (r.negatives[2] = r.query), (r: MinedRow): string => `negative 2 is the query ${JSON.stringify(r.query)}, expected another text`],
    ['V_NEG_LIKE_POSITIVE', (r: MinedRow): void => void (r.negatives[0] = ` ${r.positive.toUpperCase()}  `),
      (r: MinedRow): string => `negative 0 ${JSON.stringify(r.negatives[0])} equals the positive ${JSON.stringify(r.positive)} up to case and whitespace, expected another text`],
    ['V_SCORE_RANGE', (r: MinedRow): void => void (r.posScore = Number.NaN), (): string => 'pos_score is NaN, expected a cosine similarity from -1 to 1'],
    ['V_SCORE_ABOVE_MARGIN', (r: MinedRow): void => void (r.negScores[0] = Math.fround(r.posScore + 0.3)), (r: MinedRow): string =>
      `neg_scores[0] is ${Number(r.negScores[0]!.toPrecision(7))}, expected at most the ceiling ${Number(Math.fround(r.posScore).toPrecision(7))} = pos_score ${Number(r.posScore.toPrecision(7))} + threshold 0`],
    ['V_SCORES_UNSORTED', (r: MinedRow): void => void ([r.negScores[1], r.negScores[2]] = [r.negScores[2]!, r.negScores[1]!]), (r: MinedRow): string =>
      `neg_scores[2] ${Number(r.negScores[2]!.toPrecision(7))} is above neg_scores[1] ${Number(r.negScores[1]!.toPrecision(7))}, expected descending scores over the first n_valid = 4 (sampling top writes ranks in order)`],
  ] as const)('%s', async (code, plant, detail) => {
    const f = await copyFixture(clean)
    let at = -1
    let planted: MinedRow | undefined
    await rewriteRows(f.shards, rows => {
      at = fullRow(rows)
      planted = rows[at]!
      plant(planted)
    })
    expect(at).toBeGreaterThanOrEqual(0)
    const report = await validateShards({ shards: f.shards })
    const file = part(f, at < 12 ? 0 : 1)
    const row = (at % 12) + 1
    // A negative above the ceiling (pos_score + 0 here) is also above its positive: the shard set's warning counts that row.
    const alsoBelow = code === 'V_SCORE_ABOVE_MARGIN' ? [['V_POS_BELOW_NEG', f.shards, undefined]] : []
    expect(places(report)).toEqual([[code, file, row], ...alsoBelow])
    expect(report.findings[0]!.message).toBe(`${file}:${row}: ${detail(planted!)}`)
  })

  it('V_DUPLICATE_ID across shards', async () => {
    const f = await copyFixture(clean)
    await rewriteRows(f.shards, rows => void (rows[20]!.id = rows[3]!.id))
    const report = await validateShards({ shards: f.shards })
    expect(places(report)).toEqual([['V_DUPLICATE_ID', part(f, 1), 9]])
    expect(report.findings[0]!.message).toBe(`${part(f, 1)}:9: id "p3" already at ${part(f, 0)}:4, expected unique ids`)
  })

  it('V_SCHEMA: a row whose lists differ in length', async () => {
    const f = await copyFixture(clean)
    // writeShards refuses such a row, so the shard is written with hyparquet-writer and the run's own schema.
    const { asyncBufferFromFile, parquetMetadataAsync } = await import('hyparquet')
    const { schema } = await parquetMetadataAsync(await asyncBufferFromFile(part(f, 0)))
    const rows = (await shardRows(f.shards)).slice(0, 12)
    rows[5]!.negIds = rows[5]!.negIds.slice(1)
    const column = (name: string, get: (r: MinedRow) => unknown) => ({ name, data: rows.map(get) })
    const bytes = new Uint8Array(parquetWriteBuffer({
      schema: schema as Parameters<typeof parquetWriteBuffer>[0]['schema'],
      columnData: [
        column('id', r => r.id), column('query', r => r.query), column('positive', r => r.positive), column('group', r => r.group),
        column('pos_score', r => r.posScore), column('negatives', r => r.negatives), column('neg_ids', r => r.negIds),
        column('neg_scores', r => r.negScores), column('n_valid', r => r.nValid), column('n_false_negatives', r => r.nFalseNegatives),
      ],
    }))
    await writeFile(part(f, 0), bytes)
    const { createHash } = await import('node:crypto')
    await editManifest(f.shards, m => void (m.shards[0].sha256 = createHash('sha256').update(bytes).digest('hex')))
    const report = await validateShards({ shards: f.shards })
    expect(places(report)).toEqual([['V_SCHEMA', part(f, 0), 6]])
    expect(report.findings[0]!.message).toBe(`${part(f, 0)}:6: negatives, neg_ids and neg_scores have 4, 3 and 4 values, expected equal lengths`)
  })
})

describe('rescoring', () => {
  const rescore = (f: Fixture, extra: object = {}) =>
    validateShards({ shards: f.shards, rescore: ROWS, pairs: f.pairs, queryEmbeddings: f.q, positiveEmbeddings: f.p, ...extra })

  it('V_RESCORE_MISMATCH: a pos_score off by 0.01', async () => {
    const f = await copyFixture(clean)
    let stored = 0
    await rewriteRows(f.shards, rows => void (stored = rows[14]!.posScore = Math.fround(rows[14]!.posScore + 0.01)))
    const report = await rescore(f)
    expect(places(report)).toEqual([['V_RESCORE_MISMATCH', part(f, 1), 3]])
    expect(report.findings[0]!.message).toMatch(new RegExp(`^${escape(part(f, 1))}:3: pos_score ${Number(stored.toPrecision(7))}, recomputed [-\\d.e]+ from embedding row 14, expected within 0\\.0001$`))
  })

  it('V_PAIR_MISMATCH: a shard row whose query is not its pair\'s', async () => {
    const f = await copyFixture(clean)
    await rewriteRows(f.shards, rows => void (rows[2]!.query = 'a different query'))
    const report = await rescore(f)
    expect(places(report)).toEqual([['V_PAIR_MISMATCH', part(f, 0), 3]])
    expect(report.findings[0]!.message).toBe(`${part(f, 0)}:3: query "a different query" differs from ${f.pairs}:3 (id "p2"), expected "query 2 about a topic"`)
  })

  it('V_RESCORE_UNMAPPED: an id the pairs file does not have', async () => {
    const f = await copyFixture(clean)
    await rewriteRows(f.shards, rows => void (rows[7]!.id = 'nope'))
    const report = await rescore(f)
    expect(places(report)).toEqual([['V_RESCORE_UNMAPPED', part(f, 0), 8]])
    expect(report.findings[0]!.message).toBe(`${part(f, 0)}:8: id "nope" is not in ${f.pairs}, expected the id of a mined pair`)
  })

  it('V_INPUT_CHANGED: a pairs file that is not the one mined', async () => {
    const f = await copyFixture(clean)
    await writeFile(f.pairs, (await readFile(f.pairs, 'utf8')) + '\n')
    const report = await rescore(f)
    expect(places(report)).toEqual([['V_INPUT_CHANGED', f.pairs, undefined]])
    expect(report.findings[0]!.severity).toBe('warning')
  })

  it('needs --pairs when the run mapped ids from a column', async () => {
    await expect(validateShards({ shards: clean.shards, rescore: 3, queryEmbeddings: clean.q, positiveEmbeddings: clean.p }))
      .rejects.toThrow("--rescore: the run mapped ids from column 'id', so ids are not row numbers; expected --pairs to map them")
  })
})

describe('contamination', () => {
  it('V_CONTAMINATION: a positive of the data, case and spacing changed, in a forbid list', async () => {
    const f = await copyFixture(clean)
    await writeFile(f.forbid, [JSON.stringify({ qry: 'unrelated', tgt: ['nothing'] }), JSON.stringify({ qry: 'x y z', tgt: ['  POSITIVE 7   Text '] })].join('\n'))
    const dataset = await validateDataset({ ...datasetOf(f), forbid: [f.forbid] })
    expect(places(dataset)).toEqual([['V_CONTAMINATION', f.pairs, 8]])
    expect(dataset.findings[0]!.message).toBe(`${f.pairs}:8: positive "positive 7 text" is in ${f.forbid}:2 (normalised text), expected no text of the forbid sets`)

    const shards = await validateShards({ shards: f.shards, forbid: [f.forbid] })
    expect(new Set(codes(shards))).toEqual(new Set(['V_CONTAMINATION']))
    expect(places(shards)).toContainEqual(['V_CONTAMINATION', part(f, 0), 8])
    const asNegative = problems(shards).filter(x => x.message.includes(': negative '))
    expect(asNegative.length).toBe((await shardRows(f.shards)).filter(r => r.negatives.includes('positive 7 text')).length)
  })

  it('reads CSV, Parquet and plain-text forbid files, and skips numbers and strings under the minimum length', async () => {
    const f = await copyFixture(clean)
    const csv = path.join(f.dir, 'heldout.csv')
    await writeCsv(csv, ['n', 'text'], [['1', 'unrelated'], ['24', 'Query 3 about a topic']])
    const txt = path.join(f.dir, 'heldout.txt')
    await writeFile(txt, 'positive 5 text\n')
    const parquet = path.join(f.dir, 'heldout.parquet')
    await writeFile(parquet, new Uint8Array(parquetWriteBuffer({
      columnData: [{ name: 'caption', data: ['unrelated', 'POSITIVE 20 TEXT'], type: 'STRING' }, { name: 'n', data: [3, 4], type: 'INT32' }],
    })))
    const report = await validateDataset({ ...datasetOf(f), forbid: [csv, txt, parquet] })
    expect(places(report)).toEqual([['V_CONTAMINATION', f.pairs, 4], ['V_CONTAMINATION', f.pairs, 6], ['V_CONTAMINATION', f.pairs, 21]])
    expect(report.findings[1]!.message).toContain(`is in ${txt}:1 (normalised text)`)
    expect(report.findings[2]!.message).toContain(`is in ${parquet}:2 (normalised text)`)
    const long = await validateDataset({ ...datasetOf(f), forbid: [csv, txt], forbidMinLength: 16 })
    expect(places(long)).toEqual([['V_CONTAMINATION', f.pairs, 4]])
  })
})

describe('sampling and limits', () => {
  it('--sample checks a seeded subset and says so', async () => {
    const f = await copyFixture(clean)
    const a = await validateShards({ shards: f.shards, sample: 5, seed: 3 })
    const b = await validateShards({ shards: f.shards, sample: 5, seed: 3 })
    expect(a).toEqual(b)
    expect(a.findings).toEqual([{ code: 'V_SAMPLED', severity: 'info', file: f.shards,
      message: `${f.shards}: row checks covered 5 of 24 rows (--sample 5, --seed 3); duplicate ids were not checked` }])
    const emb = await validateDataset({ ...datasetOf(f), sample: 4 })
    expect(emb.findings.map(x => x.message)).toEqual([
      `${f.q}: row checks covered 4 of 24 rows (--sample 4, --seed 0)`, `${f.p}: row checks covered 4 of 24 rows (--sample 4, --seed 0)`])
  })

  it('keeps at most maxFindings per code and counts them all', async () => {
    const f = await copyFixture(clean)
    const m = randomUnit(ROWS, DIM, 11)
    m.data.fill(0)
    await writeNpy(f.q, m, 'f2')
    const report = await validateDataset({ ...datasetOf(f), maxFindings: 3 })
    expect(report.findings.length).toBe(3)
    expect(report.checks.find(c => c.code === 'V_EMB_ZERO')?.count).toBe(ROWS)
  })
})

describe('when validation cannot run', () => {
  it.each([
    [{ pairs: '/nonexistent/pairs.csv' }, 'E_BAD_FILE', '/nonexistent/pairs.csv: cannot open (ENOENT: no such file or directory), expected a readable file'],
    [{ queryEmbeddings: '/nonexistent/q.npy' }, 'E_BAD_FILE', '/nonexistent/q.npy: cannot open (ENOENT), expected a readable .npy file'],
    [{ pairs: 'x.csv', imageDupDistance: 300 }, 'E_BAD_OPTION', 'imageDupDistance: 300, expected an integer from 0 to 256'],
    [{}, 'E_BAD_OPTION', 'nothing to validate, expected --pairs and/or --query-embeddings/--positive-embeddings'],
    [{ pairs: 'x.csv', maxFindings: 0 }, 'E_BAD_OPTION', 'maxFindings: 0, expected an integer >= 1'],
    [{ pairs: 'x.csv', forbid: ['eval.xml'] }, 'E_BAD_FILE', "eval.xml: forbid file extension '.xml', expected .csv, .tsv, .jsonl, .json, .ndjson, .parquet or .txt"],
  ] as const)('%j', async (options, code, message) => {
    const err = await validateDataset(options).then(() => undefined, (e: unknown) => e as { code: string; message: string })
    expect(err?.message).toBe(message)
    expect(err?.code).toBe(code)
  })

  it('rejects a shard path that is not a directory', async () => {
    await expect(validateShards({ shards: clean.pairs })).rejects.toThrow(`${clean.pairs}: not a directory, expected a directory of mined shards`)
  })
})

describe('the onBadVector option validation relies on', () => {
  it('reports NaN/Inf rows of a gathered sample, and zero rows when normalising, instead of throwing', async () => {
    const f = await copyFixture(clean)
    const m = queryMatrix()
    m.data[5 * DIM + 1] = Number.NEGATIVE_INFINITY
    m.data.fill(0, 9 * DIM, 10 * DIM)
    await writeNpy(f.q, m, 'f2')
    const bad: BadVector[] = []
    const got = await loadEmbeddingMatrix({ file: f.q, rows: [9, 5, 0], onBadVector: v => void bad.push(v) })
    expect(bad).toEqual([{ file: f.q, row: 5, problem: '-Inf', column: 1 }, { file: f.q, row: 9, problem: 'zero', column: -1 }])
    expect(Array.from(got.data.subarray(0, DIM))).toEqual(new Array(DIM).fill(0))
    await expect(loadEmbeddingMatrix({ file: f.q, rows: [5] })).rejects.toThrow(`${f.q}:6: embedding row 5 (0-based) contains -Inf at column 1; expected finite values`)

    const sampled = await validateDataset({ queryEmbeddings: f.q, sample: ROWS - 1, seed: 1 })
    expect(problems(sampled).map(x => [x.code, x.row])).toEqual([['V_EMB_NAN', 6], ['V_EMB_ZERO', 10]])
  })
})

describe('docs/validate.md', () => {
  it('documents every finding code', async () => {
    const doc = await readFile(path.join(import.meta.dirname, '..', 'docs', 'validate.md'), 'utf8')
    const documented = [...doc.matchAll(/^\| `(V_[A-Z_]+)` \| (\w+) \| (\w+) \|/gm)].map(m => [m[1], m[2], m[3]])
    expect(documented).toEqual(Object.entries(CHECKS).map(([code, spec]) => [code, spec.severity, spec.group]))
  })
})

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

describe('multi-positive queries in shards', () => {
  it('V_NEG_IS_LABELED_POSITIVE: a negative that is the positive of another row with the same query', async () => {
    const f = await copyFixture(clean)
    let labeledBy = ''
    await rewriteRows(f.shards, rows => {
      // Row 3 becomes a sibling of row 2 (same query, group a); row 2 is then served row 3's positive.
      rows[3]!.query = rows[2]!.query
      labeledBy = rows[3]!.positive
      rows[2]!.negatives[1] = labeledBy
    })
    const report = await validateShards({ shards: f.shards })
    expect(places(report)).toEqual([['V_NEG_IS_LABELED_POSITIVE', part(f, 0), 3]])
    expect(report.findings[0]!.message).toBe(
      `${part(f, 0)}:3: negative 1 ${JSON.stringify(labeledBy)} is a labeled positive of this row's query (the positive of ${part(f, 0)}:4), expected a candidate no row of the query labels`,
    )
  })

  it('V_NEG_IS_LABELED_POSITIVE: the same texts in another group are no siblings', async () => {
    const f = await copyFixture(clean)
    await rewriteRows(f.shards, rows => {
      rows[14]!.query = rows[2]!.query // group b
      rows[2]!.negatives[1] = rows[14]!.positive
    })
    const report = await validateShards({ shards: f.shards })
    expect(codes(report)).toEqual([])
  })

  it('V_POS_BELOW_NEG: one warning counting the rows whose positive scores below their best negative', async () => {
    const f = await copyFixture(clean)
    await rewriteRows(f.shards, rows => {
      for (const i of [5, 17, 20]) rows[i]!.posScore = Math.fround(rows[i]!.negScores[0]! - 0.05)
    })
    // As if mined with a margin of 0.1, which allows negatives up to 0.1 above their positive.
    await editManifest(f.shards, m => void (m.options.threshold = 0.1))
    const report = await validateShards({ shards: f.shards })
    const rows = await shardRows(f.shards)
    expect(places(report)).toEqual([['V_POS_BELOW_NEG', f.shards, undefined]])
    const fmt = (x: number): string => String(Number(x.toPrecision(7)))
    expect(report.findings[0]!.message).toBe(
      `${f.shards}: 3 of 24 rows score their positive below their best negative (first: ${part(f, 0)}:6 (pos_score ${fmt(rows[5]!.posScore)} < best negative ${fmt(rows[5]!.negScores[0]!)})), ` +
        'expected the positive to score highest; such pairs may be noise (a mislabeled or weak positive)',
    )
    expect(report.findings[0]!.severity).toBe('warning')
    expect(report.checks.find(c => c.code === 'V_POS_BELOW_NEG')?.count).toBe(3)
  })

  it('a run mined with siblings passes both checks', async () => {
    const f = await copyFixture(clean)
    const rows = pairRows()
    for (const i of [1, 4, 13]) rows[i]![1] = rows[i - 1]![1] // three queries on two rows each
    await writeCsv(f.pairs, ['id', 'query', 'positive', 'group'], rows)
    await rm(f.shards, { recursive: true })
    const { mineNegatives } = await import('../src/index.js')
    const { summary } = await mineNegatives({ pairs: f.pairs, idCol: 'id', groupCol: 'group', queryEmbeddings: f.q, positiveEmbeddings: f.p, out: f.shards, k: 4, threshold: 0, search: 'exact' })
    expect(summary.multiPositiveQueries).toBe(3)
    const report = await validateShards({ shards: f.shards })
    expect(report.checks.find(c => c.code === 'V_NEG_IS_LABELED_POSITIVE')).toMatchObject({ status: 'ran', count: 0 })
    expect(report.findings.filter(x => x.code !== 'V_POS_BELOW_NEG')).toEqual([])
  })
})
