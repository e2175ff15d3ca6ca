/**
 * `hardneg report`: a self-contained HTML page about a mining run, for deciding whether to
 * train on its negatives: the run's header from the manifest, score histograms overall
 * and per group, a per-group table, and a seeded sample of rows with their negatives and
 * the candidates the rules filtered. Shards are read streaming (binned counts, never the
 * scores), so the page stays small for any run.
 */
import { rename, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { HardnegError } from '../errors.js'
import type { FalseNegativeRules } from '../mine/filters.js'
import { MANIFEST_FILE, REPORT_FILE, readManifest, type Manifest } from '../output/manifest.js'
import { renderReportHtml } from './_html.js'
import { emptyGroupScan, readSamples, scanShards, type GroupScan, type SampleRow, type ShardLayout } from './_scan.js'
import { makeThumbnails, type ReportThumbnail, type ThumbnailRequest } from './_thumbs.js'
import { listShards } from '../output/shards.js'
import { emptyGroupCounts, type GroupCounts } from '../mine/stats.js'

export type { Histogram } from './_bins.js'
export type { GroupScan, SampleRow, ShardLayout } from './_scan.js'
export type { ReportThumbnail } from './_thumbs.js'

/** Options of {@link buildReportData} and {@link writeReport}. */
export interface ReportOptions {
  shards: string // a mined shard directory: manifest.json and part-*.parquet
  out?: string // writeReport: the HTML file to write (default: `<shards>/report.html`)
  samples?: number // rows shown in the gallery, a seeded uniform sample (default 50; 0 = no gallery)
  seed?: number // seed of the sample (default 0)
  bins?: number // histogram bins over the score range [-1, 1] (default 200, i.e. 0.01 wide)
  imageRoot?: string // directory the shards' image paths resolve against (default: the run's recorded image root, else the pairs file's directory, else `shards`)
  thumbnails?: boolean // embed thumbnails of the sampled rows' images (default true)
  imageBudgetBytes?: number // most bytes of embedded images in the page; later images show a placeholder (default 4,000,000)
  onProgress?: (event: ReportProgressEvent) => void // progress of the long phases
}

/** Progress of a report: rows scanned, sampled rows read, thumbnails made. */
export interface ReportProgressEvent {
  phase: 'scan' | 'sample' | 'thumbnails' // what is running
  done: number // rows (scan, sample) or distinct images (thumbnails) done
  total: number // units in all
}

/** One group's section of the report: the distributions read from the shards and the manifest's counts. */
export interface GroupReport extends GroupScan {
  counts: GroupCounts | undefined // the manifest's counts for the group (pairs in, padded, short, dropped, ...)
  hardness: number | null // mean negative score / mean positive score of the written rows (null when either is missing or the positive mean is not above 0)
}

/** Everything the page is built from; plain data, no HTML. */
export interface ReportData {
  shards: string // the shard directory as given
  manifest: Manifest // as read
  rules: FalseNegativeRules // the run's false-negative rules, from the manifest's options
  keepFiltered: number // the run's --keep-filtered (0 when it kept none)
  layout: ShardLayout // which optional columns (filtered, images) the shards have
  imageRoot: string | undefined // absolute directory image paths resolve against (undefined without image columns)
  bins: number // bins over [-1, 1]
  rows: number // rows read from the shards
  overall: GroupReport // every row; its `counts` are the run's
  groups: GroupReport[] // per group, in order of first appearance in the shards, then the manifest's groups without written rows
  seed: number // sample seed
  samplesRequested: number // --samples
  samples: SampleRow[] // the sampled rows, in shard order
  thumbnails: Record<string, ReportThumbnail> // by image path as the shards hold it
}

/** What {@link writeReport} returns. */
export interface WriteReportResult {
  out: string // the file written
  bytes: number // its size
  data: ReportData // what it shows
}

const DEFAULTS = { samples: 50, seed: 0, bins: 200, imageBudgetBytes: 4_000_000 } as const

/** Thumbnail sizes: query and positive larger than the negatives and filtered candidates. */
const THUMB = { side: 128, list: 80, quality: 70, concurrency: 4 } as const

/**
 * Reads a mined shard directory into the data the page shows: a first streaming pass bins
 * the scores, a second reads the sampled rows, then thumbnails are made. Throws
 * HardnegError (E_BAD_FILE, E_MISSING_COLUMN, E_BAD_OPTION) naming the file and what was
 * expected.
 *
 * @example
 * const data = await buildReportData({ shards: 'shards', samples: 20 })
 * console.log(data.overall.positive.mean, data.samples.length)
 */
export async function buildReportData(options: ReportOptions): Promise<ReportData> {
  const samples = checkInt('samples', options.samples ?? DEFAULTS.samples, 0, 100_000)
  const seed = checkInt('seed', options.seed ?? DEFAULTS.seed, 0, Number.MAX_SAFE_INTEGER)
  const bins = checkInt('bins', options.bins ?? DEFAULTS.bins, 2, 10_000)
  const budget = checkInt('imageBudgetBytes', options.imageBudgetBytes ?? DEFAULTS.imageBudgetBytes, 0, Number.MAX_SAFE_INTEGER)
  const manifest = await readManifest(options.shards)
  const rules = rulesOf(manifest, options.shards)
  const files = Array.isArray(manifest.shards) && manifest.shards.length > 0
    ? manifest.shards.map(s => path.join(options.shards, s.file))
    : await listShards(options.shards)
  for (const file of files) {
    const found = await stat(file).then(s => s.isFile(), () => false)
    if (!found) throw new HardnegError('E_BAD_FILE', `no such shard, expected the file ${MANIFEST_FILE} lists`, { file })
  }

  // Logits spread far wider than probabilities; bin each space over its own range.
  const rescoreRange: [number, number] = manifest.rescore?.identity.scoreSpace === 'logit' ? [-12, 12] : [0, 1]
  const scan = await scanShards({
    files, rules, bins, samples, seed, rescoreRange,
    onProgress: (done, total) => options.onProgress?.({ phase: 'scan', done, total }),
  })
  const sampled = await readSamples(scan, rules)
  options.onProgress?.({ phase: 'sample', done: sampled.length, total: sampled.length })

  const hasImages = Object.keys(scan.layout.images).length > 0
  const imageRoot = hasImages ? imageRootOf(options, manifest) : undefined
  let thumbnails: Record<string, ReportThumbnail> = {}
  if (hasImages && imageRoot !== undefined && options.thumbnails !== false) {
    thumbnails = await makeThumbnails(thumbnailRequests(sampled), {
      root: imageRoot,
      quality: THUMB.quality,
      budgetBytes: budget,
      concurrency: THUMB.concurrency,
      onProgress: (done, total) => options.onProgress?.({ phase: 'thumbnails', done, total }),
    })
  }
  const groupCounts = (manifest.groups ?? {}) as Record<string, GroupCounts | undefined>
  const withCounts = (g: GroupScan, counts: GroupCounts | undefined): GroupReport => ({ ...g, counts, hardness: hardness(g) })
  const runCounts = manifest.counts === undefined ? undefined : { ...emptyGroupCounts(), ...manifest.counts }
  return {
    shards: options.shards,
    manifest,
    rules,
    keepFiltered: typeof manifest.options?.keepFiltered === 'number' ? manifest.options.keepFiltered : 0,
    layout: scan.layout,
    imageRoot,
    bins,
    rows: scan.rows,
    overall: withCounts({ ...scan.overall, name: '' }, runCounts),
    groups: [
      ...scan.groups,
      // Groups whose rows were all dropped have no rows in the shards, only counts in the manifest.
      ...Object.keys(groupCounts).filter(name => !scan.groups.some(g => g.name === name)).map(name => emptyGroupScan(name, bins, scan.layout, rescoreRange)),
    ].map(g => withCounts(g, groupCounts[g.name])),
    seed,
    samplesRequested: samples,
    samples: sampled,
    thumbnails,
  }
}

/**
 * Renders report data as one self-contained HTML page: inline CSS, SVG drawn here, images
 * as data: URIs, no script and no external URL. Every text from the data is escaped.
 */
export function renderReport(data: ReportData): string {
  return renderReportHtml(data)
}

/**
 * Builds the report of a mined shard directory and writes it as one HTML file (through a
 * temporary name, so a half-written page never has the final name).
 *
 * @example
 * const { out, bytes } = await writeReport({ shards: 'shards', samples: 100, seed: 1 })
 * // out === 'shards/report.html'
 */
export async function writeReport(options: ReportOptions): Promise<WriteReportResult> {
  const data = await buildReportData(options)
  const html = renderReport(data)
  const out = options.out ?? path.join(options.shards, REPORT_FILE)
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.tmp-${process.pid}`)
  try {
    await writeFile(tmp, html)
    await rename(tmp, out)
  } catch (err) {
    await rm(tmp, { force: true })
    throw new HardnegError('E_OUTPUT', `cannot write the report (${(err as NodeJS.ErrnoException).code ?? String(err)}), expected a writable path`, { file: out })
  }
  return { out, bytes: Buffer.byteLength(html), data }
}

function checkInt(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new HardnegError('E_BAD_OPTION', `${name}: ${String(value)}, expected an integer from ${min} to ${max}`)
  }
  return value
}

/** The run's rules as its manifest records them; a threshold is required to place the ceilings. */
function rulesOf(manifest: Manifest, dir: string): FalseNegativeRules {
  const o = (manifest.options ?? {}) as Record<string, unknown>
  if (typeof o.threshold !== 'number') {
    throw new HardnegError('E_BAD_FILE', `options.threshold is ${JSON.stringify(o.threshold) ?? 'missing'}, expected a number (the run's margin)`, { file: path.join(dir, MANIFEST_FILE) })
  }
  const rules: FalseNegativeRules = { threshold: o.threshold }
  for (const key of ['maxScore', 'relativeMargin', 'posSim', 'querySim'] as const) {
    if (typeof o[key] === 'number') rules[key] = o[key]
  }
  return rules
}

/** Where image paths resolve: the option, the run's recorded root, the pairs file's directory, the shard directory. */
function imageRootOf(options: ReportOptions, manifest: Manifest): string {
  const recorded = manifest.options?.imageRoot ?? manifest.options?.image_root
  if (options.imageRoot !== undefined) return path.resolve(options.imageRoot)
  if (typeof recorded === 'string' && recorded !== '') return path.resolve(recorded)
  const pairs = Array.isArray(manifest.inputs) ? manifest.inputs.find(i => i.role === 'pairs')?.path : undefined
  return path.resolve(pairs === undefined ? options.shards : path.dirname(pairs))
}

function thumbnailRequests(samples: readonly SampleRow[]): ThumbnailRequest[] {
  const requests: ThumbnailRequest[] = []
  for (const s of samples) {
    if (s.queryImage !== undefined) requests.push({ path: s.queryImage, maxSide: THUMB.side })
    if (s.positiveImage !== undefined) requests.push({ path: s.positiveImage, maxSide: THUMB.side })
    for (const c of [...s.negatives.filter(n => !n.repeat), ...(s.filtered ?? [])]) {
      if (c.image !== undefined) requests.push({ path: c.image, maxSide: THUMB.list })
    }
  }
  return requests
}

function hardness(g: GroupScan): number | null {
  const pos = g.positive.mean
  const neg = g.negative.mean
  return pos === null || neg === null || pos <= 0 ? null : neg / pos
}

