/**
 * The `mine` command (also installed as `mine-negatives`): flags to MineOptions, a
 * progress display, and the end-of-run summary.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, Option } from 'commander'
import { detectWorker, HardnegError, mineNegatives, mineWorkerPart, type MineOptions, type MineResult, type WorkerResult, type WorkerSpec } from '../index.js'
import { choiceArg, intArg, listArg, numberArg, numberListArg, rangeArg } from './_args.js'
import { createProgress } from './progress.js'
import { reportAfterMining } from './report.js'
import type { CliIO } from './main.js'

/** The embedded default dataset: the SNLI test sample in fixtures/snli. */
export function defaultDataset(): Pick<MineOptions, 'pairs' | 'preset' | 'queryEmbeddings' | 'positiveEmbeddings'> {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!existsSync(path.join(dir, 'fixtures', 'snli'))) {
    const up = path.dirname(dir)
    if (up === dir) throw new HardnegError('E_BAD_FILE', 'fixtures/snli not found next to the installed package, expected the embedded sample')
    dir = up
  }
  const snli = path.relative(process.cwd(), path.join(dir, 'fixtures', 'snli')) || '.'
  return {
    pairs: path.join(snli, 'snli-test-triplets.csv'),
    preset: 'simcse',
    queryEmbeddings: path.join(snli, 'snli-test-sent0.use512.f16.npy'),
    positiveEmbeddings: path.join(snli, 'snli-test-sent1.use512.f16.npy'),
  }
}

/** Builds the `mine` command; `run` is set by the caller to capture the result. */
export function mineCommand(io: CliIO, name = 'mine'): Command {
  const cmd = new Command(name)
    .description(
      'Mine top-k hard negatives for query/positive pairs and drop false negatives (UniME rule: a candidate scoring above ' +
        'sim(query, positive) + threshold is a false negative). Without --pairs, mines the embedded SNLI sample.',
    )
    .option('--pairs <files...>', 'pairs file(s): CSV/TSV with header, JSONL or Parquet; several = one per subset (default: embedded SNLI sample)')
    .addOption(new Option('--pairs-format <fmt>', 'pairs format (default: from the extension)').choices(['csv', 'tsv', 'jsonl', 'parquet']))
    .addOption(
      new Option('--preset <name>', 'column layout: simcse = sent0,sent1(,hard_neg); mmeb = qry,qry_image_path,pos_text,pos_image_path(,subset)').choices(['simcse', 'mmeb']),
    )
    .option('--id-col <col>', 'id column (default: row number)')
    .option('--query-col <col>', "query column (default: preset's, else 'query')")
    .option('--positive-col <col>', "positive column (default: preset's, else 'positive')")
    .option('--group-col <col>', 'group column; pools are per group (default: one global pool)')
    .option('--carry <cols>', 'extra columns to copy to the shards, comma-separated', listArg)
    .option('--global-pool', 'one pool over all groups and files instead of one per group', false)
    .option('--query-image-col <col>', "query image path column (default: preset's, e.g. mmeb's qry_image_path)")
    .option('--positive-image-col <col>', "positive image path column (default: preset's, e.g. mmeb's pos_image_path)")
    .option('--image-root <dir>', 'directory image paths are relative to (default: the first pairs file\'s directory)')
    .option('--on-bad-image <policy>', 'missing or undecodable image: error | skip (drop the row, counted)', choiceArg('--on-bad-image', ['error', 'skip'] as const), 'error')
    .option('--image-dup-distance <bits>', 'images this many bits apart (of 256) or fewer are near-duplicates; such candidates are false negatives', intArg('--image-dup-distance', 0), 58)
    .option('--query-embeddings <files...>', 'query embeddings [rows, dim], float32/float16: .npy or .safetensors (row i = pair i), .arrow/.feather/.parquet (matched by id); one per pairs file or one for all')
    .option('--positive-embeddings <files...>', 'positive embeddings, as --query-embeddings')
    .option('--corpus <file>', 'external candidate pool with columns id,text')
    .option('--corpus-embeddings <file>', 'embeddings for --corpus, as --query-embeddings (row i = corpus row i, or matched by corpus id)')
    .option('--embedding-key <name>', 'safetensors embeddings: the tensor to read (default: the only 2-D tensor)')
    .option('--embedding-id-col <col>', "Arrow/Parquet embeddings: id column matched to the pair ids (default 'id'; without it, row i = pair i)")
    .option('--embedding-col <col>', "Arrow/Parquet embeddings: vector column (default 'embedding', else 'vector')")
    .option('--out <dir>', 'output directory for shards and manifest.json', 'negatives')
    .option(
      '--format <fmt>',
      'output: parquet (hardneg shards) | mmeb (MMEB-train columns, neg_text/neg_image_path lists) | unime-v2 (JSON Lines) | ' +
        'sentence-transformers (Parquet anchor, positive, negative_1..negative_k) | flagembedding (JSON Lines query, pos, neg, pos_scores, neg_scores)',
      choiceArg('--format', ['parquet', 'mmeb', 'unime-v2', 'sentence-transformers', 'flagembedding'] as const),
      'parquet',
    )
    .option('--overwrite', 'replace an earlier run in --out', false)
    .option('--k <n>', 'hard negatives per row', intArg('--k', 1), 8)
    .option('--threshold <beta>', 'false-negative margin: drop candidates scoring above pos_score + beta', numberArg('--threshold', -2, 2), 0.1)
    .option('--max-score <s>', 'drop candidates scoring above s (absolute cap)', numberArg('--max-score', -1, 1))
    .option('--relative-margin <m>', 'drop candidates scoring above pos_score * (1 - m) (NV-Retriever TopK-PercPos)', numberArg('--relative-margin', 0, 1))
    .option('--pos-sim <t>', 'drop candidates whose similarity to the positive exceeds t (near-duplicates)', numberArg('--pos-sim', -1, 1))
    .option('--query-sim <t>', 'drop candidates whose owning query is more similar than t to the query', numberArg('--query-sim', -1, 1))
    .option(
      '--margin-anchor <which>',
      "measure the margin from the row's own positive (own, UniME) or from the lowest-scoring labeled positive of its query (lowest, as sentence-transformers/NeMo)",
      choiceArg('--margin-anchor', ['own', 'lowest'] as const),
      'own',
    )
    .option('--min-score <s>', 'never pick candidates scoring below s (too easy; sentence-transformers min_score)', numberArg('--min-score', -1, 1))
    .option('--sweep-thresholds <betas>', 'also count false negatives and FalseNeg% at each margin, in the same pass, e.g. 0,0.05,0.1,0.2,0.3', numberListArg('--sweep-thresholds', -2, 2))
    .option('--sampling <mode>', 'top: the k best; random: k drawn from the --range window', choiceArg('--sampling', ['top', 'random'] as const), 'top')
    .option('--range <min:max>', '0-based rank window [min, max): top skips the best min and takes k from there; random draws k from it', rangeArg('--range'))
    .option('--seed <s>', 'random sampling seed', intArg('--seed', 0), 0)
    .option('--pad <policy>', 'fewer than k left: repeat | none | drop', choiceArg('--pad', ['repeat', 'none', 'drop'] as const), 'repeat')
    .option('--keep-filtered <n>', 'store up to n removed candidates per row with score and rule (filtered_* columns, for hardneg report)', intArg('--keep-filtered', 0), 0)
    .option('--search <method>', 'exact | hnsw | auto (exact unless the pool is very large)', choiceArg('--search', ['exact', 'hnsw', 'auto'] as const), 'auto')
    .option('--ef <n>', 'hnsw search list size', intArg('--ef', 1), 128)
    .option('--m <n>', 'hnsw graph degree', intArg('--m', 2), 16)
    .option('--ef-construction <n>', 'hnsw build list size', intArg('--ef-construction', 1), 200)
    .option('--shard-rows <n>', 'rows per Parquet shard', intArg('--shard-rows', 1), 100000)
    .option('--threads <n>', 'threads for exact search (default: all cores)', intArg('--threads', 1))
    .option('--query-block-rows <n>', 'queries scored per block', intArg('--query-block-rows', 1))
    .option('--pool-block-rows <n>', 'pool rows scored per block (exact)', intArg('--pool-block-rows', 1))
    .option('--exact-kernel <kernel>', 'exact search kernel: int8 (integer scores, exact rescoring; the same results) | fp32 | auto (int8 on CPUs with a fast int8 dot product, for large groups whose scores do not crowd: see docs/mining.md)', choiceArg('--exact-kernel', ['auto', 'fp32', 'int8'] as const), 'auto')
    .option('--worker-index <i>', 'be worker i of a distributed run: mine its share, write a part for hardneg merge (default: the array index from SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX or BATCH_TASK_INDEX)', intArg('--worker-index', 0))
    .option('--worker-count <n>', "workers in the run; always pass it (a resubmitted Slurm task's environment says 1) (default: the array's size from the environment)", intArg('--worker-count', 1))
    .option('--pool-parts <m>', "also split each group's pool into m parts, for pools one worker cannot hold (exact search; --worker-count = query shares x m)", intArg('--pool-parts', 1))
    .option('--rescore-url <url>', 'second stage: a reranker or judge server (its root URL) that rescores the top candidates and removes more false negatives (docs/rescore.md)')
    .option('--rescore-api <api>', 'tei-rerank | cohere-rerank | vllm-score | chat-judge (required with --rescore-url)', choiceArg('--rescore-api', ['tei-rerank', 'cohere-rerank', 'vllm-score', 'chat-judge'] as const))
    .option('--rescore-model <name>', "model named in requests (default: TEI's /info model_id, else the only model /v1/models lists)")
    .option('--rescore-top <n>', 'embedding survivors rescored per query; negatives come only from these (default: 50)', intArg('--rescore-top', 1))
    .option('--rescore-margin <b>', 'a candidate scoring above r(pos) - b is a false negative, in the rescorer\'s score space (default: 0.01)', numberArg('--rescore-margin'))
    .option('--rescore-max-score <s>', 'a candidate the rescorer scores above s is a false negative too', numberArg('--rescore-max-score'))
    .option('--rescore-rank <order>', 'take the negatives in embedding-score order or in rescorer order: embedding | rescore (default: embedding)', choiceArg('--rescore-rank', ['embedding', 'rescore'] as const))
    .option('--rescore-batch <n>', 'candidates per reranker request, halved on 413/422 (default: 32)', intArg('--rescore-batch', 1))
    .option('--rescore-concurrency <n>', 'rescore requests in flight (default: 4)', intArg('--rescore-concurrency', 1))
    .option('--rescore-cache <file>', 'score cache, appended as scores arrive; re-runs and resumed runs reuse it (default: --out/.hardneg-rescore-cache.bin)')
    .option('--rescore-timeout <s>', 'seconds one rescore request may take (default: 300)', numberArg('--rescore-timeout', 0.001))
    .option('--rescore-max-attempts <n>', 'attempts per rescore request before the run stops (default: 8)', intArg('--rescore-max-attempts', 1))
    .option('--rescore-raw-scores', 'tei-rerank: raw logits instead of sigmoid probabilities')
    .option('--rescore-api-key-env <var>', 'environment variable holding the rescore server\'s API key (sent as a bearer token)')
    .option('--judge-prompt <file>', 'chat-judge: prompt template with {query} and {candidate} (default: docs/rescore.md)')
    .option('--report [file]', 'after mining, write an HTML report of the run (hardneg report) into --out, or to file')
    .option('--json', 'print the summary as JSON on stdout', false)
    .option('--quiet', 'no progress output', false)
  cmd.addHelpText(
    'after',
    `
Examples:
  $ ${name} --k 8 --threshold 0.1
      mine the embedded SNLI sample into ./negatives
  $ ${name} --pairs nli_for_simcse.csv --preset simcse \\
      --query-embeddings sent0.npy --positive-embeddings sent1.npy --out shards/ --k 8 --threshold 0.1
  $ ${name} --pairs train.jsonl --query-col question --positive-col answer --group-col source \\
      --query-embeddings q.npy --positive-embeddings p.npy --pos-sim 0.95 --search hnsw
  $ ${name} --preset mmeb --pairs MMEB-train/*/original.parquet --image-root MMEB-train/images \\
      --query-embeddings qry.npy --positive-embeddings pos.npy --format unime-v2 --out unime/
  $ sbatch --array=0-3 --wrap '${name} --pairs p.csv --query-embeddings q.npy \\
      --positive-embeddings p.npy --out shards/ --worker-count 4'
      4 workers (index from SLURM_ARRAY_TASK_ID), then: hardneg merge --out shards/ (docs/scale.md)

Output: part-NNNNN.parquet shards (id, query, positive, group, pos_score, negatives,
neg_ids, neg_scores, n_valid, n_false_negatives, carried columns; with images also
query_image, pos_image, neg_images; with --keep-filtered, filtered_texts, filtered_ids,
filtered_scores, filtered_rules (and filtered_images)) and manifest.json, written last.
Exit codes: 0 done, 2 bad input or options, 1 internal error.`,
  )
  cmd.action(async (flags: Record<string, unknown>) => {
    const result = await runMine(flags, io)
    if (result) io.result = result
  })
  return cmd
}

async function runMine(flags: Record<string, unknown>, io: CliIO): Promise<MineResult | undefined> {
  const str = (k: string): string | undefined => (typeof flags[k] === 'string' ? (flags[k] as string) : undefined)
  const files = (k: string): string[] | undefined => (Array.isArray(flags[k]) ? (flags[k] as string[]) : undefined)
  let inputs: Pick<MineOptions, 'pairs' | 'preset' | 'queryEmbeddings' | 'positiveEmbeddings'>
  if (files('pairs') === undefined) {
    if (files('queryEmbeddings') !== undefined || files('positiveEmbeddings') !== undefined) {
      throw new HardnegError('E_BAD_OPTION', '--query-embeddings/--positive-embeddings given without --pairs, expected --pairs too')
    }
    inputs = defaultDataset()
    io.stderr(`hardneg: no --pairs given; mining the embedded SNLI sample (${inputs.pairs}, 2,921 pairs, CC BY-SA 4.0)\n`)
  } else {
    const pairs = files('pairs') as string[]
    for (const flag of ['queryEmbeddings', 'positiveEmbeddings'] as const) {
      if (files(flag) === undefined) {
        const dashed = flag === 'queryEmbeddings' ? '--query-embeddings' : '--positive-embeddings'
        throw new HardnegError('E_BAD_OPTION', `${dashed} missing, expected a .npy file with one row per pair of ${pairs.join(', ')}`)
      }
    }
    const one = (list: string[]): string | string[] => (list.length === 1 ? (list[0] as string) : list)
    inputs = {
      pairs: one(pairs),
      queryEmbeddings: one(files('queryEmbeddings') as string[]),
      positiveEmbeddings: one(files('positiveEmbeddings') as string[]),
      ...(str('preset') ? { preset: str('preset') as MineOptions['preset'] } : {}),
    }
  }
  const progress = createProgress({ write: io.stderr, tty: io.stderrIsTTY })
  const options: MineOptions = {
    ...inputs,
    out: str('out') ?? 'negatives',
    overwrite: flags.overwrite === true,
    k: flags.k as number,
    threshold: flags.threshold as number,
    sampling: flags.sampling as 'top' | 'random',
    seed: flags.seed as number,
    pad: flags.pad as 'repeat' | 'none' | 'drop',
    keepFiltered: flags.keepFiltered as number,
    marginAnchor: flags.marginAnchor as 'own' | 'lowest',
    search: flags.search as 'exact' | 'hnsw' | 'auto',
    exactKernel: flags.exactKernel as 'auto' | 'fp32' | 'int8',
    ef: flags.ef as number,
    m: flags.m as number,
    efConstruction: flags.efConstruction as number,
    shardRows: flags.shardRows as number,
    outputFormat: flags.format as MineOptions['outputFormat'] & string,
    onBadImage: flags.onBadImage as 'error' | 'skip',
    imageDupDistance: flags.imageDupDistance as number,
    ...(flags.globalPool === true ? { globalPool: true } : {}),
    ...(str('pairsFormat') !== undefined ? { format: str('pairsFormat') as MineOptions['format'] } : {}),
    ...copy(flags, ['queryImageCol', 'positiveImageCol', 'imageRoot']),
    ...copy(flags, ['idCol', 'queryCol', 'positiveCol', 'groupCol', 'carry', 'corpus', 'corpusEmbeddings']),
    ...copy(flags, ['embeddingKey', 'embeddingIdCol', 'embeddingCol']),
    ...copy(flags, ['maxScore', 'relativeMargin', 'posSim', 'querySim', 'minScore', 'sweepThresholds', 'range', 'threads', 'queryBlockRows', 'poolBlockRows']),
    ...copy(flags, ['rescoreUrl', 'rescoreApi', 'rescoreModel', 'rescoreTop', 'rescoreMargin', 'rescoreMaxScore', 'rescoreRank', 'rescoreBatch', 'rescoreConcurrency', 'rescoreCache', 'rescoreApiKeyEnv', 'judgePrompt', 'rescoreTimeout', 'rescoreMaxAttempts']),
    ...(flags.rescoreRawScores === true ? { rescoreRawScores: true } : {}),
    ...(flags.quiet === true ? {} : { onProgress: progress.onProgress }),
  }
  const worker = detectWorker({ workerIndex: flags.workerIndex as number | undefined, workerCount: flags.workerCount as number | undefined, poolParts: flags.poolParts as number | undefined }, io.env ?? process.env)
  if (worker) {
    if (flags.report !== undefined) throw new HardnegError('E_BAD_OPTION', '--report with a worker of a distributed run, expected it on the merge: hardneg report --shards DIR after hardneg merge --out DIR')
    let part: WorkerResult
    try {
      part = await mineWorkerPart(options, worker)
    } finally {
      progress.done()
    }
    io.stdout(flags.json === true ? JSON.stringify({ worker: part.manifest.worker, rows: part.manifest.rows, mined: part.manifest.mined, part: part.part }, null, 2) + '\n' : formatWorkerLine(part, worker))
    return undefined
  }
  let result: MineResult
  try {
    result = await mineNegatives(options)
  } finally {
    progress.done()
  }
  if (flags.json === true) io.stdout(JSON.stringify(result.summary, null, 2) + '\n')
  else io.stdout(formatSummary(result))
  if (flags.report !== undefined) {
    const reportProgress = createProgress({ write: io.stderr, tty: io.stderrIsTTY })
    try {
      const line = await reportAfterMining(result.out, flags.report === true ? true : String(flags.report), flags.quiet === true ? {} : { onProgress: reportProgress.onProgress })
      // With --json, stdout holds only the JSON summary.
      if (flags.json === true) io.stderr(line)
      else io.stdout(line)
    } finally {
      reportProgress.done()
    }
  }
  return result
}

/** What a worker prints when its part is written. */
function formatWorkerLine({ out, part, manifest }: WorkerResult, worker: WorkerSpec): string {
  const n = (x: number): string => x.toLocaleString('en-US')
  const split = worker.poolParts > 1 ? `, pool part ${manifest.worker.poolPart} of ${worker.poolParts}` : ''
  return `hardneg: worker ${worker.index} of ${worker.count}${split} (${worker.engine === 'flags' ? worker.source : `${worker.engine}: ${worker.source}`}): ` +
    `${n(manifest.rows.in)} queries in ${manifest.mined.length} group${manifest.mined.length === 1 ? '' : 's'} -> ${part} (${manifest.timings.total?.toFixed(1)} s)\n` +
    `  when every worker is done: hardneg merge --out ${out}   (hardneg merge --out ${out} --status lists the workers to resubmit)\n`
}

function byRule(c: MineResult['summary']['falseNegativesByRule']): string {
  const n = (x: number): string => x.toLocaleString('en-US')
  return `margin ${n(c.margin)}, image duplicate ${n(c.imageDuplicate)}, text duplicate ${n(c.textDuplicate)}, other filters ${n(c.other)}${c.rescore ? `, rescore ${n(c.rescore)}` : ''}`
}

function copy(flags: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of keys) if (flags[k] !== undefined) out[k] = flags[k]
  return out
}

/** The end-of-run summary a person reads. */
export function formatSummary({ out, manifest, summary }: MineResult): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`
  const f = (x: number | null): string => (x === null ? '-' : x.toFixed(3))
  const scores = (s: MineResult['summary']['positiveScores']): string =>
    `p5 ${f(s.p5)}  p25 ${f(s.p25)}  p50 ${f(s.p50)}  p75 ${f(s.p75)}  p95 ${f(s.p95)}  (n=${s.count.toLocaleString('en-US')})`
  const lines = [
    `hardneg: ${summary.rowsIn.toLocaleString('en-US')} pairs -> ${summary.rowsOut.toLocaleString('en-US')} rows in ` +
      `${manifest.shards.length} shard${manifest.shards.length === 1 ? '' : 's'} under ${out}/ ` +
      `(${manifest.search.method} search${manifest.search.exactKernel?.groups.int8 ? ', int8 kernel' : ''}, ${manifest.timings.total?.toFixed(1)} s)`,
    `  false negatives filtered: ${summary.falseNegatives.toLocaleString('en-US')} candidates; ` +
      `queries with at least one (FalseNeg%): ${summary.queriesWithFalseNegatives.toLocaleString('en-US')} = ${pct(summary.falseNegativeQueryShare)}`,
    `  positive scores: ${scores(summary.positiveScores)}`,
    `  negative scores: ${scores(summary.negativeScores)}`,
    `  by rule: ${byRule(summary.falseNegativesByRule)}`,
    `  padded rows: ${summary.padded}   short rows: ${summary.short}   dropped rows: ${summary.dropped}` +
      (summary.badImageRows > 0 ? `   rows with a bad image (skipped): ${summary.badImageRows}` : ''),
  ]
  if (summary.multiPositiveQueries > 0) {
    lines.push(
      `  queries with several labeled positives: ${summary.multiPositiveQueries.toLocaleString('en-US')}; ` +
        `sibling positives left out of pools: ${summary.siblingPositivesExcluded.toLocaleString('en-US')}`,
    )
  }
  if (manifest.rescore) {
    const r = manifest.rescore
    const n = (x: number): string => x.toLocaleString('en-US')
    lines.push(
      `  rescored by ${r.identity.api} ${r.identity.model} (${r.identity.scoreSpace}): ${n(r.counts.pairsScored)} pairs, ${n(r.counts.cacheHits)} from the cache, ` +
        `${n(r.counts.requests)} requests, ${n(r.counts.retries)} retries; false negatives it removed: ${n(summary.falseNegativesByRule.rescore ?? 0)}; rows whose positive it outranked: ${n(r.counts.positiveOutranked)}, ` +
        `so low that every candidate was removed: ${n(r.counts.positiveLow)}`,
    )
  }
  if (summary.sweep) {
    lines.push(`  threshold sweep (margin rule alone): ` + summary.sweep.map((p) => `beta ${p.threshold}: ${p.falseNegatives.toLocaleString('en-US')} FN, FalseNeg% ${pct(p.falseNegativeQueryShare)}`).join('; '))
  }
  const groups = Object.entries(summary.groups)
  if (groups.length > 1) {
    for (const [name, g] of groups) {
      const mined = g.rowsIn - g.badImageRows
      lines.push(
        `  [${name}] ${g.rowsIn} pairs, FalseNeg% ${pct(mined ? g.queriesWithFalseNegatives / mined : 0)} (${byRule(g.falseNegativesByRule)}), ` +
          `padded ${g.padded}, dropped ${g.dropped}${g.badImageRows > 0 ? `, bad image ${g.badImageRows}` : ''}`,
      )
    }
  }
  lines.push(`  manifest: ${path.join(out, 'manifest.json')}`)
  return lines.join('\n') + '\n'
}
