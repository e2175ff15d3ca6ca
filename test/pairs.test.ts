import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DuckDBInstance } from '@duckdb/node-api'
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { HardnegError } from '../src/errors.js'
import type { ErrorCode } from '../src/errors.js'
import { collectPairs, PRESETS, readPairs } from '../src/pairs/pairs.js'
import type { ReadPairsOptions } from '../src/pairs/pairs.js'
import type { PairRecord } from '../src/types.js'

const SNLI_CSV = fileURLToPath(new URL('../fixtures/snli/snli-test-triplets.csv', import.meta.url))
const COCO_PARQUET = fileURLToPath(new URL('../fixtures/coco-mini/mmeb-style.parquet', import.meta.url))

let dir = ''
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hardneg-pairs-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function write(name: string, content: string | Buffer): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, content)
  return file
}

/** Write a Parquet file with DuckDB: `select` is the query whose result becomes the file. */
async function writeParquet(name: string, select: string, options = 'COMPRESSION snappy'): Promise<string> {
  const file = join(dir, name)
  const instance = await DuckDBInstance.create(':memory:')
  const connection = await instance.connect()
  try {
    await connection.run(`COPY (${select}) TO '${file}' (FORMAT parquet, ${options})`)
  } finally {
    connection.closeSync()
    instance.closeSync()
  }
  return file
}

function pair(row: number, query: string, positive: string, more: Partial<PairRecord> = {}): PairRecord {
  return { row, id: String(row), query, positive, group: '', queryImage: '', positiveImage: '', carried: {}, ...more }
}

/** Reject with a HardnegError whose code, whole message, file and row are all as given. */
async function expectError(options: ReadPairsOptions, code: ErrorCode, message: string, row?: number): Promise<void> {
  const err = await collectPairs(options).then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(HardnegError)
  expect(err).toMatchObject({ code, message, row })
}

describe('readPairs on CSV and TSV', () => {
  it('reads query/positive by default, with the row index as id', async () => {
    const file = await write('pairs.csv', 'query,positive\nq one,p one\nq two,p two\n')
    expect(await collectPairs({ file })).toEqual([pair(0, 'q one', 'p one'), pair(1, 'q two', 'p two')])
  })

  it.each([
    ['a comma in quotes', '"a, b",p\n', 'a, b', 'p'],
    ['a newline in quotes', '"line 1\nline 2",p\n', 'line 1\nline 2', 'p'],
    ['a CRLF in quotes', '"line 1\r\nline 2",p\r\n', 'line 1\r\nline 2', 'p'],
    ['doubled quotes', '"say ""hi""",p\n', 'say "hi"', 'p'],
    ['a quoted last field', 'q,"p, with ""quotes"""\n', 'q', 'p, with "quotes"'],
    ['CRLF records', 'q,p\r\n', 'q', 'p'],
    ['no final newline', 'q,p', 'q', 'p'],
  ])('RFC 4180: %s', async (_name, body, query, positive) => {
    const file = await write('pairs.csv', `query,positive\r\n${body}`)
    expect(await collectPairs({ file })).toEqual([pair(0, query, positive)])
  })

  it('skips blank lines without counting them as rows', async () => {
    const file = await write('pairs.csv', 'query,positive\n\nq1,p1\n\nq2,\n')
    await expectError({ file }, 'E_BAD_ROW', `${file}:2: positive (column 'positive') is empty, expected text`, 2)
  })

  it('reads TSV, where commas are plain text and quoting still works', async () => {
    const file = await write('pairs.tsv', 'query\tpositive\tgroup\na, b\t"tab\there"\tg1\n')
    expect(await collectPairs({ file, groupCol: 'group' })).toEqual([pair(0, 'a, b', 'tab\there', { group: 'g1' })])
  })

  it('reads a .txt file as TSV when format is given', async () => {
    const file = await write('pairs.txt', 'query\tpositive\nq\tp\n')
    expect(await collectPairs({ file, format: 'tsv' })).toEqual([pair(0, 'q', 'p')])
  })

  it('drops a UTF-8 byte order mark before the header', async () => {
    const file = await write('pairs.csv', '\ufeffquery,positive\nq,p\n')
    expect(await collectPairs({ file })).toEqual([pair(0, 'q', 'p')])
  })

  it('takes id, group and carried columns from the options', async () => {
    const file = await write('pairs.csv', 'id,q,p,g,score\na7,q,p,g1,0.5\n')
    const pairs = await collectPairs({ file, idCol: 'id', queryCol: 'q', positiveCol: 'p', groupCol: 'g', carry: ['score', 'id'] })
    expect(pairs).toEqual([{ row: 0, id: 'a7', query: 'q', positive: 'p', group: 'g1', queryImage: '', positiveImage: '', carried: { score: '0.5', id: 'a7' } }])
  })

  it('takes image path columns from --query-image-col/--positive-image-col; a named one must exist', async () => {
    const file = await write('pairs.csv', 'q,qi,p,pi\nfind it,,,img/1.jpg\n,img/2.jpg,a caption,\n')
    expect(await collectPairs({ file, queryCol: 'q', positiveCol: 'p', queryImageCol: 'qi', positiveImageCol: 'pi' })).toEqual([
      pair(0, 'find it', '', { positiveImage: 'img/1.jpg' }),
      pair(1, '', 'a caption', { queryImage: 'img/2.jpg' }),
    ])
    await expectError(
      { file, queryCol: 'q', positiveCol: 'p', queryImageCol: 'image' }, 'E_MISSING_COLUMN',
      `${file}: query image column 'image' (from --query-image-col) not found, columns are: q,qi,p,pi`,
    )
  })

  it('simcse preset: sent0/sent1, hard_neg carried as orig_hard_neg', async () => {
    const file = await write('nli.csv', 'sent0,sent1,hard_neg\npremise,entailed,contradicted\n')
    expect(await collectPairs({ file, preset: 'simcse' })).toEqual([
      pair(0, 'premise', 'entailed', { carried: { orig_hard_neg: 'contradicted' } }),
    ])
  })

  it('explicit column options override the preset', async () => {
    const file = await write('nli.csv', 'sent0,sent1,hard_neg\npremise,entailed,contradicted\n')
    const pairs = await collectPairs({ file, preset: 'simcse', positiveCol: 'hard_neg', carry: ['sent1'] })
    expect(pairs).toEqual([pair(0, 'premise', 'contradicted', { carried: { orig_hard_neg: 'contradicted', sent1: 'entailed' } })])
  })

  it('mmeb preset: an empty text is allowed where that side has an image', async () => {
    const file = await write('mmeb.csv', 'qry,qry_image_path,pos_text,pos_image_path\nfind it,,,img/1.jpg\n,img/2.jpg,a caption,\n')
    expect(await collectPairs({ file, preset: 'mmeb' })).toEqual([
      pair(0, 'find it', '', { positiveImage: 'img/1.jpg' }),
      pair(1, '', 'a caption', { queryImage: 'img/2.jpg' }),
    ])
  })

  it('can be iterated twice, and a break closes the file early', async () => {
    const file = await write('pairs.csv', 'query,positive\nq1,p1\nq2,p2\n')
    const pairs = readPairs({ file })
    for await (const first of pairs) {
      expect(first.query).toBe('q1')
      break
    }
    const all: PairRecord[] = []
    for await (const p of pairs) all.push(p)
    expect(all.map(p => p.query)).toEqual(['q1', 'q2'])
  })
})

describe('readPairs on the SNLI triplets (SimCSE layout)', () => {
  it('reads all 2921 rows as csv.reader does', async () => {
    const pairs = await collectPairs({ file: SNLI_CSV, preset: 'simcse' })
    expect(pairs).toHaveLength(2921)
    // Expected values from python3's csv.reader on the same file.
    expect(pairs[0]).toEqual({
      row: 0,
      id: '0',
      query: 'This church choir sings to the masses as they sing joyous songs from the book at a church.',
      positive: 'The church is filled with song.',
      group: '',
      queryImage: '',
      positiveImage: '',
      carried: { orig_hard_neg: 'A choir singing at a baseball game.' },
    })
    expect(pairs[49]?.query).toBe('"Many people standing outside of a place talking to each other in front of a building that has a sign that says ""HI-POINTE."""')
    expect(pairs[2920]).toMatchObject({
      query: 'A man in a black leather jacket and a book in his hand speaks in a classroom.',
      positive: 'A man is speaking in a classroom.',
      carried: { orig_hard_neg: 'A man is flying a kite.' },
    })
    const chars = pairs.reduce((n, p) => n + p.query.length + p.positive.length + String(p.carried['orig_hard_neg']).length, 0)
    expect(chars).toBe(414467)
  })
})

describe('readPairs on JSONL', () => {
  it('reads one object per line, skipping blank lines, ids may be numbers', async () => {
    const file = await write('pairs.jsonl', '{"id": 10, "query": "q1", "positive": "p1", "n": 1.5, "ok": true, "x": null}\n\n  \r\n{"id": "b", "query": "q2", "positive": "p2", "n": 2, "ok": false, "x": "s"}\n')
    expect(await collectPairs({ file, idCol: 'id', carry: ['n', 'ok', 'x'] })).toEqual([
      pair(0, 'q1', 'p1', { id: '10', carried: { n: 1.5, ok: true, x: null } }),
      pair(1, 'q2', 'p2', { id: 'b', carried: { n: 2, ok: false, x: 's' } }),
    ])
  })

  it.each(['pairs.json', 'pairs.ndjson', 'PAIRS.JSONL'])('reads %s as JSONL', async name => {
    const file = await write(name, '\ufeff{"query": "q", "positive": "p"}\r\n')
    expect(await collectPairs({ file })).toEqual([pair(0, 'q', 'p')])
  })
})

describe('readPairs on Parquet', () => {
  it('reads the coco-mini MMEB file (pyarrow, zstd) with the mmeb preset', async () => {
    const pairs = await collectPairs({ file: COCO_PARQUET, preset: 'mmeb' })
    expect(pairs).toHaveLength(160)
    expect(pairs[0]).toEqual({
      row: 0,
      id: '0',
      query: 'Find me an everyday image that matches the given caption: a family is sitting down at a table to have cake',
      positive: '',
      group: 'MSCOCO_t2i',
      queryImage: '',
      positiveImage: 'images/000000000790.jpg',
      carried: {},
    })
    expect(pairs[100]).toEqual({
      row: 100,
      id: '100',
      query: '<|image_1|>\nFind an image caption describing the given everyday image.',
      positive: 'an umbrella decorated like a bear resting on a bed next to a teddy bear',
      group: 'MSCOCO_i2t',
      queryImage: 'images/000000133030.jpg',
      positiveImage: '',
      carried: {},
    })
    const counts: Record<string, number> = {}
    for (const p of pairs) counts[p.group] = (counts[p.group] ?? 0) + 1
    expect(counts).toEqual({ MSCOCO_t2i: 80, MSCOCO_i2t: 80 })
  })

  it('reads a DuckDB file: snappy, dictionary pages, several row groups', async () => {
    const file = await writeParquet(
      'duck.parquet',
      `SELECT i AS id, 'query ' || (i % 50) AS query, 'positive ' || i AS positive, 'g' || (i % 3) AS grp, i * 0.5 AS score
       FROM range(5000) t(i) ORDER BY i`,
      'COMPRESSION snappy, ROW_GROUP_SIZE 2048',
    )
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(file))
    expect(metadata.row_groups.map(g => Number(g.num_rows))).toEqual([2048, 2048, 904])
    const queryChunk = metadata.row_groups[0]?.columns[1]?.meta_data
    expect(queryChunk?.codec).toBe('SNAPPY')
    expect(queryChunk?.encodings).toContain('PLAIN_DICTIONARY')

    const pairs = await collectPairs({ file, idCol: 'id', groupCol: 'grp', carry: ['score'] })
    const expected = Array.from({ length: 5000 }, (_, i) =>
      pair(i, `query ${i % 50}`, `positive ${i}`, { group: `g${i % 3}`, carried: { score: i * 0.5 } }))
    expect(pairs).toEqual(expected)
  })
})

describe('option errors', () => {
  it.each([
    ['pairs.txt', `extension '.txt', expected .csv, .tsv, .jsonl, .json, .ndjson or .parquet (or set --pairs-format)`],
    ['pairs', `no extension, expected .csv, .tsv, .jsonl, .json, .ndjson or .parquet (or set --pairs-format)`],
  ])('%s: unknown extension is E_BAD_FILE, thrown by readPairs itself', (name, detail) => {
    const file = join(dir, name)
    expect(() => readPairs({ file })).toThrow(new HardnegError('E_BAD_FILE', detail, { file }))
    expect(() => readPairs({ file })).toThrow(new RegExp(`^${escape(file)}: ${escape(detail)}$`))
  })

  it.each([
    [{ format: 'xlsx' }, `--format 'xlsx', expected one of: csv, tsv, jsonl, parquet`],
    [{ preset: 'sbert' }, `--preset 'sbert', expected one of: simcse, mmeb`],
    [{ queryCol: '' }, '--query-col is empty, expected a column name'],
    [{ idCol: '' }, '--id-col is empty, expected a column name'],
    [{ carry: ['a', ''] }, '--carry has an empty name, expected column names'],
    [{ file: '' }, 'file is "", expected a path'],
  ])('%o is E_BAD_OPTION', (bad, message) => {
    const options = { file: 'pairs.csv', ...bad } as ReadPairsOptions
    const err = catchSync(() => readPairs(options))
    expect(err).toMatchObject({ code: 'E_BAD_OPTION', message, file: undefined, row: undefined })
  })
})

describe('file errors', () => {
  it('a missing file is E_BAD_FILE', async () => {
    const file = join(dir, 'missing.csv')
    await expectError({ file }, 'E_BAD_FILE', `${file}: cannot open (ENOENT: no such file or directory), expected a readable file`)
  })

  it('a directory is E_BAD_FILE', async () => {
    const file = join(dir, 'folder.jsonl')
    await rm(file, { force: true })
    await import('node:fs/promises').then(fs => fs.mkdir(file))
    await expectError({ file }, 'E_BAD_FILE', `${file}: a directory, expected a readable file`)
  })

  it.each([
    ['empty.csv', ''],
    ['header-only.csv', 'query,positive\n'],
    ['header-and-blank-lines.tsv', 'query\tpositive\n\n\n'],
    ['empty.jsonl', ''],
    ['blank.jsonl', '\n  \n'],
    ['empty.parquet', ''],
  ])('%s is E_EMPTY', async (name, content) => {
    const file = await write(name, content)
    await expectError({ file }, 'E_EMPTY', `${file}: no data rows, expected at least 1`)
  })

  it('a Parquet file without rows is E_EMPTY', async () => {
    const file = await writeParquet('none.parquet', `SELECT 'q' AS query, 'p' AS positive WHERE false`)
    await expectError({ file }, 'E_EMPTY', `${file}: no data rows, expected at least 1`)
  })

  it('a file that is not Parquet is E_BAD_FILE', async () => {
    const file = await write('fake.parquet', 'query,positive\nq,p\n')
    await expectError({ file }, 'E_BAD_FILE', `${file}: not a readable Parquet file (parquet file invalid (footer != PAR1))`)
  })
})

describe('missing columns', () => {
  it.each<[string, Omit<ReadPairsOptions, 'file'>, string]>([
    ['default query', {}, `query column 'query' (the default; choose with --query-col or --preset) not found, columns are: sent0,sent1`],
    ['--positive-col', { queryCol: 'sent0', positiveCol: 'pos' }, `positive column 'pos' (from --positive-col) not found, columns are: sent0,sent1`],
    ['preset carry', { preset: 'simcse' }, `carried column 'hard_neg' (from preset simcse) not found, columns are: sent0,sent1`],
    ['preset query', { preset: 'mmeb' }, `query column 'qry' (from preset mmeb) not found, columns are: sent0,sent1`],
    ['--id-col', { preset: 'simcse', idCol: 'pair_id' }, `id column 'pair_id' (from --id-col) not found, columns are: sent0,sent1`],
    ['--group-col', { queryCol: 'sent0', positiveCol: 'sent1', groupCol: 'subset' }, `group column 'subset' (from --group-col) not found, columns are: sent0,sent1`],
    ['--carry', { queryCol: 'sent0', positiveCol: 'sent1', carry: ['label'] }, `carried column 'label' (from --carry) not found, columns are: sent0,sent1`],
  ])('%s', async (_name, options, detail) => {
    for (const [name, content] of [['p.csv', 'sent0,sent1\na,b\n'], ['p.jsonl', '{"sent0":"a","sent1":"b"}\n']] as const) {
      const file = await write(name, content)
      await expectError({ file, ...options }, 'E_MISSING_COLUMN', `${file}: ${detail}`)
    }
  })

  it('in Parquet, checked against the schema', async () => {
    const file = await writeParquet('p.parquet', `SELECT 'a' AS sent0, 'b' AS sent1`)
    await expectError({ file, preset: 'simcse' }, 'E_MISSING_COLUMN', `${file}: carried column 'hard_neg' (from preset simcse) not found, columns are: sent0,sent1`)
  })

  it('mmeb: subset and image columns are optional', async () => {
    const file = await write('p.jsonl', '{"qry": "q", "pos_text": "p"}\n')
    expect(await collectPairs({ file, preset: 'mmeb' })).toEqual([pair(0, 'q', 'p')])
  })
})

describe('bad rows', () => {
  it.each([
    ['fewer fields', 'id,query,positive,group\n1,q,p,g\n2,q,p\n', 2, '3 fields, expected 4 (header: id,query,positive,group)'],
    ['more fields', 'id,query,positive,group\n1,q,p,g,x\n', 1, '5 fields, expected 4 (header: id,query,positive,group)'],
    ['one field', 'id,query,positive,group\n1,q,p,g\n\n\nlonely\n', 2, '1 field, expected 4 (header: id,query,positive,group)'],
    ['an unclosed quote', 'id,query,positive,group\n1,q,p,g\n2,"q,p,g\n3,q,p,g\n', 2,
      'invalid CSV (Quote Not Closed: the parsing is finished with an opening quote at line 4), expected RFC 4180 fields'],
    ['text after a closing quote', 'id,query,positive,group\n1,"q"x,p,g\n', 1,
      'invalid CSV (Invalid Closing Quote: got "x" at line 2 instead of delimiter, record delimiter, trimable character (if activated) or comment), expected RFC 4180 fields'],
    ['a quote inside an unquoted field', 'id,query,positive,group\n1,q,p,g\n2,5" tall,p,g\n', 2,
      'invalid CSV (Invalid Opening Quote: a quote is found on field 1 at line 3, value is "5"), expected RFC 4180 fields'],
  ])('CSV with %s', async (_name, content, row, detail) => {
    const file = await write('pairs.csv', content)
    await expectError({ file }, 'E_BAD_ROW', `${file}:${row}: ${detail}`, row)
  })

  it('a broken CSV header has no row number', async () => {
    const file = await write('pairs.csv', '"query,positive\nq,p\n')
    await expectError({ file }, 'E_BAD_ROW',
      `${file}: invalid CSV header (Quote Not Closed: the parsing is finished with an opening quote at line 2), expected RFC 4180 fields`)
  })

  it.each([
    ['query', 'query,positive\nq,p\n,p\n', 2, `query (column 'query') is empty, expected text`],
    ['positive', 'query,positive\nq,p\nq,p\nq,""\n', 3, `positive (column 'positive') is empty, expected text`],
  ])('CSV with an empty %s', async (_name, content, row, detail) => {
    const file = await write('pairs.csv', content)
    await expectError({ file }, 'E_BAD_ROW', `${file}:${row}: ${detail}`, row)
  })

  it('simcse: an empty sent1 names its column', async () => {
    const file = await write('nli.csv', 'sent0,sent1,hard_neg\na,b,c\na,b,c\na,b,c\na,b,c\na,b,c\na,b,c\nx,,z\n')
    await expectError({ file, preset: 'simcse' }, 'E_BAD_ROW', `${file}:7: positive (column 'sent1') is empty, expected text`, 7)
  })

  it('an empty id is E_BAD_ROW', async () => {
    const file = await write('pairs.csv', 'id,query,positive\n,q,p\n')
    await expectError({ file, idCol: 'id' }, 'E_BAD_ROW', `${file}:1: id (column 'id') is empty, expected text`, 1)
  })

  it.each([
    ['query without an image', ',,p,\n', 1, `query (column 'qry') is empty, expected text or an image path in column 'qry_image_path'`],
    ['positive without an image', 'q,,,\n', 1, `positive (column 'pos_text') is empty, expected text or an image path in column 'pos_image_path'`],
  ])('mmeb: an empty %s is E_BAD_ROW', async (_name, body, row, detail) => {
    const file = await write('mmeb.csv', `qry,qry_image_path,pos_text,pos_image_path\n${body}`)
    await expectError({ file, preset: 'mmeb' }, 'E_BAD_ROW', `${file}:${row}: ${detail}`, row)
  })

  it('mmeb without image columns: an empty text is E_BAD_ROW', async () => {
    const file = await write('mmeb.jsonl', '{"qry": "q", "pos_text": "p"}\n{"qry": "", "pos_text": "p"}\n')
    await expectError({ file, preset: 'mmeb' }, 'E_BAD_ROW', `${file}:2: query (column 'qry') is empty, expected text`, 2)
  })

  it('mmeb Parquet: an empty text without an image is E_BAD_ROW', async () => {
    const file = await writeParquet('mmeb.parquet',
      `SELECT * FROM (VALUES ('s', 'q', '', '', 'i.jpg'), ('s', 'q', '', '', '')) t(subset, qry, qry_image_path, pos_text, pos_image_path)`)
    await expectError({ file, preset: 'mmeb' }, 'E_BAD_ROW',
      `${file}:2: positive (column 'pos_text') is empty, expected text or an image path in column 'pos_image_path'`, 2)
  })

  it.each([
    ['invalid JSON', '{"query": "q", "positive": "p"}\n{"query": "q",}\n', 2, `invalid JSON (${jsonReason('{"query": "q",}')}), expected one object per line`],
    ['an array', '{"query": "q", "positive": "p"}\n\n["q", "p"]\n', 3, 'found an array, expected one object per line'],
    ['a number', '7\n', 1, 'found a number, expected one object per line'],
    ['null', 'null\n', 1, 'found null, expected one object per line'],
    ['a number as query', '{"query": 1, "positive": "p"}\n', 1, `query (column 'query') is a number, expected a string`],
    ['an object as positive', '{"query": "q", "positive": {"text": "p"}}\n', 1, `positive (column 'positive') is an object, expected a string`],
    ['null as positive', '{"query": "q", "positive": null}\n', 1, `positive (column 'positive') is null, expected text`],
    ['a later object without the query', '{"query": "q", "positive": "p"}\r\n{"positive": "p"}\r\n', 2, `query (column 'query') is missing, expected a string`],
  ])('JSONL with %s', async (_name, content, row, detail) => {
    const file = await write('pairs.jsonl', content)
    await expectError({ file }, 'E_BAD_ROW', `${file}:${row}: ${detail}`, row)
  })

  it.each([
    ['a boolean id', { idCol: 'id' }, '{"id": true, "query": "q", "positive": "p"}', `id (column 'id') is a boolean, expected a string or number`],
    ['an array group', { groupCol: 'g' }, '{"g": [1], "query": "q", "positive": "p"}', `group (column 'g') is an array, expected a string or number`],
    ['an object carried', { carry: ['meta'] }, '{"meta": {}, "query": "q", "positive": "p"}', `carried value (column 'meta') is an object, expected a string, number, boolean or null`],
    ['a missing carried value', { carry: ['meta'] }, '{"meta": 1, "query": "q", "positive": "p"}\n{"query": "q", "positive": "p"}', `carried value (column 'meta') is missing, expected a string, number, boolean or null`],
  ])('JSONL with %s', async (_name, options, content, detail) => {
    const file = await write('pairs.jsonl', content)
    const row = content.split('\n').length
    await expectError({ file, ...options }, 'E_BAD_ROW', `${file}:${row}: ${detail}`, row)
  })

  it('a Parquet list column cannot be carried', async () => {
    const file = await writeParquet('list.parquet', `SELECT 'q' AS query, 'p' AS positive, [1, 2] AS tags`)
    await expectError({ file, carry: ['tags'] }, 'E_BAD_ROW',
      `${file}:1: carried value (column 'tags') is an array, expected a string, number, boolean or null`, 1)
  })
})

describe('PRESETS', () => {
  it('describes the two layouts', () => {
    expect(PRESETS.simcse).toEqual({ queryCol: 'sent0', positiveCol: 'sent1', carry: [{ from: 'hard_neg', to: 'orig_hard_neg', optional: false }] })
    expect(PRESETS.mmeb.groupCol).toBe('subset')
    expect(Object.isFrozen(PRESETS.mmeb.carry)).toBe(true)
  })
})

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function jsonReason(text: string): string {
  try {
    JSON.parse(text)
  } catch (err) {
    return (err as Error).message
  }
  throw new Error(`valid JSON: ${text}`)
}

function catchSync(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw')
}
