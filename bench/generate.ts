/**
 * Synthetic clustered embeddings for the benchmark, written as `numpy.save` would write
 * them (float16 `.npy`) plus a SimCSE-layout pairs CSV. Deterministic for a seed, and
 * streamed to disk in row blocks: memory stays at a few blocks whatever the size.
 *
 * The geometry, per pair i in cluster c (unit centre u_c, per-cluster spread s_c, per-pair
 * positive spread t_i, g and h standard normal vectors):
 *   query    q_i = normalise(u_c + s_c * g / sqrt(dim))
 *   positive p_i = normalise(q_i + t_i * h / sqrt(dim))
 * so sim(q_i, p_i) ~ 1 / sqrt(1 + t_i^2), sim(q_i, p_j) for a cluster mate ~
 * 1 / ((1 + s_c^2) sqrt(1 + t_j^2)), and ~0 across clusters. Tight clusters (small s_c)
 * with a loose positive (large t_i) give cluster mates above pos + 0.1: false negatives.
 *
 * Run alone: `node dist/bench/generate.js [--rows N] [--dim D] [--clusters C] [--seed S]`.
 */
import { mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

/** Options of {@link generateDataset}. */
export interface GenerateOptions {
  rows?: number // pairs to generate (default 273000)
  dim?: number // vector dimension (default 1024)
  clusters?: number // cluster centres (default rows / 136.5, i.e. 2,000 at 273k rows)
  seed?: number // PRNG seed; the same seed and sizes give the same bytes (default 1)
  dir?: string // parent directory; the dataset goes in a subfolder named after its parameters (default bench/data)
  blockRows?: number // rows generated and written per block (default 4096)
  log?: (line: string) => void // progress lines (default: none)
}

/** A generated (or already present) dataset. */
export interface Dataset {
  dir: string // folder holding the files below
  pairs: string // pairs CSV (sent0,sent1,hard_neg)
  queries: string // query embeddings, float16 [rows, dim]
  positives: string // positive embeddings, float16 [rows, dim]
  rows: number // pairs
  dim: number // vector dimension
  clusters: number // cluster centres
  seed: number // PRNG seed
  generated: boolean // false when the files were already there
  seconds: number // time spent generating (0 when skipped)
}

/** Spread of a cluster's queries around its centre: uniform in this range. */
const CLUSTER_SPREAD: readonly [number, number] = [0.3, 1.2]
/** Spread of a positive around its query: log-uniform in this range. */
const POSITIVE_SPREAD: readonly [number, number] = [0.2, 1.5]

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * Writes (or finds) the dataset for the given parameters. A folder whose `params.json`
 * matches is reused; files are written under temporary names and `params.json` last, so
 * an interrupted run is regenerated next time.
 *
 * @example
 * const ds = await generateDataset({ rows: 20000 })
 * // ds.queries = '.../bench/data/r20000-d1024-c147-s1/queries.npy'
 */
export async function generateDataset(options: GenerateOptions = {}): Promise<Dataset> {
  const rows = options.rows ?? 273000
  const dim = options.dim ?? 1024
  const clusters = options.clusters ?? Math.max(1, Math.round(rows / 136.5))
  const seed = options.seed ?? 1
  const blockRows = options.blockRows ?? 4096
  for (const [name, v] of [['rows', rows], ['dim', dim], ['clusters', clusters], ['blockRows', blockRows]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`generate: ${name} ${v}, expected an integer >= 1`)
  }
  const dir = path.join(options.dir ?? path.join(REPO, 'bench', 'data'), `r${rows}-d${dim}-c${clusters}-s${seed}`)
  const params = { version: 1, rows, dim, clusters, seed, clusterSpread: CLUSTER_SPREAD, positiveSpread: POSITIVE_SPREAD }
  const ds: Dataset = {
    dir,
    pairs: path.join(dir, 'pairs.csv'),
    queries: path.join(dir, 'queries.npy'),
    positives: path.join(dir, 'positives.npy'),
    rows,
    dim,
    clusters,
    seed,
    generated: false,
    seconds: 0,
  }
  const paramsFile = path.join(dir, 'params.json')
  const found = await readFile(paramsFile, 'utf8').catch(() => undefined)
  if (found !== undefined && found === JSON.stringify(params, null, 2) + '\n') return ds

  const t0 = performance.now()
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const rng = new Xoshiro128(seed)
  const normal = normalTable()
  const norm = 1 / Math.sqrt(dim)

  // Centres, cluster spreads and memberships are small; draw them first.
  const centres = new Float32Array(clusters * dim)
  const vec = new Float64Array(dim)
  for (let c = 0; c < clusters; c++) {
    fillNormal(rng, normal, vec, 1)
    normaliseInto(vec, centres, c * dim)
  }
  const spread = Float64Array.from({ length: clusters }, () => lerp(CLUSTER_SPREAD, rng.float()) * norm)

  const qFile = await open(ds.queries + '.tmp', 'w')
  const pFile = await open(ds.positives + '.tmp', 'w')
  const csvFile = await open(ds.pairs + '.tmp', 'w')
  try {
    const header = npyHeader('<f2', rows, dim)
    await qFile.write(header)
    await pFile.write(header)
    await csvFile.write('sent0,sent1,hard_neg\n')
    const q32 = new Float32Array(blockRows * dim)
    const p32 = new Float32Array(blockRows * dim)
    const q16 = new Uint16Array(blockRows * dim)
    const p16 = new Uint16Array(blockRows * dim)
    const [logLo, logHi] = [Math.log(POSITIVE_SPREAD[0]), Math.log(POSITIVE_SPREAD[1])]
    let lastLog = performance.now()
    for (let start = 0; start < rows; start += blockRows) {
      const n = Math.min(blockRows, rows - start)
      let csv = ''
      for (let r = 0; r < n; r++) {
        const c = rng.below(clusters)
        const posSpread = Math.exp(logLo + (logHi - logLo) * rng.float()) * norm
        const s = spread[c] as number
        fillNormal(rng, normal, vec, s)
        for (let j = 0; j < dim; j++) vec[j] = (vec[j] as number) + (centres[c * dim + j] as number)
        normaliseInto(vec, q32, r * dim)
        fillNormal(rng, normal, vec, posSpread)
        for (let j = 0; j < dim; j++) vec[j] = (vec[j] as number) + (q32[r * dim + j] as number)
        normaliseInto(vec, p32, r * dim)
        const i = start + r
        csv += `query ${i},positive ${i},hardneg ${i}\n`
      }
      toHalf(q32, q16, n * dim)
      toHalf(p32, p16, n * dim)
      await Promise.all([
        writeAll(qFile, q16, n * dim),
        writeAll(pFile, p16, n * dim),
        csvFile.write(csv),
      ])
      if (options.log && performance.now() - lastLog > 5000) {
        lastLog = performance.now()
        options.log(`generate: ${start + n}/${rows} rows`)
      }
    }
  } finally {
    await Promise.allSettled([qFile.close(), pFile.close(), csvFile.close()])
  }
  for (const f of [ds.queries, ds.positives, ds.pairs]) await rename(f + '.tmp', f)
  await writeFile(paramsFile, JSON.stringify(params, null, 2) + '\n')
  return { ...ds, generated: true, seconds: (performance.now() - t0) / 1000 }
}

/**
 * A `.npy` v1.0 header for a C-order 2-D array: magic, version, header length, then the
 * dict padded with spaces so that the data starts at a multiple of 64 bytes.
 */
export function npyHeader(descr: string, rows: number, cols: number): Buffer {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`
  const fixed = 10 // magic (6) + version (2) + header length (2)
  const total = Math.ceil((fixed + dict.length + 1) / 64) * 64
  const text = dict.padEnd(total - fixed - 1, ' ') + '\n'
  const out = Buffer.alloc(total)
  out.write('\x93NUMPY', 0, 'latin1')
  out[6] = 1
  out[7] = 0
  out.writeUInt16LE(text.length, 8)
  out.write(text, fixed, 'latin1')
  return out
}

/**
 * float32 -> IEEE binary16 bits, round to nearest even (F. Giesen's float_to_half_fast3_rtne).
 * Node 20 has no Float16Array.
 */
export function toHalf(src: Float32Array, dst: Uint16Array, count: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, count)
  const scratch = new Float32Array(1)
  const scratchBits = new Uint32Array(scratch.buffer)
  for (let i = 0; i < count; i++) {
    let u = bits[i] as number
    const sign = (u >>> 16) & 0x8000
    u &= 0x7fffffff
    let h: number
    if (u >= 0x47800000) {
      h = u > 0x7f800000 ? 0x7e00 : 0x7c00
    } else if (u < 0x38800000) {
      // Subnormal or zero: adding 0.5 in float32 aligns the 10 mantissa bits at the bottom.
      scratchBits[0] = u
      scratch[0] = (scratch[0] as number) + 0.5
      h = ((scratchBits[0] as number) - 0x3f000000) & 0xffff
    } else {
      const odd = (u >>> 13) & 1
      h = ((u + ((15 - 127) << 23) + 0xfff + odd) >>> 13) & 0xffff
    }
    dst[i] = h | sign
  }
}

/** xoshiro128**: a small, fast 32-bit PRNG, seeded through splitmix32. */
class Xoshiro128 {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number) {
    let s = seed >>> 0
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next()
    this.b = next()
    this.c = next()
    this.d = next()
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0
    const t = this.b << 9
    this.c ^= this.a
    this.d ^= this.b
    this.b ^= this.c
    this.a ^= this.d
    this.c ^= t
    this.d = rotl(this.d, 11)
    return result
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next() / 4294967296
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.float() * n)
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}

/**
 * Standard normal quantiles at the midpoints of 65536 equal-probability bins: two normal
 * draws per 32-bit random number, one table lookup each. Coarse in the far tails (|z| is
 * capped near 4.3), which does not matter for this geometry.
 */
function normalTable(): Float64Array {
  const t = new Float64Array(65536)
  for (let k = 0; k < 65536; k++) t[k] = normalQuantile((k + 0.5) / 65536)
  return t
}

/** Fills `out` with `scale` times standard normal draws. */
function fillNormal(rng: Xoshiro128, table: Float64Array, out: Float64Array, scale: number): void {
  const n = out.length
  let j = 0
  for (; j + 1 < n; j += 2) {
    const r = rng.next()
    out[j] = (table[r & 0xffff] as number) * scale
    out[j + 1] = (table[r >>> 16] as number) * scale
  }
  if (j < n) out[j] = (table[rng.next() & 0xffff] as number) * scale
}

/** Writes `v / |v|` (norm in float64) into `out` at `offset`. */
function normaliseInto(v: Float64Array, out: Float32Array, offset: number): void {
  let s = 0
  for (let j = 0; j < v.length; j++) s += (v[j] as number) * (v[j] as number)
  const inv = 1 / Math.sqrt(s)
  for (let j = 0; j < v.length; j++) out[offset + j] = (v[j] as number) * inv
}

function lerp([lo, hi]: readonly [number, number], u: number): number {
  return lo + (hi - lo) * u
}

/** Inverse standard normal CDF (P. J. Acklam's rational approximation, relative error < 1.2e-9). */
function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239]
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1]
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783]
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416]
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number]
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number]
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number]
  const [d0, d1, d2, d3] = d as [number, number, number, number]
  const low = 0.02425
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p))
    return (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
  }
  if (p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(1 - p))
    return -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
  }
  const q = p - 0.5
  const r = q * q
  return ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) / (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
}

async function writeAll(fh: FileHandle, data: Uint16Array, count: number): Promise<void> {
  const buf = Buffer.from(data.buffer, data.byteOffset, count * 2)
  let off = 0
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off)
    off += bytesWritten
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      dim: { type: 'string' },
      clusters: { type: 'string' },
      seed: { type: 'string' },
      dir: { type: 'string' },
    },
  })
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v))
  const opts: GenerateOptions = { log: (l) => console.error(l) }
  for (const k of ['rows', 'dim', 'clusters', 'seed'] as const) {
    const v = num(values[k])
    if (v !== undefined) opts[k] = v
  }
  if (values.dir !== undefined) opts.dir = values.dir
  const ds = await generateDataset(opts)
  console.log(JSON.stringify(ds, null, 2))
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main()
