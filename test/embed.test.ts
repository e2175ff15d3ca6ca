/**
 * `hardneg embed` against the loopback model server (USE lite, the model the SNLI fixture
 * vectors were made with): the vectors written are the model's own, each distinct text is
 * sent once, TEI's shape, resuming and refusing to resume, and mine on the output.
 */
import { readFile, readdir, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runHardneg } from '../src/cli/main.js'
import { mineNegatives, readShards, type EmbedManifest, type ShardRow } from '../src/index.js'
import { tempDir, writeNpy } from './_helpers.js'
import { captureIO, floatRows, halfRows, modelAndServer, SNLI, snliSubset, toHalfBits, writeSubset, type SnliSubset } from './_embed-fixture.js'
import type { Embedder, ModelServer } from './_model-server.js'

let subset: SnliSubset
let reference: Map<string, Float32Array>
let use: Embedder
let server: ModelServer

beforeAll(async () => {
  subset = snliSubset(120, 8)
  ;({ reference, server, use } = await modelAndServer(subset.rows.flatMap((r) => [r.sent0, r.sent1])))
})
afterAll(async () => {
  await server?.close()
})

async function pairsFile(): Promise<{ dir: string; pairs: string }> {
  const dir = await tempDir()
  const pairs = path.join(dir, 'pairs.csv')
  await writeSubset(pairs, subset)
  return { dir, pairs }
}

function embeddingRequests(since = 0): { path: string; body: { input?: string[]; inputs?: string[]; encoding_format?: string } }[] {
  return server.requests.slice(since).filter((r) => r.path === '/v1/embeddings' || r.path === '/embed') as never
}

describe('hardneg embed on a real model', () => {
  it('--help lists the contract\'s flags', async () => {
    const io = captureIO()
    expect(await runHardneg(['embed', '--help'], io)).toBe(0)
    expect(io.out.join('')).toMatchInlineSnapshot(`
      "Usage: hardneg embed [options]

      Compute the embeddings mine takes with an embedding server you run
      (OpenAI-compatible: vLLM, TEI, Infinity, Ollama, NIM; or TEI's own API):
      queries.npy and positives.npy (row i = pair row i, as mine numbers them),
      corpus.npy with --corpus, and embed-manifest.json, written last. Each distinct
      text is sent once. A killed run, re-run with the same command, resumes.

      Options:
        --pairs <files...>          pairs file(s): CSV/TSV with header, JSONL or
                                    Parquet; several are numbered across files as mine
                                    numbers them
        --pairs-format <fmt>        pairs format (default: from the extension)
                                    (choices: "csv", "tsv", "jsonl", "parquet")
        --preset <name>             column layout, as mine: simcse =
                                    sent0,sent1(,hard_neg); mmeb =
                                    qry,qry_image_path,pos_text,pos_image_path
                                    (choices: "simcse", "mmeb")
        --query-col <col>           query column (default: preset's, else 'query')
        --positive-col <col>        positive column (default: preset's, else
                                    'positive')
        --query-image-col <col>     query image path column (default: preset's)
        --positive-image-col <col>  positive image path column (default: preset's)
        --image-root <dir>          directory image paths are relative to (default:
                                    the first pairs file's directory)
        --on-bad-image <policy>     missing or undecodable image: error | skip (row
                                    left out, zeros, listed in the manifest; mine
                                    --on-bad-image skip drops the same rows) (default:
                                    "error")
        --corpus <file>             external candidate pool with columns id,text: also
                                    writes corpus.npy (positive prefix)
        --server <url>              base URL: openai = the OpenAI base including /v1
                                    (http://gpu1:8000/v1); tei = the server root
                                    (http://gpu1:8080)
        --api <shape>               openai: POST {server}/embeddings (images: vLLM
                                    chat-style messages); tei: POST {server}/embed,
                                    GET {server}/info (choices: "openai", "tei")
        --model <name>              model named in OpenAI requests (default: the only
                                    one GET {server}/models lists)
        --dtype <type>              element type of the .npy files: float16 | float32
                                    (default: "float16")
        --batch-size <n>            inputs per request (default: TEI's /info
                                    max_client_batch_size, else 32); halved on 413 or
                                    422 'batch too large'
        --concurrency <n>           requests in flight (default: 4)
        --query-prefix <text>       prepended to every query, e.g. 'query: ' (default:
                                    "")
        --positive-prefix <text>    prepended to every positive and corpus text, e.g.
                                    'passage: ' (default: "")
        --api-key-env <var>         environment variable holding the API key (sent as
                                    a bearer token)
        --timeout <seconds>         one request attempt (default: 300)
        --max-attempts <n>          attempts per request (429, 503, other 5xx, dropped
                                    connections are retried with backoff) (default: 8)
        --overwrite                 discard an unfinished run and replace a finished
                                    one in --out (default: false)
        --out <dir>                 output directory
        --json                      print the summary as JSON on stdout (default:
                                    false)
        --quiet                     no progress output (default: false)
        -h, --help                  display help for command

      Examples:
        $ hardneg embed --pairs nli_for_simcse.csv --preset simcse --server http://gpu1:8080 --api tei --out emb/
        $ hardneg embed --pairs train.jsonl --server http://gpu1:8000/v1 --api openai --model intfloat/e5-large-v2 \\
            --query-prefix 'query: ' --positive-prefix 'passage: ' --out emb/
        $ hardneg embed --preset mmeb --pairs MMEB-train/*/train-*.parquet --image-root MMEB-train/images \\
            --server http://gpu1:8000/v1 --api openai --model TIGER-Lab/VLM2Vec-Full --out emb/
        then: hardneg mine --pairs ... --query-embeddings emb/queries.npy --positive-embeddings emb/positives.npy

      Until the run completes nothing in --out looks complete: work goes to --out/.hardneg-embed/
      and embed-manifest.json is written last. Re-running the same command resumes; a changed
      server, model, prefix, dtype or input refuses to resume (--overwrite starts over).
      Exit codes: 0 done, 2 bad input, options or server responses, 1 internal error.
      "
    `)
  })

  it('the progress bar counts texts, with texts/s and ETA', async () => {
    const { formatLine } = await import('../src/cli/progress.js')
    expect(formatLine({ phase: 'embed', done: 100, total: 400 }, 2)).toBe('embed [#####---------------] 25% 100/400 texts  50 texts/s  ETA 6s')
  })

  it('--server, --api and --out are required', async () => {
    const io = captureIO()
    expect(await runHardneg(['embed', '--pairs', 'p.csv', '--api', 'openai', '--out', 'x'], io)).toBe(2)
    expect(io.err.join('')).toContain("error: required option '--server <url>' not specified")
  })

  it('writes the model\'s own vectors (float16), row i = pair row i, each distinct text sent once', async () => {
    const { dir, pairs } = await pairsFile()
    const out = path.join(dir, 'emb')
    const since = server.requests.length
    const io = captureIO()
    const code = await runHardneg(['embed', '--pairs', pairs, '--preset', 'simcse', '--server', `${server.url}/v1`, '--api', 'openai', '--out', out, '--quiet'], io)
    expect(io.err.join('')).toBe('')
    expect(code).toBe(0)

    const q = await halfRows(path.join(out, 'queries.npy'))
    const p = await halfRows(path.join(out, 'positives.npy'))
    expect([q.rows, q.dim, p.rows, p.dim]).toEqual([128, 512, 128, 512])
    expect(q.bits).toEqual(toHalfBits(subset.rows.map((r) => reference.get(r.sent0) as Float32Array)))
    expect(p.bits).toEqual(toHalfBits(subset.rows.map((r) => reference.get(r.sent1) as Float32Array)))

    const sent = embeddingRequests(since).flatMap((r) => r.body.input ?? [])
    const distinct = new Set(subset.rows.flatMap((r) => [r.sent0, r.sent1]))
    expect(sent.length).toBe(distinct.size)
    expect(new Set(sent).size).toBe(distinct.size)
    expect(distinct.size).toBe(248) // 120 + 128: the 8 repeated queries are sent once
    expect(embeddingRequests(since).map((r) => r.body.input?.length)).toEqual([32, 32, 32, 32, 32, 32, 32, 24])
    expect(embeddingRequests(since).every((r) => r.body.encoding_format === 'base64')).toBe(true)

    expect(io.out.join('')).toMatch(/^hardneg embed: 256 texts, 248 distinct texts, 9 requests, 0 retries, \d+\.\d s, [\d,]+ texts\/s\n  wrote .*queries\.npy, .*positives\.npy \(float16, dim 512\); manifest: .*embed-manifest\.json\n$/)
    const manifest = JSON.parse(await readFile(path.join(out, 'embed-manifest.json'), 'utf8')) as EmbedManifest
    expect(manifest).toMatchObject({
      server: `${server.url}/v1`, api: 'openai', model: 'use-lite-512', modelsReported: ['use-lite-512'], dim: 512, dtype: 'float16',
      prefixes: { query: '', positive: '' },
      counts: { pairs: 128, corpus: 0, texts: 256, distinct: 248, skippedRows: 0, resumed: 0, embedded: 248, requests: 9, retries: 0, halvings: 0, batchSize: { first: 32, last: 32 }, concurrency: 4 },
      skipped: [],
    })
    expect(manifest.info?.max_client_batch_size).toBe(32)
    expect(manifest.inputs.map((i) => [i.role, i.path])).toEqual([['pairs', pairs]])
    for (const o of manifest.outputs) expect(o.bytes).toBe((await stat(path.join(out, o.file))).size)
    expect((await readdir(out)).sort()).toEqual(['embed-manifest.json', 'positives.npy', 'queries.npy'])
  })

  it('speaks TEI: POST /embed in batches of /info\'s max_client_batch_size, float32, and corpus.npy', async () => {
    const { dir, pairs } = await pairsFile()
    const corpus = path.join(dir, 'corpus.csv')
    const corpusTexts = subset.rows.slice(0, 10).map((r) => r.hard_neg)
    await (await import('./_helpers.js')).writeCsv(corpus, ['id', 'text'], corpusTexts.map((t, i) => [`c${i}`, t]))
    server.options.maxClientBatchSize = 20
    const since = server.requests.length
    try {
      const io = captureIO()
      expect(await runHardneg(['embed', '--pairs', pairs, '--preset', 'simcse', '--corpus', corpus, '--server', server.url, '--api', 'tei', '--dtype', 'float32', '--out', path.join(dir, 'emb'), '--quiet'], io)).toBe(0)
    } finally {
      delete server.options.maxClientBatchSize
    }
    const sizes = embeddingRequests(since).map((r) => r.body.inputs?.length)
    expect(sizes).toEqual([...Array(12).fill(20), 18]) // 258 distinct inputs in batches of 20
    expect(server.requests.slice(since).map((r) => `${r.method} ${r.path}`)[0]).toBe('GET /info')
    const q = await floatRows(path.join(dir, 'emb', 'queries.npy'))
    const c = await floatRows(path.join(dir, 'emb', 'corpus.npy'))
    expect(q.data).toEqual(Float32Array.from(subset.rows.flatMap((r) => [...(reference.get(r.sent0) as Float32Array)])))
    expect([c.rows, c.dim]).toEqual([10, 512])
    const own = await use(corpusTexts)
    for (let i = 0; i < 10; i++) {
      const row = c.data.subarray(i * 512, (i + 1) * 512)
      // Computed alone by the server, in one batch here: equal up to USE's batch noise (~2e-7).
      expect(Math.max(...row.map((x, j) => Math.abs(x - (own[i] as Float32Array)[j]!)))).toBeLessThan(1e-6)
    }
  })

  it('a changed command refuses to resume an unfinished run, the same command resumes it, --overwrite starts over', async () => {
    const { dir, pairs } = await pairsFile()
    const out = path.join(dir, 'emb')
    const args = ['embed', '--pairs', pairs, '--preset', 'simcse', '--server', `${server.url}/v1`, '--api', 'openai', '--batch-size', '16', '--concurrency', '1', '--out', out, '--quiet']
    // The server refuses the 4th batch: the run stops there, with 3 batches journaled.
    const since = server.requests.length
    let base: number | undefined
    server.onAnswer = (n) => {
      base ??= n - 1
      if (n - base === 3) server.inject({ status: 400, body: '{"error":{"message":"injected refusal"}}' }, 1, '/v1/embeddings')
    }
    const first = captureIO()
    try {
      expect(await runHardneg(args, first)).toBe(2)
    } finally {
      server.onAnswer = undefined
    }
    expect(first.err.join('')).toBe(
      `hardneg: error E_SERVER: ${pairs}:49: server ${server.url}/v1/embeddings: HTTP 400 Bad Request after 1 attempt, expected 2xx; ` +
        `body: "{\\"error\\":{\\"message\\":\\"injected refusal\\"}}"; sent: POST 16 inputs (the query of ${pairs} row 49 to the query of ${pairs} row 64) ` +
        `${JSON.stringify({ model: 'use-lite-512', input: subset.rows.slice(48, 64).map((r) => r.sent0), encoding_format: 'base64' }).slice(0, 160)}...\n`,
    )
    expect(await readdir(out)).toEqual(['.hardneg-embed'])

    const changed = captureIO()
    expect(await runHardneg([...args, '--query-prefix', 'query: '], changed)).toBe(2)
    expect(changed.err.join('')).toBe(
      `hardneg: error E_OUTPUT: ${out}: holds an unfinished embed run of another command (queryPrefix "" -> "query: "); ` +
        'expected the same command to resume it, or pass --overwrite to start over\n',
    )
    const dtype = captureIO()
    expect(await runHardneg([...args, '--dtype', 'float32'], dtype)).toBe(2)
    expect(dtype.err.join('')).toContain('(dtype "float16" -> "float32")')

    const resumed = captureIO()
    const before = embeddingRequests().length
    expect(await runHardneg(args, resumed)).toBe(0)
    expect(embeddingRequests().length - before).toBe(Math.ceil((248 - 48) / 16))
    expect(resumed.out.join('')).toContain('  resumed: 48 distinct texts from the checkpoint, 200 sent by this run\n')
    const q = await halfRows(path.join(out, 'queries.npy'))
    expect(q.bits).toEqual(toHalfBits(subset.rows.map((r) => reference.get(r.sent0) as Float32Array)))
    expect(embeddingRequests(since).length).toBe(4 + 13)

    const again = captureIO()
    expect(await runHardneg(args, again)).toBe(2)
    expect(again.err.join('')).toBe(
      `hardneg: error E_OUTPUT: ${out}: holds a finished embed run (embed-manifest.json, queries.npy, positives.npy); expected an empty directory, or pass --overwrite\n`,
    )
    const over = captureIO()
    expect(await runHardneg([...args, '--overwrite', '--dtype', 'float32'], over)).toBe(0)
    expect((await floatRows(path.join(out, 'queries.npy'))).rows).toBe(128)
    expect(JSON.parse(await readFile(path.join(out, 'embed-manifest.json'), 'utf8')).counts.resumed).toBe(0)
  })

  it('on resume, a journaled batch whose rows did not reach the disk (a power loss) is found by its sha1 and sent again', async () => {
    const { dir, pairs } = await pairsFile()
    const out = path.join(dir, 'emb')
    const args = ['embed', '--pairs', pairs, '--preset', 'simcse', '--server', `${server.url}/v1`, '--api', 'openai', '--batch-size', '16', '--concurrency', '1', '--out', out, '--quiet']
    let base: number | undefined
    server.onAnswer = (n) => {
      base ??= n - 1
      if (n - base === 3) server.inject({ status: 400 }, 1, '/v1/embeddings')
    }
    try {
      expect(await runHardneg(args, captureIO())).toBe(2)
    } finally {
      server.onAnswer = undefined
    }
    // Zero the second batch's first row (query of row 17), as if its page never reached the disk.
    const file = path.join(out, '.hardneg-embed', 'queries.npy')
    const data = await readFile(file)
    const offset = 128 + 16 * 512 * 2
    data.fill(0, offset, offset + 1024)
    await writeFile(file, data)
    const before = server.requests.length
    const io = captureIO()
    expect(await runHardneg(args, io)).toBe(0)
    const resent = embeddingRequests(before)
    expect(resent.length).toBe(1 + Math.ceil((248 - 48) / 16))
    expect(resent[0]?.body.input?.[0]).toBe(subset.rows[16]!.sent0)
    expect(io.out.join('')).toContain('  resumed: 32 distinct texts from the checkpoint, 216 sent by this run\n')
    expect((await halfRows(path.join(out, 'queries.npy'))).bits).toEqual(toHalfBits(subset.rows.map((r) => reference.get(r.sent0) as Float32Array)))
  })

  it('mine on embed\'s output gives the same negatives as mine on the fixture\'s own vectors', async () => {
    const { dir, pairs } = await pairsFile()
    const emb = path.join(dir, 'emb')
    expect(await runHardneg(['embed', '--pairs', pairs, '--preset', 'simcse', '--server', `${server.url}/v1`, '--api', 'openai', '--out', emb, '--quiet'], captureIO())).toBe(0)
    // The fixture's vectors of the same rows (made with the same model, offline, by numpy).
    const gather = async (file: string, rows: number[]): Promise<Uint16Array> => {
      const all = await halfRows(path.join(SNLI, file))
      const out = new Uint16Array(rows.length * 512)
      rows.forEach((r, k) => out.set(all.bits.subarray(r * 512, (r + 1) * 512), k * 512))
      return out
    }
    const fq = await gather('snli-test-sent0.use512.f16.npy', subset.query)
    const fp = await gather('snli-test-sent1.use512.f16.npy', subset.positive)
    const toFloat = (bits: Uint16Array): Float32Array => Float32Array.from(bits, halfToFloat)
    await writeNpy(path.join(dir, 'fq.npy'), { rows: 128, dim: 512, data: toFloat(fq) }, 'f2')
    await writeNpy(path.join(dir, 'fp.npy'), { rows: 128, dim: 512, data: toFloat(fp) }, 'f2')

    const ours = await halfRows(path.join(emb, 'queries.npy'))
    const theirs = [...fq].filter((b, i) => b !== ours.bits[i]).length
    // The fixture was embedded in other batches; USE moves by ~2e-7 with batch composition,
    // which flips the float16 rounding of a handful of the 65,536 values by one step.
    expect(theirs).toBeLessThan(20)

    const mine = async (q: string, p: string, out: string): Promise<ShardRow[]> => {
      await mineNegatives({ pairs, preset: 'simcse', queryEmbeddings: q, positiveEmbeddings: p, out, k: 8, search: 'exact' })
      const rows: ShardRow[] = []
      for await (const r of readShards(out)) rows.push(r)
      return rows
    }
    const a = await mine(path.join(emb, 'queries.npy'), path.join(emb, 'positives.npy'), path.join(dir, 'shards-embed'))
    const b = await mine(path.join(dir, 'fq.npy'), path.join(dir, 'fp.npy'), path.join(dir, 'shards-fixture'))
    expect(a.map((r) => [r.id, r.negIds, r.nValid, r.nFalseNegatives])).toEqual(b.map((r) => [r.id, r.negIds, r.nValid, r.nFalseNegatives]))
    const maxScoreGap = Math.max(...a.flatMap((r, i) => r.negScores.map((s, j) => Math.abs(s - (b[i]!.negScores[j] as number)))))
    expect(maxScoreGap).toBeLessThan(1e-3)
  })
})

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const f = h & 0x3ff
  if (e === 0) return s * 2 ** -14 * (f / 1024)
  if (e === 31) return f ? Number.NaN : s * Infinity
  return s * 2 ** (e - 15) * (1 + f / 1024)
}
