/**
 * Reading results back for comparison: hardneg shards (through the public `readShards`),
 * the numpy baseline's `.npy`/JSON outputs, and the two measures the benchmark reports:
 * agreement with the baseline and recall@k against exact. Private to bench/.
 */
import { readFile } from 'node:fs/promises'
import { readShards } from '../src/index.js'

/** A run's mined negatives as flat arrays, indexed by pair row (ids are row numbers here). */
export interface MinedTable {
  rows: number // pair rows covered (rows absent from the shards have nValid 0)
  k: number // negatives per row
  ids: Int32Array // rows x k pool indices, best first, -1 past nValid
  scores: Float32Array // rows x k scores aligned with ids (NaN past nValid)
  nValid: Int32Array // distinct negatives per row
  fn: Int32Array // false negatives counted per row (-1 when unknown)
  pos: Float32Array // positive score per row (NaN when unknown)
}

/** Reads a hardneg output directory into a {@link MinedTable}; `id` must be the row number. */
export async function readMined(dir: string, rows: number, k: number): Promise<MinedTable> {
  const t = emptyTable(rows, k)
  for await (const row of readShards(dir)) {
    const r = Number(row.id)
    if (!Number.isInteger(r) || r < 0 || r >= rows) throw new Error(`${dir}: row id '${row.id}', expected 0..${rows - 1}`)
    const n = Math.min(k, row.nValid)
    for (let j = 0; j < n; j++) {
      t.ids[r * k + j] = Number(row.negIds[j])
      t.scores[r * k + j] = row.negScores[j] ?? NaN
    }
    t.nValid[r] = row.nValid
    t.fn[r] = row.nFalseNegatives
    t.pos[r] = row.posScore
  }
  return t
}

/** Reads the numpy baseline's `top.npy`, `scores.npy`, `fn.npy` and `pos.npy`. */
export async function readBaseline(dir: string): Promise<MinedTable> {
  const top = await readNpy(`${dir}/top.npy`, '<i4')
  const scores = await readNpy(`${dir}/scores.npy`, '<f4')
  const fn = await readNpy(`${dir}/fn.npy`, '<i4')
  const pos = await readNpy(`${dir}/pos.npy`, '<f4')
  const [rows, k] = [top.shape[0] ?? 0, top.shape[1] ?? 0]
  const t = emptyTable(rows, k)
  t.ids.set(new Int32Array(top.bytes.buffer, top.bytes.byteOffset, rows * k))
  t.scores.set(new Float32Array(scores.bytes.buffer, scores.bytes.byteOffset, rows * k))
  t.fn.set(new Int32Array(fn.bytes.buffer, fn.bytes.byteOffset, rows))
  t.pos.set(new Float32Array(pos.bytes.buffer, pos.bytes.byteOffset, rows))
  for (let r = 0; r < rows; r++) {
    let n = 0
    while (n < k && (t.ids[r * k + n] as number) >= 0) n++
    t.nValid[r] = n
  }
  return t
}

/** How far two runs' negatives agree, row by row. */
export interface Agreement {
  rows: number // rows compared
  sameList: number // share of rows with the same ids in the same order
  sameSet: number // share of rows with the same set of ids
  overlap: number // mean |a ∩ b| / |b| (recall of a against b)
  sameFalseNegatives: number // share of rows with equal false-negative counts (NaN when either is unknown)
  maxScoreDiff: number // largest |score a - score b| where both ids agree (NaN without scores)
  maxPosDiff: number // largest |pos a - pos b| (NaN without scores)
  nearTieDiffs: number // rows whose lists differ only where the two candidates' scores are within 1e-5
  differingRows: number // rows whose lists differ (ids or order)
}

/** Compares `a` to the reference `b` over `rows` (default all), scores included. */
export function compareTables(a: MinedTable, b: MinedTable, rows?: readonly number[]): Agreement {
  const k = Math.min(a.k, b.k)
  const list = rows ?? Array.from({ length: Math.min(a.rows, b.rows) }, (_, i) => i)
  const scoreRows = list
  let sameList = 0
  let sameSet = 0
  let overlap = 0
  let sameFn = 0
  let fnKnown = 0
  for (const r of list) {
    const x = idsOf(a, r, k)
    const y = idsOf(b, r, k)
    if (x.length === y.length && x.every((v, j) => v === y[j])) sameList++
    const ys = new Set(y)
    const common = x.filter((v) => ys.has(v)).length
    if (common === ys.size && x.length === y.length) sameSet++
    overlap += ys.size === 0 ? 1 : common / ys.size
    if ((a.fn[r] as number) >= 0 && (b.fn[r] as number) >= 0) {
      fnKnown++
      if (a.fn[r] === b.fn[r]) sameFn++
    }
  }
  let maxScoreDiff = NaN
  let maxPosDiff = NaN
  let nearTieDiffs = 0
  let differingRows = 0
  for (const r of scoreRows) {
    const pa = a.pos[r] as number
    const pb = b.pos[r] as number
    if (Number.isFinite(pa) && Number.isFinite(pb)) maxPosDiff = nanMax(maxPosDiff, Math.abs(pa - pb))
    const x = idsOf(a, r, k)
    const y = idsOf(b, r, k)
    for (let j = 0; j < Math.min(x.length, y.length); j++) {
      const sa = a.scores[r * a.k + j] as number
      const sb = b.scores[r * b.k + j] as number
      if (x[j] === y[j] && Number.isFinite(sa) && Number.isFinite(sb)) maxScoreDiff = nanMax(maxScoreDiff, Math.abs(sa - sb))
    }
    if (!(x.length === y.length && x.every((v, j) => v === y[j]))) {
      differingRows++
      // A swap between two candidates whose scores differ by float32 rounding only (a missing or shorter list is no tie).
      let tie = x.length === y.length
      for (let j = 0; j < Math.min(x.length, y.length); j++) {
        if (x[j] === y[j]) continue
        const sa = a.scores[r * a.k + j] as number
        const sb = b.scores[r * b.k + j] as number
        if (!(Math.abs(sa - sb) <= 1e-5)) tie = false
      }
      if (tie) nearTieDiffs++
    }
  }
  const n = Math.max(1, list.length)
  return {
    rows: list.length,
    sameList: sameList / n,
    sameSet: sameSet / n,
    overlap: overlap / n,
    sameFalseNegatives: fnKnown === 0 ? NaN : sameFn / fnKnown,
    maxScoreDiff,
    maxPosDiff,
    nearTieDiffs,
    differingRows,
  }
}

/** `count` rows spread evenly over `rows` (all rows when count >= rows). */
export function evenSample(rows: number, count: number): number[] {
  if (count >= rows) return Array.from({ length: rows }, (_, i) => i)
  const step = rows / count
  return Array.from({ length: count }, (_, i) => Math.floor(i * step))
}

/** A C-order `.npy` of the given dtype (as numpy.save writes it): its shape and a 4-byte-aligned copy of its data. */
export async function readNpy(file: string, descr: '<i4' | '<f4'): Promise<{ shape: number[]; bytes: Uint8Array }> {
  const buf = await readFile(file)
  if (buf.subarray(0, 6).toString('latin1') !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`)
  const major = buf[6] as number
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8)
  const start = major === 1 ? 10 : 12
  const header = buf.subarray(start, start + headerLen).toString('latin1')
  if (!header.includes(`'descr': '${descr}'`) || /'fortran_order':\s*True/.test(header)) {
    throw new Error(`${file}: header ${header.trim()}, expected C-order '${descr}'`)
  }
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number)
  const offset = start + headerLen
  const count = shape.reduce((a, b) => a * b, 1)
  return { shape, bytes: new Uint8Array(buf.subarray(offset, offset + count * 4)) }
}

function emptyTable(rows: number, k: number): MinedTable {
  return {
    rows,
    k,
    ids: new Int32Array(rows * k).fill(-1),
    scores: new Float32Array(rows * k).fill(NaN),
    nValid: new Int32Array(rows),
    fn: new Int32Array(rows).fill(-1),
    pos: new Float32Array(rows).fill(NaN),
  }
}

function idsOf(t: MinedTable, r: number, k: number): number[] {
  const out: number[] = []
  for (let j = 0; j < Math.min(k, t.nValid[r] as number); j++) out.push(t.ids[r * t.k + j] as number)
  return out
}

function nanMax(a: number, b: number): number {
  return Number.isNaN(a) ? b : Math.max(a, b)
}
