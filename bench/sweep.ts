/**
 * What `--sweep-thresholds` costs: exact mining of the synthetic clustered benchmark data
 * with and without a five-value sweep, run alternately (A B A B ...) in one invocation so
 * that both see the same machine, and compared on the manifest's search time. Prints
 * numbers and a markdown line; never fails on time.
 *
 * `node dist/bench/sweep.js [--rows 30000] [--dim 1024] [--repeats 3] [--thresholds 0,0.05,0.1,0.2,0.3] [--threads N]`
 */
import { readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { runMeasured } from './_measure.js'
import { generateDataset } from './generate.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

async function cpuFlags(): Promise<string> {
  const info = await readFile('/proc/cpuinfo', 'utf8').catch(() => '')
  const flags = new Set(info.match(/\b(avx512[a-z_]*|avx_vnni|avx2)\b/g) ?? [])
  const model = /model name\s*:\s*(.*)/.exec(info)?.[1] ?? os.cpus()[0]?.model ?? '?'
  return `${model}; ${[...flags].sort().join(' ') || 'no avx2'}; ${os.availableParallelism()} cores`
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '30000' },
      dim: { type: 'string', default: '1024' },
      repeats: { type: 'string', default: '3' },
      thresholds: { type: 'string', default: '0,0.05,0.1,0.2,0.3' },
      threads: { type: 'string' },
    },
  })
  const rows = Number(values.rows)
  const dim = Number(values.dim)
  const repeats = Number(values.repeats)
  const ds = await generateDataset({ rows, dim })
  const cli = path.join(REPO, 'bin', 'mine-negatives.js')
  const base = ['--pairs', ds.pairs, '--preset', 'simcse', '--query-embeddings', ds.queries, '--positive-embeddings', ds.positives, '--search', 'exact', '--quiet', '--json', '--overwrite', ...(values.threads ? ['--threads', values.threads] : [])]
  const out = path.join(REPO, 'bench', 'out', 'sweep')
  const search: Record<'off' | 'sweep', number[]> = { off: [], sweep: [] }
  const wall: Record<'off' | 'sweep', number[]> = { off: [], sweep: [] }
  console.log(`sweep cost: ${rows} x ${dim}, exact, thresholds ${values.thresholds}, ${repeats} alternating repeats; CPU ${await cpuFlags()}; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  for (let r = 0; r < repeats; r++) {
    for (const mode of ['off', 'sweep'] as const) {
      const args = [...base, '--out', path.join(out, mode), ...(mode === 'sweep' ? ['--sweep-thresholds', values.thresholds as string] : [])]
      const run = await runMeasured(process.execPath, [cli, ...args])
      if (run.code !== 0) throw new Error(`mine-negatives exited ${run.code}: ${run.stderr.trim().split('\n').pop()}`)
      const manifest = JSON.parse(await readFile(path.join(out, mode, 'manifest.json'), 'utf8')) as { timings: Record<string, number> }
      search[mode].push(manifest.timings.search as number)
      wall[mode].push(run.wallSeconds)
      console.log(`  ${mode.padEnd(5)} repeat ${r + 1}: search ${(manifest.timings.search as number).toFixed(2)} s, wall ${run.wallSeconds.toFixed(2)} s, peak RSS ${(run.peakRssBytes / 2 ** 20).toFixed(0)} MiB`)
    }
  }
  const off = median(search.off)
  const on = median(search.sweep)
  console.log(`median search: off ${off.toFixed(2)} s, with sweep ${on.toFixed(2)} s: +${((100 * (on - off)) / off).toFixed(1)} % (wall ${median(wall.off).toFixed(2)} -> ${median(wall.sweep).toFixed(2)} s); load after ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  console.log(`| ${rows} x ${dim} | ${values.thresholds} | ${off.toFixed(2)} s | ${on.toFixed(2)} s | +${((100 * (on - off)) / off).toFixed(1)} % |`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
