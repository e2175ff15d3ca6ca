import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet'
import { describe, expect, it } from 'vitest'
import { HardnegError } from '../src/errors.js'
import { listShards, readShardRows, readShards, writeShards } from '../src/output/shards.js'
import type { CarriedColumn, ShardColumn, ShardRow, WriteShardsOptions } from '../src/output/shards.js'
import type { MinedRow } from '../src/types.js'
import { tempDir } from './_helpers.js'

const CARRIED: CarriedColumn[] = [
  { name: 'source', type: 'string' },
  { name: 'weight', type: 'float64' },
  { name: 'label', type: 'int64' },
  { name: 'flag', type: 'boolean' },
]

const TEXTS = ['plain ascii text', 'emoji 🚀🔥 rocket', '中文句子，测试', '日本語のテキスト', 'mixed ünïcödé — “quotes”', '']

/** Deterministic rows: every 7th has no negatives, carried columns have nulls, texts include emoji and CJK. */
function makeRows(n: number): MinedRow[] {
  const rows: MinedRow[] = []
  for (let i = 0; i < n; i++) {
    const k = i % 7 === 0 ? 0 : 1 + (i % 8)
    const negatives = Array.from({ length: k }, (_, j) => `${TEXTS[(i + j) % TEXTS.length]} #${(i * 31 + j) % n}`)
    rows.push({
      id: `q${i}`,
      query: `${TEXTS[i % TEXTS.length]} query ${i}`,
      positive: `${TEXTS[(i + 1) % TEXTS.length]} positive ${i}`,
      group: i % 3 === 0 ? '' : `g${i % 3}`,
      posScore: 0.5 + (i % 100) / 201,
      negatives,
      negIds: negatives.map((_, j) => String((i * 31 + j) % n)),
      negScores: negatives.map((_, j) => 0.49 - j / 97 - (i % 10) / 1000),
      nValid: k,
      nFalseNegatives: i % 4,
      carried: {
        source: i % 5 === 0 ? null : `src-${i % 3}`,
        weight: i % 6 === 0 ? null : i / 3,
        label: i % 4 === 0 ? null : BigInt(i) * 1_000_000_007n,
        flag: i % 9 === 0 ? null : i % 2 === 0,
      },
    })
  }
  return rows
}

async function* iterate<T>(items: Iterable<T>): AsyncIterable<T> {
  for (const item of items) yield item
}

/** Yields `rows`, then throws `error` instead of ending. */
async function* failingAfter(rows: MinedRow[], error: Error): AsyncIterable<MinedRow> {
  yield* rows
  throw error
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of items) out.push(item)
  return out
}

/** What a row looks like after a float32 round trip. */
function expectedBack(row: MinedRow): ShardRow {
  return {
    ...row,
    posScore: Math.fround(row.posScore),
    negScores: row.negScores.map(Math.fround),
    carried: { ...row.carried },
    extra: {},
  }
}

async function duckdb<T>(fn: (query: (sql: string) => Promise<Record<string, unknown>[]>) => Promise<T>): Promise<T> {
  const instance = await DuckDBInstance.create(':memory:')
  const connection = await instance.connect()
  try {
    return await fn(async sql => (await connection.runAndReadAll(sql)).getRowObjectsJS())
  } finally {
    connection.closeSync()
    instance.closeSync()
  }
}

async function describeTypes(glob: string): Promise<Record<string, unknown>> {
  return duckdb(async query => {
    const rows = await query(`DESCRIBE SELECT * FROM read_parquet('${glob}')`)
    return Object.fromEntries(rows.map(r => [r.column_name, r.column_type]))
  })
}

async function errorOf(promise: Promise<unknown>): Promise<HardnegError> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(HardnegError)
  return err as HardnegError
}

const BASE_TYPES = {
  id: 'VARCHAR',
  query: 'VARCHAR',
  positive: 'VARCHAR',
  group: 'VARCHAR',
  pos_score: 'FLOAT',
  negatives: 'VARCHAR[]',
  neg_ids: 'VARCHAR[]',
  neg_scores: 'FLOAT[]',
  n_valid: 'INTEGER',
  n_false_negatives: 'INTEGER',
}

describe('writeShards', () => {
  it('splits 2,500 rows into shards of 1000/1000/500 whose sha256 and size match the files', async () => {
    const dir = await tempDir()
    const shards = await writeShards(iterate(makeRows(2500)), { dir, shardRows: 1000, rowGroupRows: 300, carriedColumns: CARRIED })

    expect(shards.map(s => [s.file, s.rows])).toEqual([
      ['part-00000.parquet', 1000],
      ['part-00001.parquet', 1000],
      ['part-00002.parquet', 500],
    ])
    for (const shard of shards) {
      const bytes = await readFile(path.join(dir, shard.file))
      expect(shard.bytes).toBe(bytes.length)
      expect(shard.sha256).toBe(createHash('sha256').update(bytes).digest('hex'))
    }
    expect((await readdir(dir)).sort()).toEqual(['part-00000.parquet', 'part-00001.parquet', 'part-00002.parquet'])
  })

  it('reads back every field with hyparquet (floats as float32, int64 as bigint, nulls kept)', async () => {
    const dir = await tempDir()
    const rows = makeRows(2500)
    await writeShards(iterate(rows), { dir, shardRows: 1000, rowGroupRows: 300, carriedColumns: CARRIED })

    const back = await collect(readShards(dir))
    expect(back).toHaveLength(rows.length)
    back.forEach((row, i) => expect(row).toEqual(expectedBack(rows[i]!)))
  })

  it('writes row groups of rowGroupRows rows, the last one of a shard shorter', async () => {
    const dir = await tempDir()
    await writeShards(iterate(makeRows(2500)), { dir, shardRows: 1000, rowGroupRows: 300, carriedColumns: CARRIED })

    const groupsOf = async (file: string) =>
      (await parquetMetadataAsync(await asyncBufferFromFile(path.join(dir, file)))).row_groups.map(g => Number(g.num_rows))
    expect(await groupsOf('part-00000.parquet')).toEqual([300, 300, 300, 100])
    expect(await groupsOf('part-00002.parquet')).toEqual([300, 200])
  })

  it('is read by DuckDB with LIST columns, unicode text, empty lists and nulls', async () => {
    const dir = await tempDir()
    const rows = makeRows(2500)
    await writeShards(iterate(rows), { dir, shardRows: 1000, carriedColumns: CARRIED })
    const glob = path.join(dir, '*.parquet')

    expect(await describeTypes(glob)).toEqual({
      ...BASE_TYPES,
      source: 'VARCHAR',
      weight: 'DOUBLE',
      label: 'BIGINT',
      flag: 'BOOLEAN',
    })
    await duckdb(async query => {
      const [totals] = await query(`
        SELECT count(*)::INTEGER AS n, sum(len(negatives))::INTEGER AS negs,
               (count(*) FILTER (WHERE len(negatives) = 0))::INTEGER AS empty,
               (count(*) FILTER (WHERE source IS NULL))::INTEGER AS no_source,
               (count(*) FILTER (WHERE label IS NULL))::INTEGER AS no_label
        FROM read_parquet('${glob}')`)
      const negs = rows.reduce((sum, r) => sum + r.negatives.length, 0)
      expect(totals).toEqual({
        n: 2500,
        negs,
        empty: rows.filter(r => r.negatives.length === 0).length,
        no_source: rows.filter(r => r.carried.source === null).length,
        no_label: rows.filter(r => r.carried.label === null).length,
      })

      const picked = await query(`
        SELECT id, query, negatives, neg_ids, neg_scores, pos_score, n_valid, label
        FROM read_parquet('${glob}') WHERE id IN ('q1', 'q2', 'q1501') ORDER BY id`)
      expect(picked).toEqual(['q1', 'q1501', 'q2'].map(id => {
        const r = rows.find(x => x.id === id)!
        return {
          id,
          query: r.query,
          negatives: r.negatives,
          neg_ids: r.negIds,
          neg_scores: r.negScores.map(Math.fround),
          pos_score: Math.fround(r.posScore),
          n_valid: r.nValid,
          label: r.carried.label,
        }
      }))
      expect(picked[0]!.query).toBe('emoji 🚀🔥 rocket query 1')
      expect(picked[2]!.query).toBe('中文句子，测试 query 2')
    })
  })

  it('gives byte-identical files for the same rows and options', async () => {
    const [a, b] = [await tempDir(), await tempDir()]
    const options = { shardRows: 1000, rowGroupRows: 300, carriedColumns: CARRIED }
    const first = await writeShards(iterate(makeRows(2500)), { dir: a, ...options })
    const second = await writeShards(iterate(makeRows(2500)), { dir: b, ...options })

    expect(second).toEqual(first)
    for (const { file } of first) {
      expect((await readFile(path.join(b, file))).equals(await readFile(path.join(a, file)))).toBe(true)
    }
  })

  it('writes one empty part-00000.parquet with the full schema for zero rows', async () => {
    const dir = await tempDir()
    const shards = await writeShards(iterate([]), { dir, carriedColumns: [{ name: 'label', type: 'int64' }] })

    expect(shards.map(s => [s.file, s.rows])).toEqual([['part-00000.parquet', 0]])
    expect(await readdir(dir)).toEqual(['part-00000.parquet'])
    expect(await describeTypes(path.join(dir, '*.parquet'))).toEqual({ ...BASE_TYPES, label: 'BIGINT' })
    expect(await collect(readShards(dir))).toEqual([])
  })

  it.each([
    ['snappy', undefined],
    ['gzip', 'gzip'],
    ['none', 'none'],
  ] as const)('compression %s is read back by hyparquet and DuckDB', async (_name, compression) => {
    const dir = await tempDir()
    const rows = makeRows(50)
    await writeShards(iterate(rows), { dir, carriedColumns: CARRIED, ...(compression ? { compression } : {}) })

    expect(await collect(readShards(dir))).toEqual(rows.map(expectedBack))
    const [row] = await duckdb(query => query(`SELECT count(*)::INTEGER AS n FROM read_parquet('${path.join(dir, '*.parquet')}')`))
    expect(row).toEqual({ n: 50 })
  })

  it('writes extra columns after the carried ones and reads them back into `extra`', async () => {
    const dir = await tempDir()
    const rows = makeRows(20)
    const images = (r: MinedRow) => r.negIds.map(id => `img/${id}.jpg`)
    const extraColumns: ShardColumn[] = [
      { name: 'query_image', type: 'string', nullable: true, get: r => (r.id === 'q3' ? null : `img/${r.id}.jpg`) },
      { name: 'neg_images', type: 'list<string>', get: images },
    ]
    await writeShards(iterate(rows), { dir, carriedColumns: [{ name: 'source', type: 'string' }], extraColumns })

    expect(Object.keys(await describeTypes(path.join(dir, '*.parquet'))).slice(10)).toEqual(['source', 'query_image', 'neg_images'])
    expect((await describeTypes(path.join(dir, '*.parquet'))).neg_images).toBe('VARCHAR[]')
    const back = await collect(readShards(dir))
    expect(back[3]!.extra).toEqual({ query_image: null, neg_images: images(rows[3]!) })
    expect(back[4]!.extra).toEqual({ query_image: 'img/q4.jpg', neg_images: images(rows[4]!) })
    expect(back[4]!.carried).toEqual({ source: rows[4]!.carried.source })
  })

  it('calls onShard after each shard is in place, in order', async () => {
    const dir = await tempDir()
    const seen: string[] = []
    await writeShards(iterate(makeRows(25)), {
      dir,
      shardRows: 10,
      carriedColumns: CARRIED,
      onShard: async shard => {
        expect((await stat(path.join(dir, shard.file))).size).toBe(shard.bytes)
        seen.push(`${shard.file}:${shard.rows}`)
      },
    })
    expect(seen).toEqual(['part-00000.parquet:10', 'part-00001.parquet:10', 'part-00002.parquet:5'])
  })

  it('propagates an error of the input and removes the unfinished shard', async () => {
    const dir = await tempDir()
    const boom = new Error('upstream failed')
    const err = await writeShards(failingAfter(makeRows(1500), boom), { dir, shardRows: 1000, carriedColumns: CARRIED })
      .then(() => undefined, (e: unknown) => e)

    expect(err).toBe(boom)
    expect(await readdir(dir)).toEqual(['part-00000.parquet'])
    expect(await collect(readShards(dir))).toHaveLength(1000)
  })

  it('rejects a carried value of the wrong type with E_BAD_ROW and removes the unfinished shard', async () => {
    const dir = await tempDir()
    const rows = makeRows(5)
    rows[3]!.carried.label = 'seven'
    const err = await errorOf(writeShards(iterate(rows), { dir, carriedColumns: CARRIED }))

    expect(err.code).toBe('E_BAD_ROW')
    expect(err.message).toBe(`${path.join(dir, 'part-00000.parquet')}:4: column "label" is "seven" (string), expected int64 or null (row id "q3")`)
    expect(await readdir(dir)).toEqual([])
  })

  it.each<[string, (r: MinedRow) => void, string]>([
    ['misaligned neg_ids', r => r.negIds.pop(), 'negatives, neg_ids and neg_scores have 2, 1 and 2 values, expected equal lengths'],
    ['a missing query', r => Reflect.deleteProperty(r, 'query'), 'column "query" is undefined, expected string'],
    ['a fractional n_valid', r => (r.nValid = 1.5), 'column "n_valid" is 1.5 (number), expected int32'],
    ['a number among negatives', r => ((r.negatives as unknown[])[1] = 7), 'column "negatives" element 1 is 7 (number), expected string'],
  ])('rejects %s with E_BAD_ROW', async (_name, spoil, detail) => {
    const dir = await tempDir()
    const rows = makeRows(3)
    spoil(rows[1]!)
    const err = await errorOf(writeShards(iterate(rows), { dir, carriedColumns: [] }))

    expect(err.code).toBe('E_BAD_ROW')
    expect(err.message).toBe(`${path.join(dir, 'part-00000.parquet')}:2: ${detail} (row id "q1")`)
  })

  it.each<[string, Partial<WriteShardsOptions>, string]>([
    ['shardRows 0', { shardRows: 0 }, 'shardRows 0, expected a positive integer'],
    ['rowGroupRows 2.5', { rowGroupRows: 2.5 }, 'rowGroupRows 2.5, expected a positive integer'],
    ['compression lz4', { compression: 'lz4' as 'snappy' }, 'compression "lz4", expected one of snappy, gzip, none'],
    ['an empty dir', { dir: '' }, 'dir "", expected a directory path'],
    ['a carried column named like a mined one', { carriedColumns: [{ name: 'query', type: 'string' }] },
      'writeShards: column "query" appears twice, expected unique names (mined, carried and extra columns share one namespace)'],
    ['a carried column of type date', { carriedColumns: [{ name: 'day', type: 'date' as 'string' }] },
      'carriedColumns: column "day" has type "date", expected string, float64, int64 or boolean'],
    ['missing carriedColumns', { carriedColumns: undefined as unknown as CarriedColumn[] },
      'carriedColumns undefined, expected an array ([] for none)'],
    ['an extra column of type image', { extraColumns: [{ name: 'img', type: 'image' as 'string', get: () => null }] },
      'extraColumns: column "img" has type "image", expected one of string, float64, int64, boolean, float32, int32, list<string>, list<float32>'],
    ['an empty column name', { carriedColumns: [{ name: '', type: 'string' }] },
      'writeShards: a column name is empty, expected a non-empty name'],
  ])('rejects %s with E_BAD_OPTION', async (_name, override, message) => {
    const dir = await tempDir()
    const err = await errorOf(writeShards(iterate(makeRows(3)), { dir, carriedColumns: [], ...override }))

    expect(err.code).toBe('E_BAD_OPTION')
    expect(err.message).toBe(message)
  })

  it('reports an output directory it cannot create with E_OUTPUT', async () => {
    const dir = await tempDir()
    const blocker = path.join(dir, 'file')
    await writeFile(blocker, 'not a directory')
    const err = await errorOf(writeShards(iterate(makeRows(3)), { dir: path.join(blocker, 'out'), carriedColumns: [] }))

    expect(err.code).toBe('E_OUTPUT')
    expect(err.message).toBe(`${path.join(blocker, 'out')}: cannot create the output directory (ENOTDIR)`)
  })
})

describe('writeShards output failures', () => {
  it('reports a temporary file it cannot create with E_OUTPUT', async () => {
    const dir = await tempDir()
    await mkdir(path.join(dir, '.part-00000.parquet.tmp'))
    const err = await errorOf(writeShards(iterate(makeRows(3)), { dir, carriedColumns: [] }))

    expect(err.code).toBe('E_OUTPUT')
    expect(err.message).toBe(`${path.join(dir, '.part-00000.parquet.tmp')}: cannot create the temporary shard file (EISDIR)`)
  })

  it('reports a failed rename with E_OUTPUT and removes the temporary file', async () => {
    const dir = await tempDir()
    await mkdir(path.join(dir, 'part-00001.parquet', 'occupied'), { recursive: true })
    const err = await errorOf(writeShards(iterate(makeRows(15)), { dir, shardRows: 10, carriedColumns: [] }))

    expect(err.code).toBe('E_OUTPUT')
    expect(err.message).toBe(`${path.join(dir, '.part-00001.parquet.tmp')}: cannot rename to ${path.join(dir, 'part-00001.parquet')} (EISDIR)`)
    expect((await readdir(dir)).sort()).toEqual(['part-00000.parquet', 'part-00001.parquet'])
  })
})

describe('readShards', () => {
  it('reads a list of files in the given order, and can be iterated twice', async () => {
    const dir = await tempDir()
    const rows = makeRows(30)
    await writeShards(iterate(rows), { dir, shardRows: 10, carriedColumns: CARRIED })
    const files = ['part-00002.parquet', 'part-00000.parquet'].map(f => path.join(dir, f))
    const source = readShards(files)

    const ids = (await collect(source)).map(r => r.id)
    expect(ids).toEqual([...rows.slice(20), ...rows.slice(0, 10)].map(r => r.id))
    expect((await collect(source)).map(r => r.id)).toEqual(ids)
    expect(await listShards(dir)).toEqual(['part-00000.parquet', 'part-00001.parquet', 'part-00002.parquet'].map(f => path.join(dir, f)))
  })

  it('puts every non-mined column of a foreign file into `carried`', async () => {
    const dir = await tempDir()
    await writeShards(iterate(makeRows(3)), { dir, carriedColumns: CARRIED })
    // The same rows without the footer entry behave like a file another tool wrote.
    await duckdb(query => query(`COPY (SELECT * FROM read_parquet('${path.join(dir, 'part-00000.parquet')}'))
      TO '${path.join(dir, 'foreign.parquet')}' (FORMAT parquet)`))

    const [row] = await collect(readShardRows(path.join(dir, 'foreign.parquet')))
    expect(row).toEqual(expectedBack(makeRows(1)[0]!))
  })

  it.each<[string, (dir: string) => Promise<string>, string, string]>([
    ['a missing directory', async dir => path.join(dir, 'nope'), 'E_BAD_FILE', 'cannot read the shard directory (ENOENT)'],
    ['a directory without shards', async dir => dir, 'E_BAD_FILE', 'no part-*.parquet shards, expected at least part-00000.parquet'],
  ])('rejects %s', async (_name, make, code, detail) => {
    const target = await make(await tempDir())
    const err = await errorOf(collect(readShards(target)))

    expect(err.code).toBe(code)
    expect(err.message).toBe(`${target}: ${detail}`)
  })

  it.each<[string, (file: string) => Promise<void>, string, string]>([
    ['a missing file', async () => undefined, 'E_BAD_FILE', 'cannot open the shard (ENOENT)'],
    ['a file that is not Parquet', file => writeFile(file, 'id,query\n1,hello\n'), 'E_BAD_FILE',
      'not a readable Parquet file (parquet file invalid (footer != PAR1))'],
    ['a Parquet file without the mined columns', async file => {
      await duckdb(query => query(`COPY (SELECT 'q1' AS id, 'hello' AS query) TO '${file}' (FORMAT parquet)`))
    }, 'E_MISSING_COLUMN',
      'no column "positive", expected the hardneg shard columns (id, query, positive, group, pos_score, negatives, neg_ids, neg_scores, n_valid, n_false_negatives)'],
  ])('rejects %s', async (_name, make, code, detail) => {
    const file = path.join(await tempDir(), 'part-00000.parquet')
    await make(file)
    const err = await errorOf(collect(readShardRows(file)))

    expect(err.code).toBe(code)
    expect(err.message).toBe(`${file}: ${detail}`)
  })
})

// pyarrow is what Hugging Face `datasets` reads Parquet with; the test runs where it is installed.
const hasPyarrow = (() => {
  try {
    execFileSync('python3', ['-c', 'import pyarrow'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

describe.skipIf(!hasPyarrow)('pyarrow', () => {
  it('reads a shard with list<string> and list<float> columns', async () => {
    const dir = await tempDir()
    await writeShards(iterate(makeRows(25)), { dir, carriedColumns: CARRIED })
    const script = [
      'import sys, pyarrow.parquet as pq',
      't = pq.read_table(sys.argv[1])',
      'print(t.num_rows)',
      'for f in t.schema: print(f.name, f.type)',
      'print(t.column("negatives")[1].as_py()[0])',
    ].join('\n')
    const out = execFileSync('python3', ['-c', script, path.join(dir, 'part-00000.parquet')], { encoding: 'utf8' })

    expect(out.split('\n').slice(0, 15)).toEqual([
      '25',
      'id string',
      'query string',
      'positive string',
      'group string',
      'pos_score float',
      'negatives list<element: string not null>',
      'neg_ids list<element: string not null>',
      'neg_scores list<element: float not null>',
      'n_valid int32',
      'n_false_negatives int32',
      'source string',
      'weight double',
      'label int64',
      'flag bool',
    ])
    expect(out.split('\n')[15]).toBe(makeRows(25)[1]!.negatives[0])
  })
})
