/**
 * The ONNX graph of the int8 exact kernel for one pool block: the block's int8 codes are
 * an initializer (onnxruntime packs them once, when the session is created), queries
 * stream through as uint8. Private to search/.
 */
import onnxProto from 'onnx-proto'
import { int64Constant, node, tensorInfo } from './_graph.js'
import { QUERY_ZERO } from './_quantize.js'

const { onnx } = onnxProto
const T = onnx.TensorProto.DataType

/** Added to a masked candidate's value before ranking: far below any unmasked one. */
export const MASK_PENALTY = 1e9

/** A ranked value below this belongs to a masked candidate (unmasked |G| ≤ 128·√d). */
export const MASKED_BELOW = -1e8

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
 * Inputs: `q` [b,d] uint8 query codes (X + QUERY_ZERO); `hi` [b,1] the value of G above which a
 * candidate is certainly above the ceiling; `k` [1] int64; `excl` [b,E] int64 block columns
 * (-1 = none, clamped to 0 and ignored by the caller).
 * G = α_p · (X·P) [b,n] float32 (the query's own scale is left out: thresholds are divided by it).
 * Outputs: `top_g`/`top_index` [b,k]: the candidates with G <= hi, highest G first (others
 * below MASKED_BELOW); `removed` [b]: how many have G > hi; `excl_g` [b,E]: G of the `excl`
 * columns. With C = `counts` > 0: inputs `cnt_hi`/`cnt_lo` [b,C], outputs `cnt_certain`
 * [b,C] (G > cnt_hi per ceiling) and the band: `band_index` [2,m] (row, column) of every
 * candidate with cnt_lo < G <= cnt_hi for some ceiling, `band_g` [m] their G. With
 * keepRemoved: inputs `lo` [b,1] and `kr` [1], outputs `rem_g`/`rem_index` [b,kr]: the
 * candidates with G > lo (those that may be above the ceiling), highest G first.
 */
export function buildInt8BlockGraph(block: Int8Block, parts: Int8GraphParts): Uint8Array {
  const { dim, n } = block
  const nodes: onnxProto.onnx.INodeProto[] = []
  const inputs = [
    tensorInfo('q', T.UINT8, ['b', dim]),
    tensorInfo('hi', T.FLOAT, ['b', 1]),
    tensorInfo('k', T.INT64, [1]),
    tensorInfo('excl', T.INT64, ['b', 'e']),
  ]
  const initializer: onnxProto.onnx.ITensorProto[] = [
    { name: 'p', dataType: T.INT8, dims: [dim, n], rawData: new Uint8Array(block.codes.buffer, block.codes.byteOffset, block.codes.byteLength) },
    { name: 'p_scale', dataType: T.FLOAT, dims: [n], rawData: new Uint8Array(block.scale.buffer, block.scale.byteOffset, block.scale.byteLength) },
    { name: 'one', dataType: T.FLOAT, dims: [], floatData: [1] },
    { name: 'zp', dataType: T.UINT8, dims: [], rawData: Uint8Array.of(QUERY_ZERO) },
  ]
  nodes.push({ ...node('MatMulIntegerToFloat', ['q', 'p', 'one', 'p_scale', 'zp'], ['g']), domain: 'com.microsoft' })
  nodes.push(node('Greater', ['g', 'hi'], ['over']))
  nodes.push(node('Cast', ['over'], ['over_f'], { to: { i: T.FLOAT } }))
  nodes.push(node('Constant', [], ['penalty'], { value_float: { f: -MASK_PENALTY } }))
  nodes.push(node('Mul', ['over_f', 'penalty'], ['over_penalty']))
  nodes.push(node('Add', ['g', 'over_penalty'], ['masked']))
  nodes.push(node('TopK', ['masked', 'k'], ['top_g', 'top_index'], { axis: { i: 1 }, largest: { i: 1 }, sorted: { i: 1 } }))
  nodes.push(int64Constant('axis1', [1], [1]))
  nodes.push(node('ReduceSum', ['over_f', 'axis1'], ['removed'], { keepdims: { i: 0 } }))
  nodes.push(int64Constant('zero', [], [0]))
  nodes.push(node('Max', ['excl', 'zero'], ['excl_safe']))
  nodes.push(node('GatherElements', ['g', 'excl_safe'], ['excl_g'], { axis: { i: 1 } }))
  const outputs = [
    tensorInfo('top_g', T.FLOAT, ['b', 'kk']),
    tensorInfo('top_index', T.INT64, ['b', 'kk']),
    tensorInfo('removed', T.FLOAT, ['b']),
    tensorInfo('excl_g', T.FLOAT, ['b', 'e']),
  ]
  const c = parts.counts
  if (c > 0) {
    inputs.push(tensorInfo('cnt_hi', T.FLOAT, ['b', c]), tensorInfo('cnt_lo', T.FLOAT, ['b', c]))
    const his = Array.from({ length: c }, (_, t) => `cnt_hi_${t}`)
    const los = Array.from({ length: c }, (_, t) => `cnt_lo_${t}`)
    nodes.push(c === 1 ? node('Identity', ['cnt_hi'], his) : node('Split', ['cnt_hi'], his, { axis: { i: 1 } }))
    nodes.push(c === 1 ? node('Identity', ['cnt_lo'], los) : node('Split', ['cnt_lo'], los, { axis: { i: 1 } }))
    const counts: string[] = []
    let band = ''
    for (let t = 0; t < c; t++) {
      nodes.push(node('Greater', ['g', his[t] as string], [`cnt_over_${t}`]))
      nodes.push(node('Cast', [`cnt_over_${t}`], [`cnt_over_f_${t}`], { to: { i: T.FLOAT } }))
      nodes.push(node('ReduceSum', [`cnt_over_f_${t}`, 'axis1'], [`cnt_${t}`], { keepdims: { i: 1 } }))
      counts.push(`cnt_${t}`)
      nodes.push(node('Greater', ['g', los[t] as string], [`cnt_maybe_${t}`]))
      nodes.push(node('Xor', [`cnt_maybe_${t}`, `cnt_over_${t}`], [`band_${t}`]))
      if (band !== '') nodes.push(node('Or', [band, `band_${t}`], [`band_or_${t}`]))
      band = band === '' ? `band_${t}` : `band_or_${t}`
    }
    nodes.push(counts.length === 1 ? node('Identity', counts, ['cnt_certain']) : node('Concat', counts, ['cnt_certain'], { axis: { i: 1 } }))
    nodes.push(node('NonZero', [band], ['band_index']))
    nodes.push({ ...node('Transpose', ['band_index'], ['band_pairs']), attribute: [{ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 0] }] })
    nodes.push(node('GatherND', ['g', 'band_pairs'], ['band_g']))
    outputs.push(tensorInfo('cnt_certain', T.FLOAT, ['b', c]), tensorInfo('band_index', T.INT64, [2, 'm']), tensorInfo('band_g', T.FLOAT, ['m']))
  }
  if (parts.keepRemoved) {
    inputs.push(tensorInfo('lo', T.FLOAT, ['b', 1]), tensorInfo('kr', T.INT64, [1]))
    // G > lo keeps G (+0), the rest sink: G − P + P·maybe.
    nodes.push(node('Greater', ['g', 'lo'], ['maybe']))
    nodes.push(node('Cast', ['maybe'], ['maybe_f'], { to: { i: T.FLOAT } }))
    nodes.push(node('Mul', ['maybe_f', 'penalty'], ['maybe_penalty']))
    nodes.push(node('Sub', ['penalty', 'maybe_penalty'], ['kept_penalty']))
    nodes.push(node('Add', ['g', 'kept_penalty'], ['masked_kept']))
    nodes.push(node('TopK', ['masked_kept', 'kr'], ['rem_g', 'rem_index'], { axis: { i: 1 }, largest: { i: 1 }, sorted: { i: 1 } }))
    outputs.push(tensorInfo('rem_g', T.FLOAT, ['b', 'kkr']), tensorInfo('rem_index', T.INT64, ['b', 'kkr']))
  }
  const model: onnxProto.onnx.IModelProto = {
    irVersion: 8,
    producerName: 'hardneg',
    opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    graph: { name: 'hardneg_int8_block', node: nodes, input: inputs, output: outputs, initializer },
  }
  return onnx.ModelProto.encode(model).finish()
}
