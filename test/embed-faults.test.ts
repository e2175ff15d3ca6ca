/**
 * Every fault the embedding server can inject, against `embedPairs` and the CLI: retried
 * failures (429 with Retry-After, 503, dropped connections, slow answers), batch halving
 * (413, TEI's 422), float arrays where base64 was asked for, permanent 4xx, exhausted
 * retries, and malformed bodies, each with its whole message.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { runHardneg } from '../src/cli/main.js'
import { embedPairs, isHardnegError, type EmbedOptions, type EmbedResult } from '../src/index.js'
import { tempDir } from './_helpers.js'
import { captureIO, halfRows, modelAndServer, snliSubset, toHalfBits, writeSubset, type SnliSubset } from './_embed-fixture.js'
import type { Fault, ModelServer } from './_model-server.js'

let subset: SnliSubset
let reference: Map<string, Float32Array>
let server: ModelServer
let pairs: string
let expected: Uint16Array
let fixtureDir: string

beforeAll(async () => {
  subset = snliSubset(40, 0)
  ;({ reference, server } = await modelAndServer(subset.rows.flatMap((r) => [r.sent0, r.sent1])))
  // Not tempDir(): that one is removed after each test.
  fixtureDir = await mkdtemp(path.join(os.tmpdir(), 'hardneg-embed-faults-'))
  pairs = path.join(fixtureDir, 'pairs.csv')
  await writeSubset(pairs, subset)
  expected = toHalfBits(subset.rows.map((r) => reference.get(r.sent0) as Float32Array))
})
afterAll(async () => {
  await server?.close()
  await rm(fixtureDir, { recursive: true, force: true })
})
afterEach(() => {
  server.clearFaults()
})

async function embed(extra: Partial<EmbedOptions> = {}): Promise<EmbedResult> {
  const out = path.join(await tempDir(), 'emb')
  return embedPairs({
    pairs, preset: 'simcse', server: `${server.url}/v1`, api: 'openai', model: 'use-lite-512', out,
    batchSize: 8, concurrency: 1, retryBaseMs: 20, ...extra,
  })
}

async function failure(run: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await run
  } catch (err) {
    if (isHardnegError(err)) return { code: err.code, message: err.message }
    throw err
  }
  throw new Error('expected the run to fail')
}

function injectEmbeddings(fault: Fault, times = 1): void {
  server.inject(fault, times, '/v1/embeddings')
}

const url = (): string => `${server.url}/v1/embeddings`
const rows = (a: number, b: number): string => `the query of ${pairs} row ${a} to the query of ${pairs} row ${b}`

describe('retried faults: the run goes on and the vectors are the same', () => {
  it('429 with Retry-After in seconds is waited out', async () => {
    injectEmbeddings({ status: 429, retryAfter: '1', body: '{"error":"slow down"}' })
    const t = performance.now()
    const r = await embed()
    expect(performance.now() - t).toBeGreaterThanOrEqual(950)
    expect([r.summary.requests, r.summary.retries]).toEqual([11, 1])
    expect((await halfRows(r.files.queries as string)).bits).toEqual(expected)
  })

  it('503 twice, then success', async () => {
    injectEmbeddings({ status: 503 }, 2)
    const r = await embed()
    expect([r.summary.requests, r.summary.retries]).toEqual([12, 2])
    expect((await halfRows(r.files.queries as string)).bits).toEqual(expected)
  })

  it('a dropped connection is retried', async () => {
    injectEmbeddings({ drop: true })
    const r = await embed()
    expect(r.summary.retries).toBe(1)
    expect((await halfRows(r.files.queries as string)).bits).toEqual(expected)
  })

  it('an answer slower than the timeout is retried', async () => {
    injectEmbeddings({ delayMs: 1500 })
    const r = await embed({ timeoutMs: 300 })
    expect(r.summary.retries).toBe(1)
    expect((await halfRows(r.files.queries as string)).bits).toEqual(expected)
  })

  it('float arrays where base64 was asked for are taken whole (not cut to a quarter)', async () => {
    injectEmbeddings({ floats: true }, 100)
    const r = await embed()
    const sent = server.requests.filter((q) => q.path === '/v1/embeddings').slice(-10)
    expect(sent.every((q) => (q.body as { encoding_format: string }).encoding_format === 'base64')).toBe(true)
    expect(r.summary.dim).toBe(512)
    expect((await halfRows(r.files.queries as string)).bits).toEqual(expected)
  })

  it('embeddings listed out of index order are put back in order', async () => {
    injectEmbeddings({ mangle: 'shuffle' }, 100)
    const r = await embed()
    expect((await halfRows(r.files.queries as string)).bits).toEqual(expected)
  })
})

describe('a batch the server finds too large is halved and the run goes on', () => {
  it('413 above the server\'s limit (OpenAI shape)', async () => {
    server.options.batchLimit = 8
    try {
      const r = await embed({ batchSize: 32, concurrency: 2 })
      expect(r.manifest.counts.batchSize).toEqual({ first: 32, last: 8 })
      expect(r.manifest.counts.halvings).toBeGreaterThanOrEqual(3)
      expect((await halfRows(r.files.queries as string)).bits).toEqual(expected)
    } finally {
      delete server.options.batchLimit
    }
  })

  it("422 'batch size 32 > maximum allowed batch size 8' (TEI's /embed)", async () => {
    server.options.batchLimit = 8
    server.options.maxClientBatchSize = 64
    try {
      const r = await embed({ api: 'tei', server: server.url, batchSize: undefined })
      expect(r.manifest.counts.batchSize).toEqual({ first: 64, last: 8 })
      expect(server.requests.some((q) => q.status === 422)).toBe(true)
      expect((await halfRows(r.files.queries as string)).bits).toEqual(expected)
    } finally {
      delete server.options.batchLimit
      delete server.options.maxClientBatchSize
    }
  })
})

describe('failures: one whole message naming server, file, row, found and expected', () => {
  it('a permanent 4xx fails at once, naming the pairs file and row', async () => {
    injectEmbeddings({ status: 400, body: '{"error":{"message":"This model\'s maximum context length is 512 tokens"}}' })
    const before = server.requests.length
    const f = await failure(embed())
    expect(server.requests.length - before).toBe(2) // GET /info probe, then the one POST
    expect(f).toEqual({
      code: 'E_SERVER',
      message: `${pairs}:1: server ${url()}: HTTP 400 Bad Request after 1 attempt, expected 2xx; ` +
        `body: ${JSON.stringify('{"error":{"message":"This model\'s maximum context length is 512 tokens"}}')}; sent: POST 8 inputs (${rows(1, 8)}) ` +
        `${JSON.stringify({ model: 'use-lite-512', input: subset.rows.slice(0, 8).map((r) => r.sent0), encoding_format: 'base64' }).slice(0, 160)}...`,
    })
  })

  it('503 until the attempts run out', async () => {
    injectEmbeddings({ status: 503, body: 'Service Unavailable: model loading' }, 3)
    const f = await failure(embed({ maxAttempts: 3 }))
    expect(f.code).toBe('E_SERVER')
    expect(f.message).toBe(
      `${pairs}:1: server ${url()}: HTTP 503 Service Unavailable after 3 attempts, expected 2xx within 3 attempts; ` +
        `body: "Service Unavailable: model loading"; sent: POST 8 inputs (${rows(1, 8)}) ` +
        `${JSON.stringify({ model: 'use-lite-512', input: subset.rows.slice(0, 8).map((r) => r.sent0), encoding_format: 'base64' }).slice(0, 160)}...`,
    )
  })

  it.each([
    ['count', 1, `response to 8 inputs (${'$ROWS'}): 7 embeddings for 8 inputs, expected one per input`],
    ['dim', 8, 'embedding 7 of 8 (the query of $PAIRS row 8): an embedding of 384 values, expected 512 (the dimension of the first embedding of this response)'],
    ['nan', 1, 'embedding 0 of 8 (the query of $PAIRS row 1): NaN at value 3 of its embedding, expected finite numbers'],
    ['bad-index', 1, `response to 8 inputs (${'$ROWS'}): item 1 of 'data' has index 0, expected each index from 0 to 7 once`],
    ['not-json', 1, `response to 8 inputs (${'$ROWS'}): a body that is not JSON ("<html>502 Bad Gateway</html>"), expected a JSON embedding response`],
  ] as const)('malformed response (%s)', async (mangle, row, detail) => {
    injectEmbeddings({ mangle })
    const f = await failure(embed())
    expect(f).toEqual({
      code: 'E_BAD_RESPONSE',
      message: `${pairs}:${row}: server ${url()}: ${detail.replace('$ROWS', rows(1, 8)).replace('$PAIRS', pairs)}`,
    })
  })

  it('a NaN in a float array (JSON null) is reported the same way', async () => {
    injectEmbeddings({ floats: true, mangle: 'nan' })
    const f = await failure(embed())
    expect(f).toEqual({
      code: 'E_BAD_RESPONSE',
      message: `${pairs}:1: server ${url()}: embedding 0 of 8 (the query of ${pairs} row 1): null at value 3 of its embedding, expected finite numbers`,
    })
  })

  it('the CLI prints the one line and exits 2; nothing in --out looks complete', async () => {
    injectEmbeddings({ mangle: 'dim' })
    const out = path.join(await tempDir(), 'emb')
    const io = captureIO()
    const code = await runHardneg(['embed', '--pairs', pairs, '--preset', 'simcse', '--server', `${server.url}/v1`, '--api', 'openai', '--batch-size', '8', '--concurrency', '1', '--out', out, '--quiet'], io)
    expect(code).toBe(2)
    expect(io.err.join('')).toBe(
      `hardneg: error E_BAD_RESPONSE: ${pairs}:8: server ${url()}: embedding 7 of 8 (the query of ${pairs} row 8): an embedding of 384 values, expected 512 (the dimension of the first embedding of this response)\n`,
    )
    expect(await readdir(out)).toEqual(['.hardneg-embed'])
    expect(JSON.parse(await readFile(path.join(out, '.hardneg-embed', 'plan.json'), 'utf8')).model).toBe('use-lite-512')
  })
})
