/**
 * Second-stage false-negative filtering: a stronger model (a cross-encoder reranker or an
 * MLLM judge, over HTTP) scores the query against its positive and its top embedding
 * candidates, and a candidate it scores above `r(pos) - margin` (or above `maxScore`) is
 * a false negative, as in UniME-V2. Every score is cached as it arrives, keyed by
 * (rescorer identity, query side, candidate side), so a re-run pays for nothing already
 * scored. See docs/rescore.md.
 */
import { createHash } from 'node:crypto'
import { HardnegError } from '../errors.js'
import { HttpClient, HttpError, type HttpClientOptions, type HttpStats } from '../http/client.js'
import { RESCORE_APIS, RescoreResponseProblem, wireShape, type RescoreApi, type RescoreSide, type WireShape } from './_apis.js'
import { cacheKey, ScoreCache, type CacheKey } from './_cache.js'
import { checkPrompt, DEFAULT_JUDGE_PROMPT } from './_judge.js'

export { RESCORE_APIS, DEFAULT_JUDGE_PROMPT }
export type { RescoreApi, RescoreSide }

/** Options of {@link createRescorer}. */
export interface RescorerOptions {
  url: string // the server's root URL (paths /rerank, /v1/rerank, /score, /v1/chat/completions are appended; a trailing /v1 is understood)
  api: RescoreApi // the wire shape: tei-rerank, cohere-rerank, vllm-score or chat-judge
  model?: string // model to name in requests (default: TEI's /info model_id, else the only model GET /v1/models lists)
  batch?: number // candidates per reranker request; halved when the server answers 413 or 422 "too large" (default 32; the judge sends one pair per request)
  concurrency?: number // requests in flight at once (default 4)
  rawScores?: boolean // tei-rerank: raw logits instead of sigmoid probabilities; part of the cache identity (default false)
  prompt?: string // chat-judge: the prompt template with {query} and {candidate} (default DEFAULT_JUDGE_PROMPT)
  cache?: string // the cache file; scores are read from it and appended to it as they arrive (default: none, scores kept in memory only)
  apiKey?: string // sent as a bearer token (default none)
  http?: Omit<HttpClientOptions, 'baseUrl' | 'concurrency' | 'apiKey'> // timeouts, attempts, backoff of the HTTP client
}

/** What makes two rescorers' scores interchangeable; the manifest records it. */
export interface RescorerIdentity {
  api: RescoreApi // wire shape
  model: string // the model that scored
  scoreSpace: 'probability' | 'logit' | 'relevance' // what the numbers are: the margin applies in this space
  rawScores?: boolean // tei-rerank only
  promptSha256?: string // chat-judge only: sha256 of the prompt template
}

/** Counters of a rescorer. */
export interface RescoreStats {
  pairsScored: number // (query, candidate) scores asked for, positives included
  cacheHits: number // of those, answered from the cache
  sent: number // pairs sent to the server
  requests: number // HTTP attempts, retries included
  retries: number // attempts after a retryable failure
  batchHalvings: number // times a 413/422 made the batch smaller
}

/** One query's pairs to score: the query side against each candidate side. */
export interface RescoreRequest {
  query: RescoreSide
  candidates: readonly RescoreSide[]
  label?: string // where the query comes from, for messages (e.g. 'pairs.csv row 12')
}

/** A rescorer bound to one server; `close()` when done. */
export interface Rescorer {
  readonly identity: RescorerIdentity
  readonly url: string // the endpoint scores come from
  readonly stats: RescoreStats
  readonly cacheFile: string | undefined
  /** Scores every request's candidates, in order; cached scores are not sent again. `onPairs` reports pairs done. */
  score(requests: readonly RescoreRequest[], onPairs?: (done: number) => void): Promise<number[][]>
  close(): Promise<void>
}

/**
 * Connects to a rescoring server, finds out which model it serves, and opens the cache.
 *
 * @example
 * const rescorer = await createRescorer({ url: 'http://gpu1:8080', api: 'tei-rerank', cache: 'out/.hardneg-rescore-cache.bin' })
 * const [[pos, c1, c2]] = await rescorer.score([{ query: { text: 'q' }, candidates: [{ text: 'p' }, { text: 'a' }, { text: 'b' }] }])
 */
export async function createRescorer(options: RescorerOptions): Promise<Rescorer> {
  if (!RESCORE_APIS.includes(options.api)) {
    throw new HardnegError('E_BAD_OPTION', `rescoreApi: '${String(options.api)}', expected one of ${RESCORE_APIS.join(', ')}`)
  }
  const batch = options.batch ?? 32
  if (!Number.isInteger(batch) || batch < 1) throw new HardnegError('E_BAD_OPTION', `rescoreBatch: ${String(options.batch)}, expected an integer >= 1`)
  const prompt = options.prompt ?? DEFAULT_JUDGE_PROMPT
  try {
    checkPrompt(prompt, 'the judge prompt')
  } catch (err) {
    throw new HardnegError('E_BAD_OPTION', (err as Error).message)
  }
  const root = options.url.replace(/\/+$/, '').replace(/\/v1$/, '')
  const http = new HttpClient({ ...options.http, baseUrl: root, concurrency: options.concurrency ?? 4, ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {}) })
  let cache: ScoreCache | undefined
  try {
    const model = options.model ?? (await servedModel(http, options.api))
    const identity: RescorerIdentity = {
      api: options.api,
      model,
      scoreSpace: options.api === 'chat-judge' ? 'probability' : options.api === 'tei-rerank' ? (options.rawScores === true ? 'logit' : 'probability') : 'relevance',
      ...(options.api === 'tei-rerank' ? { rawScores: options.rawScores === true } : {}),
      ...(options.api === 'chat-judge' ? { promptSha256: createHash('sha256').update(prompt).digest('hex') } : {}),
    }
    const shape = wireShape(options.api, http, { model, rawScores: options.rawScores === true, prompt })
    cache = options.cache === undefined ? undefined : await ScoreCache.open(options.cache)
    return new HttpRescorer(identity, http, shape, batch, cache, options.concurrency ?? 4)
  } catch (err) {
    await cache?.close()
    http.close()
    throw err
  }
}

/** The model a server serves when none is named: TEI's /info model_id, else the only one /v1/models lists. */
async function servedModel(http: HttpClient, api: RescoreApi): Promise<string> {
  if (api === 'tei-rerank') {
    const res = await http.request({ method: 'GET', path: '/info', what: 'the model info (no --rescore-model given)' })
    const id = (parseJson(res.body) as { model_id?: unknown })?.model_id
    if (typeof id !== 'string' || id === '') throw new HardnegError('E_BAD_RESPONSE', `server ${res.url}: no model_id in /info, expected TEI's info; name the model with --rescore-model`)
    return id
  }
  const res = await http.request({ method: 'GET', path: '/v1/models', what: 'the model list (no --rescore-model given)' })
  const data = (parseJson(res.body) as { data?: { id?: unknown }[] })?.data
  const ids = Array.isArray(data) ? data.map((m) => m?.id).filter((id): id is string => typeof id === 'string') : []
  if (ids.length !== 1) {
    throw new HardnegError('E_BAD_OPTION', `--rescore-model not given and server ${res.url} lists ${ids.length === 0 ? 'no models' : `${ids.length} models (${ids.slice(0, 5).join(', ')})`}, expected --rescore-model NAME`)
  }
  return ids[0] as string
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
}

/** A side as the cache keys it: its text and its image's content. */
function sideKey(side: RescoreSide): string {
  return `${side.text}\u0000${side.image?.sha256 ?? ''}`
}

class HttpRescorer implements Rescorer {
  readonly stats: RescoreStats = { pairsScored: 0, cacheHits: 0, sent: 0, requests: 0, retries: 0, batchHalvings: 0 }
  private readonly identityText: string
  private batch: number
  private readonly memory = new Map<string, number>() // without a cache file

  constructor(
    readonly identity: RescorerIdentity,
    private readonly http: HttpClient,
    private readonly shape: WireShape,
    batch: number,
    private readonly cache: ScoreCache | undefined,
    private readonly concurrency: number,
  ) {
    this.identityText = JSON.stringify(identity)
    this.batch = shape.pairsPerRequest === 'one' ? 1 : batch
  }

  get url(): string {
    return this.http.url(this.shape.path)
  }

  get cacheFile(): string | undefined {
    return this.cache?.file
  }

  async score(requests: readonly RescoreRequest[], onPairs?: (done: number) => void): Promise<number[][]> {
    const out = requests.map((r) => new Array<number>(r.candidates.length).fill(Number.NaN))
    let done = 0
    const jobs: (() => Promise<void>)[] = []
    for (const [q, request] of requests.entries()) {
      const qKey = sideKey(request.query)
      const missing: { at: number; key: CacheKey; memo: string }[] = []
      const queued = new Map<string, number[]>() // one send per distinct candidate of this query
      request.candidates.forEach((candidate, at) => {
        this.stats.pairsScored++
        const cKey = sideKey(candidate)
        const memo = `${qKey}\u0001${cKey}`
        const key = cacheKey(this.identityText, qKey, cKey)
        const hit = this.cache ? this.cache.get(key) : this.memory.get(memo)
        if (hit !== undefined) {
          this.stats.cacheHits++
          out[q]![at] = hit
          done++
          return
        }
        const same = queued.get(memo)
        if (same) same.push(at)
        else {
          queued.set(memo, [at])
          missing.push({ at, key, memo })
        }
      })
      for (let start = 0; start < missing.length; start += this.batch) {
        const chunk = missing.slice(start, start + this.batch)
        jobs.push(() => this.send(request, chunk).then((scores) => {
          chunk.forEach((m, i) => {
            const s = scores[i] as number
            if (this.cache) this.cache.put(m.key, s)
            else this.memory.set(m.memo, s)
            for (const at of queued.get(m.memo) ?? []) out[q]![at] = s
            done += queued.get(m.memo)?.length ?? 1
          })
          onPairs?.(done)
          return this.cache?.flush()
        }))
      }
    }
    onPairs?.(done)
    // `concurrency` workers take the requests in order; after a failure none is started, so
    // a server that is down costs one request's retries, not every request's.
    let next = 0
    let failure: { error: unknown } | undefined
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < jobs.length) {
        const job = jobs[next++] as () => Promise<void>
        try {
          await job()
        } catch (error) {
          failure ??= { error }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.concurrency, jobs.length) }, worker))
    this.syncHttpStats()
    if (failure !== undefined) throw failure.error
    return out
  }

  /** One request for `chunk` of `request`'s candidates; halves and resends when the server says it is too large. */
  private async send(request: RescoreRequest, chunk: readonly { at: number }[]): Promise<number[]> {
    const candidates = chunk.map((m) => request.candidates[m.at] as RescoreSide)
    const what = `${candidates.length} candidate${candidates.length === 1 ? '' : 's'} for the query of ${request.label ?? 'a row'}`
    try {
      const scores = await this.shape.score(request.query, candidates, what)
      this.stats.sent += candidates.length
      return scores
    } catch (err) {
      if (err instanceof HttpError && err.batchTooLarge && chunk.length > 1) {
        const half = Math.ceil(chunk.length / 2)
        if (half < this.batch) {
          this.batch = half
          this.stats.batchHalvings++
        }
        const [a, b] = await Promise.all([this.send(request, chunk.slice(0, half)), this.send(request, chunk.slice(half))])
        return [...a, ...b]
      }
      if (err instanceof RescoreResponseProblem) {
        throw new HardnegError('E_BAD_RESPONSE', `server ${this.url}: ${err.found}, expected ${err.expected}; sent: ${what}`)
      }
      throw err
    }
  }

  private syncHttpStats(): void {
    const s: HttpStats = this.http.stats
    this.stats.requests = s.requests
    this.stats.retries = s.retries
  }

  async close(): Promise<void> {
    this.syncHttpStats()
    try {
      await this.cache?.close()
    } finally {
      this.http.close()
    }
  }
}

/** The second-stage rule and how survivors are ranked. */
export interface RescoreRule {
  top: number // candidates per query that are rescored, the best by embedding score that survived the embedding rules (default 50)
  margin: number // a candidate scoring above r(pos) - margin is a false negative, in the rescorer's score space (default 0.01, UniME-V2)
  maxScore?: number // a candidate scoring above this is a false negative too (default: off)
  rank: 'embedding' | 'rescore' // order of the survivors the negatives are taken from (default 'embedding')
}

/** The defaults: UniME-V2's top 50 and margin 0.01, negatives in embedding order. */
export const DEFAULT_RESCORE_RULE: RescoreRule = { top: 50, margin: 0.01, rank: 'embedding' }

/** True when the rescorer's score `score` makes a candidate a false negative against `posScore`. */
export function isRescoreFalseNegative(score: number, posScore: number, rule: Pick<RescoreRule, 'margin' | 'maxScore'>): boolean {
  return score > posScore - rule.margin || (rule.maxScore !== undefined && score > rule.maxScore)
}

/** One query's candidates after the rescore rule. */
export interface RescoreDecision {
  posScore: number // r(query, positive)
  scores: number[] // r(query, candidate) of each rescored candidate, in the input (embedding) order
  kept: number[] // positions (into the candidates) of the survivors, in the order negatives are taken
  removed: number[] // positions the rule removed, in input order
  positiveOutranked: boolean // some rescored candidate scores above the positive: the pair may be noise
}

/** Applies the rule to one query's scores: `scores[0]` is the positive's, the rest its candidates'. */
export function decideRescore(scores: readonly number[], rule: RescoreRule): RescoreDecision {
  const [posScore = Number.NaN, ...rest] = scores
  const kept: number[] = []
  const removed: number[] = []
  rest.forEach((s, i) => (isRescoreFalseNegative(s, posScore, rule) ? removed : kept).push(i))
  if (rule.rank === 'rescore') kept.sort((a, b) => (rest[b] as number) - (rest[a] as number) || a - b)
  return { posScore, scores: rest, kept, removed, positiveOutranked: rest.some((s) => s > posScore) }
}

/**
 * The stage on its own, for ranked candidates a pipeline already has: scores the query
 * against its positive and its first `rule.top` candidates and applies the rule.
 *
 * @example
 * const d = await rescoreCandidates(rescorer, { query: { text: q }, positive: { text: p }, candidates: ranked.map((text) => ({ text })) })
 * const negatives = d.kept.slice(0, 8).map((i) => ranked[i])
 */
export async function rescoreCandidates(
  rescorer: Rescorer,
  item: { query: RescoreSide; positive: RescoreSide; candidates: readonly RescoreSide[]; label?: string },
  rule: RescoreRule = DEFAULT_RESCORE_RULE,
): Promise<RescoreDecision> {
  const [scores] = await rescorer.score([{ query: item.query, candidates: [item.positive, ...item.candidates.slice(0, rule.top)], ...(item.label ? { label: item.label } : {}) }])
  return decideRescore(scores as number[], rule)
}

/** Checks a rule's values; throws E_BAD_OPTION naming the option. */
export function checkRescoreRule(rule: RescoreRule): void {
  if (!Number.isInteger(rule.top) || rule.top < 1) throw new HardnegError('E_BAD_OPTION', `rescoreTop: ${String(rule.top)}, expected an integer >= 1`)
  if (typeof rule.margin !== 'number' || !Number.isFinite(rule.margin)) throw new HardnegError('E_BAD_OPTION', `rescoreMargin: ${String(rule.margin)}, expected a finite number`)
  if (rule.maxScore !== undefined && (typeof rule.maxScore !== 'number' || !Number.isFinite(rule.maxScore))) {
    throw new HardnegError('E_BAD_OPTION', `rescoreMaxScore: ${String(rule.maxScore)}, expected a finite number`)
  }
  if (rule.rank !== 'embedding' && rule.rank !== 'rescore') throw new HardnegError('E_BAD_OPTION', `rescoreRank: '${String(rule.rank)}', expected 'embedding' or 'rescore'`)
}
