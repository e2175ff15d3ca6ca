/**
 * The `embed` command: flags to EmbedOptions, a progress bar (texts/s, ETA), and the
 * summary line: texts, distinct texts, requests, retries, seconds, texts/s.
 */
import path from 'node:path'
import { Command, Option } from 'commander'
import { EMBED_MANIFEST_FILE, embedPairs, type EmbedOptions, type EmbedResult } from '../index.js'
import { choiceArg, intArg, numberArg } from './_args.js'
import type { CliIO } from './main.js'
import { createProgress } from './progress.js'

/** Builds the `embed` command. */
export function embedCommand(io: CliIO): Command {
  const cmd = new Command('embed')
    .description(
      'Compute the embeddings mine takes with an embedding server you run (OpenAI-compatible: vLLM, TEI, Infinity, Ollama, NIM; ' +
        "or TEI's own API): queries.npy and positives.npy (row i = pair row i, as mine numbers them), corpus.npy with --corpus, " +
        'and embed-manifest.json, written last. Each distinct text is sent once. A killed run, re-run with the same command, resumes.',
    )
    .requiredOption('--pairs <files...>', 'pairs file(s): CSV/TSV with header, JSONL or Parquet; several are numbered across files as mine numbers them')
    .addOption(new Option('--pairs-format <fmt>', 'pairs format (default: from the extension)').choices(['csv', 'tsv', 'jsonl', 'parquet']))
    .addOption(new Option('--preset <name>', 'column layout, as mine: simcse = sent0,sent1(,hard_neg); mmeb = qry,qry_image_path,pos_text,pos_image_path').choices(['simcse', 'mmeb']))
    .option('--query-col <col>', "query column (default: preset's, else 'query')")
    .option('--positive-col <col>', "positive column (default: preset's, else 'positive')")
    .option('--query-image-col <col>', "query image path column (default: preset's)")
    .option('--positive-image-col <col>', "positive image path column (default: preset's)")
    .option('--image-root <dir>', "directory image paths are relative to (default: the first pairs file's directory)")
    .option('--on-bad-image <policy>', 'missing or undecodable image: error | skip (row left out, zeros, listed in the manifest; mine --on-bad-image skip drops the same rows)', choiceArg('--on-bad-image', ['error', 'skip'] as const), 'error')
    .option('--corpus <file>', 'external candidate pool with columns id,text: also writes corpus.npy (positive prefix)')
    .requiredOption('--server <url>', 'base URL: openai = the OpenAI base including /v1 (http://gpu1:8000/v1); tei = the server root (http://gpu1:8080)')
    .addOption(new Option('--api <shape>', 'openai: POST {server}/embeddings (images: vLLM chat-style messages); tei: POST {server}/embed, GET {server}/info').choices(['openai', 'tei']).makeOptionMandatory())
    .option('--model <name>', 'model named in OpenAI requests (default: the only one GET {server}/models lists)')
    .option('--dtype <type>', 'element type of the .npy files: float16 | float32', choiceArg('--dtype', ['float16', 'float32'] as const), 'float16')
    .option('--batch-size <n>', "inputs per request (default: TEI's /info max_client_batch_size, else 32); halved on 413 or 422 'batch too large'", intArg('--batch-size', 1))
    .option('--concurrency <n>', 'requests in flight', intArg('--concurrency', 1), 4)
    .option('--query-prefix <text>', "prepended to every query, e.g. 'query: '", '')
    .option('--positive-prefix <text>', "prepended to every positive and corpus text, e.g. 'passage: '", '')
    .option('--api-key-env <var>', 'environment variable holding the API key (sent as a bearer token)')
    .option('--timeout <seconds>', 'one request attempt', numberArg('--timeout', 0.001, 86400), 300)
    .option('--max-attempts <n>', 'attempts per request (429, 503, other 5xx, dropped connections are retried with backoff)', intArg('--max-attempts', 1), 8)
    .option('--overwrite', 'discard an unfinished run and replace a finished one in --out', false)
    .requiredOption('--out <dir>', 'output directory')
    .option('--json', 'print the summary as JSON on stdout', false)
    .option('--quiet', 'no progress output', false)
  cmd.addHelpText(
    'after',
    `
Examples:
  $ hardneg embed --pairs nli_for_simcse.csv --preset simcse --server http://gpu1:8080 --api tei --out emb/
  $ hardneg embed --pairs train.jsonl --server http://gpu1:8000/v1 --api openai --model intfloat/e5-large-v2 \\
      --query-prefix 'query: ' --positive-prefix 'passage: ' --out emb/
  $ hardneg embed --preset mmeb --pairs MMEB-train/*/train-*.parquet --image-root MMEB-train/images \\
      --server http://gpu1:8000/v1 --api openai --model TIGER-Lab/VLM2Vec-Full --out emb/
  then: hardneg mine --pairs ... --query-embeddings emb/queries.npy --positive-embeddings emb/positives.npy

Until the run completes nothing in --out looks complete: work goes to --out/.hardneg-embed/
and ${EMBED_MANIFEST_FILE} is written last. Re-running the same command resumes; a changed
server, model, prefix, dtype or input refuses to resume (--overwrite starts over).
Exit codes: 0 done, 2 bad input, options or server responses, 1 internal error.`,
  )
  cmd.action(async (flags: Record<string, unknown>) => {
    const str = (k: string): string | undefined => (typeof flags[k] === 'string' ? (flags[k] as string) : undefined)
    const pairs = flags.pairs as string[]
    const progress = createProgress({ write: io.stderr, tty: io.stderrIsTTY })
    const options: EmbedOptions = {
      pairs: pairs.length === 1 ? (pairs[0] as string) : pairs,
      server: flags.server as string,
      api: flags.api as EmbedOptions['api'],
      out: flags.out as string,
      dtype: flags.dtype as EmbedOptions['dtype'] & string,
      concurrency: flags.concurrency as number,
      queryPrefix: flags.queryPrefix as string,
      positivePrefix: flags.positivePrefix as string,
      onBadImage: flags.onBadImage as 'error' | 'skip',
      timeoutMs: Math.round((flags.timeout as number) * 1000),
      maxAttempts: flags.maxAttempts as number,
      overwrite: flags.overwrite === true,
      ...(str('pairsFormat') !== undefined ? { format: str('pairsFormat') as EmbedOptions['format'] } : {}),
      ...(str('preset') !== undefined ? { preset: str('preset') as EmbedOptions['preset'] } : {}),
      ...(typeof flags.batchSize === 'number' ? { batchSize: flags.batchSize } : {}),
      ...copy(flags, ['queryCol', 'positiveCol', 'queryImageCol', 'positiveImageCol', 'imageRoot', 'corpus', 'model', 'apiKeyEnv']),
      ...(flags.quiet === true ? {} : { onProgress: progress.onProgress }),
    }
    let result: EmbedResult
    try {
      result = await embedPairs(options)
    } finally {
      progress.done()
    }
    io.embedResult = result
    if (flags.json === true) io.stdout(JSON.stringify(result.summary, null, 2) + '\n')
    else io.stdout(formatEmbedSummary(result))
  })
  return cmd
}

function copy(flags: Record<string, unknown>, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of keys) if (typeof flags[k] === 'string') out[k] = flags[k] as string
  return out
}

/** `hardneg embed: 400 texts, 391 distinct texts, 13 requests, 0 retries, 4.2 s, 93 texts/s` and where the files are. */
export function formatEmbedSummary({ out, files, summary, manifest }: EmbedResult): string {
  const n = (x: number): string => x.toLocaleString('en-US')
  const lines = [
    `hardneg embed: ${n(summary.texts)} texts, ${n(summary.distinct)} distinct texts, ${n(summary.requests)} requests, ` +
      `${n(summary.retries)} retries, ${summary.seconds.toFixed(1)} s, ${n(Math.round(summary.textsPerSecond))} texts/s`,
    `  wrote ${Object.values(files).map((f) => path.normalize(f as string)).join(', ')} (${summary.dtype}, dim ${summary.dim}); manifest: ${path.join(out, EMBED_MANIFEST_FILE)}`,
  ]
  if (summary.resumed > 0) lines.push(`  resumed: ${n(summary.resumed)} distinct texts from the checkpoint, ${n(summary.embedded)} sent by this run`)
  if (manifest.counts.halvings > 0) lines.push(`  batch halved ${manifest.counts.halvings} times (server said too large): ${manifest.counts.batchSize.first} -> ${manifest.counts.batchSize.last} inputs per request`)
  if (summary.skippedRows > 0) lines.push(`  rows with a bad image (left out, zeros; listed in the manifest): ${n(summary.skippedRows)}`)
  return lines.join('\n') + '\n'
}
