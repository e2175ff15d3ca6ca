/**
 * Scale-out on a real engine: a Slurm cluster on loopback (.ci/slurm-up.sh: munged,
 * slurmctld, slurmd n1 and n2, Debian's slurm-wlm 22.05) runs `sbatch --array=0-3
 * mine-negatives ... --worker-count 4` and a merge job with `--dependency=afterok`; the
 * merged shards are the one-process run's, byte for byte. A task that fails is the only
 * one `hardneg merge --status` lists; resubmitted with `sbatch --array=<that list>`, the
 * run merges. A 2 x 2 query x pool split runs the same way. Skipped, saying why, where
 * Slurm is not installed or cannot start (not root).
 */
import { execFile, execFileSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from './_helpers.js'
import { expectSameRun, setAside, SNLI_FULL } from './_scale-fixture.js'

const run = promisify(execFile)
const ROOT = path.resolve(import.meta.dirname, '..')
const CLUSTER = path.join(os.tmpdir(), `hardneg-slurm-${process.pid}`)

function whyNoSlurm(): string | undefined {
  for (const bin of ['sbatch', 'squeue', 'scontrol', 'slurmctld', 'slurmd', 'munged', 'mungekey']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' })
    } catch {
      return `${bin} not found (Debian's slurm-wlm and munge; .ci/run installs them)`
    }
  }
  if (process.getuid?.() !== 0) return 'not root (the loopback cluster runs slurmd as SlurmUser root)'
  return undefined
}

const skip = whyNoSlurm()
if (skip) console.log(`slurm.test.ts skipped: ${skip}`)

let env: NodeJS.ProcessEnv = process.env

async function sbatch(args: string[]): Promise<string> {
  const { stdout } = await run('sbatch', ['--parsable', ...args], { env })
  return stdout.trim().split(';')[0] as string
}

/** Waits until none of `jobs` is queued or running; returns each job's (or array task's) state and exit code. */
async function waitFor(jobs: string[], seconds = 180): Promise<string[]> {
  const until = Date.now() + seconds * 1000
  while (Date.now() < until) {
    const { stdout } = await run('squeue', ['-h', '-j', jobs.join(','), '-o', '%i %T'], { env }).catch(() => ({ stdout: '' }))
    if (stdout.trim() === '') break
    await new Promise((r) => setTimeout(r, 300))
  }
  const states: string[] = []
  for (const job of jobs) {
    const { stdout } = await run('scontrol', ['-o', 'show', 'job', job], { env })
    for (const line of stdout.trim().split('\n')) {
      const state = /JobState=(\S+)/.exec(line)?.[1]
      const code = /ExitCode=(\S+)/.exec(line)?.[1]
      const task = /ArrayTaskId=(\S+)/.exec(line)?.[1]
      states.push(`${task ?? job} ${state} ${code}`)
    }
  }
  return states.sort()
}

const node = process.execPath
const mineArgs = ['--pairs', SNLI_FULL.pairs, '--preset', 'simcse', '--query-embeddings', SNLI_FULL.queryEmbeddings, '--positive-embeddings', SNLI_FULL.positiveEmbeddings, '--threads', '1', '--quiet']
const quote = (args: string[]): string => args.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')

describe.skipIf(skip !== undefined)('Slurm job arrays on a loopback cluster', () => {
  beforeAll(async () => {
    const { stdout } = await run(path.join(ROOT, '.ci', 'slurm-up.sh'), [CLUSTER])
    env = { ...process.env, SLURM_CONF: /SLURM_CONF=(\S+)/.exec(stdout)?.[1] ?? path.join(CLUSTER, 'slurm.conf') }
  }, 60_000)
  afterAll(async () => {
    await run(path.join(ROOT, '.ci', 'slurm-down.sh'), [CLUSTER]).catch(() => undefined)
  })

  it('an array of 4 workers and a dependent merge give the one-process shards; a failed task is resubmitted alone', async () => {
    const dir = await tempDir()
    const logs = path.join(dir, 'logs')
    await mkdir(logs)
    const out = path.join(dir, 'run')
    await run(node, [path.join(ROOT, 'bin', 'mine-negatives.js'), ...mineArgs, '--out', out])
    const ref = await setAside(out, path.join(dir, 'ref'))

    const worker = `${quote([node, path.join(ROOT, 'bin', 'mine-negatives.js'), ...mineArgs, '--out', out, '--worker-count', '4'])}`
    const array = await sbatch(['--array=0-3', '-c', '1', '-o', path.join(logs, 'w-%a.out'), '--wrap', worker])
    const merge = await sbatch([`--dependency=afterok:${array}`, '-o', path.join(logs, 'merge.out'), '--wrap', quote([node, path.join(ROOT, 'bin', 'hardneg.js'), 'merge', '--out', out, '--quiet'])])
    expect(await waitFor([array, merge])).toEqual(['0 COMPLETED 0:0', '1 COMPLETED 0:0', '2 COMPLETED 0:0', '3 COMPLETED 0:0', `${merge} COMPLETED 0:0`].sort())
    expect(await readFile(path.join(logs, 'merge.out'), 'utf8')).toMatch(/^hardneg: merged 4 worker parts\n/)
    await expectSameRun(out, ref)

    // Task 2 fails on its first try (its embeddings file is missing until `ready` exists).
    const out2 = path.join(dir, 'run2')
    const ready = path.join(dir, 'ready')
    const flaky = `if [ "$SLURM_ARRAY_TASK_ID" = 2 ] && [ ! -e ${quote([ready])} ]; then qe=${quote([path.join(dir, 'missing.npy')])}; else qe=${quote([SNLI_FULL.queryEmbeddings])}; fi; ` +
      `exec ${quote([node, path.join(ROOT, 'bin', 'mine-negatives.js'), ...mineArgs.slice(0, 4)])} --query-embeddings "$qe" ${quote([...mineArgs.slice(6), '--out', out2, '--worker-count', '4'])}`
    await writeFile(path.join(dir, 'mine.sbatch'), `#!/bin/bash\n${flaky}\n`)
    const first = await sbatch(['--array=0-3', '-c', '1', '-o', path.join(logs, 'f-%a.out'), path.join(dir, 'mine.sbatch')])
    expect(await waitFor([first])).toEqual(['0 COMPLETED 0:0', '1 COMPLETED 0:0', '2 FAILED 2:0', '3 COMPLETED 0:0'])
    const status = await run(node, [path.join(ROOT, 'bin', 'hardneg.js'), 'merge', '--out', out2, '--status']).catch((err: { code: number; stdout: string; stderr: string }) => err)
    expect(status).toMatchObject({ code: 1, stdout: '2\n' })
    expect((status as { stderr: string }).stderr).toContain('failed: 2: E_BAD_FILE: ')

    await writeFile(ready, '')
    const again = await sbatch([`--array=${(status as { stdout: string }).stdout.trim()}`, '-c', '1', '-o', path.join(logs, 'r-%a.out'), path.join(dir, 'mine.sbatch')])
    const merge2 = await sbatch([`--dependency=afterok:${again}`, '-o', path.join(logs, 'merge2.out'), '--wrap', quote([node, path.join(ROOT, 'bin', 'hardneg.js'), 'merge', '--out', out2, '--quiet'])])
    expect(await waitFor([again, merge2])).toEqual(['2 COMPLETED 0:0', `${merge2} COMPLETED 0:0`].sort())
    await mkdir(path.join(dir, 'ref2'))
    // The second run differs from the first only in its --out, which the manifest records.
    const ref2 = { ...ref, manifest: ref.manifest.replaceAll(JSON.stringify(out), JSON.stringify(out2)) }
    await expectSameRun(out2, ref2)
  })

  it('a 2 x 2 query x pool split on 4 array tasks merges to the one-process shards', async () => {
    const dir = await tempDir()
    const out = path.join(dir, 'run')
    await run(node, [path.join(ROOT, 'bin', 'mine-negatives.js'), ...mineArgs, '--keep-filtered', '2', '--out', out])
    const ref = await setAside(out, path.join(dir, 'ref'))
    const worker = quote([node, path.join(ROOT, 'bin', 'mine-negatives.js'), ...mineArgs, '--keep-filtered', '2', '--out', out, '--worker-count', '4', '--pool-parts', '2'])
    const array = await sbatch(['--array=0-3', '-c', '1', '-o', path.join(dir, 'w-%a.out'), '--wrap', worker])
    const merge = await sbatch([`--dependency=afterok:${array}`, '-o', path.join(dir, 'merge.out'), '--wrap', quote([node, path.join(ROOT, 'bin', 'hardneg.js'), 'merge', '--out', out, '--quiet'])])
    expect(await waitFor([array, merge])).toEqual(['0 COMPLETED 0:0', '1 COMPLETED 0:0', '2 COMPLETED 0:0', '3 COMPLETED 0:0', `${merge} COMPLETED 0:0`].sort())
    expect(await readFile(path.join(dir, 'w-1.out'), 'utf8')).toMatch(/^hardneg: worker 1 of 4, pool part 1 of 2 \(slurm: SLURM_ARRAY_TASK_ID=1 - SLURM_ARRAY_TASK_MIN=0, --worker-count 4\)/)
    await expectSameRun(out, ref)
  })
})
