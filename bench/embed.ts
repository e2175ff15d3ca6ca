/**
 * `hardneg embed` benchmarks (numbers, never pass/fail):
 * - `clients`: the HTTP client choice: Node's fetch, undici 7 (`request` with an Agent, and
 *   its `fetch`), the openai SDK 6; 32 inputs x 1024-d base64 per request against the fast
 *   stand-in (bench/_standin.ts, its own process), concurrency 4: requests/s and the
 *   client's CPU per request including decoding; plus what the SDK returns when a server
 *   answers floats where base64 was asked for.
 * - `model`: texts/s against the loopback USE-lite server (test/_model-server.ts) at
 *   concurrency 1/2/4/8: on this 2-core machine the CPU model is the bottleneck.
 * - `client`: embedPairs against the stand-in at 1024-d, concurrency 1/2/4/8: wall texts/s
 *   and texts per second of client CPU (parsing, base64, checks, float16, positional
 *   writes, journal), the number that must stay far above a GPU server's rate.
 * - `rss`: 662k pairs x 2 sides at 4096-d float16 (`node bin/hardneg.js embed`, a child
 *   measured with GNU time) against the stand-in: peak RSS, wall time, output size. Writes
 *   ~10.8 GB under bench/out/ and deletes it after.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/embed.js [--part clients,model,client,rss] [--rss-rows 662000]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { mkdir, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { embedPairs } from '../src/index.js'
import { loadUse, startModelServer } from '../test/_model-server.js'
import { runMeasured } from './_measure.js'

const ROOT = path.resolve(import.meta.dirname, '..', '..')
const OUT = path.join(ROOT, 'bench', 'out', 'embed')
const args = process.argv.slice(2)
const flag = (name: string, fallback: string): string => {
  const at = args.indexOf(name)
  return (at >= 0 ? args[at + 1] : undefined) ?? fallback
}
const parts = new Set(flag('--part', 'clients,model,client,rss').split(','))

async function standin(dim: number, floats = false): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', '_standin.js'), '--dim', String(dim), ...(floats ? ['--floats'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise<string>((resolve) => {
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      const m = /listening (\S+)/.exec(s)
      if (m) resolve(m[1] as string)
    })
  })
  return { url, child }
}

async function pairsCsv(file: string, rows: number): Promise<void> {
  const words = ['man', 'woman', 'dog', 'street', 'playing', 'guitar', 'field', 'children', 'red', 'shirt']
  const lines = ['query,positive']
  for (let i = 0; i < rows; i++) lines.push(`q${i} a ${words[i % 10]} is ${words[(i * 7) % 10]} near the ${words[(i * 3) % 10]},p${i} the ${words[(i * 5) % 10]} ${words[(i * 9) % 10]}`)
  await writeFile(file, lines.join('\n') + '\n')
}

function cpuFlags(): string {
  const text = readFileSync('/proc/cpuinfo', 'utf8')
  return [...new Set(text.match(/avx512[a-z_]*|avx_vnni|avx2/g) ?? [])].sort().join(' ') || 'none of avx2/avx512/avx_vnni'
}

async function timed(requests: number, concurrency: number, one: () => Promise<Float32Array[]>): Promise<{ perSecond: number; cpuUsPerRequest: number; dim: number }> {
  let next = 0
  let dim = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < requests) dim = (await one())[0]?.length ?? 0
  }))
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  return { perSecond: requests / seconds, cpuUsPerRequest: (cpu.user + cpu.system) / requests, dim }
}

function decode(body: string): Float32Array[] {
  const parsed = JSON.parse(body) as { data: { embedding: string | number[] }[] }
  return parsed.data.map((d) => {
    if (typeof d.embedding !== 'string') return Float32Array.from(d.embedding)
    const b = Buffer.from(d.embedding, 'base64')
    const out = new Float32Array(b.length / 4)
    new Uint8Array(out.buffer).set(b)
    return out
  })
}

async function benchClients(): Promise<void> {
  const { url, child } = await standin(1024)
  const { Agent, request, fetch: undiciFetch } = await import('undici')
  const { default: OpenAI } = await import('openai')
  const input = Array.from({ length: 32 }, (_, i) => `text number ${i} of the batch`)
  const payload = JSON.stringify({ model: 'standin', input, encoding_format: 'base64' })
  const headers = { 'content-type': 'application/json' }
  const agent = new Agent({ connections: 8, headersTimeout: 300_000, bodyTimeout: 300_000 })
  const sdk = new OpenAI({ apiKey: 'none', baseURL: `${url}/v1`, maxRetries: 0 })
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 })
  const nodeHttp = (): Promise<string> => new Promise((resolve, reject) => {
    const req = http.request(`${url}/v1/embeddings`, { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(payload) }, agent: keepAlive }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
  const clients: [string, () => Promise<Float32Array[]>][] = [
    ['node:http request + keep-alive Agent', async () => decode(await nodeHttp())],
    ['node fetch (undici 6 inside Node 20)', async () => decode(await (await fetch(`${url}/v1/embeddings`, { method: 'POST', headers, body: payload })).text())],
    ['undici 7 request + Agent', async () => decode(await (await request(`${url}/v1/embeddings`, { method: 'POST', headers, body: payload, dispatcher: agent })).body.text())],
    ['undici 7 fetch', async () => decode(await (await undiciFetch(`${url}/v1/embeddings`, { method: 'POST', headers, body: payload })).text())],
    ['openai SDK 6.49 embeddings.create', async () => (await sdk.embeddings.create({ model: 'standin', input, encoding_format: 'base64' })).data.map((d) => {
      const e = d.embedding as unknown
      if (typeof e !== 'string') return Float32Array.from(e as number[])
      const b = Buffer.from(e, 'base64')
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
    })],
    ['openai SDK 6.49 (SDK decodes: encoding_format unset)', async () => (await sdk.embeddings.create({ model: 'standin', input })).data.map((d) => Float32Array.from(d.embedding))],
  ]
  console.log('\n## HTTP clients: 32 inputs x 1024-d base64 per request, concurrency 4, 3000 requests each (after 300 warm-up)')
  console.log('| client | requests/s | client CPU per request (µs) | texts/s | dim seen |')
  console.log('|---|---:|---:|---:|---:|')
  for (const [name, one] of clients) {
    await timed(300, 4, one)
    const r = await timed(3000, 4, one)
    console.log(`| ${name} | ${r.perSecond.toFixed(0)} | ${r.cpuUsPerRequest.toFixed(0)} | ${(r.perSecond * 32).toFixed(0)} | ${r.dim} |`)
  }
  child.kill()
  await agent.close()
  keepAlive.destroy()

  const floats = await standin(1024, true)
  const sdk2 = new OpenAI({ apiKey: 'none', baseURL: `${floats.url}/v1`, maxRetries: 0 })
  const got = await sdk2.embeddings.create({ model: 'standin', input: ['a', 'b'] })
  const ours = await embedPairs({ pairs: await tinyPairs(), server: `${floats.url}/v1`, api: 'openai', out: path.join(OUT, 'floats'), overwrite: true })
  console.log(`\nServer answering floats where base64 was asked for: the openai SDK (encoding_format unset) returns vectors of ${got.data[0]?.embedding.length} values (of 1024); hardneg's client writes dim ${ours.summary.dim}.`)
  floats.child.kill()
}

async function tinyPairs(): Promise<string> {
  await mkdir(OUT, { recursive: true })
  const file = path.join(OUT, 'tiny.csv')
  await pairsCsv(file, 4)
  return file
}

async function benchModel(): Promise<void> {
  const use = await loadUse()
  const server = await startModelServer({ embed: use })
  const snli = readFileSync(path.join(ROOT, 'fixtures', 'snli', 'snli-test-triplets.csv'), 'utf8').split('\n').slice(1)
  console.log('\n## Against the loopback USE-lite server (CPU model, same machine), 96 pairs = 192 fresh texts per row, batch 32')
  console.log('| concurrency | texts/s | requests | seconds |')
  console.log('|---:|---:|---:|---:|')
  let offset = 0
  for (const concurrency of [1, 2, 4, 8]) {
    const file = path.join(OUT, `model-${concurrency}.csv`)
    await mkdir(OUT, { recursive: true })
    await writeFile(file, 'query,positive,hard_neg\n' + snli.slice(offset, offset + 96).join('\n') + '\n')
    offset += 96
    const r = await embedPairs({ pairs: file, queryCol: 'query', positiveCol: 'positive', server: `${server.url}/v1`, api: 'openai', concurrency, batchSize: 32, out: path.join(OUT, `model-${concurrency}`), overwrite: true })
    console.log(`| ${concurrency} | ${r.summary.textsPerSecond.toFixed(0)} | ${r.summary.requests} | ${r.summary.seconds.toFixed(1)} |`)
  }
  await server.close()
}

async function benchClient(): Promise<void> {
  const { url, child } = await standin(1024)
  await mkdir(OUT, { recursive: true })
  const file = path.join(OUT, 'client-50k.csv')
  await pairsCsv(file, 50_000)
  console.log('\n## Client-side cost: embedPairs against the stand-in, 50,000 pairs = 100,000 distinct texts, 1024-d, float16, batch 32')
  console.log('| concurrency | wall texts/s | client CPU s | texts per client-CPU second |')
  console.log('|---:|---:|---:|---:|')
  for (const concurrency of [1, 2, 4, 8]) {
    const cpu0 = process.cpuUsage()
    const r = await embedPairs({ pairs: file, server: `${url}/v1`, api: 'openai', model: 'standin', concurrency, batchSize: 32, out: path.join(OUT, 'client'), overwrite: true })
    const cpu = process.cpuUsage(cpu0)
    const cpuSeconds = (cpu.user + cpu.system) / 1e6
    console.log(`| ${concurrency} | ${r.summary.textsPerSecond.toFixed(0)} | ${cpuSeconds.toFixed(1)} | ${(r.summary.distinct / cpuSeconds).toFixed(0)} |`)
  }
  child.kill()
  await rm(path.join(OUT, 'client'), { recursive: true, force: true })
}

async function benchRss(): Promise<void> {
  const rows = Number(flag('--rss-rows', '662000'))
  const { url, child } = await standin(4096)
  await mkdir(OUT, { recursive: true })
  const file = path.join(OUT, `rss-${rows}.csv`)
  await pairsCsv(file, rows)
  const out = path.join(OUT, 'rss')
  console.log(`\n## Peak RSS: ${rows.toLocaleString('en-US')} pairs x 2 sides, 4096-d float16, batch 64, concurrency 4 (node bin/hardneg.js embed, GNU time)`)
  const m = await runMeasured(process.execPath, [path.join(ROOT, 'bin', 'hardneg.js'), 'embed', '--pairs', file, '--server', `${url}/v1`, '--api', 'openai', '--model', 'standin',
    '--batch-size', '64', '--concurrency', '4', '--out', out, '--overwrite', '--quiet'])
  const bytes = m.code === 0 ? (await stat(path.join(out, 'queries.npy'))).size + (await stat(path.join(out, 'positives.npy'))).size : 0
  console.log(m.stdout.trim() || m.stderr.trim())
  console.log(`exit ${m.code}; wall ${m.wallSeconds.toFixed(1)} s; peak RSS ${(m.peakRssBytes / 2 ** 20).toFixed(0)} MiB (${m.rssSource}); output ${(bytes / 1e9).toFixed(2)} GB`)
  child.kill()
  await rm(out, { recursive: true, force: true })
  await rm(file, { force: true })
}

console.log(`# hardneg embed benchmark\n${new Date().toISOString()}; ${os.cpus()[0]?.model}, ${os.cpus().length} cores; CPU flags: ${cpuFlags()}; Node ${process.version}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`)
if (parts.has('clients')) await benchClients()
if (parts.has('model')) await benchModel()
if (parts.has('client')) await benchClient()
if (parts.has('rss')) await benchRss()
await rm(path.join(OUT, 'floats'), { recursive: true, force: true })
