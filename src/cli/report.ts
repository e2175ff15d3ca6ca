/**
 * The `report` command: a mined shard directory in, one self-contained report.html out.
 */
import path from 'node:path'
import { Command } from 'commander'
import { REPORT_FILE, writeReport, type ReportOptions, type WriteReportResult } from '../index.js'
import { intArg } from './_args.js'
import type { CliIO } from './main.js'
import { createProgress } from './progress.js'

/** Builds the `report` command. */
export function reportCommand(io: CliIO): Command {
  const cmd = new Command('report')
    .description(
      'Write a self-contained HTML report of a mining run: the run header, score histograms overall and per group, ' +
        'a per-group table, and a seeded sample of rows with their negatives and filtered candidates. Opens offline.',
    )
    .requiredOption('--shards <dir>', 'a mined shard directory (manifest.json and part-*.parquet)')
    .option('--out <file>', `the HTML file to write (default: <shards>/${REPORT_FILE})`)
    .option('--samples <n>', 'rows shown in the gallery, a seeded uniform sample', intArg('--samples', 0), 50)
    .option('--seed <s>', 'seed of the sample', intArg('--seed', 0), 0)
    .option('--bins <n>', 'histogram bins over the score range [-1, 1]', intArg('--bins', 2), 200)
    .option('--image-root <dir>', "directory the shards' image paths resolve against (default: the run's image root, else the pairs file's directory)")
    .option('--no-thumbnails', 'show image paths instead of embedded thumbnails')
    .option('--quiet', 'no progress output', false)
  cmd.addHelpText(
    'after',
    `
Examples:
  $ hardneg report --shards shards/
      writes shards/${REPORT_FILE}
  $ hardneg report --shards shards/ --out review.html --samples 100 --seed 7

Mine with --keep-filtered N to see the filtered candidates (and their rules) in the
gallery and the filtered-score histogram. Image columns of a multimodal run are shown
as thumbnails. See docs/report.md. Exit codes: 0 written, 2 bad input or options.`,
  )
  cmd.action(async (flags: Record<string, unknown>) => {
    const progress = createProgress({ write: io.stderr, tty: io.stderrIsTTY })
    let result: WriteReportResult
    try {
      result = await writeReport({
        shards: flags.shards as string,
        samples: flags.samples as number,
        seed: flags.seed as number,
        bins: flags.bins as number,
        thumbnails: flags.thumbnails !== false,
        ...(typeof flags.out === 'string' ? { out: flags.out } : {}),
        ...(typeof flags.imageRoot === 'string' ? { imageRoot: flags.imageRoot } : {}),
        ...(flags.quiet === true ? {} : { onProgress: progress.onProgress }),
      })
    } finally {
      progress.done()
    }
    io.stdout(formatReportLine(result))
  })
  return cmd
}

/** Writes the report of a run just mined (`mine --report [file]`); returns the line to print. */
export async function reportAfterMining(shards: string, target: string | true, options: Pick<ReportOptions, 'onProgress'>): Promise<string> {
  const result = await writeReport({ shards, ...(target === true ? {} : { out: target }), ...options })
  return formatReportLine(result)
}

function formatReportLine({ out, bytes, data }: WriteReportResult): string {
  const groups = data.groups.length
  return `hardneg: report of ${data.rows.toLocaleString('en-US')} rows (${groups} group${groups === 1 ? '' : 's'}, ${data.samples.length} sampled) -> ` +
    `${path.normalize(out)} (${(bytes / 1e6).toFixed(2)} MB)\n`
}
