/**
 * The layouts that training frameworks load untouched: `--format sentence-transformers`
 * (anchor, positive, negative_1 .. negative_k) and `--format flagembedding` (JSON Lines
 * {query, pos, neg, pos_scores, neg_scores}), read back with Hugging Face `datasets`, and
 * where sentence-transformers is installed, trained on for one step with
 * MultipleNegativesRankingLoss.
 */
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runMineNegatives, type CliIO } from '../src/cli/main.js'
import { mineNegatives, readShards, type MinedRow } from '../src/index.js'
import { SNLI_INPUTS as base, tempDir } from './_helpers.js'

const COCO = path.resolve(import.meta.dirname, '..', 'fixtures', 'coco-mini')

function python(module: string): boolean {
  try {
    execFileSync('python3', ['-c', `import ${module}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
const hasDatasets = python('pyarrow, datasets')
const hasSentenceTransformers = python('sentence_transformers, tokenizers, accelerate')
if (!hasDatasets) console.warn('framework-format read-back tests skipped: python3 has no datasets (.ci/run installs it from the local wheel index)')
if (!hasSentenceTransformers) console.warn('sentence-transformers training step skipped: not installed (not in this machine\'s wheel index)')

const PY_ENV = { ...process.env, HF_DATASETS_OFFLINE: '1', HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' }

async function ownRows(options: Partial<Parameters<typeof mineNegatives>[0]>, dir: string, k = 4): Promise<MinedRow[]> {
  await mineNegatives({ ...base, out: path.join(dir, 'own'), k, ...options })
  const rows: MinedRow[] = []
  for await (const r of readShards(path.join(dir, 'own'))) rows.push(r)
  return rows
}

function captureIO(): CliIO & { out: string[]; err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), stderrIsTTY: false }
}

describe('--format sentence-transformers', () => {
  it('writes anchor, positive, negative_1..negative_k and nothing else; the rows are the mined rows', async () => {
    const dir = await tempDir()
    const { manifest } = await mineNegatives({ ...base, out: path.join(dir, 'st'), k: 4, outputFormat: 'sentence-transformers', shardRows: 1000 })
    expect(manifest.shards.map((s) => s.file)).toEqual(['part-00000.parquet', 'part-00001.parquet', 'part-00002.parquet'])
    expect(manifest.options.outputFormat).toBe('sentence-transformers')
    const own = await ownRows({}, dir)
    const { parquetReadObjects } = await import('hyparquet')
    const { compressors } = await import('hyparquet-compressors')
    const buf = await readFile(path.join(dir, 'st', 'part-00000.parquet'))
    const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)
    const got = await parquetReadObjects({ file, compressors, rowEnd: 3 })
    expect(Object.keys(got[0]!)).toEqual(['anchor', 'positive', 'negative_1', 'negative_2', 'negative_3', 'negative_4'])
    expect(got[1]).toEqual({
      anchor: own[1]!.query, positive: own[1]!.positive,
      negative_1: own[1]!.negatives[0], negative_2: own[1]!.negatives[1], negative_3: own[1]!.negatives[2], negative_4: own[1]!.negatives[3],
    })
  })

  it.skipIf(!hasDatasets)('loads with datasets.load_dataset("parquet") as an (anchor, positive, negative_1..k) table', async () => {
    const dir = await tempDir()
    const out = path.join(dir, 'st')
    expect(await runMineNegatives(['--out', out, '--quiet', '--k', '3', '--format', 'sentence-transformers'], captureIO())).toBe(0)
    const script = [
      'import json, sys',
      'from datasets import load_dataset',
      "d = load_dataset('parquet', data_files=sys.argv[1] + '/*.parquet', split='train', cache_dir=sys.argv[2])",
      "print(json.dumps({'rows': d.num_rows, 'columns': d.column_names, 'types': sorted({str(f) for f in d.features.values()}), 'first': d[0]}))",
    ].join('\n')
    const got = JSON.parse(execFileSync('python3', ['-c', script, out, path.join(dir, 'hf-cache')], { encoding: 'utf8', env: PY_ENV }))
    const own = await ownRows({}, dir, 3)
    expect(got).toEqual({
      rows: 2921,
      columns: ['anchor', 'positive', 'negative_1', 'negative_2', 'negative_3'],
      types: ["Value('string')"],
      first: { anchor: own[0]!.query, positive: own[0]!.positive, negative_1: own[0]!.negatives[0], negative_2: own[0]!.negatives[1], negative_3: own[0]!.negatives[2] },
    })
  })

  it.skipIf(!hasSentenceTransformers)('is what SentenceTransformerTrainer with MultipleNegativesRankingLoss trains on (one step)', async () => {
    const dir = await tempDir()
    const out = path.join(dir, 'st')
    await mineNegatives({ ...base, out, k: 2, outputFormat: 'sentence-transformers' })
    // No model hub here: a StaticEmbedding over a word-level tokenizer built from the
    // data itself is a real SentenceTransformer that trains on CPU in seconds.
    const script = [
      'import json, sys, torch',
      'from datasets import load_dataset',
      'from tokenizers import Tokenizer, models, pre_tokenizers, trainers',
      'from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments',
      // sentence-transformers 6 moved these; older releases have only the first paths.
      'try:\n  from sentence_transformers.sentence_transformer import losses\n  from sentence_transformers.sentence_transformer.modules import StaticEmbedding',
      'except ImportError:\n  from sentence_transformers import losses\n  from sentence_transformers.models import StaticEmbedding',
      "d = load_dataset('parquet', data_files=sys.argv[1] + '/*.parquet', split='train', cache_dir=sys.argv[2]).select(range(64))",
      "tok = Tokenizer(models.WordLevel(unk_token='[UNK]'))",
      'tok.pre_tokenizer = pre_tokenizers.Whitespace()',
      "tok.train_from_iterator((t for r in d for t in r.values()), trainers.WordLevelTrainer(special_tokens=['[UNK]', '[PAD]']))",
      "tok.enable_padding(pad_token='[PAD]')",
      'torch.manual_seed(0)',
      'model = SentenceTransformer(modules=[StaticEmbedding(tok, embedding_dim=32)], device="cpu")',
      'before = model[0].embedding.weight.detach().clone()',
      'args = SentenceTransformerTrainingArguments(output_dir=sys.argv[3], max_steps=1, per_device_train_batch_size=16, report_to=[], save_strategy="no", use_cpu=True, logging_steps=1)',
      'trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=d, loss=losses.MultipleNegativesRankingLoss(model))',
      'result = trainer.train()',
      "print(json.dumps({'steps': result.global_step, 'loss': result.training_loss, 'changed': bool((model[0].embedding.weight != before).any())}))",
    ].join('\n')
    const lines = execFileSync('python3', ['-c', script, out, path.join(dir, 'hf-cache'), path.join(dir, 'train')], { encoding: 'utf8', env: PY_ENV }).trim().split('\n')
    const got = JSON.parse(lines[lines.length - 1]!)
    expect(got.steps).toBe(1)
    expect(Number.isFinite(got.loss) && got.loss > 0).toBe(true)
    expect(got.changed).toBe(true)
  })

  it.each([
    [{ pad: 'none' as const }, "pad: 'none' leaves rows with fewer than k negatives, which outputFormat 'sentence-transformers' cannot hold (one column per negative); expected pad 'repeat' or 'drop'"],
    [{ keepFiltered: 2 }, "keepFiltered: 2, not available with outputFormat 'sentence-transformers', expected 0 (its readers take only its own fields)"],
    [{ carry: ['hard_neg'] }, "carry: not available with outputFormat 'sentence-transformers', expected its own columns only"],
  ])('rejects %o, which it cannot hold', async (patch, message) => {
    const dir = await tempDir()
    await expect(mineNegatives({ ...base, out: path.join(dir, 'o'), outputFormat: 'sentence-transformers', ...patch })).rejects.toThrow(message)
  })

  it('rejects a run with images, naming the first pair that has one', async () => {
    const dir = await tempDir()
    const run = mineNegatives({
      pairs: path.join(COCO, 'mmeb-style.parquet'), preset: 'mmeb', out: path.join(dir, 'o'),
      queryEmbeddings: path.join(COCO, 'mmeb-style.qry.npy'), positiveEmbeddings: path.join(COCO, 'mmeb-style.pos.npy'),
      outputFormat: 'flagembedding',
    })
    await expect(run).rejects.toThrow(
      "outputFormat 'flagembedding' holds texts only, but pair 0 has an image ('images/000000000790.jpg'); expected a text-only run, or --format mmeb or unime-v2",
    )
  })
})

describe('--format flagembedding', () => {
  it('writes one JSON line per row: query, pos, neg, pos_scores, neg_scores', async () => {
    const dir = await tempDir()
    const { manifest } = await mineNegatives({ ...base, out: path.join(dir, 'fe'), k: 4, outputFormat: 'flagembedding' })
    expect(manifest.shards.map((s) => s.file)).toEqual(['part-00000.jsonl'])
    const lines = (await readFile(path.join(dir, 'fe', 'part-00000.jsonl'), 'utf8')).trimEnd().split('\n')
    expect(lines).toHaveLength(2921)
    const own = await ownRows({}, dir)
    expect(JSON.parse(lines[0]!)).toEqual({ query: own[0]!.query, pos: [own[0]!.positive], neg: own[0]!.negatives, pos_scores: [own[0]!.posScore], neg_scores: own[0]!.negScores })
  })

  it.skipIf(!hasDatasets)('loads with datasets.load_dataset("json") with the list types FlagEmbedding reads', async () => {
    const dir = await tempDir()
    const out = path.join(dir, 'fe')
    await mineNegatives({ ...base, out, k: 4, outputFormat: 'flagembedding', shardRows: 2000 })
    const script = [
      'import json, sys',
      'from datasets import load_dataset',
      "d = load_dataset('json', data_files=sys.argv[1] + '/*.jsonl', split='train', cache_dir=sys.argv[2])",
      "print(json.dumps({'rows': d.num_rows, 'features': {k: str(v) for k, v in d.features.items()}, 'neg': d[5]['neg'], 'neg_scores': d[5]['neg_scores']}))",
    ].join('\n')
    const got = JSON.parse(execFileSync('python3', ['-c', script, out, path.join(dir, 'hf-cache')], { encoding: 'utf8', env: PY_ENV }))
    const own = await ownRows({}, dir)
    expect(got.rows).toBe(2921)
    expect(got.features).toEqual({
      query: "Value('string')", pos: "List(Value('string'))", neg: "List(Value('string'))",
      pos_scores: "List(Value('float64'))", neg_scores: "List(Value('float64'))",
    })
    expect(got.neg).toEqual(own[5]!.negatives)
    got.neg_scores.forEach((s: number, i: number) => expect(Math.fround(s)).toBe(own[5]!.negScores[i]))
  })
})
