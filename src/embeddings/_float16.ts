/**
 * IEEE 754 binary16 -> float32 decoding through a lookup table (Node 20 has no
 * Float16Array). Private to `src/embeddings/`.
 */

let table: Float32Array | undefined

/**
 * The float32 value of every half-precision bit pattern: `halfTable()[bits]` for
 * `bits` in 0..65535. Built on first use (256 KiB) and shared afterwards; callers must
 * not write to it. Every half value, subnormals included, is exactly representable in
 * float32, so the table is exact; ±Inf map to ±Infinity and every NaN pattern to NaN.
 *
 * @example
 * const f16 = halfTable()
 * f16[0x3c00] // 1
 * f16[0x0001] // 5.960464477539063e-8, the smallest subnormal
 */
export function halfTable(): Float32Array {
  if (table === undefined) {
    const t = new Float32Array(65536)
    for (let bits = 0; bits < 65536; bits++) t[bits] = halfToNumber(bits)
    table = t
  }
  return table
}

/** Decodes one binary16 bit pattern (0..65535) to a number. */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >> 10) & 0x1f
  const mantissa = bits & 0x3ff
  if (exponent === 0) return sign * mantissa * 2 ** -24
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN
  return sign * (1024 + mantissa) * 2 ** (exponent - 25)
}
