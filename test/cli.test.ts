import { execFileSync, spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { DuckDBInstance } from '@duckdb/node-api'
import { describe, expect, it } from 'vitest'
import { quietOnClose, runHardneg, runMineNegatives, type CliIO } from '../src/cli/main.js'
import { readShards } from '../src/index.js'
import { tempDir } from './_helpers.js'

function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), stderrIsTTY: false }
}

const ROOT = path.resolve(import.meta.dirname, '..')
const SNLI = path.join(ROOT, 'fixtures', 'snli')

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:')
  const connection = await instance.connect()
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJS()
  } finally {
    connection.closeSync()
    instance.closeSync()
  }
}

/** Python with pyarrow and Hugging Face datasets, where .ci/run could install them. */
const hasDatasets = (() => {
  try {
    execFileSync('python3', ['-c', 'import pyarrow, datasets'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

describe('mine-negatives CLI', () => {
  it('mines the embedded SNLI sample with --k 8 --threshold 0.1; DuckDB reads the shards as-is', async () => {
    const dir = await tempDir()
    const out = path.join(dir, 'negatives')
    const io = captureIO()
    const code = await runMineNegatives(['--k', '8', '--threshold', '0.1', '--out', out], io)
    expect(io.err.join('')).toContain('mining the embedded SNLI sample')
    expect(code).toBe(0)
    const summary = io.out.join('')
    expect(summary).toMatch(/^hardneg: 2,921 pairs -> 2,921 rows in 1 shard under .*negatives\/ \(exact search, [\d.]+ s\)\n/)
    expect(summary).toMatch(/queries with at least one \(FalseNeg%\): [\d,]+ = [\d.]+%/)

    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'))
    expect(manifest.rows).toEqual({ in: 2921, out: 2921 })
    expect(manifest.options).toMatchObject({ k: 8, threshold: 0.1, preset: 'simcse' })

    const types = Object.fromEntries(
      (await query(`DESCRIBE SELECT * FROM read_parquet('${out}/*.parquet')`)).map((r) => [r.column_name, r.column_type]),
    )
    expect(types).toEqual({
      id: 'VARCHAR',
      query: 'VARCHAR',
      positive: 'VARCHAR',
      group: 'VARCHAR',
      pos_score: 'FLOAT',
      negatives: 'VARCHAR[]',
      neg_ids: 'VARCHAR[]',
      neg_scores: 'FLOAT[]',
      n_valid: 'INTEGER',
      n_false_negatives: 'INTEGER',
      orig_hard_neg: 'VARCHAR',
    })
    const [stats] = await query(
      `SELECT count(*)::INT AS n, min(len(negatives))::INT AS kmin, max(len(negatives))::INT AS kmax,
              sum(CASE WHEN list_contains(negatives, positive) THEN 1 ELSE 0 END)::INT AS self,
              sum(CASE WHEN n_false_negatives > 0 THEN 1 ELSE 0 END)::INT AS with_fn,
              max(list_max(neg_scores) - pos_score)::DOUBLE AS worst
       FROM read_parquet('${out}/*.parquet')`,
    )
    expect(stats).toMatchObject({ n: 2921, kmin: 8, kmax: 8, self: 0, with_fn: manifest.counts.queriesWithFalseNegatives })
    expect(stats!.worst as number).toBeLessThanOrEqual(0.1 + 1e-6)

    // First row: the CSV's first triplet, its own hard_neg carried along.
    const first = (await readShards(out)[Symbol.asyncIterator]().next()).value!
    expect(first.query).toBe('This church choir sings to the masses as they sing joyous songs from the book at a church.')
    expect(first.positive).toBe('The church is filled with song.')
    expect(first.carried.orig_hard_neg).toBe('A choir singing at a baseball game.')
  })

  it.skipIf(!hasDatasets)('writes shards that Hugging Face datasets and pyarrow load as-is', async () => {
    const dir = await tempDir()
    const out = path.join(dir, 'negatives')
    expect(await runMineNegatives(['--out', out, '--quiet', '--shard-rows', '1000'], captureIO())).toBe(0)
    const script = [
      'import json, sys, pyarrow.dataset as ds',
      'from datasets import load_dataset',
      "d = load_dataset('parquet', data_files=sys.argv[1] + '/*.parquet', split='train', cache_dir=sys.argv[2])",
      "t = ds.dataset(sys.argv[1], format='parquet', exclude_invalid_files=True).to_table()",
      "d2 = load_dataset(sys.argv[1], split='train', cache_dir=sys.argv[2] + '2')",
      "print(json.dumps({'rows': d.num_rows, 'features': str(d.features['negatives']), 'first': d[0]['negatives'][:2],",
      "  'arrow_rows': t.num_rows, 'arrow_type': str(t.schema.field('neg_scores').type), 'dir_rows': d2.num_rows}))",
    ].join('\n')
    const env = { ...process.env, HF_DATASETS_OFFLINE: '1', HF_HUB_OFFLINE: '1' }
    const got = JSON.parse(execFileSync('python3', ['-c', script, out, path.join(dir, 'hf-cache')], { encoding: 'utf8', env }))
    const first = (await readShards(out)[Symbol.asyncIterator]().next()).value!
    expect(got).toEqual({
      rows: 2921,
      features: "List(Value('string'))",
      first: first.negatives.slice(0, 2),
      arrow_rows: 2921,
      arrow_type: 'list<element: float not null>',
      dir_rows: 2921,
    })
  })

  it('hardneg mine is the same command', async () => {
    const dir = await tempDir()
    const io = captureIO()
    const args = ['--pairs', path.join(SNLI, 'snli-test-triplets.csv'), '--preset', 'simcse']
    args.push('--query-embeddings', path.join(SNLI, 'snli-test-sent0.use512.f16.npy'))
    args.push('--positive-embeddings', path.join(SNLI, 'snli-test-sent1.use512.f16.npy'))
    expect(await runHardneg(['mine', ...args, '--out', path.join(dir, 'a'), '--json', '--quiet', '--k', '4'], io)).toBe(0)
    const summary = JSON.parse(io.out.join(''))
    expect(summary).toMatchObject({ rowsIn: 2921, rowsOut: 2921, padded: 0, dropped: 0 })
    expect(io.err).toEqual([])
  })

  it.each([
    [['--k', '0'], "hardneg: error E_BAD_OPTION: --k: '0', expected an integer >= 1\n"],
    [['--k', 'eight'], "hardneg: error E_BAD_OPTION: --k: 'eight', expected an integer >= 1\n"],
    [['--threshold', 'abc'], "hardneg: error E_BAD_OPTION: --threshold: 'abc', expected a number from -2 to 2\n"],
    [['--pad', 'zero'], "hardneg: error E_BAD_OPTION: --pad: 'zero', expected one of repeat, none, drop\n"],
    [['--range', '10'], "hardneg: error E_BAD_OPTION: --range: '10', expected MIN:MAX with integers 0 <= MIN < MAX\n"],
    [['--pairs', 'x.csv'], 'hardneg: error E_BAD_OPTION: --query-embeddings missing, expected a .npy file with one row per pair of x.csv\n'],
  ])('exits 2 with one line for %j', async (args, message) => {
    const io = captureIO()
    expect(await runMineNegatives([...args, '--quiet'], io)).toBe(2)
    expect(io.err.join('')).toBe(message)
  })

  it('exits 2 on an unknown flag', async () => {
    const io = captureIO()
    expect(await runMineNegatives(['--kk', '3'], io)).toBe(2)
    expect(io.err.join('')).toContain("error: unknown option '--kk'")
  })

  it('exits 2 with the command list when no command is given', async () => {
    const io = captureIO()
    expect(await runHardneg([], io)).toBe(2)
    expect(io.err.join('')).toContain('Usage: hardneg')
  })

  it.each([['hardneg', 'mine', '--help'], ['mine-negatives', '--help'], ['hardneg', '--help']])(
    '%s %s: a reader that closes early (| head -5) ends it quietly, exit 0', async (bin, ...args) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin', `${bin}.js`), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      let err = ''
      child.stderr.on('data', (d: Buffer) => (err += d.toString()))
      // Like `| head -5` that has already exited: the pipe's reader is gone before the help is written.
      child.stdout.destroy()
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
      expect(err).toBe('')
      expect(code).toBe(0)
    })

  it.each([[[]], [['--keep-filtered', '2', '--sweep-thresholds', '0,0.2']]])(
    '--exact-kernel int8 %j --quiet: nothing on stderr (no onnxruntime graph warnings)', async (extra) => {
      const out = path.join(await tempDir(), 'run')
      const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'mine-negatives.js'), '--pairs', path.join(SNLI, 'snli-test-triplets.csv'), '--preset', 'simcse', '--query-embeddings', path.join(SNLI, 'snli-test-sent0.use512.f16.npy'), '--positive-embeddings', path.join(SNLI, 'snli-test-sent1.use512.f16.npy'), '--exact-kernel', 'int8', '--quiet', '--out', out, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] })
      let err = ''
      child.stderr.on('data', (d: Buffer) => (err += d.toString()))
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
      expect(err).toBe('')
      expect(code).toBe(0)
      expect(JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')).search.exactKernel.groups).toEqual({ fp32: 0, int8: 1 })
    })

  it('a writer to a closed stream drops output instead of throwing', () => {
    const stream = new PassThrough()
    const write = quietOnClose(stream)
    write('a')
    stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
    expect(() => write('b')).not.toThrow()
    expect(stream.read()?.toString()).toBe('a')
    expect(() => stream.emit('error', Object.assign(new Error('disk full'), { code: 'ENOSPC' }))).toThrow('disk full')
  })

  it('keeps per-query buffers to the pool size when k is huge', async () => {
    const dir = await tempDir()
    const io = captureIO()
    const code = await runMineNegatives(['--out', path.join(dir, 'o'), '--quiet', '--json', '--sampling', 'random', '--range', '0:1000000', '--k', '8'], io)
    expect(code).toBe(0)
    expect(JSON.parse(io.out.join(''))).toMatchObject({ rowsIn: 2921, rowsOut: 2921 })
  })

  it('prints help', async () => {
    const io = captureIO()
    expect(await runHardneg(['mine', '--help'], io)).toBe(0)
    expect(io.out.join('')).toMatchInlineSnapshot(`
      "Usage: hardneg mine|mine-negatives [options]

      Mine top-k hard negatives for query/positive pairs and drop false negatives
      (UniME rule: a candidate scoring above sim(query, positive) + threshold is a
      false negative). Without --pairs, mines the embedded SNLI sample.

      Options:
        --pairs <files...>                pairs file(s): CSV/TSV with header, JSONL or
                                          Parquet; several = one per subset (default:
                                          embedded SNLI sample)
        --pairs-format <fmt>              pairs format (default: from the extension)
                                          (choices: "csv", "tsv", "jsonl", "parquet")
        --preset <name>                   column layout: simcse =
                                          sent0,sent1(,hard_neg); mmeb =
                                          qry,qry_image_path,pos_text,pos_image_path(,subset)
                                          (choices: "simcse", "mmeb")
        --id-col <col>                    id column (default: row number)
        --query-col <col>                 query column (default: preset's, else
                                          'query')
        --positive-col <col>              positive column (default: preset's, else
                                          'positive')
        --group-col <col>                 group column; pools are per group (default:
                                          one global pool)
        --carry <cols>                    extra columns to copy to the shards,
                                          comma-separated
        --global-pool                     one pool over all groups and files instead
                                          of one per group (default: false)
        --query-image-col <col>           query image path column (default: preset's,
                                          e.g. mmeb's qry_image_path)
        --positive-image-col <col>        positive image path column (default:
                                          preset's, e.g. mmeb's pos_image_path)
        --image-root <dir>                directory image paths are relative to
                                          (default: the first pairs file's directory)
        --on-bad-image <policy>           missing or undecodable image: error | skip
                                          (drop the row, counted) (default: "error")
        --image-dup-distance <bits>       images this many bits apart (of 256) or
                                          fewer are near-duplicates; such candidates
                                          are false negatives (default: 58)
        --query-embeddings <files...>     query embeddings [rows, dim],
                                          float32/float16: .npy or .safetensors (row i
                                          = pair i), .arrow/.feather/.parquet (matched
                                          by id); one per pairs file or one for all
        --positive-embeddings <files...>  positive embeddings, as --query-embeddings
        --corpus <file>                   external candidate pool with columns id,text
        --corpus-embeddings <file>        embeddings for --corpus, as
                                          --query-embeddings (row i = corpus row i, or
                                          matched by corpus id)
        --embedding-key <name>            safetensors embeddings: the tensor to read
                                          (default: the only 2-D tensor)
        --embedding-id-col <col>          Arrow/Parquet embeddings: id column matched
                                          to the pair ids (default 'id'; without it,
                                          row i = pair i)
        --embedding-col <col>             Arrow/Parquet embeddings: vector column
                                          (default 'embedding', else 'vector')
        --out <dir>                       output directory for shards and
                                          manifest.json (default: "negatives")
        --format <fmt>                    output: parquet (hardneg shards) | mmeb
                                          (MMEB-train columns, neg_text/neg_image_path
                                          lists) | unime-v2 (JSON Lines) |
                                          sentence-transformers (Parquet anchor,
                                          positive, negative_1..negative_k) |
                                          flagembedding (JSON Lines query, pos, neg,
                                          pos_scores, neg_scores) (default: "parquet")
        --overwrite                       replace an earlier run in --out (default:
                                          false)
        --k <n>                           hard negatives per row (default: 8)
        --threshold <beta>                false-negative margin: drop candidates
                                          scoring above pos_score + beta (default:
                                          0.1)
        --max-score <s>                   drop candidates scoring above s (absolute
                                          cap)
        --relative-margin <m>             drop candidates scoring above pos_score * (1
                                          - m) (NV-Retriever TopK-PercPos)
        --pos-sim <t>                     drop candidates whose similarity to the
                                          positive exceeds t (near-duplicates)
        --query-sim <t>                   drop candidates whose owning query is more
                                          similar than t to the query
        --margin-anchor <which>           measure the margin from the row's own
                                          positive (own, UniME) or from the
                                          lowest-scoring labeled positive of its query
                                          (lowest, as sentence-transformers/NeMo)
                                          (default: "own")
        --min-score <s>                   never pick candidates scoring below s (too
                                          easy; sentence-transformers min_score)
        --sweep-thresholds <betas>        also count false negatives and FalseNeg% at
                                          each margin, in the same pass, e.g.
                                          0,0.05,0.1,0.2,0.3
        --sampling <mode>                 top: the k best; random: k drawn from the
                                          --range window (default: "top")
        --range <min:max>                 0-based rank window [min, max): top skips
                                          the best min and takes k from there; random
                                          draws k from it
        --seed <s>                        random sampling seed (default: 0)
        --pad <policy>                    fewer than k left: repeat | none | drop
                                          (default: "repeat")
        --keep-filtered <n>               store up to n removed candidates per row
                                          with score and rule (filtered_* columns, for
                                          hardneg report) (default: 0)
        --search <method>                 exact | hnsw | auto (exact unless the pool
                                          is very large) (default: "auto")
        --ef <n>                          hnsw search list size (default: 128)
        --m <n>                           hnsw graph degree (default: 16)
        --ef-construction <n>             hnsw build list size (default: 200)
        --shard-rows <n>                  rows per Parquet shard (default: 100000)
        --threads <n>                     threads for exact search (default: all
                                          cores)
        --query-block-rows <n>            queries scored per block
        --pool-block-rows <n>             pool rows scored per block (exact)
        --exact-kernel <kernel>           exact search kernel: int8 (integer scores,
                                          exact rescoring; the same results) | fp32 |
                                          auto (int8 on CPUs with a fast int8 dot
                                          product, for large groups whose scores do
                                          not crowd: see docs/mining.md) (default:
                                          "auto")
        --worker-index <i>                be worker i of a distributed run: mine its
                                          share, write a part for hardneg merge
                                          (default: the array index from
                                          SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX,
                                          AWS_BATCH_JOB_ARRAY_INDEX or
                                          BATCH_TASK_INDEX)
        --worker-count <n>                workers in the run; always pass it (a
                                          resubmitted Slurm task's environment says 1)
                                          (default: the array's size from the
                                          environment)
        --pool-parts <m>                  also split each group's pool into m parts,
                                          for pools one worker cannot hold (exact
                                          search; --worker-count = query shares x m)
        --rescore-url <url>               second stage: a reranker or judge server
                                          (its root URL) that rescores the top
                                          candidates and removes more false negatives
                                          (docs/rescore.md)
        --rescore-api <api>               tei-rerank | cohere-rerank | vllm-score |
                                          chat-judge (required with --rescore-url)
        --rescore-model <name>            model named in requests (default: TEI's
                                          /info model_id, else the only model
                                          /v1/models lists)
        --rescore-top <n>                 embedding survivors rescored per query;
                                          negatives come only from these (default: 50)
        --rescore-margin <b>              a candidate scoring above r(pos) - b is a
                                          false negative, in the rescorer's score
                                          space (default: 0.01)
        --rescore-max-score <s>           a candidate the rescorer scores above s is a
                                          false negative too
        --rescore-rank <order>            take the negatives in embedding-score order
                                          or in rescorer order: embedding | rescore
                                          (default: embedding)
        --rescore-batch <n>               candidates per reranker request, halved on
                                          413/422 (default: 32)
        --rescore-concurrency <n>         rescore requests in flight (default: 4)
        --rescore-cache <file>            score cache, appended as scores arrive;
                                          re-runs and resumed runs reuse it (default:
                                          --out/.hardneg-rescore-cache.bin)
        --rescore-timeout <s>             seconds one rescore request may take
                                          (default: 300)
        --rescore-max-attempts <n>        attempts per rescore request before the run
                                          stops (default: 8)
        --rescore-raw-scores              tei-rerank: raw logits instead of sigmoid
                                          probabilities
        --rescore-api-key-env <var>       environment variable holding the rescore
                                          server's API key (sent as a bearer token)
        --judge-prompt <file>             chat-judge: prompt template with {query} and
                                          {candidate} (default: docs/rescore.md)
        --report [file]                   after mining, write an HTML report of the
                                          run (hardneg report) into --out, or to file
        --json                            print the summary as JSON on stdout
                                          (default: false)
        --quiet                           no progress output (default: false)
        -h, --help                        display help for command

      Examples:
        $ mine --k 8 --threshold 0.1
            mine the embedded SNLI sample into ./negatives
        $ mine --pairs nli_for_simcse.csv --preset simcse \\
            --query-embeddings sent0.npy --positive-embeddings sent1.npy --out shards/ --k 8 --threshold 0.1
        $ mine --pairs train.jsonl --query-col question --positive-col answer --group-col source \\
            --query-embeddings q.npy --positive-embeddings p.npy --pos-sim 0.95 --search hnsw
        $ mine --preset mmeb --pairs MMEB-train/*/original.parquet --image-root MMEB-train/images \\
            --query-embeddings qry.npy --positive-embeddings pos.npy --format unime-v2 --out unime/
        $ sbatch --array=0-3 --wrap 'mine --pairs p.csv --query-embeddings q.npy \\
            --positive-embeddings p.npy --out shards/ --worker-count 4'
            4 workers (index from SLURM_ARRAY_TASK_ID), then: hardneg merge --out shards/ (docs/scale.md)

      Output: part-NNNNN.parquet shards (id, query, positive, group, pos_score, negatives,
      neg_ids, neg_scores, n_valid, n_false_negatives, carried columns; with images also
      query_image, pos_image, neg_images; with --keep-filtered, filtered_texts, filtered_ids,
      filtered_scores, filtered_rules (and filtered_images)) and manifest.json, written last.
      Exit codes: 0 done, 2 bad input or options, 1 internal error.
      "
    `)
  })
})
