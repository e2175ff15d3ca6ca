/**
 * The four wire shapes a rescorer speaks, each a request builder and a response reader
 * over the shared HTTP client: TEI `/rerank`, the Cohere-style `/v1/rerank` (vLLM,
 * Infinity, Cohere, Jina), vLLM `/score`, and an OpenAI chat-completions judge reading the
 * Yes/No log-probabilities of one generated token. Private to the rescore folder.
 */
import { readFile } from 'node:fs/promises'
import { HardnegError } from '../errors.js'
import type { HttpClient } from '../http/client.js'
import { judgeMessages, yesProbability } from './_judge.js'

/** The rescore APIs. */
export type RescoreApi = 'tei-rerank' | 'cohere-rerank' | 'vllm-score' | 'chat-judge'

/** Every rescore API, for option checks and help. */
export const RESCORE_APIS: readonly RescoreApi[] = ['tei-rerank', 'cohere-rerank', 'vllm-score', 'chat-judge']

/** One side of a scored pair: its text and, for the judge, its image. */
export interface RescoreSide {
  text: string // '' = no text
  image?: { file: string; sha256: string; mime: string } // absolute path to read, content hash, MIME type
}

/** A response that breaks its API's contract. */
export class RescoreResponseProblem extends Error {
  constructor(readonly found: string, readonly expected: string) {
    super(`${found}, expected ${expected}`)
  }
}

/** What one API shape does for the rescorer. */
export interface WireShape {
  path: string // where requests go, below the base URL
  pairsPerRequest: 'many' | 'one' // rerankers take one query and many candidates; the judge one pair
  /** Scores `candidates` against `query`, in candidate order. */
  score(query: RescoreSide, candidates: readonly RescoreSide[], what: string): Promise<number[]>
}

/** Options every shape may use. */
export interface ShapeOptions {
  model: string | undefined // model name to send (required by cohere-rerank, vllm-score and chat-judge)
  rawScores: boolean // tei-rerank: ask for raw logits instead of sigmoid probabilities
  prompt: string // chat-judge: the prompt template
}

/** The shape for `api`, bound to `http`. */
export function wireShape(api: RescoreApi, http: HttpClient, options: ShapeOptions): WireShape {
  const post = async (path: string, json: unknown, what: string): Promise<unknown> => {
    const res = await http.request({ path, json, what })
    const text = res.body.toString('utf8')
    try {
      return JSON.parse(text)
    } catch {
      throw new RescoreResponseProblem(`a body that is not JSON (${JSON.stringify(text.replace(/\s+/g, ' ').slice(0, 80))})`, 'a JSON response')
    }
  }
  const textOnly = (sides: readonly RescoreSide[]): string[] => sides.map((s) => s.text)
  switch (api) {
    case 'tei-rerank':
      return {
        path: '/rerank',
        pairsPerRequest: 'many',
        async score(query, candidates, what) {
          const body = await post('/rerank', { query: query.text, texts: textOnly(candidates), raw_scores: options.rawScores, return_text: false }, what)
          if (!Array.isArray(body)) throw new RescoreResponseProblem(`${describe(body)}`, "TEI's [{index, score}]")
          return byIndex(body, candidates.length, 'score')
        },
      }
    case 'cohere-rerank':
      return {
        path: '/v1/rerank',
        pairsPerRequest: 'many',
        async score(query, candidates, what) {
          const body = (await post('/v1/rerank', { model: options.model, query: query.text, documents: textOnly(candidates), top_n: candidates.length, return_documents: false }, what)) as { results?: unknown }
          if (typeof body !== 'object' || body === null || !Array.isArray(body.results)) {
            throw new RescoreResponseProblem(`${describe(body)} without a 'results' array`, "{results: [{index, relevance_score}]}")
          }
          return byIndex(body.results, candidates.length, 'relevance_score')
        },
      }
    case 'vllm-score':
      return {
        path: '/score',
        pairsPerRequest: 'many',
        async score(query, candidates, what) {
          const body = (await post('/score', { model: options.model, text_1: query.text, text_2: textOnly(candidates) }, what)) as { data?: unknown }
          if (typeof body !== 'object' || body === null || !Array.isArray(body.data)) {
            throw new RescoreResponseProblem(`${describe(body)} without a 'data' array`, "vLLM's {data: [{index, score}]}")
          }
          return byIndex(body.data, candidates.length, 'score')
        },
      }
    case 'chat-judge':
      return {
        path: '/v1/chat/completions',
        pairsPerRequest: 'one',
        async score(query, candidates, what) {
          const [candidate] = candidates
          if (candidate === undefined || candidates.length !== 1) throw new Error('the judge scores one pair per request')
          const images = new Map<string, string>()
          for (const side of [query, candidate]) {
            if (side.image !== undefined && !images.has(side.image.file)) images.set(side.image.file, `data:${side.image.mime};base64,${(await readSide(side.image.file)).toString('base64')}`)
          }
          const body = await post('/v1/chat/completions', {
            model: options.model,
            messages: judgeMessages(options.prompt, query, candidate, (file) => images.get(file) as string),
            max_tokens: 1,
            temperature: 0,
            logprobs: true,
            top_logprobs: 20,
          }, what)
          return [yesProbability(body)]
        },
      }
  }
}

async function readSide(file: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (err) {
    throw new HardnegError('E_BAD_FILE', `cannot read the image for the judge (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { file })
  }
}

/** Scores in input order from `[{index, <field>}]`, checking one finite score per input. */
function byIndex(items: readonly unknown[], count: number, field: string): number[] {
  if (items.length !== count) throw new RescoreResponseProblem(`${items.length} score${items.length === 1 ? '' : 's'} for ${count} candidate${count === 1 ? '' : 's'}`, 'one per candidate')
  const out = new Array<number>(count).fill(Number.NaN)
  const seen = new Uint8Array(count)
  items.forEach((item, i) => {
    const it = item as Record<string, unknown>
    const index = it?.index
    const score = it?.[field]
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= count) {
      throw new RescoreResponseProblem(`result ${i} with index ${JSON.stringify(index)}`, `an integer index from 0 to ${count - 1}`)
    }
    if (seen[index] === 1) throw new RescoreResponseProblem(`index ${index} twice`, 'each candidate once')
    if (typeof score !== 'number' || !Number.isFinite(score)) throw new RescoreResponseProblem(`result ${i} (index ${index}) with ${field} ${JSON.stringify(score)}`, 'a finite number')
    seen[index] = 1
    out[index] = score
  })
  return out
}

function describe(body: unknown): string {
  if (Array.isArray(body)) return `an array of ${body.length}`
  if (body === null) return 'null'
  if (typeof body === 'object') return `an object (keys: ${Object.keys(body as object).join(', ') || 'none'})`
  return `a ${typeof body}`
}
