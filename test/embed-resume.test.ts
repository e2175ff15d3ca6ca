/**
 * A real `node bin/hardneg.js embed` killed (SIGKILL) mid-run, then re-run with the same
 * command: it continues from its journal, re-sends at most what was in flight (counted at
 * the server), and its files are byte-identical to an uninterrupted run's.
 */
import { spawn } from 'node:child_process'
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runHardneg } from '../src/cli/main.js'
import { tempDir } from './_helpers.js'
import { captureIO, modelAndServer, ROOT, snliSubset, writeSubset } from './_embed-fixture.js'
import type { ModelServer } from './_model-server.js'

let server: ModelServer

beforeAll(async () => {
  const subset = snliSubset(60, 0)
  ;({ server } = await modelAndServer(subset.rows.flatMap((r) => [r.sent0, r.sent1]), { delayMs: 40 }))
})
afterAll(async () => {
  await server?.close()
})

function run(args: string[]): { done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>; kill: () => void } {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'hardneg.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  return {
    done: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))),
    kill: () => child.kill('SIGKILL'),
  }
}

const posts = (): number => server.requests.filter((r) => r.method === 'POST' && r.path === '/v1/embeddings').length

it('a killed run, re-run, continues from its checkpoint and ends byte-identical to an uninterrupted run', async () => {
  const dir = await tempDir()
  const pairs = path.join(dir, 'pairs.csv')
  await writeSubset(pairs, snliSubset(60, 0))
  const args = (out: string): string[] => [
    'embed', '--pairs', pairs, '--preset', 'simcse', '--server', `${server.url}/v1`, '--api', 'openai',
    '--batch-size', '4', '--concurrency', '2', '--out', out, '--quiet',
  ]
  const batches = 120 / 4

  // Uninterrupted, for reference.
  const whole = path.join(dir, 'whole')
  expect(await runHardneg(args(whole), captureIO())).toBe(0)

  // Killed after 10 answers.
  const out = path.join(dir, 'killed')
  const before = posts()
  let answered = 0
  const first = run(args(out))
  server.onAnswer = () => {
    if (++answered === 10) first.kill()
  }
  const killed = await first.done
  server.onAnswer = undefined
  expect(killed.signal).toBe('SIGKILL')
  const sentFirst = posts() - before
  expect(sentFirst).toBeGreaterThanOrEqual(10)
  expect(sentFirst).toBeLessThan(batches)
  expect((await readdir(out)).filter((n) => !n.startsWith('.'))).toEqual([]) // nothing looks complete

  const mid = posts()
  const second = await run(args(out)).done
  expect(second.stderr).toBe('')
  expect(second.code).toBe(0)
  const sentSecond = posts() - mid
  // At most the 2 requests in flight when the first run died are sent again.
  expect(sentSecond).toBeLessThanOrEqual(batches - 10 + 2)
  expect(sentFirst + sentSecond).toBeLessThanOrEqual(batches + 2)
  const resumed = Number(/resumed: (\d+) distinct texts from the checkpoint/.exec(second.stdout)?.[1])
  expect(resumed).toBeGreaterThanOrEqual(10 * 4 - 2 * 4)
  expect(resumed + sentSecond * 4).toBe(120)

  for (const f of ['queries.npy', 'positives.npy']) {
    expect((await readFile(path.join(out, f))).equals(await readFile(path.join(whole, f)))).toBe(true)
  }
  const a = JSON.parse(await readFile(path.join(out, 'embed-manifest.json'), 'utf8')) as { outputs: unknown[]; counts: { resumed: number } }
  const b = JSON.parse(await readFile(path.join(whole, 'embed-manifest.json'), 'utf8')) as { outputs: unknown[] }
  expect(a.outputs).toEqual(b.outputs)
  expect(a.counts.resumed).toBe(resumed)
  expect((await readdir(out)).sort()).toEqual(['embed-manifest.json', 'positives.npy', 'queries.npy'])
})
