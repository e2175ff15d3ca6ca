/**
 * `mine-negatives --rescore-url`: the second stage end to end against the loopback server
 * backed by the real USE-lite model (test/_rescore-routes.ts scores a pair as
 * (cos + 1) / 2): the rule on the rows it writes, columns and layouts, the cache across
 * runs, a killed run resumed, images through the judge, and the errors.
 */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { runMineNegatives, type CliIO } from '../src/cli/main.js'
import { mineNegatives, readShards, writeReport, type MineOptions, type MinedRow } from '../src/index.js'
import { cached, loadUse, startModelServer, type Embedder, type ModelServer } from './_model-server.js'
import { addRescoreRoutes, pairScores } from './_rescore-routes.js'
import { SNLI_INPUTS, tempDir, writeCsv, writeNpy } from './_helpers.js'
import { snliRows } from './_embed-fixture.js'

const ROOT = path.resolve(import.meta.dirname, '..')
let embed: Embedder
let server: ModelServer
beforeAll(async () => {
  embed = cached(await loadUse())
  server = await startModelServer({ embed })
  addRescoreRoutes(server, embed)
})
afterAll(async () => server.close())
afterEach(() => {
  server.clearFaults()
  server.options.delayMs = 0
})

const posts = (): number => server.requests.filter((r) => r.method === 'POST').length

/** The first `n` SNLI pairs with their fixture vectors (a 2-shard subset written as its own files). */
async function snli(dir: string, n: number): Promise<Pick<MineOptions, 'pairs' | 'preset' | 'queryEmbeddings' | 'positiveEmbeddings'>> {
  const pairs = path.join(dir, 'pairs.csv')
  await writeCsv(pairs, ['sent0', 'sent1', 'hard_neg'], snliRows.slice(0, n).map((r) => [r.sent0!, r.sent1!, r.hard_neg!]))
  const { loadEmbeddingMatrix } = await import('../src/index.js')
  for (const [name, file] of [['q', SNLI_INPUTS.queryEmbeddings], ['p', SNLI_INPUTS.positiveEmbeddings]] as const) {
    const m = await loadEmbeddingMatrix({ file, rows: Int32Array.from({ length: n }, (_, i) => i), normalize: false })
    await writeNpy(path.join(dir, `${name}.npy`), { rows: n, dim: m.dim, data: m.data })
  }
  return { pairs, preset: 'simcse', queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy') }
}

async function rowsOf(dir: string): Promise<MinedRow[]> {
  const out: MinedRow[] = []
  for await (const r of readShards(dir)) out.push(r)
  return out
}

const rescoreOptions = (): Partial<MineOptions> => ({ rescoreUrl: server.url, rescoreApi: 'tei-rerank', rescoreTop: 12 })

describe('mining with a rescorer', () => {
  it('writes the rescorer\'s scores, and every negative it keeps scores at most r(pos) - margin', async () => {
    const dir = await tempDir()
    const inputs = await snli(dir, 120)
    const { manifest, summary } = await mineNegatives({ ...inputs, out: path.join(dir, 'out'), k: 4, ...rescoreOptions() })
    const rows = await rowsOf(path.join(dir, 'out'))
    // A row whose 12 candidates the rescorer all removes has nothing to pad with and is dropped.
    expect(rows).toHaveLength(120 - summary.dropped)
    for (const r of rows.slice(0, 10)) {
      const [pos, ...negs] = await pairScores(embed, r.query, [r.positive, ...r.negatives])
      expect(r.posRescore).toBe(Math.fround(pos!))
      r.negRescores!.forEach((s, i) => expect(s).toBe(Math.fround(negs[i]!)))
    }
    for (const r of rows) for (const s of r.negRescores!.slice(0, r.nValid)) expect(s).toBeLessThanOrEqual(Math.fround(r.posRescore! - 0.01))
    expect(manifest.rescore).toMatchObject({
      url: `${server.url}/rerank`,
      identity: { api: 'tei-rerank', model: 'use-lite-512', scoreSpace: 'probability', rawScores: false },
      rule: { top: 12, margin: 0.01, rank: 'embedding' },
      cache: path.join(dir, 'out', '.hardneg-rescore-cache.bin'),
    })
    expect(manifest.rescore!.counts.pairsScored).toBe(120 * 13)
    expect(summary.falseNegativesByRule.rescore).toBeGreaterThan(0)
    expect(summary.falseNegatives).toBe(summary.falseNegativesByRule.margin + summary.falseNegativesByRule.other + summary.falseNegativesByRule.rescore!)
  })

  it('removes exactly the candidates the rule names, hand-checked against the model\'s own scores', async () => {
    const dir = await tempDir()
    // One query; its candidates' embedding vectors rank them in this order (all far below the margin).
    const query = 'A man is playing a guitar on stage.'
    const positive = 'A musician performs for a crowd.'
    const others = ['A man plays a guitar on a stage.', 'A dog sleeps on a porch.', 'Someone is performing music.', 'The stock market fell sharply.', 'Rain falls on the city.', 'A guitarist plays live.']
    const texts = [[query, positive], ...others.map((o, i) => [`other query ${i}`, o])]
    await writeCsv(path.join(dir, 'pairs.csv'), ['query', 'positive'], texts)
    const dim = 8
    const unit = (i: number, w: number): number[] => Array.from({ length: dim }, (_, j) => (j === 0 ? w : j === i ? Math.sqrt(1 - w * w) : 0))
    await writeNpy(path.join(dir, 'q.npy'), texts.map((_, i) => unit(1 + (i % 7), i === 0 ? 1 : 0.05)))
    await writeNpy(path.join(dir, 'p.npy'), texts.map((_, i) => unit(1 + (i % 7), i === 0 ? 0.9 : 0.8 - 0.1 * i)))
    await mineNegatives({
      pairs: path.join(dir, 'pairs.csv'), queryEmbeddings: path.join(dir, 'q.npy'), positiveEmbeddings: path.join(dir, 'p.npy'),
      out: path.join(dir, 'out'), k: 6, pad: 'none', keepFiltered: 6, ...rescoreOptions(), rescoreApi: 'vllm-score',
    })
    const [row] = await rowsOf(path.join(dir, 'out'))
    const [pos, ...scores] = await pairScores(embed, query, [positive, ...others])
    const removed = others.filter((_, i) => scores[i]! > pos! - 0.01)
    const kept = others.filter((_, i) => !(scores[i]! > pos! - 0.01))
    expect(removed.length).toBeGreaterThan(0)
    expect(kept.length).toBeGreaterThan(0)
    expect(row!.negatives).toEqual(kept) // embedding order
    expect(row!.filtered?.filter((f) => f.rule === 'rescore').map((f) => f.text).sort()).toEqual([...removed].sort())
    expect(row!.nFalseNegatives).toBe(removed.length)
  })

  it('--rescore-rank rescore takes the survivors in the rescorer\'s order', async () => {
    const dir = await tempDir()
    const inputs = await snli(dir, 60)
    await mineNegatives({ ...inputs, out: path.join(dir, 'out'), k: 4, ...rescoreOptions(), rescoreRank: 'rescore' })
    for (const r of await rowsOf(path.join(dir, 'out'))) {
      const s = r.negRescores!.slice(0, r.nValid)
      expect(s).toEqual([...s].sort((a, b) => b - a))
    }
  })

  it('the layouts carry the rescorer\'s scores: unime-v2 and flagembedding', async () => {
    const dir = await tempDir()
    const inputs = await snli(dir, 40)
    await mineNegatives({ ...inputs, out: path.join(dir, 'own'), k: 3, ...rescoreOptions() })
    const own = await rowsOf(path.join(dir, 'own'))
    await mineNegatives({ ...inputs, out: path.join(dir, 'u'), k: 3, outputFormat: 'unime-v2', ...rescoreOptions() })
    await mineNegatives({ ...inputs, out: path.join(dir, 'f'), k: 3, outputFormat: 'flagembedding', ...rescoreOptions() })
    const u = JSON.parse((await readFile(path.join(dir, 'u', 'part-00000.jsonl'), 'utf8')).split('\n')[0]!)
    const f = JSON.parse((await readFile(path.join(dir, 'f', 'part-00000.jsonl'), 'utf8')).split('\n')[0]!)
    expect(Math.fround(u.query_pos_scores)).toBe(own[0]!.posRescore)
    expect(u.hard_negatives_scores.map(Math.fround)).toEqual(own[0]!.negRescores)
    expect(Math.fround(f.pos_scores[0])).toBe(own[0]!.posRescore)
    expect(f.neg_scores.map(Math.fround)).toEqual(own[0]!.negRescores)
  })
})

describe('hardneg report on a rescored run', () => {
  it("shows the rescorer's scores as histograms and in the gallery", async () => {
    const dir = await tempDir()
    const inputs = await snli(dir, 60)
    const out = path.join(dir, 'out')
    const { manifest } = await mineNegatives({ ...inputs, out, k: 3, ...rescoreOptions() })
    const { data } = await writeReport({ shards: out, samples: 5 })
    const html = await readFile(path.join(out, 'report.html'), 'utf8')
    expect(html).toContain('<a href="#rescore">Rescorer</a>')
    const totals = [...html.matchAll(/data-series="rescore-(positive|negative)" data-total="(\d+)"/g)].map((m) => [m[1], Number(m[2])])
    const rows = await rowsOf(out)
    expect(totals).toEqual([['positive', rows.length], ['negative', rows.reduce((n, r) => n + r.nValid, 0)]])
    expect(html.match(/<span class="pos-rescore">/g)).toHaveLength(5)
    const first = data.samples[0]!
    const row = rows[first.index]!
    expect(first.posRescore).toBe(row.posRescore)
    expect(first.negatives.map((n) => n.rescore)).toEqual(row.negRescores)
    expect(html).toContain(`${manifest.rescore!.counts.pairsScored.toLocaleString('en-US')} pairs scored`)
  })
})

describe('the cache', () => {
  it('a re-run sends nothing and writes byte-identical shards; another margin is free too', async () => {
    const dir = await tempDir()
    const inputs = await snli(dir, 80)
    const out = path.join(dir, 'out')
    const first = await mineNegatives({ ...inputs, out, k: 4, ...rescoreOptions() })
    const sent = posts()
    const again = await mineNegatives({ ...inputs, out, k: 4, overwrite: true, ...rescoreOptions() })
    expect(posts()).toBe(sent)
    expect(again.manifest.shards).toEqual(first.manifest.shards)
    expect(again.manifest.rescore!.counts).toMatchObject({ pairsScored: 80 * 13, cacheHits: 80 * 13, sent: 0 })
    const other = await mineNegatives({ ...inputs, out, k: 4, overwrite: true, ...rescoreOptions(), rescoreMargin: 0.05, rescoreTop: 8 })
    expect(posts()).toBe(sent)
    expect(other.summary.falseNegativesByRule.rescore).not.toBe(first.summary.falseNegativesByRule.rescore)
  })

  it('a run killed mid-way and started again pays only for what was in flight, and ends byte-identical', async () => {
    const dir = await tempDir()
    const inputs = await snli(dir, 200)
    const args = (out: string): string[] => [
      path.join(ROOT, 'bin', 'hardneg.js'), 'mine', '--pairs', inputs.pairs as string, '--preset', 'simcse',
      '--query-embeddings', inputs.queryEmbeddings as string, '--positive-embeddings', inputs.positiveEmbeddings as string,
      '--out', out, '--k', '4', '--quiet', '--rescore-url', server.url, '--rescore-api', 'cohere-rerank', '--rescore-model', 'use-lite-512',
      '--rescore-top', '10', '--rescore-batch', '8', '--rescore-concurrency', '2',
    ]
    const run = (out: string, killAfter?: number): Promise<number | null> => new Promise((resolve) => {
      const child = spawn(process.execPath, args(out), { stdio: ['ignore', 'ignore', 'pipe'] })
      const start = posts()
      const watch = killAfter === undefined ? undefined : setInterval(() => {
        if (posts() - start >= killAfter) child.kill('SIGKILL')
      }, 5)
      child.on('close', (code) => {
        if (watch) clearInterval(watch)
        resolve(code)
      })
    })
    await run(path.join(dir, 'whole'))
    server.options.delayMs = 20
    const before = posts()
    expect(await run(path.join(dir, 'killed'), 40)).toBe(null)
    const sentBeforeKill = posts() - before
    server.options.delayMs = 0
    const beforeResume = posts()
    expect(await run(path.join(dir, 'killed'))).toBe(0)
    const resumed = posts() - beforeResume
    // 200 rows x 11 pairs in requests of at most 8 candidates of one query: 2 requests per row.
    expect(sentBeforeKill + resumed).toBeLessThanOrEqual(400 + 2)
    for (const file of ['part-00000.parquet']) {
      expect(await readFile(path.join(dir, 'killed', file))).toEqual(await readFile(path.join(dir, 'whole', file)))
    }
  })
})

function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), stderrIsTTY: false }
}

describe('images and errors', () => {
  const coco = path.join(ROOT, 'fixtures', 'coco-mini')
  const mmeb = { pairs: path.join(coco, 'mmeb-style.parquet'), preset: 'mmeb' as const, queryEmbeddings: path.join(coco, 'mmeb-style.qry.npy'), positiveEmbeddings: path.join(coco, 'mmeb-style.pos.npy') }

  it('chat-judge judges image pairs, sending each image as a data: URL', async () => {
    const dir = await tempDir()
    const before = server.requests.length
    const { manifest } = await mineNegatives({ ...mmeb, out: path.join(dir, 'out'), k: 2, rescoreUrl: server.url, rescoreApi: 'chat-judge', rescoreModel: 'use-lite-512', rescoreTop: 3 })
    const judged = server.requests.slice(before).filter((r) => r.path === '/v1/chat/completions')
    expect(judged).toHaveLength(manifest.rescore!.counts.sent)
    const images = judged.flatMap((r) => ((r.body as { messages: { content: { type: string }[] }[] }).messages[0]!.content).filter((c) => c.type === 'image_url'))
    expect(images.length).toBeGreaterThan(0)
    expect(manifest.rescore!.identity).toMatchObject({ api: 'chat-judge', scoreSpace: 'probability' })
    const rows = await rowsOf(path.join(dir, 'out'))
    expect(rows.every((r) => typeof r.posRescore === 'number' && r.posRescore >= 0 && r.posRescore <= 1)).toBe(true)
  })

  it('a reranker API with image pairs stops before anything is sent', async () => {
    const dir = await tempDir()
    const io = captureIO()
    const code = await runMineNegatives(['--pairs', mmeb.pairs, '--preset', 'mmeb', '--query-embeddings', mmeb.queryEmbeddings, '--positive-embeddings', mmeb.positiveEmbeddings,
      '--out', path.join(dir, 'o'), '--quiet', '--rescore-url', server.url, '--rescore-api', 'tei-rerank'], io)
    expect(code).toBe(2)
    expect(io.err.join('')).toBe("hardneg: error E_BAD_OPTION: rescoreApi 'tei-rerank' scores texts only, but pair 0 has an image ('images/000000000790.jpg'); expected --rescore-api chat-judge for pairs with images\n")
  })

  it('a server that is down: exit 2 naming the URL', async () => {
    const dir = await tempDir()
    const io = captureIO()
    const code = await runMineNegatives(['--out', path.join(dir, 'o'), '--quiet', '--rescore-url', 'http://127.0.0.1:9', '--rescore-api', 'vllm-score', '--rescore-model', 'm', '--rescore-max-attempts', '2'], io)
    expect(code).toBe(2)
    expect(io.err.join('').split('\n')[1]).toMatch(/^hardneg: error E_SERVER: server http:\/\/127\.0\.0\.1:9\/score: no response \(ECONNREFUSED[^)]*\) after 2 attempts, expected 2xx within 2 attempts; sent: POST \d+ candidates for the query of .*snli-test-triplets\.csv:\d+ /)
    expect(await readFile(path.join(dir, 'o', 'manifest.json')).catch(() => 'none')).toBe('none')
  })

  it.each([
    [['--rescore-api', 'tei-rerank'], 'rescore options given without rescoreUrl, expected --rescore-url with them'],
    [['--rescore-url', 'http://x'], 'rescoreApi: missing, expected one of tei-rerank, cohere-rerank, vllm-score, chat-judge with --rescore-url'],
  ])('%j exits 2 with one line', async (flags, message) => {
    const dir = await tempDir()
    const io = captureIO()
    expect(await runMineNegatives(['--out', path.join(dir, 'o'), '--quiet', ...flags], io)).toBe(2)
    expect(io.err.join('').split('\n').filter((l) => !l.startsWith('hardneg: no --pairs'))).toEqual([`hardneg: error E_BAD_OPTION: ${message}`, ''])
  })
})
