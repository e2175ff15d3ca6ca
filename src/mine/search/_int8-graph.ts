/**
 * The ONNX graph of the int8 exact kernel: the pool's int8 codes are initializers, block
 * by block (onnxruntime packs them once, when the session is created), queries stream
 * through as uint8. Private to search/.
 */
import onnxProto from 'onnx-proto'
import { int64Constant, node, tensorInfo } from './_graph.js'
import { QUERY_ZERO } from './_quantize.js'

const { onnx } = onnxProto
const T = onnx.TensorProto.DataType

/** Added to a masked candidate's value before ranking: far below any unmasked one. */
export const MASK_PENALTY = 1e9

/** A ranked value below this belongs to a masked candidate (unmasked |G| ≤ 128·√d; masked ones sit 2^30 lower). */
export const MASKED_BELOW = -1e8

/** The mask's step: a candidate certainly above the ceiling ranks 2^30 lower. */
const STEP = 2 ** 30

/**
 * Thresholds `hi` closer to 0 than this are moved to ±STEP_FLOOR (which selects the same
 * candidates: every G is 0 or at least α_p ≥ 1/(127·√d) away from it), so that a positive
 * G − hi is never below 2^-93 and the step above is exact.
 */
export const STEP_FLOOR = 2 ** -70

/** One pool block as the graph holds it. */
export interface Int8Block {
  codes: Int8Array // dim x n codes, column j = the block's j-th pool vector (the layout MatMulInteger's B takes)
  scale: Float32Array // n per-vector scales α_p
  dim: number // vector dimension
  n: number // pool vectors in the block
}

/** What the graph computes besides the ranking of the candidates not certainly removed. */
export interface Int8GraphParts {
  counts: number // C further ceilings whose certain counts and bands are wanted (margin split, sweeps); 0 = none
  keepRemoved: boolean // also rank the candidates that may be removed (a second TopK)
}

/**
 * One graph over several pool blocks, run once per query batch: one session, one thread
 * pool, every block's codes packed once. Shared input: `q` [b,d] uint8 query codes
 * (X + QUERY_ZERO).
 * Per block (names end in `_` and the block's number), G = α_p · (X·P) [b,n] float32 (the
 * query's own scale is left out: thresholds are divided by it):
 * - inputs `hi` [b,1], G above it certainly above the ceiling; `k` [1] int64 (at most n);
 *   `excl` [b,E] int64 block columns (-1 = none, clamped to 0 and ignored by the caller);
 * - outputs `top_g`/`top_index` [b,k]: the candidates with G <= hi, highest G first (others
 *   below MASKED_BELOW); `removed` [b]: how many have G > hi; `excl_g` [b,E]: G of `excl`;
 * - with C = `counts` > 0: inputs `cnt_hi`/`cnt_lo` [b,C], outputs `cnt_certain` [b,C] (G >
 *   cnt_hi per ceiling) and the band: `band_index` [2,m] (row, column) of every candidate
 *   with cnt_lo < G <= cnt_hi for some ceiling, `band_g` [m] their G;
 * - with keepRemoved: inputs `lo` [b,1] and `kr` [1] int64 (at most n), outputs `rem_g`/`rem_index` [b,kr]: the candidates
 *   with G > lo (those that may be above the ceiling), highest G first.
 */
export function buildInt8PoolGraph(blocks: readonly Int8Block[], parts: Int8GraphParts): Uint8Array {
  const dim = blocks[0]?.dim ?? 0
  const nodes: onnxProto.onnx.INodeProto[] = [int64Constant('axis1', [1], [1]), int64Constant('zero', [], [0])]
  // Only the removed list uses it; an unused constant makes onnxruntime print a warning to the user.
  if (parts.keepRemoved) nodes.push(node('Constant', [], ['penalty'], { value_float: { f: -MASK_PENALTY } }))
  const inputs = [tensorInfo('q', T.UINT8, ['b', dim])]
  const outputs: onnxProto.onnx.IValueInfoProto[] = []
  const initializer: onnxProto.onnx.ITensorProto[] = [
    { name: 'one', dataType: T.FLOAT, dims: [], floatData: [1] },
    { name: 'zp', dataType: T.UINT8, dims: [], rawData: Uint8Array.of(QUERY_ZERO) },
    { name: 'step_gain', dataType: T.FLOAT, dims: [], floatData: [2 ** 126] },
    { name: 'step_zero', dataType: T.FLOAT, dims: [], floatData: [0] },
    { name: 'step_size', dataType: T.FLOAT, dims: [], floatData: [STEP] },
    { name: 'step_unit', dataType: T.FLOAT, dims: [], floatData: [1 / STEP] },
  ]
  blocks.forEach((block, b) => {
    const x = (name: string): string => `${name}_${b}`
    initializer.push(
      { name: x('p'), dataType: T.INT8, dims: [dim, block.n], rawData: new Uint8Array(block.codes.buffer, block.codes.byteOffset, block.codes.byteLength) },
      { name: x('p_scale'), dataType: T.FLOAT, dims: [block.n], rawData: new Uint8Array(block.scale.buffer, block.scale.byteOffset, block.scale.byteLength) },
    )
    inputs.push(tensorInfo(x('hi'), T.FLOAT, ['b', 1]), tensorInfo(x('k'), T.INT64, [1]), tensorInfo(x('excl'), T.INT64, ['b', 'e']))
    nodes.push({ ...node('MatMulIntegerToFloat', ['q', x('p'), 'one', x('p_scale'), 'zp'], [x('g')]), domain: 'com.microsoft' })
    // A step without a bool tensor (Greater + Cast + Mul + Add cost ~10 ms more per block):
    // step = clip((G − hi)·2^126, 0, 2^30) is 2^30 exactly when G > hi and 0 otherwise,
    // because G − hi is at least 2^-93 when positive (|G|, |hi| ≥ 2^-70 or G = 0: see
    // STEP_FLOOR), and every sum of steps is exact (multiples of 2^30, fewer than 2^24).
    nodes.push(node('Sub', [x('g'), x('hi')], [x('over_by')]))
    nodes.push(node('Mul', [x('over_by'), 'step_gain'], [x('over_scaled')]))
    nodes.push(node('Clip', [x('over_scaled'), 'step_zero', 'step_size'], [x('over_step')]))
    nodes.push(node('Sub', [x('g'), x('over_step')], [x('masked')]))
    nodes.push(node('TopK', [x('masked'), x('k')], [x('top_g'), x('top_index')], { axis: { i: 1 }, largest: { i: 1 }, sorted: { i: 1 } }))
    nodes.push(node('ReduceSum', [x('over_step'), 'axis1'], [x('removed_steps')], { keepdims: { i: 0 } }))
    nodes.push(node('Mul', [x('removed_steps'), 'step_unit'], [x('removed')]))
    nodes.push(node('Max', [x('excl'), 'zero'], [x('excl_safe')]))
    nodes.push(node('GatherElements', [x('g'), x('excl_safe')], [x('excl_g')], { axis: { i: 1 } }))
    outputs.push(
      tensorInfo(x('top_g'), T.FLOAT, ['b', x('kk')]),
      tensorInfo(x('top_index'), T.INT64, ['b', x('kk')]),
      tensorInfo(x('removed'), T.FLOAT, ['b']),
      tensorInfo(x('excl_g'), T.FLOAT, ['b', 'e']),
    )
    const c = parts.counts
    if (c > 0) {
      inputs.push(tensorInfo(x('cnt_hi'), T.FLOAT, ['b', c]), tensorInfo(x('cnt_lo'), T.FLOAT, ['b', c]))
      const his = Array.from({ length: c }, (_, t) => x(`cnt_hi_${t}`))
      const los = Array.from({ length: c }, (_, t) => x(`cnt_lo_${t}`))
      nodes.push(c === 1 ? node('Identity', [x('cnt_hi')], his) : node('Split', [x('cnt_hi')], his, { axis: { i: 1 } }))
      nodes.push(c === 1 ? node('Identity', [x('cnt_lo')], los) : node('Split', [x('cnt_lo')], los, { axis: { i: 1 } }))
      const counts: string[] = []
      let band = ''
      for (let t = 0; t < c; t++) {
        nodes.push(node('Greater', [x('g'), his[t] as string], [x(`cnt_over_${t}`)]))
        nodes.push(node('Cast', [x(`cnt_over_${t}`)], [x(`cnt_over_f_${t}`)], { to: { i: T.FLOAT } }))
        nodes.push(node('ReduceSum', [x(`cnt_over_f_${t}`), 'axis1'], [x(`cnt_${t}`)], { keepdims: { i: 1 } }))
        counts.push(x(`cnt_${t}`))
        nodes.push(node('Greater', [x('g'), los[t] as string], [x(`cnt_maybe_${t}`)]))
        nodes.push(node('Xor', [x(`cnt_maybe_${t}`), x(`cnt_over_${t}`)], [x(`band_${t}`)]))
        if (band !== '') nodes.push(node('Or', [band, x(`band_${t}`)], [x(`band_or_${t}`)]))
        band = band === '' ? x(`band_${t}`) : x(`band_or_${t}`)
      }
      nodes.push(counts.length === 1 ? node('Identity', counts, [x('cnt_certain')]) : node('Concat', counts, [x('cnt_certain')], { axis: { i: 1 } }))
      nodes.push(node('NonZero', [band], [x('band_index')]))
      nodes.push({ ...node('Transpose', [x('band_index')], [x('band_pairs')]), attribute: [{ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 0] }] })
      nodes.push(node('GatherND', [x('g'), x('band_pairs')], [x('band_g')]))
      outputs.push(tensorInfo(x('cnt_certain'), T.FLOAT, ['b', c]), tensorInfo(x('band_index'), T.INT64, [2, x('m')]), tensorInfo(x('band_g'), T.FLOAT, [x('m')]))
    }
    if (parts.keepRemoved) {
      inputs.push(tensorInfo(x('lo'), T.FLOAT, ['b', 1]), tensorInfo(x('kr'), T.INT64, [1]))
      // G > lo keeps G (+0), the rest sink: G − P + P·maybe.
      nodes.push(node('Greater', [x('g'), x('lo')], [x('maybe')]))
      nodes.push(node('Cast', [x('maybe')], [x('maybe_f')], { to: { i: T.FLOAT } }))
      nodes.push(node('Mul', [x('maybe_f'), 'penalty'], [x('maybe_penalty')]))
      nodes.push(node('Sub', ['penalty', x('maybe_penalty')], [x('kept_penalty')]))
      nodes.push(node('Add', [x('g'), x('kept_penalty')], [x('masked_kept')]))
      nodes.push(node('TopK', [x('masked_kept'), x('kr')], [x('rem_g'), x('rem_index')], { axis: { i: 1 }, largest: { i: 1 }, sorted: { i: 1 } }))
      outputs.push(tensorInfo(x('rem_g'), T.FLOAT, ['b', x('kkr')]), tensorInfo(x('rem_index'), T.INT64, ['b', x('kkr')]))
    }
  })
  const model: onnxProto.onnx.IModelProto = {
    irVersion: 8,
    producerName: 'hardneg',
    opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    graph: { name: 'hardneg_int8_pool', node: nodes, input: inputs, output: outputs, initializer },
  }
  return onnx.ModelProto.encode(model).finish()
}
