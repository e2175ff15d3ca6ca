/**
 * The rescore stage's benchmarks (numbers, never pass/fail):
 * - `client`: the rescorer against the fast stand-in reranker (bench/_rescore-standin.ts,
 *   its own process): 2,000 queries x 51 candidates (a positive and the top 50) = 102,000
 *   pairs, batch 32, at concurrency 1/2/4/8: wall pairs/s and pairs per second of client
 *   CPU (request bodies, parsing, checks, the cache); then the same pairs again, all from
 *   the cache.
 * - `latency`: the same against a stand-in that takes 20 ms per request, as a GPU batch
 *   would: throughput against concurrency.
 * - `model`: pairs/s against the loopback USE-lite server (test/_rescore-routes.ts) at
 *   concurrency 1/2/4/8; its CPU model is the bottleneck on this machine.
 * - `mine`: mining the SNLI fixture (2,921 rows) without and with --rescore-url (the
 *   stand-in, top 50): the stage's overhead on a whole run.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/rescore.js [--part client,latency,model,mine]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createRescorer, mineNegatives } from '../src/index.js'
import { cached, loadUse, startModelServer } from '../test/_model-server.js'
import { addRescoreRoutes } from '../test/_rescore-routes.js'

const ROOT = path.resolve(import.meta.dirname, '..', '..')
const args = process.argv.slice(2)
const parts = new Set((args[args.indexOf('--part') + 1] ?? 'client,latency,model,mine').split(','))

async function standin(delayMs = 0): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', '_rescore-standin.js'), '--delay-ms', String(delayMs)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise<string>((resolve) => {
    child.stdout?.on('data', (d: Buffer) => {
      const m = /listening (\S+)/.exec(d.toString())
      if (m) resolve(m[1] as string)
    })
  })
  return { url, child }
}

/** `queries` queries of 51 distinct candidate texts each. */
function workload(queries: number, seed: string): { query: { text: string }; candidates: { text: string }[] }[] {
  return Array.from({ length: queries }, (_, q) => ({
    query: { text: `${seed} query ${q}: a man is playing a guitar on a stage in front of a crowd` },
    candidates: Array.from({ length: 51 }, (_, c) => ({ text: `${seed} candidate ${q}-${c}: someone performs music for people who came to listen tonight` })),
  }))
}

function cpuFlags(): string {
  return `${os.cpus()[0]?.model ?? '?'}; ${os.availableParallelism()} cores; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`
}

async function client(): Promise<void> {
  const { url, child } = await standin()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hardneg-bench-rescore-'))
  console.log(`\n## Client cost: rescorer vs the fast stand-in, 2,000 queries x 51 pairs, batch 32 (${cpuFlags()})`)
  console.log('| concurrency | pairs/s (wall) | pairs per client-CPU second | again from the cache: pairs/s |')
  console.log('|---|---|---|---|')
  try {
    for (const concurrency of [1, 2, 4, 8]) {
      const cache = path.join(dir, `c${concurrency}.bin`)
      const work = workload(2000, `c${concurrency}`)
      const r = await createRescorer({ url, api: 'cohere-rerank', model: 'standin', concurrency, cache })
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      await r.score(work)
      const wall = (performance.now() - t0) / 1000
      const cpu = process.cpuUsage(cpu0)
      await r.close()
      const again = await createRescorer({ url, api: 'cohere-rerank', model: 'standin', concurrency, cache })
      const t1 = performance.now()
      await again.score(work)
      const cachedWall = (performance.now() - t1) / 1000
      await again.close()
      const pairs = 2000 * 51
      console.log(`| ${concurrency} | ${Math.round(pairs / wall).toLocaleString('en-US')} | ${Math.round(pairs / ((cpu.user + cpu.system) / 1e6)).toLocaleString('en-US')} | ${Math.round(pairs / cachedWall).toLocaleString('en-US')} |`)
    }
  } finally {
    child.kill()
    await rm(dir, { recursive: true, force: true })
  }
}

async function latency(): Promise<void> {
  const { url, child } = await standin(20)
  console.log(`\n## Throughput against concurrency: a stand-in taking 20 ms per request of 32 pairs (${cpuFlags()})`)
  console.log('| concurrency | pairs/s | requests/s |')
  console.log('|---|---|---|')
  try {
    for (const concurrency of [1, 2, 4, 8, 16]) {
      const r = await createRescorer({ url, api: 'cohere-rerank', model: 'standin', concurrency })
      const t0 = performance.now()
      await r.score(workload(200, `l${concurrency}`))
      const wall = (performance.now() - t0) / 1000
      await r.close()
      console.log(`| ${concurrency} | ${Math.round((200 * 51) / wall).toLocaleString('en-US')} | ${(r.stats.requests / wall).toFixed(1)} |`)
    }
  } finally {
    child.kill()
  }
}

async function model(): Promise<void> {
  const embed = cached(await loadUse())
  const server = await startModelServer({ embed })
  addRescoreRoutes(server, embed)
  console.log(`\n## Against the USE-lite test server (the model on this CPU is the bottleneck) (${cpuFlags()})`)
  console.log('| concurrency | pairs/s |')
  console.log('|---|---|')
  try {
    for (const concurrency of [1, 2, 4, 8]) {
      const r = await createRescorer({ url: server.url, api: 'tei-rerank', concurrency })
      const t0 = performance.now()
      await r.score(workload(20, `m${concurrency}`))
      const wall = (performance.now() - t0) / 1000
      await r.close()
      console.log(`| ${concurrency} | ${Math.round((20 * 51) / wall).toLocaleString('en-US')} |`)
    }
  } finally {
    await server.close()
  }
}

async function mine(): Promise<void> {
  const { url, child } = await standin()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hardneg-bench-rescore-'))
  const snli = path.join(ROOT, 'fixtures', 'snli')
  const base = {
    pairs: path.join(snli, 'snli-test-triplets.csv'), preset: 'simcse' as const,
    queryEmbeddings: path.join(snli, 'snli-test-sent0.use512.f16.npy'), positiveEmbeddings: path.join(snli, 'snli-test-sent1.use512.f16.npy'),
  }
  console.log(`\n## A whole run: SNLI 2,921 rows, exact, k 8, without and with --rescore-url (stand-in, top 50, concurrency 4) (${cpuFlags()})`)
  try {
    const times: Record<string, number[]> = { off: [], on: [], cached: [] }
    for (let i = 0; i < 3; i++) {
      for (const mode of ['off', 'on', 'cached'] as const) {
        const out = path.join(dir, mode)
        const t0 = performance.now()
        await mineNegatives({
          ...base, out, overwrite: true, search: 'exact',
          ...(mode === 'off' ? {} : { rescoreUrl: url, rescoreApi: 'cohere-rerank' as const, rescoreModel: 'standin', rescoreCache: path.join(dir, mode === 'cached' ? 'kept.bin' : `fresh-${i}.bin`) }),
        })
        times[mode]!.push((performance.now() - t0) / 1000)
      }
    }
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[1] as number
    console.log(`median of 3: without ${med(times.off!).toFixed(2)} s; with the stage, every pair sent (148,971 pairs) ${med(times.on!).toFixed(2)} s; with every pair cached ${med(times.cached!).toFixed(2)} s`)
  } finally {
    child.kill()
    await rm(dir, { recursive: true, force: true })
  }
}

for (const [name, run] of [['client', client], ['latency', latency], ['model', model], ['mine', mine]] as const) if (parts.has(name)) await run()
