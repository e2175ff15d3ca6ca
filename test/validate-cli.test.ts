import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runHardneg, type CliIO } from '../src/cli/main.js'
import { tempDir, writeCsv } from './_helpers.js'
import { buildFixture, copyFixture, pairRows, ROWS, type Fixture } from './_validate-fixture.js'

function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), stderrIsTTY: false }
}

async function validate(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO()
  const code = await runHardneg(['validate', ...args], io)
  return { code, out: io.out.join(''), err: io.err.join('') }
}

let root: string
let clean: Fixture
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'hardneg-validate-cli-'))
  clean = await buildFixture(root)
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

const inputs = (f: Fixture): string[] => ['--pairs', f.pairs, '--id-col', 'id', '--group-col', 'group', '--query-embeddings', f.q, '--positive-embeddings', f.p]

/** A copy of the fixture whose pairs file has the given edits. */
async function withPairs(edit: (rows: string[][]) => void): Promise<Fixture> {
  const f = await copyFixture(clean)
  const rows: string[][] = pairRows()
  edit(rows)
  await writeCsv(f.pairs, ['id', 'query', 'positive', 'group'], rows)
  return f
}

describe('hardneg validate: exit codes', () => {
  it('exits 0 on the clean fixture: inputs, shards, rescoring and a forbid set in one run', async () => {
    const { code, out, err } = await validate([...inputs(clean), '--shards', clean.shards, '--rescore', String(ROWS), '--forbid', clean.forbid])
    expect(err).toBe('')
    expect(code).toBe(0)
    expect(out).toMatch(/\nhardneg validate: passed \(--fail-on error\): 0 errors, 0 warnings, 0 info from 40 checks\n$/)
    expect(out).toMatch(/^passed: V_NO_ROWS, V_BAD_ROW, /)
  })

  it('reads --pairs with the columns the manifest recorded when no column flag is given', async () => {
    const { code, err } = await validate(['--pairs', clean.pairs, '--shards', clean.shards, '--rescore', '5', '--query-embeddings', clean.q, '--positive-embeddings', clean.p])
    expect(err).toBe(`hardneg: reading --pairs with the columns the run recorded in ${clean.shards}/manifest.json: idCol id, groupCol group\n`)
    expect(code).toBe(0)
  })

  it('exits 1 when an error is found, listing it grouped by code', async () => {
    const f = await withPairs(r => void (r[4]![1] = r[9]![1] = ''))
    const { code, out } = await validate(inputs(f))
    expect(code).toBe(1)
    expect(out).toContain([
      "error   V_EMPTY_TEXT (2): no query or positive is empty, null or missing",
      `  ${f.pairs}:5: query (column 'query') is empty, expected text`,
      `  ${f.pairs}:10: query (column 'query') is empty, expected text`,
    ].join('\n'))
    expect(out).toMatch(/\nhardneg validate: FAILED \(--fail-on error\): 2 errors, 0 warnings, 0 info from 16 checks\n$/)
  })

  it.each([
    [[], 0],
    [['--fail-on', 'warning'], 1],
    [['--fail-on', 'none'], 0],
  ])('a warning with %j exits %i', async (flags, expected) => {
    const f = await withPairs(r => void (r[6]![2] = '  '))
    expect((await validate([...inputs(f), ...flags])).code).toBe(expected)
  })

  it('an error with --fail-on none exits 0', async () => {
    const f = await withPairs(r => void (r[4]![1] = ''))
    expect((await validate([...inputs(f), '--fail-on', 'none'])).code).toBe(0)
  })

  it.each([
    [['--pairs', '/nonexistent/pairs.csv'], 'E_BAD_FILE: /nonexistent/pairs.csv: cannot open (ENOENT: no such file or directory), expected a readable file'],
    [['--shards', '/nonexistent/out'], 'E_BAD_FILE: /nonexistent/out: cannot open (ENOENT), expected a directory of mined shards'],
    [['--pairs', 'x.csv', '--format', 'xml'], "E_BAD_OPTION: --format: 'xml', expected one of text, json, junit, github"],
    [['--pairs', 'x.csv', '--fail-on', 'info'], "E_BAD_OPTION: --fail-on: 'info', expected one of error, warning, none"],
    [['--pairs', 'x.csv', '--min-image-side', '0'], "E_BAD_OPTION: --min-image-side: '0', expected an integer >= 1"],
    [[], 'E_BAD_OPTION: nothing to validate, expected --pairs, --query-embeddings/--positive-embeddings and/or --shards'],
    [['--pairs', 'x.csv', '--rescore', '5'], 'E_BAD_OPTION: --rescore checks mined scores, expected --shards too'],
    [['--shards', 'out', '--rescore', '5'], "E_BAD_OPTION: --rescore needs the run's embeddings, expected --query-embeddings and --positive-embeddings"],
  ])('exits 2 when validation cannot run: %j', async (args, message) => {
    const { code, out, err } = await validate(args)
    expect(err).toBe(`hardneg: error ${message}\n`)
    expect(out).toBe('')
    expect(code).toBe(2)
  })

  it('exits 2 on an unknown flag', async () => {
    const { code, err } = await validate(['--pairs', 'x.csv', '--strict'])
    expect(err).toContain("error: unknown option '--strict'")
    expect(code).toBe(2)
  })
})

describe('hardneg validate: report formats', () => {
  it('text shows the first five findings of a code and counts the rest', async () => {
    const f = await withPairs(r => { for (let i = 0; i < 8; i++) r[i]![0] = 'same' })
    const { out } = await validate([...inputs(f), '--max-findings', '6'])
    expect(out).toContain(`error   V_DUPLICATE_ID (7): ids are unique\n  ${f.pairs}:2: id "same" already at row 1, expected unique ids\n`)
    expect(out).toContain(`  ${f.pairs}:6: id "same" already at row 1, expected unique ids\n  ... 2 more (--format json lists up to --max-findings per code)\n`)
  })

  it('json holds the verdict, the checks and every kept finding', async () => {
    const f = await withPairs(r => void (r[4]![1] = ''))
    const { code, out } = await validate([...inputs(f), '--format', 'json'])
    expect(code).toBe(1)
    const report = JSON.parse(out)
    expect(report).toMatchObject({ ok: false, failOn: 'error', counts: { error: 1, warning: 0, info: 0 } })
    expect(report.findings).toEqual([{ code: 'V_EMPTY_TEXT', severity: 'error', file: f.pairs, row: 5, message: `${f.pairs}:5: query (column 'query') is empty, expected text` }])
    expect(report.checks.find((c: { code: string }) => c.code === 'V_EMPTY_TEXT')).toMatchObject({ group: 'pairs', status: 'ran', count: 1 })
  })

  it('junit parses as XML: one test case per check, failures with their findings, odd characters escaped', async () => {
    const dir = await tempDir()
    const pairs = path.join(dir, 'pairs.csv')
    // A header name with XML specials and a control character, which the missing-column message quotes.
    await writeCsv(pairs, ['query', 'positive', 'note <&>"\u0001\'x'], [['q0', 'p0', ''], ['q1', '', ''], ['q2', '   ', '']])
    const { code, out } = await validate(['--pairs', pairs, '--group-col', 'grp', '--format', 'junit'])
    expect(code).toBe(1)
    expect(XMLValidator.validate(out)).toBe(true)
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => ['testsuite', 'testcase'].includes(name) }).parse(out)
    const suites = doc.testsuites.testsuite as { name: string; tests: string; failures: string; testcase: Record<string, any>[] }[]
    expect(suites.map(s => s.name)).toEqual(['pairs'])
    const cases = suites[0]!.testcase
    expect(cases.map(c => c.name)).toEqual(['V_NO_ROWS', 'V_BAD_ROW', 'V_MISSING_COLUMN', 'V_BAD_TYPE', 'V_EMPTY_TEXT', 'V_BLANK_TEXT', 'V_DUPLICATE_PAIR', 'V_SMALL_GROUP'])
    expect(cases.every(c => c.classname === 'pairs')).toBe(true)
    expect(doc.testsuites).toMatchObject({ tests: '8', failures: '2' })
    const missing = cases.find(c => c.name === 'V_MISSING_COLUMN')!
    expect(missing.failure.message).toBe('1 error: every column the options name is present')
    expect(missing.failure['#text']).toBe(`${pairs}: group column 'grp' (from --group-col) not found, columns are: query,positive,note <&>"\uFFFD'x`)
    expect(cases.find(c => c.name === 'V_EMPTY_TEXT')!.failure['#text']).toBe(`${pairs}:2: positive (column 'positive') is empty, expected text`)
    // Warnings below --fail-on pass, with their findings in system-out.
    const blank = cases.find(c => c.name === 'V_BLANK_TEXT')!
    expect(blank.failure).toBeUndefined()
    expect(blank['system-out']).toContain(`${pairs}:3: positive (column 'positive') is whitespace only, expected text`)
  })

  it('junit marks checks that could not run as skipped', async () => {
    const f = await copyFixture(clean)
    await rm(path.join(f.shards, 'manifest.json'))
    const { out } = await validate(['--shards', f.shards, '--format', 'junit'])
    expect(XMLValidator.validate(out)).toBe(true)
    expect(out).toContain('<testcase classname="integrity" name="V_SHARD_SHA">\n      <skipped message="no usable manifest.json"/>')
  })

  it('github prints one workflow command per finding, escaped as the toolkit does', async () => {
    const dir = await tempDir()
    const pairs = path.join(dir, 'pairs,v1:x.csv')
    await writeCsv(pairs, ['query', 'positive', '50%\nof'], [['q0', 'p0', ''], ['q1', '   ', '']])
    const { code, out } = await validate(['--pairs', pairs, '--group-col', 'grp', '--k', '1', '--format', 'github'])
    expect(code).toBe(1)
    const file = pairs.replace(/,/g, '%2C').replace(/:/g, '%3A')
    expect(out).toBe([
      `::error file=${file},title=V_MISSING_COLUMN::${pairs}: group column 'grp' (from --group-col) not found, columns are: query,positive,50%25%0Aof`,
      `::warning file=${file},title=V_BLANK_TEXT::${pairs}:2: positive (column 'positive') is whitespace only, expected text`,
      'hardneg validate: FAILED (--fail-on error): 1 error, 1 warning, 0 info from 8 checks',
      '',
    ].join('\n'))
  })

  it('github gives JSONL findings their line', async () => {
    const dir = await tempDir()
    const pairs = path.join(dir, 'pairs.jsonl')
    await writeFile(pairs, '{"query": "q0", "positive": "p0"}\n\n{"query": "", "positive": "p1"}\n')
    const { out } = await validate(['--pairs', pairs, '--format', 'github'])
    expect(out.split('\n')[0]).toBe(`::error file=${pairs},line=3,title=V_EMPTY_TEXT::${pairs}:3: query (column 'query') is empty, expected text`)
  })

  it('prints help', async () => {
    const io = captureIO()
    expect(await runHardneg(['validate', '--help'], io)).toBe(0)
    expect(io.out.join('')).toMatchInlineSnapshot(`
      "Usage: hardneg validate [options]

      Check input pairs, embedding files and mined shard sets before a training job
      uses them. Lists every problem (up to --max-findings per code) instead of
      stopping at the first, and reports as text, JSON, JUnit XML or GitHub
      annotations.

      Options:
        --pairs <file>                pairs file: CSV/TSV with header, JSONL or
                                      Parquet
        --pairs-format <fmt>          pairs format (default: from the extension);
                                      --format is the report format here (choices:
                                      "csv", "tsv", "jsonl", "parquet")
        --preset <name>               column layout: simcse = sent0,sent1(,hard_neg);
                                      mmeb = qry,pos_text(,subset) (choices: "simcse",
                                      "mmeb")
        --id-col <col>                id column; enables the duplicate-id check
                                      (default: row number)
        --query-col <col>             query column (default: preset's, else 'query')
        --positive-col <col>          positive column (default: preset's, else
                                      'positive')
        --group-col <col>             group column; pools are per group (default: one
                                      global pool)
        --carry <cols>                carried columns that must be present,
                                      comma-separated
        --query-embeddings <file>     query embeddings .npy [rows, dim], row i = pair
                                      i
        --positive-embeddings <file>  positive embeddings .npy [rows, dim], row i =
                                      pair i
        --query-image-col <col>       query image path column (default: preset's,
                                      mmeb: qry_image_path)
        --positive-image-col <col>    positive image path column (default: preset's,
                                      mmeb: pos_image_path)
        --image-root <dir>            directory image paths resolve against (default:
                                      the pairs file's directory)
        --min-image-side <px>         report images narrower or lower than px pixels
                                      (default: 16)
        --max-image-pixels <n>        report images of more than n pixels (width x
                                      height) (default: 100000000)
        --image-cache <file>          image hash cache file, reused by the next run
                                      (default: none)
        --image-concurrency <n>       images decoded at once (default: 4)
        --k <n>                       negatives per row mining will ask for, for the
                                      group-size check (default 8)
        --norm-tolerance <x>          report vectors whose L2 norm is further than x
                                      from 1 (default: 0.01)
        --shards <dir>                a mined shard directory (part-*.parquet and
                                      manifest.json)
        --rescore <n>                 recompute the scores of n seeded shard rows from
                                      --query-embeddings/--positive-embeddings
        --rescore-tolerance <x>       largest accepted |stored - recomputed| score
                                      (default: 0.0001)
        --forbid <files...>           evaluation sets no query, positive or negative
                                      may appear in: CSV/TSV/JSONL/Parquet (every
                                      string value) or .txt (one per line)
        --forbid-image-root <dir>     directory the forbid files' image paths resolve
                                      against (default: each forbid file's directory)
        --image-dup-distance <n>      an image this close to a forbidden image
                                      (imageDistance) is a near-duplicate (default:
                                      58)
        --forbid-min-length <n>       ignore forbid strings shorter than n characters
                                      once normalised (default: 1)
        --sample <n>                  check n seeded rows of each embedding file and
                                      of the shards instead of all (fast pre-commit
                                      runs)
        --seed <s>                    seed of --sample and --rescore (default: 0)
        --format <fmt>                report format: text | json | junit | github
                                      (default: "text")
        --fail-on <severity>          exit 1 when a finding is at least this severe:
                                      error | warning | none (default: "error")
        --max-findings <n>            findings kept per code (all are counted)
                                      (default: 20)
        --quiet                       no progress output while images decode (default:
                                      false)
        -h, --help                    display help for command

      Examples:
        $ hardneg validate --pairs nli_for_simcse.csv --preset simcse \\
            --query-embeddings sent0.npy --positive-embeddings sent1.npy
        $ hardneg validate --shards shards/ --forbid mmeb-eval.jsonl heldout.txt --format junit > validate.xml
        $ hardneg validate --shards shards/ --rescore 500 --query-embeddings sent0.npy --positive-embeddings sent1.npy \\
            --sample 10000 --format github

      Images (--preset mmeb or --query-image-col/--positive-image-col): each distinct file decoded
      once; missing, undecodable and out-of-size images are findings; with --forbid, images of the
      forbid files' image columns (*image_path, image) match by near-duplicate distance.
      Finding codes: docs/validate.md. Exit codes: 0 no finding reaches --fail-on, 1 one does
      (or an internal error, which prints a stack), 2 validation could not run (bad flags,
      unreadable file).
      "
    `)
  })
})
