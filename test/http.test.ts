/**
 * The shared HTTP layer (src/http/client.ts) on a bare loopback server: Retry-After in
 * both forms, backoff growth and cap, permanent 4xx at once, the batch-too-large signal,
 * the concurrency limit, the bearer token and the counters.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { apiKeyFromEnv, HttpClient, HttpError } from '../src/index.js'

type Respond = (req: IncomingMessage, res: ServerResponse, n: number) => void
const servers: { close: () => void }[] = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
})

async function serve(respond: Respond): Promise<{ url: string; seen: IncomingMessage[] }> {
  const seen: IncomingMessage[] = []
  const server = createServer((req, res) => {
    seen.push(req)
    req.resume()
    req.on('end', () => respond(req, res, seen.length))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  servers.push({ close: () => (server.closeAllConnections(), server.close()) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

function fakeClock(): { sleep: (ms: number) => Promise<void>; waits: number[] } {
  const waits: number[] = []
  return { waits, sleep: async (ms) => void waits.push(ms) }
}

describe('HttpClient', () => {
  it('honours Retry-After as seconds and as an HTTP date, then succeeds', async () => {
    const date = new Date(Date.now() + 30_000).toUTCString()
    const { url } = await serve((_req, res, n) => {
      if (n === 1) res.writeHead(429, { 'retry-after': '7' }).end('{"error":"rate"}')
      else if (n === 2) res.writeHead(503, { 'retry-after': date }).end('busy')
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    })
    const clock = fakeClock()
    const http = new HttpClient({ baseUrl: url, sleep: clock.sleep })
    const res = await http.request({ path: '/x', json: { a: 1 } })
    expect(res.body.toString()).toBe('{"ok":true}')
    expect(clock.waits[0]).toBe(7000)
    expect(clock.waits[1]).toBeGreaterThan(27_000)
    expect(clock.waits[1]).toBeLessThanOrEqual(30_000)
    expect(http.stats).toEqual({ requests: 3, retries: 2, failed: 0 })
  })

  it('backs off exponentially with jitter, capped, and gives up after maxAttempts with one line', async () => {
    const { url } = await serve((_req, res) => res.writeHead(502).end('<html>bad gateway</html>'))
    const clock = fakeClock()
    const http = new HttpClient({ baseUrl: `${url}/v1/`, sleep: clock.sleep, maxAttempts: 6, backoffMs: 100, maxBackoffMs: 1000, random: () => 0.5 })
    const err = await http.request({ path: '/embeddings', json: { input: ['a'] }, what: '1 text' }).catch((e: unknown) => e)
    expect(clock.waits).toEqual([75, 150, 300, 600, 750]) // half of min(cap, 100 * 2^k) plus half of the other half
    expect(err).toBeInstanceOf(HttpError)
    expect((err as HttpError).message).toBe(
      `server ${url}/v1/embeddings: HTTP 502 Bad Gateway after 6 attempts, expected 2xx within 6 attempts; body: "<html>bad gateway</html>"; sent: POST 1 text {"input":["a"]}`,
    )
    expect([(err as HttpError).code, (err as HttpError).status, (err as HttpError).batchTooLarge]).toEqual(['E_SERVER', 502, false])
  })

  it('throws a permanent 4xx at once; 413 and a 422 saying the batch is too large are the batch-too-large signal', async () => {
    const { url, seen } = await serve((req, res) => {
      if (req.url === '/401') res.writeHead(401).end('{"error":"bad key"}')
      else if (req.url === '/413') res.writeHead(413).end('payload too large')
      else if (req.url === '/422-batch') res.writeHead(422).end('{"error":"batch size 64 > maximum allowed batch size 32","error_type":"validation"}')
      else res.writeHead(422).end('{"error":"Input validation error: `inputs` must have less than 512 tokens","error_type":"validation"}')
    })
    const http = new HttpClient({ baseUrl: url, sleep: fakeClock().sleep })
    const fail = (p: string): Promise<HttpError> => http.request({ path: p, json: {} }).then(() => { throw new Error('resolved') }, (e: HttpError) => e)
    expect((await fail('/401')).message).toBe(`server ${url}/401: HTTP 401 Unauthorized after 1 attempt, expected 2xx; body: "{\\"error\\":\\"bad key\\"}"; sent: POST {}`)
    expect((await fail('/413')).batchTooLarge).toBe(true)
    expect((await fail('/422-batch')).batchTooLarge).toBe(true)
    const tokens = await fail('/422-tokens')
    expect([tokens.batchTooLarge, tokens.status]).toEqual([false, 422])
    expect(seen.length).toBe(4)
    expect(http.stats).toEqual({ requests: 4, retries: 0, failed: 4 })
  })

  it('a refused connection is retried, then named', async () => {
    const { url } = await serve((_req, res) => res.end())
    servers.splice(0).forEach((s) => s.close())
    const http = new HttpClient({ baseUrl: url, sleep: fakeClock().sleep, maxAttempts: 2 })
    const err = (await http.request({ path: '/info' }).catch((e: unknown) => e)) as HttpError
    expect(err.message).toMatch(new RegExp(`^server ${url}/info: no response \\(ECONNREFUSED.*\\) after 2 attempts, expected 2xx within 2 attempts; sent: GET$`))
    expect(err.status).toBeUndefined()
  })

  it('keeps at most `concurrency` requests in flight and sends the bearer token', async () => {
    let inFlight = 0
    let most = 0
    const { url, seen } = await serve((_req, res) => {
      inFlight++
      most = Math.max(most, inFlight)
      setTimeout(() => {
        inFlight--
        res.end('{}')
      }, 20)
    })
    const http = new HttpClient({ baseUrl: url, concurrency: 3, apiKey: apiKeyFromEnv('HARDNEG_TEST_KEY', { HARDNEG_TEST_KEY: ' sk-test ' }) })
    await Promise.all(Array.from({ length: 12 }, () => http.request({ path: '/', json: {} })))
    expect(most).toBe(3)
    expect(seen.every((r) => r.headers.authorization === 'Bearer sk-test')).toBe(true)
  })

  it.each([
    [{}, '--api-key-env HARDNEG_KEY: the variable is not set, expected the API key in it'],
    [{ HARDNEG_KEY: '  ' }, '--api-key-env HARDNEG_KEY: the variable is empty, expected the API key in it'],
  ])('apiKeyFromEnv(%j) fails without showing a key', (env, message) => {
    expect(() => apiKeyFromEnv('HARDNEG_KEY', env)).toThrow(message)
  })

  it('rejects a base URL that is not http(s)', () => {
    expect(() => new HttpClient({ baseUrl: 'localhost:8080' })).toThrow("--server 'localhost:8080': protocol localhost:, expected http: or https:")
    expect(() => new HttpClient({ baseUrl: 'not a url' })).toThrow("--server 'not a url': not a URL, expected e.g. http://localhost:8000/v1")
  })
})
