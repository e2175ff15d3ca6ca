/**
 * A fast stand-in for a GPU embedding server, run as its own process so that the
 * benchmark's process measures the client alone: it answers OpenAI `POST /v1/embeddings`
 * (and `GET /v1/models`) with precomputed unit vectors, one response body cached per batch
 * size, so a request costs it little more than writing the bytes.
 *
 *   node dist/bench/_standin.js --dim 1024 [--floats]    (prints "listening <url>")
 *
 * `--floats` answers float arrays even when base64 is asked for, as some servers do.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mulberry32 } from '../src/random.js'

const args = process.argv.slice(2)
const dim = Number(args[args.indexOf('--dim') + 1] ?? 1024)
const floats = args.includes('--floats')

const next = mulberry32(11)
const pool = Array.from({ length: 64 }, () => {
  const v = new Float32Array(dim)
  let n = 0
  for (let j = 0; j < dim; j++) n += (v[j] = next() - 0.5) ** 2
  for (let j = 0; j < dim; j++) v[j] = (v[j] as number) / Math.sqrt(n)
  return v
})
const encoded = pool.map((v) => JSON.stringify(Buffer.from(v.buffer).toString('base64')))
const asFloats = pool.map((v) => JSON.stringify(Array.from(v)))
const bodies = new Map<string, Buffer>()

function body(count: number, base64: boolean): Buffer {
  const key = `${count}:${base64}`
  let b = bodies.get(key)
  if (b === undefined) {
    const items = Array.from({ length: count }, (_, i) => `{"object":"embedding","index":${i},"embedding":${(base64 ? encoded : asFloats)[i % 64]}}`)
    b = Buffer.from(`{"object":"list","model":"standin","data":[${items.join(',')}],"usage":{"prompt_tokens":${count},"total_tokens":${count}}}`)
    bodies.set(key, b)
  }
  return b
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":[{"id":"standin","object":"model"}]}')
      return
    }
    const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input: string[] | string; encoding_format?: string }
    const count = Array.isArray(request.input) ? request.input.length : 1
    const out = body(count, request.encoding_format === 'base64' && !floats)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': out.length }).end(out)
  })
})
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
