/**
 * The worker and merge commands as a job script drives them: index from the engine's
 * environment, --status naming the workers to resubmit, a failed, a missing and a
 * mismatched worker, the merge refusing (exit 2, no manifest) until they are resubmitted,
 * a damaged part, and the combinations a split pool rejects.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runHardneg, runMineNegatives, type CliIO } from '../src/cli/main.js'
import { tempDir } from './_helpers.js'
import { expectSameRun, setAside, SNLI_FULL, snliSubset } from './_scale-fixture.js'

function captureIO(env: Record<string, string> = {}): CliIO & { out: string[]; err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, env, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), stderrIsTTY: false }
}

async function inputs(dir: string): Promise<string[]> {
  const i = await snliSubset(dir, 600)
  return ['--pairs', i.pairs, '--id-col', 'id', '--query-col', 'query', '--positive-col', 'positive', '--group-col', 'group',
    '--query-embeddings', i.queryEmbeddings, '--positive-embeddings', i.positiveEmbeddings, '--threads', '1', '--quiet']
}

describe('hardneg merge and workers on the command line', () => {
  it('resubmits a failed, a missing and a mismatched worker, then merges to the one-process run', async () => {
    const dir = await tempDir()
    const args = await inputs(dir)
    const out = path.join(dir, 'run')
    expect(await runMineNegatives([...args, '--out', out], captureIO())).toBe(0)
    const ref = await setAside(out, path.join(dir, 'ref'))
    const slurm = (id: number): Record<string, string> => ({ SLURM_ARRAY_TASK_ID: String(id), SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '5' })

    const io0 = captureIO(slurm(0))
    expect(await runMineNegatives([...args, '--out', out, '--worker-count', '5'], io0)).toBe(0)
    expect(io0.out.join("")).toMatch(/^hardneg: worker 0 of 5 \(slurm: SLURM_ARRAY_TASK_ID=0 - SLURM_ARRAY_TASK_MIN=0, --worker-count 5\): 120 queries in 1 group -> .*worker-00000-of-00005/)
    expect(await runMineNegatives([...args, '--out', out, '--worker-count', '5'], captureIO(slurm(4)))).toBe(0)
    // Worker 1 fails (its embeddings are gone), worker 2 runs another command, worker 3 never runs.
    const bad = args.map((a) => (a.endsWith('q.npy') ? path.join(dir, 'missing.npy') : a))
    const io1 = captureIO(slurm(1))
    expect(await runMineNegatives([...bad, '--out', out, '--worker-count', '5'], io1)).toBe(2)
    expect(await runMineNegatives([...args, '--out', out, '--worker-count', '5', '--k', '9'], captureIO(slurm(2)))).toBe(0)
    expect((await readdir(out)).filter((n) => !n.startsWith('.'))).toEqual([])

    const status = captureIO()
    expect(await runHardneg(['merge', '--out', out, '--status'], status)).toBe(1)
    expect(status.out.join('')).toBe('1-3\n')
    const report = status.err.join('')
    expect(report).toContain('2 of 5 workers done')
    expect(report).toContain(`failed: 1: E_BAD_FILE: ${path.join(dir, 'missing.npy')}: `)
    expect(report).toContain('mismatched: 2: options.k: 9, expected 8')
    expect(report).toContain('missing (not run, still running, or killed): 3')

    const merge = captureIO()
    expect(await runHardneg(['merge', '--out', out, '--quiet'], merge)).toBe(2)
    expect(merge.err.join('')).toMatch(new RegExp(`^hardneg: error E_PARTS_INCOMPLETE: ${out.replace(/[/.]/g, '\\$&')}: 3 of 5 workers not done \\(missing: 3; failed: 1 \\(E_BAD_FILE: .*\\); mismatched: 2 \\(options\\.k: 9, expected 8\\)\\); expected a finished part from every worker: resubmit workers 1-3 \\(sbatch --array=1-3\\), then merge again\\n$`))
    expect((await readdir(out)).filter((n) => !n.startsWith('.'))).toEqual([])

    // `sbatch --array=1-3` with the job's usual command: the environment's count is 3, --worker-count wins and the task id is the worker.
    for (const id of [1, 2, 3]) {
      expect(await runMineNegatives([...args, '--out', out, '--worker-count', '5'], captureIO({ SLURM_ARRAY_TASK_ID: String(id), SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '3' }))).toBe(0)
    }
    const done = captureIO()
    expect(await runHardneg(['merge', '--out', out, '--status'], done)).toBe(0)
    expect(done.out.join('')).toBe('')
    expect(done.err.join('')).toContain('all done: hardneg merge --out')
    const merged = captureIO()
    expect(await runHardneg(['merge', '--out', out, '--quiet'], merged)).toBe(0)
    expect(merged.out.join('')).toMatch(/^hardneg: merged 5 worker parts\nhardneg: 600 pairs -> 600 rows in 1 shard/)
    await expectSameRun(out, ref)
    const after = captureIO()
    expect(await runHardneg(['merge', '--out', out, '--status'], after)).toBe(0)
    expect(after.err.join('')).toContain('holds a merged run (manifest.json) and no parts: nothing to resubmit')
  })

  it('finds a damaged part at merge time and writes no manifest', async () => {
    const dir = await tempDir()
    const args = await inputs(dir)
    const out = path.join(dir, 'run')
    for (const i of [0, 1]) expect(await runMineNegatives([...args, '--out', out, '--worker-index', String(i), '--worker-count', '2'], captureIO())).toBe(0)
    const part = path.join(out, '.hardneg-parts', 'worker-00001-of-00002', 'records.bin.gz')
    const bytes = await readFile(part)
    await writeFile(part, bytes.subarray(0, bytes.length >> 1))
    const io = captureIO()
    expect(await runHardneg(['merge', '--out', out, '--quiet'], io)).toBe(2)
    expect(io.err.join('')).toMatch(/^hardneg: error E_BAD_FILE: .*worker-00001-of-00002\/records\.bin\.gz: unreadable after \d+ records \(.*\), expected the \d+ records its part manifest lists \(a worker killed while writing, or a damaged file\)\n$/)
    expect((await readdir(out)).filter((n) => !n.startsWith('.'))).toEqual([])
  })

  it('a worker of a split pool refuses the rescore stage, naming why', async () => {
    const io = captureIO()
    const code = await runMineNegatives(['--pairs', SNLI_FULL.pairs, '--preset', 'simcse', '--query-embeddings', SNLI_FULL.queryEmbeddings, '--positive-embeddings', SNLI_FULL.positiveEmbeddings,
      '--out', path.join(await tempDir(), 'run'), '--worker-index', '0', '--worker-count', '2', '--pool-parts', '2', '--rescore-url', 'http://127.0.0.1:9', '--rescore-api', 'tei-rerank', '--quiet'], io)
    expect(io.err.join('')).toBe("hardneg: error E_BAD_OPTION: --rescore-url with --pool-parts 2, expected --pool-parts 1: the rescore stage needs each query's whole ranking, which a split pool has only at the merge\n")
    expect(code).toBe(2)
  })

  it.each([
    ['hnsw search', ['--search', 'hnsw'], '--pool-parts 2 with --search hnsw, expected --search exact (or auto): a split pool merges exactly only from exact scores'],
    ['the lowest margin anchor', ['--margin-anchor', 'lowest'], "marginAnchor 'lowest' with a split pool, expected 'own': the anchor needs every sibling positive's vector"],
  ])('a split pool rejects %s', async (_name, extra, message) => {
    const out = path.join(await tempDir(), 'run')
    const io = captureIO()
    const code = await runMineNegatives(['--pairs', SNLI_FULL.pairs, '--preset', 'simcse', '--query-embeddings', SNLI_FULL.queryEmbeddings, '--positive-embeddings', SNLI_FULL.positiveEmbeddings,
      '--out', out, '--worker-index', '0', '--worker-count', '2', '--pool-parts', '2', '--quiet', ...extra], io)
    expect(io.err.join('')).toBe(`hardneg: error E_BAD_OPTION: ${message}\n`)
    expect(code).toBe(2)
  })
})
