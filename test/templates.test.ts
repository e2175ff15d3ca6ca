/**
 * The engine templates under examples/ (Kubernetes, AWS Batch, Google Cloud Batch, Slurm):
 * the Kubernetes manifests validate against the Kubernetes schemas (kubernetes-models), and
 * every template's worker and merge commands, run here with that engine's environment and
 * the SNLI fixture in place of /data, give the one-process run.
 */
import { readFile, symlink, mkdir } from 'node:fs/promises'
import path from 'node:path'
import { Job } from 'kubernetes-models/batch/v1'
import { PersistentVolumeClaim } from 'kubernetes-models/v1'
import { describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { runHardneg, runMineNegatives, type CliIO } from '../src/cli/main.js'
import { tempDir } from './_helpers.js'
import { expectSameRun, setAside, SNLI } from './_scale-fixture.js'

const EXAMPLES = path.join(import.meta.dirname, '..', 'examples')

function io(env: Record<string, string> = {}): CliIO {
  return { env, stdout: () => undefined, stderr: () => undefined, stderrIsTTY: false }
}

async function yamlDocs(file: string): Promise<Record<string, unknown>[]> {
  return parseAllDocuments(await readFile(path.join(EXAMPLES, 'kubernetes', file), 'utf8')).map((d) => d.toJS() as Record<string, unknown>)
}

/** A data folder laid out as the templates expect (in/nli_for_simcse.csv, in/sent0.npy, in/sent1.npy), holding the SNLI fixture. */
async function dataDir(): Promise<string> {
  const data = await tempDir()
  await mkdir(path.join(data, 'in'))
  await mkdir(path.join(data, 'out'))
  await symlink(path.join(SNLI, 'snli-test-triplets.csv'), path.join(data, 'in', 'nli_for_simcse.csv'))
  await symlink(path.join(SNLI, 'snli-test-sent0.use512.f16.npy'), path.join(data, 'in', 'sent0.npy'))
  await symlink(path.join(SNLI, 'snli-test-sent1.use512.f16.npy'), path.join(data, 'in', 'sent1.npy'))
  return data
}

/** Runs a template: its workers with each index's environment, then its merge; compares with a one-process run of the worker command. */
async function runTemplate(data: string, worker: string[], merge: string[], envOf: (index: number) => Record<string, string>, workers: number): Promise<void> {
  // One thread here (the templates ask for 8): thread counts change no score, and the manifest records them.
  const local = worker.map((a, i) => (worker[i - 1] === '--threads' ? '1' : a.replace(/^--threads=\d+$/, '--threads=1')))
  const oneProcess = local.filter((a, i) => !a.startsWith('--worker-count') && local[i - 1] !== '--worker-count')
  expect(await runMineNegatives(oneProcess, io())).toBe(0)
  const out = path.join(data, 'out', 'shards')
  const ref = await setAside(out, path.join(data, 'ref'))
  for (let i = 0; i < workers; i++) expect(await runMineNegatives(local, io(envOf(i)))).toBe(0)
  expect(await runHardneg(merge, io())).toBe(0)
  await expectSameRun(out, ref)
}

describe('engine templates', () => {
  it('the Kubernetes Indexed Job, merge Job and ReadWriteMany claim are valid Kubernetes objects that agree with each other', async () => {
    const [pvc] = await yamlDocs('pvc.yaml')
    const [mine] = await yamlDocs('mine-job.yaml')
    const [merge] = await yamlDocs('merge-job.yaml')
    expect(() => new PersistentVolumeClaim(pvc as never).validate()).not.toThrow()
    const mineJob = new Job(mine as never)
    const mergeJob = new Job(merge as never)
    expect(() => mineJob.validate()).not.toThrow()
    expect(() => mergeJob.validate()).not.toThrow()
    expect(new PersistentVolumeClaim(pvc as never).spec?.accessModes).toEqual(['ReadWriteMany'])
    expect(mineJob.spec?.completionMode).toBe('Indexed')
    const args = mineJob.spec?.template.spec?.containers[0]?.args ?? []
    expect(args).toContain(`--worker-count=${mineJob.spec?.completions}`)
    for (const job of [mineJob, mergeJob]) expect(job.spec?.template.spec?.volumes?.[0]?.persistentVolumeClaim?.claimName).toBe(pvc?.metadata && (pvc.metadata as { name: string }).name)
    // A broken manifest does not validate: the check can fail.
    expect(() => new Job({ ...(mine as object), spec: { ...(mine as { spec: object }).spec, completions: 'four' } } as never).validate()).toThrow()
  })

  it('the Kubernetes workers (JOB_COMPLETION_INDEX) and merge give the one-process run', async () => {
    const data = await dataDir()
    const [mine] = await yamlDocs('mine-job.yaml')
    const [merge] = await yamlDocs('merge-job.yaml')
    const at = (a: string): string => a.replace(/\/data\//g, `${data}/`)
    const worker = (new Job(mine as never).spec?.template.spec?.containers[0]?.args ?? []).map(at)
    const mergeArgs = (new Job(merge as never).spec?.template.spec?.containers[0]?.args ?? []).map(at)
    await runTemplate(data, worker, mergeArgs, (i) => ({ JOB_COMPLETION_INDEX: String(i) }), 4)
  })

  it('the AWS Batch array job (AWS_BATCH_JOB_ARRAY_INDEX/SIZE) and its dependent merge give the one-process run', async () => {
    const data = await dataDir()
    const def = JSON.parse(await readFile(path.join(EXAMPLES, 'aws-batch', 'job-definition.json'), 'utf8')) as { containerProperties: { command: string[] }; parameters: { workers: string } }
    const mergeDef = JSON.parse(await readFile(path.join(EXAMPLES, 'aws-batch', 'merge-definition.json'), 'utf8')) as { containerProperties: { command: string[] } }
    const at = (a: string): string => a.replace(/\/data\//g, `${data}/`).replace('Ref::workers', def.parameters.workers)
    const [bin, ...worker] = def.containerProperties.command.map(at)
    const [mergeBin, ...merge] = mergeDef.containerProperties.command.map(at)
    expect([bin, mergeBin]).toEqual(['mine-negatives', 'hardneg'])
    expect(await readFile(path.join(EXAMPLES, 'aws-batch', 'submit.sh'), 'utf8')).toContain('--array-properties size=4 --parameters workers=4')
    await runTemplate(data, worker, merge, (i) => ({ AWS_BATCH_JOB_ARRAY_INDEX: String(i), AWS_BATCH_JOB_ARRAY_SIZE: '4' }), 4)
  })

  it('the Google Cloud Batch job (BATCH_TASK_INDEX/COUNT, a barrier, the merge on task 0) gives the one-process run', async () => {
    const data = await dataDir()
    const job = JSON.parse(await readFile(path.join(EXAMPLES, 'gcp-batch', 'job.json'), 'utf8')) as {
      taskGroups: { taskCount: number; taskSpec: { runnables: { container?: { entrypoint: string; commands: string[] }; barrier?: unknown; script?: { text: string } }[] } }[]
    }
    const group = job.taskGroups[0] as (typeof job.taskGroups)[number]
    const [container, barrier, script] = group.taskSpec.runnables
    expect(container?.container?.entrypoint).toBe('mine-negatives')
    expect(barrier?.barrier).toBeDefined()
    const at = (a: string): string => a.replace(/\/mnt\/disks\/data\//g, `${data}/`)
    const merge = /hardneg (merge .*?);/.exec(script?.script?.text ?? '')?.[1]?.split(' ').map(at) ?? []
    expect(merge[0]).toBe('merge')
    await runTemplate(data, (container?.container?.commands ?? []).map(at), merge, (i) => ({ BATCH_TASK_INDEX: String(i), BATCH_TASK_COUNT: String(group.taskCount) }), group.taskCount)
  })
})
