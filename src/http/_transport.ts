/**
 * One HTTP exchange over node:http / node:https with a keep-alive agent: the request
 * written whole, the response read whole, the attempt bounded by a timeout that covers
 * both. Chosen over fetch, undici and the openai SDK by measurement (docs/decisions.md).
 * Private to the http folder.
 */
import http from 'node:http'
import https from 'node:https'

/** A response read whole. */
export interface RawResponse {
  status: number
  statusText: string
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** Keep-alive agents for one client: at most `sockets` connections per origin. */
export function createAgents(sockets: number): { http: http.Agent; https: https.Agent } {
  return {
    http: new http.Agent({ keepAlive: true, maxSockets: sockets }),
    https: new https.Agent({ keepAlive: true, maxSockets: sockets }),
  }
}

/** An attempt that ran out of time; `networkFailure` retries it. */
export class TimeoutError extends Error {
  override name = 'TimeoutError'
}

/** Sends one request; rejects with the socket's error (code ECONNRESET, ECONNREFUSED, ...) or a TimeoutError. */
export function exchange(
  url: URL,
  options: { method: string; headers: Record<string, string>; body: string | undefined; timeoutMs: number; agents: ReturnType<typeof createAgents> },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:'
    const headers = options.body === undefined ? options.headers : { ...options.headers, 'content-length': String(Buffer.byteLength(options.body)) }
    const req = (secure ? https : http).request(url, { method: options.method, headers, agent: secure ? options.agents.https : options.agents.http })
    const timer = setTimeout(() => req.destroy(new TimeoutError(`no response within ${options.timeoutMs} ms`)), options.timeoutMs)
    const fail = (err: Error): void => {
      clearTimeout(timer)
      reject(err)
    }
    req.on('error', fail)
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', fail)
      res.on('aborted', () => fail(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' })))
      res.on('end', () => {
        clearTimeout(timer)
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks) })
      })
    })
    req.end(options.body)
  })
}
