/**
 * The `validate` command: dataset and shard checks for CI. Flags to the options of
 * `validateDataset`/`validateShards`, the report to stdout, and the exit code: 0 when no
 * finding reaches --fail-on, 1 when one does, 2 when validation could not run.
 */
import { Command, Option } from 'commander'
import {
  HardnegError, formatReport, mergeReports, readManifest, reportFails, validateDataset, validateShards,
  type ReportFormat, type Severity, type ValidateDatasetOptions, type ValidationReport,
} from '../index.js'
import { choiceArg, intArg, listArg, numberArg } from './_args.js'
import type { CliIO } from './main.js'
import { createProgress } from './progress.js'

/** Builds the `validate` command; it sets `io.exitCode` to 1 when a finding reaches --fail-on. */
export function validateCommand(io: CliIO): Command {
  const cmd = new Command('validate')
    .description(
      'Check input pairs, embedding files and mined shard sets before a training job uses them. Lists every problem ' +
        '(up to --max-findings per code) instead of stopping at the first, and reports as text, JSON, JUnit XML or GitHub annotations.',
    )
    .option('--pairs <file>', 'pairs file: CSV/TSV with header, JSONL or Parquet')
    .addOption(new Option('--pairs-format <fmt>', 'pairs format (default: from the extension); --format is the report format here').choices(['csv', 'tsv', 'jsonl', 'parquet']))
    .addOption(new Option('--preset <name>', 'column layout: simcse = sent0,sent1(,hard_neg); mmeb = qry,pos_text(,subset)').choices(['simcse', 'mmeb']))
    .option('--id-col <col>', 'id column; enables the duplicate-id check (default: row number)')
    .option('--query-col <col>', "query column (default: preset's, else 'query')")
    .option('--positive-col <col>', "positive column (default: preset's, else 'positive')")
    .option('--group-col <col>', 'group column; pools are per group (default: one global pool)')
    .option('--carry <cols>', 'carried columns that must be present, comma-separated', listArg)
    .option('--query-embeddings <file>', 'query embeddings .npy [rows, dim], row i = pair i')
    .option('--positive-embeddings <file>', 'positive embeddings .npy [rows, dim], row i = pair i')
    .option('--query-image-col <col>', "query image path column (default: preset's, mmeb: qry_image_path)")
    .option('--positive-image-col <col>', "positive image path column (default: preset's, mmeb: pos_image_path)")
    .option('--image-root <dir>', "directory image paths resolve against (default: the pairs file's directory)")
    .option('--min-image-side <px>', 'report images narrower or lower than px pixels', intArg('--min-image-side', 1), 16)
    .option('--max-image-pixels <n>', 'report images of more than n pixels (width x height)', intArg('--max-image-pixels', 1), 100_000_000)
    .option('--image-cache <file>', 'image hash cache file, reused by the next run (default: none)')
    .option('--image-concurrency <n>', 'images decoded at once', intArg('--image-concurrency', 1), 4)
    .option('--k <n>', 'negatives per row mining will ask for, for the group-size check (default 8)', intArg('--k', 1))
    .option('--norm-tolerance <x>', 'report vectors whose L2 norm is further than x from 1', numberArg('--norm-tolerance', 0), 0.01)
    .option('--shards <dir>', 'a mined shard directory (part-*.parquet and manifest.json)')
    .option('--rescore <n>', 'recompute the scores of n seeded shard rows from --query-embeddings/--positive-embeddings', intArg('--rescore', 1))
    .option('--rescore-tolerance <x>', 'largest accepted |stored - recomputed| score', numberArg('--rescore-tolerance', 0), 1e-4)
    .option('--forbid <files...>', 'evaluation sets no query, positive or negative may appear in: CSV/TSV/JSONL/Parquet (every string value) or .txt (one per line)')
    .option('--forbid-image-root <dir>', "directory the forbid files' image paths resolve against (default: each forbid file's directory)")
    .option('--image-dup-distance <n>', 'an image this close to a forbidden image (imageDistance) is a near-duplicate', intArg('--image-dup-distance', 0), 58)
    .option('--forbid-min-length <n>', 'ignore forbid strings shorter than n characters once normalised', intArg('--forbid-min-length', 1), 1)
    .option('--sample <n>', 'check n seeded rows of each embedding file and of the shards instead of all (fast pre-commit runs)', intArg('--sample', 1))
    .option('--seed <s>', 'seed of --sample and --rescore', intArg('--seed', 0), 0)
    .option('--format <fmt>', 'report format: text | json | junit | github', choiceArg('--format', ['text', 'json', 'junit', 'github'] as const), 'text')
    .option('--fail-on <severity>', 'exit 1 when a finding is at least this severe: error | warning | none', choiceArg('--fail-on', ['error', 'warning', 'none'] as const), 'error')
    .option('--max-findings <n>', 'findings kept per code (all are counted)', intArg('--max-findings', 1), 20)
    .option('--quiet', 'no progress output while images decode', false)
  cmd.addHelpText(
    'after',
    `
Examples:
  $ hardneg validate --pairs nli_for_simcse.csv --preset simcse \\
      --query-embeddings sent0.npy --positive-embeddings sent1.npy
  $ hardneg validate --shards shards/ --forbid mmeb-eval.jsonl heldout.txt --format junit > validate.xml
  $ hardneg validate --shards shards/ --rescore 500 --query-embeddings sent0.npy --positive-embeddings sent1.npy \\
      --sample 10000 --format github

Images (--preset mmeb or --query-image-col/--positive-image-col): each distinct file decoded
once; missing, undecodable and out-of-size images are findings; with --forbid, images of the
forbid files' image columns (*image_path, image) match by near-duplicate distance.
Finding codes: docs/validate.md. Exit codes: 0 no finding reaches --fail-on, 1 one does
(or an internal error, which prints a stack), 2 validation could not run (bad flags,
unreadable file).`,
  )
  cmd.action(async (flags: Record<string, unknown>) => {
    const progress = createProgress({ write: io.stderr, tty: io.stderrIsTTY })
    let report: ValidationReport
    try {
      report = await runValidate({ ...flags, ...(flags.quiet === true ? {} : { onProgress: progress.onProgress }) }, io)
    } finally {
      progress.done()
    }
    const failOn = flags.failOn as Severity | 'none'
    io.stdout(formatReport(report, { format: flags.format as ReportFormat, failOn }))
    if (reportFails(report, failOn)) io.exitCode = 1
  })
  return cmd
}

async function runValidate(flags: Record<string, unknown>, io: CliIO): Promise<ValidationReport> {
  const str = (k: string): string | undefined => (typeof flags[k] === 'string' ? (flags[k] as string) : undefined)
  const shards = str('shards')
  const hasInputs = str('pairs') !== undefined || str('queryEmbeddings') !== undefined || str('positiveEmbeddings') !== undefined
  if (!hasInputs && shards === undefined) {
    throw new HardnegError('E_BAD_OPTION', 'nothing to validate, expected --pairs, --query-embeddings/--positive-embeddings and/or --shards')
  }
  if (flags.rescore !== undefined && shards === undefined) {
    throw new HardnegError('E_BAD_OPTION', '--rescore checks mined scores, expected --shards too')
  }
  const common = {
    ...copy(flags, ['forbid', 'sample', 'forbidImageRoot', 'imageRoot', 'imageCache', 'onProgress']),
    imageConcurrency: flags.imageConcurrency as number,
    imageDupDistance: flags.imageDupDistance as number,
    forbidMinLength: flags.forbidMinLength as number,
    seed: flags.seed as number,
    maxFindings: flags.maxFindings as number,
  }
  let columns: Record<string, unknown> = {
    ...(str('pairsFormat') !== undefined ? { format: str('pairsFormat') as ValidateDatasetOptions['format'] } : {}),
    ...copy(flags, ['preset', 'idCol', 'queryCol', 'positiveCol', 'groupCol', 'carry']),
  }
  const imageColumns = copy(flags, ['queryImageCol', 'positiveImageCol'])
  if (shards !== undefined && str('pairs') !== undefined && Object.keys(columns).length === 0) {
    columns = await recordedColumns(shards)
    const shown = Object.entries(columns).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : String(v)}`).join(', ')
    if (shown !== '') io.stderr(`hardneg: reading --pairs with the columns the run recorded in ${shards}/manifest.json: ${shown}\n`)
  }
  const reports: ValidationReport[] = []
  // Every input given is checked as an input; the same files serve --rescore.
  if (hasInputs) {
    reports.push(await validateDataset({
      ...common,
      ...columns,
      ...imageColumns,
      ...copy(flags, ['pairs', 'queryEmbeddings', 'positiveEmbeddings', 'k']),
      normTolerance: flags.normTolerance as number,
      minImageSide: flags.minImageSide as number,
      maxImagePixels: flags.maxImagePixels as number,
    }))
  }
  if (shards !== undefined) {
    reports.push(await validateShards({
      ...common,
      ...columns,
      ...copy(flags, ['pairs', 'queryEmbeddings', 'positiveEmbeddings', 'rescore']),
      rescoreTolerance: flags.rescoreTolerance as number,
      shards,
    }))
  }
  return mergeReports(...reports)
}

/** The column options a mining run recorded in its manifest ({} when there is none to read). */
async function recordedColumns(shards: string): Promise<Record<string, unknown>> {
  const options = await readManifest(shards).then(m => m.options, () => undefined)
  const out: Record<string, unknown> = {}
  if (typeof options !== 'object' || options === null) return out
  for (const key of ['format', 'preset', 'idCol', 'queryCol', 'positiveCol', 'groupCol'] as const) {
    if (typeof options[key] === 'string') out[key] = options[key]
  }
  if (Array.isArray(options.carry) && options.carry.every(c => typeof c === 'string')) out.carry = options.carry
  return out
}

function copy(flags: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of keys) if (flags[k] !== undefined) out[k] = flags[k]
  return out
}
