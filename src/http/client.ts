/**
 * The one small HTTP layer every remote-service client shares (embedding servers today,
 * rerankers and judges next): a base URL, a timeout per attempt, bounded retries with
 * exponential backoff and jitter that honour `Retry-After`, permanent 4xx thrown at once,
 * a distinct "batch too large" signal, a concurrency limit and counters. Errors name the
 * server (URL), the status, an excerpt of the body and what was sent.
 *
 * Built on node:http with a keep-alive agent (measured against Node's fetch, undici 7 and
 * the openai SDK in docs/decisions.md).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { HardnegError } from '../errors.js'
import { backoffDelay, isBatchTooLarge, isRetryableStatus, networkFailure, retryAfterMs } from './_retry.js'
import { createAgents, exchange } from './_transport.js'

/** Options of {@link HttpClient}. */
export interface HttpClientOptions {
  baseUrl: string // the server's base URL; request paths are appended to it (e.g. http://gpu1:8000/v1)
  timeoutMs?: number // one attempt, from sending until the whole body is read, in ms (default 300000)
  maxAttempts?: number // attempts per request, the first included, before the request fails (default 8)
  backoffMs?: number // base of the exponential backoff between attempts, in ms (default 500)
  maxBackoffMs?: number // longest backoff wait, in ms (default 30000)
  maxRetryAfterMs?: number // longest `Retry-After` wait honoured, in ms; longer ones are cut to this (default 120000)
  concurrency?: number // requests in flight at once; more wait their turn (default 4)
  apiKey?: string // sent as `Authorization: Bearer <key>` (default: no header)
  headers?: Readonly<Record<string, string>> // extra headers on every request (default none)
  random?: () => number // jitter source in [0, 1) (default Math.random)
  sleep?: (ms: number) => Promise<void> // how waits are made; tests pass a fake clock (default setTimeout)
  onRetry?: (event: RetryEvent) => void // called before each retry wait
}

/** One retry about to happen. */
export interface RetryEvent {
  url: string // the full URL
  attempt: number // the attempt that failed (1 = the first)
  status: number | undefined // its HTTP status, or undefined when no response came (dropped, refused, timed out)
  reason: string // e.g. 'HTTP 429 Too Many Requests' or 'ECONNRESET: other side closed'
  delayMs: number // the wait before the next attempt
}

/** One request. */
export interface HttpRequest {
  method?: 'GET' | 'POST' // default: POST when a body is given, else GET
  path: string // appended to the base URL, e.g. '/embeddings'
  json?: unknown // the body, sent as JSON (serialised once, reused by every attempt)
  what?: string // what is being sent, in words, for error messages (e.g. '32 texts from pairs.csv rows 1-32')
}

/** A 2xx response, read whole. */
export interface HttpResponse {
  url: string // the full URL
  status: number // HTTP status
  headers: IncomingHttpHeaders // response headers (lower-case names)
  body: Buffer // the raw body
  attempts: number // attempts it took
}

/** Counters of one client. */
export interface HttpStats {
  requests: number // HTTP attempts sent, retries included
  retries: number // attempts after a retryable failure
  failed: number // requests that ended in an HttpError
}

/**
 * A request that failed: a permanent status (4xx other than 408/429), a batch the server
 * finds too large (`batchTooLarge`: 413, or 422 saying so; callers halve and resend), or
 * retryable failures until the attempts ran out. The message is one line naming the
 * server, the status, an excerpt of the body and what was sent.
 */
export class HttpError extends HardnegError {
  readonly url: string // the full URL
  readonly status: number | undefined // the last HTTP status, or undefined when no response came
  readonly attempts: number // attempts made
  readonly batchTooLarge: boolean // the server said the request holds too many inputs
  readonly bodyExcerpt: string // the start of the response body (one line)
  readonly detail: string // the message without a place, for callers that add one

  constructor(fields: { url: string; status: number | undefined; attempts: number; batchTooLarge: boolean; bodyExcerpt: string; detail: string }) {
    super('E_SERVER', fields.detail)
    this.name = 'HardnegError'
    this.url = fields.url
    this.status = fields.status
    this.attempts = fields.attempts
    this.batchTooLarge = fields.batchTooLarge
    this.bodyExcerpt = fields.bodyExcerpt
    this.detail = fields.detail
  }
}

/**
 * The API key held by environment variable `variable`; E_BAD_OPTION when it is unset or
 * empty (the key itself never appears in a message).
 */
export function apiKeyFromEnv(variable: string, env: NodeJS.ProcessEnv = process.env): string {
  const key = env[variable]
  if (key === undefined || key.trim() === '') {
    throw new HardnegError('E_BAD_OPTION', `--api-key-env ${variable}: the variable is ${key === undefined ? 'not set' : 'empty'}, expected the API key in it`)
  }
  return key.trim()
}

/** Where a request body's start is quoted in messages. */
const SENT_EXCERPT = 160
const BODY_EXCERPT = 240

/**
 * An HTTP client for one server.
 *
 * @example
 * ```ts
 * const http = new HttpClient({ baseUrl: 'http://localhost:8080', concurrency: 4 })
 * const res = await http.request({ path: '/embed', json: { inputs: ['a', 'b'] }, what: '2 texts' })
 * const vectors = JSON.parse(res.body.toString('utf8'))
 * ```
 */
export class HttpClient {
  readonly baseUrl: string // without a trailing slash
  readonly stats: HttpStats = { requests: 0, retries: 0, failed: 0 }
  private readonly options: Required<Omit<HttpClientOptions, 'apiKey' | 'onRetry' | 'headers'>> & Pick<HttpClientOptions, 'onRetry'>
  private readonly headers: Record<string, string>
  private active = 0
  private readonly waiting: (() => void)[] = []
  private readonly agents: ReturnType<typeof createAgents>

  constructor(options: HttpClientOptions) {
    let url: URL
    try {
      url = new URL(options.baseUrl)
    } catch {
      throw new HardnegError('E_BAD_OPTION', `--server '${options.baseUrl}': not a URL, expected e.g. http://localhost:8000/v1`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new HardnegError('E_BAD_OPTION', `--server '${options.baseUrl}': protocol ${url.protocol}, expected http: or https:`)
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    for (const [name, value] of Object.entries({ timeoutMs: options.timeoutMs, maxAttempts: options.maxAttempts, concurrency: options.concurrency })) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new HardnegError('E_BAD_OPTION', `${name}: ${String(value)}, expected an integer >= 1`)
    }
    this.options = {
      baseUrl: this.baseUrl,
      timeoutMs: options.timeoutMs ?? 300_000,
      maxAttempts: options.maxAttempts ?? 8,
      backoffMs: options.backoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 120_000,
      concurrency: options.concurrency ?? 4,
      random: options.random ?? Math.random,
      sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
      onRetry: options.onRetry,
    }
    this.agents = createAgents(this.options.concurrency)
    this.headers = { accept: 'application/json', ...options.headers }
    if (options.apiKey !== undefined) this.headers.authorization = `Bearer ${options.apiKey}`
  }

  /** Closes the idle keep-alive connections (a finished run calls it; requests after it open new ones). */
  close(): void {
    this.agents.http.destroy()
    this.agents.https.destroy()
  }

  /** The full URL of `path`. */
  url(path: string): string {
    return this.baseUrl + (path.startsWith('/') ? path : `/${path}`)
  }

  /**
   * Sends `request`, retrying what is worth retrying; resolves with a 2xx response read
   * whole, or rejects with an {@link HttpError}. At most `concurrency` requests are in
   * flight at once (a request keeps its slot while it waits to retry, which eases a server
   * that asked to slow down).
   */
  async request(request: HttpRequest): Promise<HttpResponse> {
    await this.acquire()
    try {
      return await this.attempts(request)
    } finally {
      this.release()
    }
  }

  private async attempts(request: HttpRequest): Promise<HttpResponse> {
    const url = this.url(request.path)
    const body = request.json === undefined ? undefined : JSON.stringify(request.json)
    const method = request.method ?? (body === undefined ? 'GET' : 'POST')
    const headers = body === undefined ? this.headers : { ...this.headers, 'content-type': 'application/json' }
    const { maxAttempts } = this.options
    for (let attempt = 1; ; attempt++) {
      this.stats.requests++
      let status: number | undefined
      let reason: string
      let retryAfter: number | undefined
      let text = ''
      try {
        const res = await exchange(new URL(url), { method, headers, body, timeoutMs: this.options.timeoutMs, agents: this.agents })
        if (res.status >= 200 && res.status < 300) return { url, status: res.status, headers: res.headers, body: res.body, attempts: attempt }
        status = res.status
        text = res.body.toString('utf8')
        reason = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`
        if (!isRetryableStatus(res.status)) {
          const tooLarge = isBatchTooLarge(res.status, text)
          throw this.failure(url, method, status, attempt, reason, text, body, request.what, tooLarge ? 'expected a smaller batch' : 'expected 2xx', tooLarge)
        }
        retryAfter = retryAfterMs(oneHeader(res.headers['retry-after']), Date.now())
      } catch (err) {
        if (err instanceof HttpError) throw err
        const failure = networkFailure(err)
        if (failure === undefined) throw err
        reason = failure === 'timed out' ? `no response within ${this.options.timeoutMs / 1000} s` : `no response (${failure})`
      }
      if (attempt >= maxAttempts) {
        throw this.failure(url, method, status, attempt, reason, text, body, request.what, `expected 2xx within ${maxAttempts} attempts`, false)
      }
      const delayMs = backoffDelay(attempt, {
        baseMs: this.options.backoffMs, maxMs: this.options.maxBackoffMs, maxRetryAfterMs: this.options.maxRetryAfterMs, retryAfter, random: this.options.random,
      })
      this.options.onRetry?.({ url, attempt, status, reason, delayMs })
      this.stats.retries++
      await this.options.sleep(delayMs)
    }
  }

  private failure(
    url: string, method: string, status: number | undefined, attempts: number, reason: string, text: string,
    sent: string | undefined, what: string | undefined, expected: string, batchTooLarge: boolean,
  ): HttpError {
    this.stats.failed++
    const bodyExcerpt = excerpt(text, BODY_EXCERPT)
    const parts = [
      `server ${url}: ${reason} after ${attempts} attempt${attempts === 1 ? '' : 's'}, ${expected}`,
      ...(status !== undefined ? [`body: ${bodyExcerpt === '' ? '(empty)' : JSON.stringify(bodyExcerpt)}`] : []),
      `sent: ${method}${what !== undefined ? ` ${what}` : ''}${sent !== undefined ? ` ${excerpt(sent, SENT_EXCERPT)}` : ''}`,
    ]
    return new HttpError({ url, status, attempts, batchTooLarge, bodyExcerpt, detail: parts.join('; ') })
  }

  private async acquire(): Promise<void> {
    if (this.active < this.options.concurrency) {
      this.active++
      return
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  private release(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.active--
  }
}

function oneHeader(value: string | string[] | undefined): string | null {
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null)
}

/** The first `max` characters of `text` on one line, with '...' when cut. */
function excerpt(text: string, max: number): string {
  const line = text.replace(/\s*\n\s*/g, ' ').trim()
  return line.length <= max ? line : `${line.slice(0, max)}...`
}
