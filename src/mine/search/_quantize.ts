/**
 * Per-vector int8 quantisation for the int8 exact kernel, and the error bound that
 * makes its integer scores safe to decide with. Private to search/.
 *
 * Every vector x gets its own scale α = fround(max|x_k| / L) and codes X_k = round(x_k / α)
 * in [-L, L]; x̂ = α·X. The residual r = x − x̂ is computed exactly and summarised per
 * vector by the numbers the bound needs (docs/mining.md, "The int8 kernel", proves it):
 * e = ‖r‖, the part f of r orthogonal to x, the shift c = (r·x)/‖x‖², ‖x‖² and ‖x̂‖.
 * Each is rounded up (or given slack) so that the bound stays an upper bound.
 */

/** Code range of the pool side: [-127, 127], int8. */
export const POOL_LEVELS = 127

/**
 * Code range of the query side: [-64, 64], stored as uint8 X + 64 (zero point 64).
 * Without VNNI, x86 int8 kernels add pairs of u8·s8 products in a saturating int16
 * (vpmaddubsw); 2 · 128 · 127 = 32512 keeps every pair below 32767, so the int32 result
 * is exact, and the same, on every CPU.
 */
export const QUERY_LEVELS = 64

/** The query side's zero point: codes are stored as X + QUERY_ZERO in uint8. */
export const QUERY_ZERO = 64

/**
 * Absolute slack added to every interval, for floating-point rounding: the graph's
 * float32 α_p·I (one rounding, |ŝ| ≤ 2), the float64 arithmetic of the bound, the float32
 * thresholds, and the distance between the real dot product and the float32-rounded
 * float64 sum that is the exact score (≤ 2^-24·|s| + d·2^-53). 2^-20 ≈ 9.5e-7 covers
 * them with room to spare for |s| ≤ 2 and d ≤ 2^20.
 */
export const SLACK = 2 ** -20

/** Relative inflation of norms computed in float64 (their rounding error is ≤ d·2^-53). */
const UP = 1 + 2 ** -30

/** A matrix quantised row by row, with the per-row numbers of the error bound. */
export interface QuantizedRows {
  rows: number // vectors
  dim: number // dimension
  codes: Int8Array | Uint8Array // rows x dim codes: int8 X (pool) or uint8 X + QUERY_ZERO (queries)
  scale: Float32Array // per row: α
  err: Float64Array // per row: ‖r‖, rounded up
  perp: Float64Array // per row: ‖r − (r·x / ‖x‖²)·x‖, the residual's part orthogonal to x, rounded up
  shift: Float64Array // per row: (r·x) / ‖x‖²
  norm2: Float64Array // per row: ‖x‖², rounded up
  codeNorm: Float64Array // per row: ‖x̂‖, rounded up
}

/**
 * Quantises `rows` vectors of `data` (row-major, `dim` wide) with `levels` code levels
 * each side of zero; `zero` is added to every code (uint8 storage) when given.
 */
export function quantizeRows(data: Float32Array, rows: number, dim: number, levels: number, zero?: number): QuantizedRows {
  const codes = zero === undefined ? new Int8Array(rows * dim) : new Uint8Array(rows * dim)
  const out: QuantizedRows = {
    rows,
    dim,
    codes,
    scale: new Float32Array(rows),
    err: new Float64Array(rows),
    perp: new Float64Array(rows),
    shift: new Float64Array(rows),
    norm2: new Float64Array(rows),
    codeNorm: new Float64Array(rows),
  }
  const z = zero ?? 0
  const row = new Float64Array(dim) // the row's codes, before storage
  for (let i = 0; i < rows; i++) {
    const o = i * dim
    let max = 0
    for (let k = 0; k < dim; k++) {
      const a = Math.abs(data[o + k] as number)
      if (a > max) max = a
    }
    // A float32 scale: the graph multiplies by exactly this value, and α·X is exact in float64.
    const alpha = max > 0 ? Math.fround(max / levels) : 1
    const inv = 1 / alpha
    let e2 = 0
    let rx = 0
    let x2 = 0
    let h2 = 0
    for (let k = 0; k < dim; k++) {
      const x = data[o + k] as number
      // Any integer code is sound (the residual is computed from it); rounding keeps it small.
      let c = Math.floor(x * inv + 0.5)
      if (c > levels) c = levels
      else if (c < -levels) c = -levels
      row[k] = c
      const h = alpha * c
      const r = x - h
      e2 += r * r
      rx += r * x
      x2 += x * x
      h2 += h * h
    }
    if (zero === undefined) (codes as Int8Array).set(row, o)
    else for (let k = 0; k < dim; k++) codes[o + k] = (row[k] as number) + z
    const e = Math.sqrt(e2) * UP
    out.scale[i] = alpha
    out.err[i] = e
    out.norm2[i] = x2 * UP
    out.codeNorm[i] = Math.sqrt(h2) * UP
    out.shift[i] = x2 > 0 ? rx / x2 : 0
    // Cancellation in e² − (r·x)²/‖x‖² costs at most ~d·2^-52·e² absolute; e²·2^-20 covers it.
    out.perp[i] = Math.min(e, Math.sqrt(Math.max(0, e2 - (x2 > 0 ? (rx * rx) / x2 : 0)) + e2 * 2 ** -20) * UP)
  }
  return out
}

/**
 * An interval certain to hold the exact score of (query `qi`, pool row `pj`) given the
 * integer score's estimate `sHat` = α_q·α_p·(Q·P). Writes [lo, hi] into `into`.
 *
 * Two bounds, both proved in docs/mining.md, intersected: Cauchy–Schwarz on
 * s − ŝ = r_q·p + q̂·r_p, and the angle-aware one, s(1 − c_q − c_p) − ŝ ∈ ±W(s) with
 * W(s) = f_q·√(‖p‖² − s²/‖q‖²) + f_p·√(‖q‖² − s²/‖p‖²) + e_q·e_p, refined twice by
 * evaluating W at the point of the current interval nearest 0 (W falls as |s| grows).
 */
export function scoreInterval(sHat: number, q: QuantizedRows, qi: number, p: QuantizedRows, pj: number, into: Float64Array): void {
  const eq = q.err[qi] as number
  const ep = p.err[pj] as number
  const nq2 = q.norm2[qi] as number
  const np2 = p.norm2[pj] as number
  const cs = eq * Math.sqrt(np2) + (q.codeNorm[qi] as number) * ep + SLACK
  let lo = sHat - cs
  let hi = sHat + cs
  const fq = q.perp[qi] as number
  const fp = p.perp[pj] as number
  const den = 1 - (q.shift[qi] as number) - (p.shift[pj] as number)
  if (den > 0.5) {
    const eqep = eq * ep
    for (let step = 0; step < 2; step++) {
      const near = lo > 0 ? lo : hi < 0 ? hi : 0
      const n2 = near * near
      const w = (fq * Math.sqrt(Math.max(0, np2 - n2 / nq2)) + fp * Math.sqrt(Math.max(0, nq2 - n2 / np2)) + eqep) * UP + SLACK
      const a = (sHat - w) / den
      const b = (sHat + w) / den
      if (a > lo) lo = a
      if (b < hi) hi = b
    }
  }
  into[0] = lo - SLACK
  into[1] = hi + SLACK
}

const f32 = new Float32Array(1)
const i32 = new Int32Array(f32.buffer)

/** The smallest float32 >= x (x finite). */
export function float32AtLeast(x: number): number {
  f32[0] = x
  if ((f32[0] as number) >= x) return f32[0] as number
  // Rounded down: step one ulp towards +infinity.
  const v = f32[0] as number
  i32[0] = v === 0 ? 1 : v > 0 ? (i32[0] as number) + 1 : (i32[0] as number) - 1
  return f32[0] as number
}

/** The largest float32 <= x (x finite). */
export function float32AtMost(x: number): number {
  return -float32AtLeast(-x)
}
