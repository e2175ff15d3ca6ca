/**
 * The `merge` command: the parts the workers of a distributed run wrote into `--out` in,
 * the run's shards and manifest out; `--status` says which workers to resubmit.
 */
import { Command } from 'commander'
import { describeIncomplete, formatIndexList, mergeParts, readPartsStatus, type PartsStatus } from '../index.js'
import type { CliIO } from './main.js'
import { formatSummary } from './mine.js'
import { createProgress } from './progress.js'

/** Builds the `merge` command. */
export function mergeCommand(io: CliIO): Command {
  const cmd = new Command('merge')
    .description(
      'Merge the parts that the workers of a distributed run (mine-negatives ... --worker-index I --worker-count N) wrote into --out: ' +
        'the shards and manifest.json of a one-process run with the same options, byte for byte. With --status, list the workers to resubmit.',
    )
    .requiredOption('--out <dir>', "the run's output directory, where every worker wrote its part")
    .option('--status', 'print the workers to resubmit on stdout, as sbatch --array= takes them (1,3-5); nothing when all are done', false)
    .option('--keep-parts', 'keep the parts after a successful merge (default: removed)', false)
    .option('--json', 'print the summary (or, with --status, the status) as JSON on stdout', false)
    .option('--quiet', 'no progress output', false)
  cmd.addHelpText(
    'after',
    `
Examples:
  $ hardneg merge --out shards/
  $ sbatch --array=$(hardneg merge --out shards/ --status) mine.sbatch
      resubmit the workers that failed, were killed or ran another command

Exit codes: 0 merged (--status: every worker is done); 1 (--status only) some
workers are to be resubmitted; 2 bad input, or a part is missing, failed or of
another run (the message names the workers; nothing is written). See docs/scale.md.`,
  )
  cmd.action(async (flags: Record<string, unknown>) => {
    const out = flags.out as string
    if (flags.status === true) {
      const status = await readPartsStatus(out)
      if (flags.json === true) io.stdout(JSON.stringify(status, null, 2) + '\n')
      else {
        io.stderr(formatStatus(status))
        if (status.resubmit.length > 0) io.stdout(formatIndexList(status.resubmit) + '\n')
      }
      if (status.resubmit.length > 0) io.exitCode = 1
      return
    }
    const progress = createProgress({ write: io.stderr, tty: io.stderrIsTTY })
    try {
      const result = await mergeParts({ out, keepParts: flags.keepParts === true, ...(flags.quiet === true ? {} : { onProgress: progress.onProgress }) })
      progress.done()
      if (flags.json === true) io.stdout(JSON.stringify(result.summary, null, 2) + '\n')
      else io.stdout(`hardneg: merged ${result.workers} worker parts\n${formatSummary(result)}`)
    } finally {
      progress.done()
    }
  })
  return cmd
}

/** The status for a person (on stderr; stdout keeps only the list to resubmit). */
function formatStatus(status: PartsStatus): string {
  if (status.merged) return `hardneg: ${status.out} holds a merged run (manifest.json) and no parts: nothing to resubmit\n`
  const n = status.workers ?? 0
  const split = status.poolParts !== undefined && status.poolParts > 1 ? `, ${n / status.poolParts} query shares x ${status.poolParts} pool parts` : ''
  const lines = [`hardneg: run ${status.fingerprint?.slice(0, 12) ?? '(no finished part)'} in ${status.out}: ${status.done.length} of ${n} workers done${split}`]
  if (status.done.length > 0) lines.push(`  done: ${formatIndexList(status.done)}`)
  for (const f of status.failed) lines.push(`  failed: ${f.index}: ${f.why}`)
  for (const m of status.mismatched) lines.push(`  mismatched: ${m.index}: ${m.why}`)
  if (status.missing.length > 0) lines.push(`  missing (not run, still running, or killed): ${formatIndexList(status.missing)}`)
  if (status.stale.length > 0) lines.push(`  ignored, of a run with another worker count: ${status.stale.join(', ')}`)
  lines.push(status.resubmit.length === 0 ? `  all done: hardneg merge --out ${status.out}` : `  resubmit: ${formatIndexList(status.resubmit)}   (${describeIncomplete(status).split(' (')[0]})`)
  return lines.join('\n') + '\n'
}
