/** Which worker a process is: flags beat each engine's environment; an index without a count is an error; index lists for sbatch --array=. */
import { describe, expect, it } from 'vitest'
import { detectWorker, formatIndexList, parseIndexList } from '../src/index.js'

describe('detectWorker', () => {
  it.each([
    ['no flag, no engine: a one-process run', {}, {}, undefined],
    ['flags alone', { workerIndex: 2, workerCount: 4 }, {}, { index: 2, count: 4, poolParts: 1, engine: 'flags', source: '--worker-index 2, --worker-count 4' }],
    ['Slurm, relative to SLURM_ARRAY_TASK_MIN', {}, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '4', SLURM_ARRAY_TASK_COUNT: '4' },
      { index: 1, count: 4, poolParts: 1, engine: 'slurm', source: 'SLURM_ARRAY_TASK_ID=5 - SLURM_ARRAY_TASK_MIN=4, SLURM_ARRAY_TASK_COUNT=4' }],
    ['Slurm with --worker-count equal to the array size', { workerCount: 4 }, { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '4' },
      { index: 3, count: 4, poolParts: 1, engine: 'slurm', source: 'SLURM_ARRAY_TASK_ID=3 - SLURM_ARRAY_TASK_MIN=0, --worker-count 4' }],
    ['Slurm task resubmitted alone (--array=2): the flag wins, the task id is the index', { workerCount: 4 }, { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_MIN: '2', SLURM_ARRAY_TASK_COUNT: '1' },
      { index: 2, count: 4, poolParts: 1, engine: 'slurm', source: 'SLURM_ARRAY_TASK_ID=2, --worker-count 4' }],
    ['Slurm, a part of an array numbered from 4 (ids past the count are relative after all)', { workerCount: 4 }, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '4', SLURM_ARRAY_TASK_COUNT: '2' },
      { index: 1, count: 4, poolParts: 1, engine: 'slurm', source: 'SLURM_ARRAY_TASK_ID=5 - SLURM_ARRAY_TASK_MIN=4, --worker-count 4' }],
    ['Kubernetes Indexed Job with --worker-count', { workerCount: 8 }, { JOB_COMPLETION_INDEX: '7' },
      { index: 7, count: 8, poolParts: 1, engine: 'kubernetes', source: 'JOB_COMPLETION_INDEX=7, --worker-count 8' }],
    ['AWS Batch array job', {}, { AWS_BATCH_JOB_ARRAY_INDEX: '0', AWS_BATCH_JOB_ARRAY_SIZE: '3' },
      { index: 0, count: 3, poolParts: 1, engine: 'aws-batch', source: 'AWS_BATCH_JOB_ARRAY_INDEX=0, AWS_BATCH_JOB_ARRAY_SIZE=3' }],
    ['Google Cloud Batch', {}, { BATCH_TASK_INDEX: '4', BATCH_TASK_COUNT: '6' },
      { index: 4, count: 6, poolParts: 1, engine: 'gcp-batch', source: 'BATCH_TASK_INDEX=4, BATCH_TASK_COUNT=6' }],
    ['--worker-index beats the environment', { workerIndex: 1 }, { BATCH_TASK_INDEX: '4', BATCH_TASK_COUNT: '6' },
      { index: 1, count: 6, poolParts: 1, engine: 'flags', source: '--worker-index 1, BATCH_TASK_COUNT=6' }],
    ['pool parts', { workerIndex: 3, workerCount: 4, poolParts: 2 }, {}, { index: 3, count: 4, poolParts: 2, engine: 'flags', source: '--worker-index 3, --worker-count 4' }],
  ])('%s', (_name, flags, env, expected) => {
    expect(detectWorker(flags, env)).toEqual(expected)
  })

  it.each([
    ['a Kubernetes index without a count', {}, { JOB_COMPLETION_INDEX: '3' },
      'worker index 3 from JOB_COMPLETION_INDEX (Kubernetes Indexed Job) without a worker count, expected --worker-count N (a Kubernetes Indexed Job gives no count)'],
    ['a flag index without a count', { workerIndex: 1 }, {}, 'worker index 1 given by --worker-index without a worker count, expected --worker-count N'],
    ['a count without an index', { workerCount: 4 }, {},
      '--worker-count 4 without a worker index, expected --worker-index I (or an array job\'s index variable: SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX, BATCH_TASK_INDEX)'],
    ['an index past the count', { workerIndex: 4, workerCount: 4 }, {}, 'worker index 4 (--worker-index 4, --worker-count 4), expected an index below the worker count 4'],
    ['a count the pool parts do not divide', { workerIndex: 0, workerCount: 3, poolParts: 2 }, {},
      '--worker-count 3 with --pool-parts 2, expected a count divisible by the pool parts (query shares x pool parts)'],
    ['pool parts without a worker', { poolParts: 2 }, {}, "--pool-parts 2: not a worker, expected --worker-index and --worker-count (or an array job's environment) with it"],
    ['a bad variable', {}, { AWS_BATCH_JOB_ARRAY_INDEX: 'x', AWS_BATCH_JOB_ARRAY_SIZE: '2' }, "AWS_BATCH_JOB_ARRAY_INDEX: 'x', expected an integer >= 0"],
  ])('rejects %s', (_name, flags, env, message) => {
    expect(() => detectWorker(flags, env)).toThrow(message)
    try {
      detectWorker(flags, env)
    } catch (err) {
      expect((err as Error).message).toBe(message)
    }
  })
})

describe('index lists', () => {
  it.each([
    [[], ''],
    [[3], '3'],
    [[1, 3, 4, 5], '1,3-5'],
    [[5, 0, 1, 2, 3, 9, 10], '0-3,5,9,10'],
  ])('%j -> %s and back', (list, text) => {
    expect(formatIndexList(list)).toBe(text)
    if (text !== '') expect(parseIndexList(text)).toEqual([...list].sort((a, b) => a - b))
  })
})
