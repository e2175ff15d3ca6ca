/**
 * The output directory's life cycle. Shards are written into a hidden staging
 * directory inside `--out`; only a finished run moves them into place, and the manifest
 * goes last. A crash leaves the staging directory and no manifest: nothing that looks
 * complete.
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { HardnegError } from '../errors.js'
import { MANIFEST_FILE, REPORT_FILE } from './manifest.js'

const SHARD_PATTERN = /^part-\d{5,}\.(parquet|jsonl)$/
const STAGING_PREFIX = '.hardneg-staging-'

/**
 * Makes `out` (if needed) and a fresh staging directory in it. Refuses an `out` that
 * holds an earlier run unless `overwrite` is set.
 */
export async function openOutput(out: string, overwrite: boolean): Promise<string> {
  const names = await prepareOutput(out, overwrite)
  for (const n of names.filter((n) => n.startsWith(STAGING_PREFIX))) await rm(path.join(out, n), { recursive: true, force: true })
  const staging = path.join(out, `${STAGING_PREFIX}${process.pid}`)
  await mkdir(staging)
  return staging
}

/**
 * Makes `out` (if needed) and refuses one that holds a finished run (a manifest or shards)
 * unless `overwrite` is set; returns the names in it. A worker of a distributed run
 * checks its `--out` here too, without touching anything another process may be writing.
 */
export async function prepareOutput(out: string, overwrite: boolean): Promise<string[]> {
  try {
    await mkdir(out, { recursive: true })
  } catch (err) {
    throw new HardnegError('E_OUTPUT', `cannot create the output directory (${(err as NodeJS.ErrnoException).code}), expected a writable path`, { file: out })
  }
  const names = await readdir(out)
  const earlier = names.filter((n) => n === MANIFEST_FILE || SHARD_PATTERN.test(n))
  if (earlier.length > 0 && !overwrite) {
    throw new HardnegError(
      'E_OUTPUT',
      `holds an earlier run (${earlier.slice(0, 3).join(', ')}${earlier.length > 3 ? ', ...' : ''}); expected an empty directory, or pass --overwrite`,
      { file: out },
    )
  }
  return names
}

/**
 * Replaces any earlier run in `out` with the shards in `staging`: the old manifest goes
 * first, so no mix of old and new ever looks complete; the old run's report.html goes too,
 * so no page describes shards that are gone. The caller writes the new manifest afterwards.
 */
export async function commitOutput(out: string, staging: string, shardFiles: readonly string[]): Promise<void> {
  await rm(path.join(out, MANIFEST_FILE), { force: true })
  await rm(path.join(out, REPORT_FILE), { force: true })
  for (const n of await readdir(out)) if (SHARD_PATTERN.test(n)) await rm(path.join(out, n))
  for (const f of shardFiles) await rename(path.join(staging, f), path.join(out, f))
  await rm(staging, { recursive: true, force: true })
}

/** Removes the staging directory after a failed run. */
export async function abandonOutput(staging: string): Promise<void> {
  await rm(staging, { recursive: true, force: true })
}
