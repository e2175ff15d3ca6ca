/**
 * The rescorer on its own: each wire shape against the loopback server backed by the
 * real USE-lite model, the rule on hand-checkable cases, the cache, batch halving,
 * faults, and whole-message errors for malformed answers.
 */
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createRescorer, decideRescore, isRescoreFalseNegative, rescoreCandidates, type RescoreApi, type Rescorer } from '../src/index.js'
import { cached, loadUse, startModelServer, type Embedder, type ModelServer } from './_model-server.js'
import { addRescoreRoutes, logit, pairScores } from './_rescore-routes.js'
import { tempDir } from './_helpers.js'

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
  server.requests.length = 0
})

const QUERY = 'A man is playing a guitar on stage.'
const TEXTS = ['A musician performs with a guitar.', 'A man plays an instrument.', 'Two dogs run across a field.', 'The stock market fell today.', 'Someone is on a stage.']
const FAST = { maxAttempts: 3, backoffMs: 1, maxBackoffMs: 5, sleep: async () => {} }

async function rescorer(api: RescoreApi, extra: Partial<Parameters<typeof createRescorer>[0]> = {}): Promise<Rescorer> {
  return createRescorer({ url: server.url, api, http: FAST, ...(api === 'tei-rerank' ? {} : { model: 'use-lite-512' }), ...extra })
}

describe('the rule', () => {
  it('removes a candidate scoring above r(pos) - margin, or above the cap; keeps one exactly at r(pos) - margin', () => {
    const rule = { margin: 0.01, maxScore: 0.9 }
    expect(isRescoreFalseNegative(0.795, 0.8, rule)).toBe(true)
    expect(isRescoreFalseNegative(0.79, 0.8, { margin: 0.01 })).toBe(false) // 0.8 - 0.01 = 0.79 (float64), not above
    expect(isRescoreFalseNegative(0.5, 0.8, rule)).toBe(false)
    expect(isRescoreFalseNegative(0.95, 0.99, rule)).toBe(true) // below r(pos) - margin, above the cap
  })

  it('ranks survivors by embedding order or by rescore, and flags a positive the rescorer ranks below a candidate', () => {
    // Positive 0.6; candidates (in embedding order) 0.3, 0.65, 0.1, 0.5, 0.595.
    const scores = [0.6, 0.3, 0.65, 0.1, 0.5, 0.595]
    expect(decideRescore(scores, { top: 50, margin: 0.01, rank: 'embedding' })).toEqual({
      posScore: 0.6, scores: [0.3, 0.65, 0.1, 0.5, 0.595], kept: [0, 2, 3], removed: [1, 4], positiveOutranked: true,
    })
    expect(decideRescore(scores, { top: 50, margin: 0.01, rank: 'rescore' }).kept).toEqual([3, 0, 2])
    expect(decideRescore([0.9, 0.2, 0.1], { top: 50, margin: 0.01, rank: 'embedding' }).positiveOutranked).toBe(false)
  })
})

describe.each(['tei-rerank', 'cohere-rerank', 'vllm-score', 'chat-judge'] as const)('%s', (api) => {
  it('scores pairs as the model does, in candidate order', async () => {
    const r = await rescorer(api)
    try {
      const [scores] = await r.score([{ query: { text: QUERY }, candidates: TEXTS.map((text) => ({ text })) }])
      const expected = await pairScores(embed, QUERY, TEXTS)
      scores!.forEach((s, i) => expect(s).toBeCloseTo(expected[i]!, api === 'chat-judge' ? 12 : 15))
      expect(r.identity).toMatchObject({ api, model: 'use-lite-512' })
      const posts = server.requests.filter((q) => q.method === 'POST')
      expect(posts).toHaveLength(api === 'chat-judge' ? TEXTS.length : 1)
      expect(r.stats).toMatchObject({ pairsScored: 5, cacheHits: 0, sent: 5 })
    } finally {
      await r.close()
    }
  })
})

describe('requests', () => {
  it('tei-rerank sends raw_scores, learns the model from /info, and keeps logits apart from probabilities', async () => {
    const raw = await rescorer('tei-rerank', { rawScores: true })
    const prob = await rescorer('tei-rerank')
    try {
      const [logits] = await raw.score([{ query: { text: QUERY }, candidates: [{ text: TEXTS[0]! }] }])
      const [ps] = await prob.score([{ query: { text: QUERY }, candidates: [{ text: TEXTS[0]! }] }])
      expect(logits![0]).toBeCloseTo(logit(ps![0]!), 12)
      expect(raw.identity).toEqual({ api: 'tei-rerank', model: 'use-lite-512', scoreSpace: 'logit', rawScores: true })
      expect(prob.identity).toEqual({ api: 'tei-rerank', model: 'use-lite-512', scoreSpace: 'probability', rawScores: false })
      const body = server.requests.find((q) => q.path === '/rerank')?.body
      expect(body).toEqual({ query: QUERY, texts: [TEXTS[0]], raw_scores: true, return_text: false })
    } finally {
      await raw.close()
      await prob.close()
    }
  })

  it('chat-judge asks for one token with logprobs; images go as data: URLs beside their text', async () => {
    const image = path.resolve(import.meta.dirname, '..', 'fixtures', 'coco-mini', 'images', '000000000790.jpg')
    const r = await rescorer('chat-judge')
    try {
      const side = { text: 'a family at a table with cake', image: { file: image, sha256: 'x', mime: 'image/jpeg' } }
      await r.score([{ query: { text: 'Find an everyday image that matches the caption.' }, candidates: [side] }])
      const body = server.requests.find((q) => q.path === '/v1/chat/completions')?.body as Record<string, any>
      expect(body).toMatchObject({ model: 'use-lite-512', max_tokens: 1, temperature: 0, logprobs: true, top_logprobs: 20 })
      const parts = body.messages[0].content as { type: string; text?: string; image_url?: { url: string } }[]
      expect(parts.map((p) => p.type)).toEqual(['text', 'image_url', 'text'])
      expect(parts[1]!.image_url!.url).toBe(`data:image/jpeg;base64,${(await readFile(image)).toString('base64')}`)
      expect(parts[2]!.text).toMatch(/^a family at a table with cake\n\nIs the candidate a match/)
    } finally {
      await r.close()
    }
  })

  it('sends each distinct pair once, and halves the batch when the server says 413', async () => {
    const limited = await startModelServer({ embed })
    addRescoreRoutes(limited, embed, { batchLimit: 4 })
    const r = await createRescorer({ url: limited.url, api: 'cohere-rerank', model: 'use-lite-512', batch: 16, http: FAST })
    try {
      const candidates = [...TEXTS, ...TEXTS, 'A cat sleeps.', 'Rain is falling.', 'He sings a song.', 'A crowd cheers.', 'Lights shine on the band.'].map((text) => ({ text }))
      const [scores] = await r.score([{ query: { text: QUERY }, candidates }])
      const expected = await pairScores(embed, QUERY, candidates.map((c) => c.text))
      scores!.forEach((s, i) => expect(s).toBeCloseTo(expected[i]!, 15))
      expect(r.stats).toMatchObject({ pairsScored: 15, sent: 10, batchHalvings: 2 })
      const sizes = limited.requests.filter((q) => q.status === 200).map((q) => (q.body as { documents: string[] }).documents.length)
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(10)
      expect(Math.max(...sizes)).toBeLessThanOrEqual(4)
    } finally {
      await r.close()
      await limited.close()
    }
  })

  it('retries 429 and 503 and a dropped connection', async () => {
    const r = await rescorer('vllm-score', { http: { ...FAST, maxAttempts: 5 } })
    try {
      server.inject({ status: 429, retryAfter: '0' }, 1, '/score')
      server.inject({ status: 503 }, 1, '/score')
      server.inject({ drop: true }, 1, '/score')
      const [scores] = await r.score([{ query: { text: QUERY }, candidates: [{ text: TEXTS[1]! }] }])
      expect(scores![0]).toBeCloseTo((await pairScores(embed, QUERY, [TEXTS[1]!]))[0]!, 15)
      await r.close()
      expect(r.stats).toMatchObject({ retries: 3 })
    } finally {
      await r.close()
    }
  })
})

describe('the cache', () => {
  it('stores every score as it arrives; a second rescorer on the file sends nothing; another model shares nothing', async () => {
    const dir = await tempDir()
    const cache = path.join(dir, 'scores.bin')
    const pairs = [{ query: { text: QUERY }, candidates: TEXTS.map((text) => ({ text })) }]
    const first = await rescorer('cohere-rerank', { cache })
    const a = await first.score(pairs)
    await first.close()
    const posts = server.requests.length
    const second = await rescorer('cohere-rerank', { cache })
    const b = await second.score(pairs)
    await second.close()
    expect(b).toEqual(a)
    expect(server.requests.length).toBe(posts)
    expect(second.stats).toMatchObject({ pairsScored: 5, cacheHits: 5, sent: 0 })
    const judge = await rescorer('chat-judge', { cache })
    await judge.score(pairs)
    await judge.close()
    expect(judge.stats.cacheHits).toBe(0)
    expect((await readFile(cache)).length).toBe(24 + 10 * 24)
  })

  it('skips a torn last record after a kill and rescoring fills it in', async () => {
    const dir = await tempDir()
    const cache = path.join(dir, 'scores.bin')
    const pairs = [{ query: { text: QUERY }, candidates: TEXTS.map((text) => ({ text })) }]
    const first = await rescorer('vllm-score', { cache })
    const a = await first.score(pairs)
    await first.close()
    const bytes = await readFile(cache)
    await writeFile(cache, bytes.subarray(0, bytes.length - 10)) // the last record cut mid-way
    const second = await rescorer('vllm-score', { cache })
    expect(await second.score(pairs)).toEqual(a)
    await second.close()
    expect(second.stats).toMatchObject({ cacheHits: 4, sent: 1 })
  })

  it('refuses a file that is not a rescore cache, naming it', async () => {
    const dir = await tempDir()
    const cache = path.join(dir, 'other.bin')
    await writeFile(cache, 'PAR1 not a cache')
    await expect(rescorer('vllm-score', { cache })).rejects.toThrow(
      `${cache}: not a hardneg rescore cache (starts with "PAR1 not a"), expected 'HNRESCORE1'; remove it or choose another --rescore-cache`,
    )
  })
})

describe('errors', () => {
  const one = [{ query: { text: QUERY }, candidates: [{ text: TEXTS[0]! }, { text: TEXTS[1]! }] }]

  it.each([
    ['cohere-rerank', '/v1/rerank', 'count', 'results', "1 score for 2 candidates, expected one per candidate"],
    ['vllm-score', '/score', 'nan', 'data', 'result 0 (index 0) with score null, expected a finite number'],
    ['vllm-score', '/score', 'bad-index', 'data', 'index 0 twice, expected each candidate once'],
    ['tei-rerank', '/rerank', 'not-json', '', 'a body that is not JSON ("upstream error"), expected a JSON response'],
  ] as const)('%s: a malformed answer (%s %s) is one whole message naming the server', async (api, route, mangle, _field, detail) => {
    const r = await rescorer(api)
    try {
      server.inject({ mangle }, 1, route)
      await expect(r.score([{ ...one[0]!, label: 'pairs.csv row 3' }])).rejects.toThrow(
        `server ${server.url}${route}: ${detail}; sent: 2 candidates for the query of pairs.csv row 3`,
      )
    } finally {
      await r.close()
    }
  })

  it('a judge answer without Yes or No', async () => {
    const r = await rescorer('chat-judge')
    try {
      server.inject({ mangle: 'nan' }, 1, '/v1/chat/completions')
      await expect(r.score([{ query: { text: QUERY }, candidates: [{ text: TEXTS[0]! }], label: 'pairs.csv row 1' }])).rejects.toThrow(
        `server ${server.url}/v1/chat/completions: top_logprobs without a Yes or No token ("Maybe", "Perhaps"), expected the judge to answer Yes or No; sent: 1 candidate for the query of pairs.csv row 1`,
      )
    } finally {
      await r.close()
    }
  })

  it('a server that is down names the URL and what was sent', async () => {
    const down = 'http://127.0.0.1:9'
    await expect(createRescorer({ url: down, api: 'tei-rerank', http: FAST })).rejects.toThrow(
      /^server http:\/\/127\.0\.0\.1:9\/info: no response \(ECONNREFUSED[^)]*\) after 3 attempts, expected 2xx within 3 attempts; sent: GET the model info \(no --rescore-model given\)$/,
    )
  })

  it('a prompt without {candidate} is refused before anything is sent', async () => {
    await expect(rescorer('chat-judge', { prompt: 'Is {query} good?' })).rejects.toThrow('the judge prompt: no {candidate}, expected {candidate} exactly once')
  })
})

describe('rescoreCandidates', () => {
  it('scores the positive and the top candidates and applies the rule', async () => {
    const r = await rescorer('vllm-score')
    try {
      const d = await rescoreCandidates(r, { query: { text: QUERY }, positive: { text: TEXTS[0]! }, candidates: TEXTS.slice(1).map((text) => ({ text })) }, { top: 3, margin: 0.01, rank: 'embedding' })
      const [pos, ...rest] = await pairScores(embed, QUERY, TEXTS.slice(0, 4))
      expect(d.posScore).toBeCloseTo(pos!, 15)
      expect(d.scores).toHaveLength(3)
      expect(d.kept).toEqual([0, 1, 2].filter((i) => !(rest[i]! > pos! - 0.01)))
    } finally {
      await r.close()
    }
  })
})
