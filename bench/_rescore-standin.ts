/**
 * A fast stand-in for a GPU reranker, its own process so that the benchmark's process
 * measures the client alone: `POST /v1/rerank` (the Cohere shape) answers each document
 * with a deterministic score in [0, 1) from a hash of the (query, document) texts, sorted
 * as rerankers answer; `GET /v1/models` lists one model. `--delay-ms N` waits N ms per
 * request, as a GPU's batch time would.
 *
 *   node dist/bench/_rescore-standin.js [--delay-ms 0]    (prints "listening <url>")
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

const args = process.argv.slice(2)
const delayMs = Number(args[args.indexOf('--delay-ms') + 1] ?? 0) || 0

function score(query: string, doc: string): number {
  let h = 0x811c9dc5
  for (const text of [query, doc]) for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return ((h >>> 0) % 1_000_000) / 1_000_000
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":[{"id":"standin","object":"model"}]}')
      return
    }
    const r = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { query: string; documents: string[] }
    const results = r.documents.map((d, index) => ({ index, relevance_score: score(r.query, d) })).sort((a, b) => b.relevance_score - a.relevance_score)
    const out = Buffer.from(JSON.stringify({ id: 'standin', model: 'standin', results }))
    const send = (): void => void res.writeHead(200, { 'content-type': 'application/json', 'content-length': out.length }).end(out)
    if (delayMs > 0) setTimeout(send, delayMs)
    else send()
  })
})
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
