/**
 * Builds the ONNX graph that scores one block of queries against one block of the
 * pool, applies the false-negative rules as masks and keeps a top-K per query.
 * Private to search/: the exact searcher is its only user.
 */
import onnxProto from 'onnx-proto'

const { onnx } = onnxProto
const FLOAT = onnx.TensorProto.DataType.FLOAT
const INT64 = onnx.TensorProto.DataType.INT64
const ATTR_INT = onnx.AttributeProto.AttributeType.INT
const ATTR_FLOAT = onnx.AttributeProto.AttributeType.FLOAT

/** Subtracted from a removed candidate's score before ranking. */
export const REMOVED_PENALTY = 8

/** A ranked score below this belongs to a removed candidate. */
export const REMOVED_BELOW = -4

/** Which optional rules the graph applies; each adds one matrix multiply. */
export interface GraphRules {
  posSim: boolean // mask candidates too similar to the query's positive (needs `pos` and `posSimMax`)
  querySim: boolean // mask candidates whose owning query is too similar to the query (needs `owners` and `querySimMax`)
  splitMargin: boolean // also count, apart, the candidates above the margin rule's ceiling `margin_cap` (when other rules share `cap` or mask)
  keepRemoved: boolean // also rank the removed candidates (a second TopK, needs `kr`) and report which rule removed each
  sweeps?: boolean // also return the candidates above a per-query floor `sweep_floor`, for counting them against a sweep's ceilings (default false)
}

/** Bits of a removed candidate's `removed_rule` code; the lowest set bit is the rule reported. */
export const RULE_BITS = { ceiling: 1, posSim: 2, querySim: 4 } as const

/** A tensor dimension: fixed, or named (free). */
export type Dim = string | number

/** A graph input's or output's name, element type and shape. */
export function tensorInfo(name: string, elemType: number, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  }
}

/** A graph node with int and float attributes. */
export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  attrs: Record<string, { i: number } | { f: number }> = {},
): onnxProto.onnx.INodeProto {
  const attribute = Object.entries(attrs).map(([name, v]) =>
    'i' in v ? { name, type: ATTR_INT, i: v.i } : { name, type: ATTR_FLOAT, f: v.f },
  )
  return { opType, input: inputs, output: outputs, attribute, name: outputs[0] ?? opType }
}

/** A Constant node holding an int64 tensor. */
export function int64Constant(name: string, dims: number[], values: number[]): onnxProto.onnx.INodeProto {
  const t = { dataType: INT64, dims, int64Data: values }
  return { opType: 'Constant', input: [], output: [name], name, attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t }] }
}

/**
 * Inputs: `q` [b,d] queries, `p` [n,d] pool block, `cap` [b,1] the highest score a
 * candidate may have, `k` [1] int64 candidates to keep, `excl` [b,E] int64 pool-block
 * columns to report verdicts for (the query's own positive and query texts; -1 = none,
 * clamped to column 0 and ignored by the caller), plus per rule: `pos` [b,d] and
 * `pos_max` [1]; `owners` [n,d] and `query_max` [1]; with keepRemoved, `kr` [1] int64
 * removed candidates to keep.
 * Outputs: `top_scores`/`top_index` [b,k] of candidates no rule removed (removed ones
 * score below REMOVED_BELOW), `removed` [b] how many candidates the rules removed, and
 * `excl_removed` [b,E] the verdict of each `excl` column so the caller can leave them out
 * of the count (and, by index, of the ranking). With `splitMargin`, input `margin_cap`
 * [b,1] and outputs `margin_removed` [b] and `excl_margin` [b,E] do the same for the
 * margin rule alone. With keepRemoved also `removed_scores`/`removed_index` [b,kr], the
 * best-scoring removed candidates (kept ones score below REMOVED_BELOW), and
 * `removed_rule` [b,kr] their RULE_BITS codes. With `sweeps`, input `sweep_floor` [b,1]
 * and outputs `sweep_rows` [b], how many candidates of each query score above its floor,
 * `sweep_scores` [m] their scores (query by query, in pool order), and `excl_scores`
 * [b,E] the scores of the `excl` columns, for the caller to take them out of its counts.
 */
export function buildScoreGraph(rules: GraphRules): Uint8Array {
  const nodes: onnxProto.onnx.INodeProto[] = []
  const inputs = [
    tensorInfo('q', FLOAT, ['b', 'd']),
    tensorInfo('p', FLOAT, ['n', 'd']),
    tensorInfo('cap', FLOAT, ['b', 1]),
    tensorInfo('k', INT64, [1]),
    tensorInfo('excl', INT64, ['b', 'e']),
  ]
  nodes.push(node('Gemm', ['q', 'p'], ['s'], { transB: { i: 1 } }))
  nodes.push(node('Greater', ['s', 'cap'], ['over_cap']))
  let removed = 'over_cap'
  const ruleMasks: [string, number][] = [['over_cap', RULE_BITS.ceiling]]
  if (rules.posSim) {
    inputs.push(tensorInfo('pos', FLOAT, ['b', 'd']), tensorInfo('pos_max', FLOAT, [1]))
    nodes.push(node('Gemm', ['pos', 'p'], ['s_pos'], { transB: { i: 1 } }))
    nodes.push(node('Greater', ['s_pos', 'pos_max'], ['near_pos']))
    nodes.push(node('Or', [removed, 'near_pos'], ['removed_pos']))
    removed = 'removed_pos'
    ruleMasks.push(['near_pos', RULE_BITS.posSim])
  }
  if (rules.querySim) {
    inputs.push(tensorInfo('owners', FLOAT, ['n', 'd']), tensorInfo('query_max', FLOAT, [1]))
    nodes.push(node('Gemm', ['q', 'owners'], ['s_owner'], { transB: { i: 1 } }))
    nodes.push(node('Greater', ['s_owner', 'query_max'], ['near_query']))
    nodes.push(node('Or', [removed, 'near_query'], ['removed_query']))
    removed = 'removed_query'
    ruleMasks.push(['near_query', RULE_BITS.querySim])
  }
  // Arithmetic masking (s - 8 * removed) vectorises in onnxruntime where Where does not;
  // scores of unit vectors are >= -1, so anything below REMOVED_BELOW was removed.
  nodes.push(node('Cast', [removed], ['removed_f'], { to: { i: FLOAT } }))
  nodes.push(node('Constant', [], ['penalty'], { value_float: { f: -REMOVED_PENALTY } }))
  nodes.push(node('Mul', ['removed_f', 'penalty'], ['removed_penalty']))
  nodes.push(node('Add', ['s', 'removed_penalty'], ['masked']))
  nodes.push(node('TopK', ['masked', 'k'], ['top_scores', 'top_index'], { axis: { i: 1 }, largest: { i: 1 }, sorted: { i: 1 } }))
  nodes.push(int64Constant('axis1', [1], [1]))
  nodes.push(node('ReduceSum', ['removed_f', 'axis1'], ['removed'], { keepdims: { i: 0 } }))
  nodes.push(int64Constant('zero', [], [0]))
  nodes.push(node('Max', ['excl', 'zero'], ['excl_safe']))
  nodes.push(node('GatherElements', ['removed_f', 'excl_safe'], ['excl_removed'], { axis: { i: 1 } }))
  const outputs = [
    tensorInfo('top_scores', FLOAT, ['b', 'kk']),
    tensorInfo('top_index', INT64, ['b', 'kk']),
    tensorInfo('removed', FLOAT, ['b']),
    tensorInfo('excl_removed', FLOAT, ['b', 'e']),
  ]
  if (rules.splitMargin) {
    inputs.push(tensorInfo('margin_cap', FLOAT, ['b', 1]))
    nodes.push(node('Greater', ['s', 'margin_cap'], ['over_margin']))
    nodes.push(node('Cast', ['over_margin'], ['margin_f'], { to: { i: FLOAT } }))
    nodes.push(node('ReduceSum', ['margin_f', 'axis1'], ['margin_removed'], { keepdims: { i: 0 } }))
    nodes.push(node('GatherElements', ['margin_f', 'excl_safe'], ['excl_margin'], { axis: { i: 1 } }))
    outputs.push(tensorInfo('margin_removed', FLOAT, ['b']), tensorInfo('excl_margin', FLOAT, ['b', 'e']))
  }
  if (rules.sweeps) {
    // Every sweep ceiling is at least the lowest, `sweep_floor`: one compare picks the few
    // candidates above it (row-major, so grouped by row, `sweep_rows` per row), and the
    // caller counts those against each ceiling. One pass over the block instead of three
    // per ceiling.
    inputs.push(tensorInfo('sweep_floor', FLOAT, ['b', 1]))
    nodes.push(node('Greater', ['s', 'sweep_floor'], ['sweep_over']))
    nodes.push(node('Cast', ['sweep_over'], ['sweep_over_f'], { to: { i: FLOAT } }))
    nodes.push(node('ReduceSum', ['sweep_over_f', 'axis1'], ['sweep_rows'], { keepdims: { i: 0 } }))
    nodes.push(int64Constant('flat', [1], [-1]))
    nodes.push(node('Reshape', ['sweep_over', 'flat'], ['sweep_over_flat']))
    nodes.push(node('Compress', ['s', 'sweep_over_flat'], ['sweep_scores']))
    nodes.push(node('GatherElements', ['s', 'excl_safe'], ['excl_scores'], { axis: { i: 1 } }))
    outputs.push(tensorInfo('sweep_rows', FLOAT, ['b']), tensorInfo('sweep_scores', FLOAT, ['m']), tensorInfo('excl_scores', FLOAT, ['b', 'e']))
  }
  if (rules.keepRemoved) {
    inputs.push(tensorInfo('kr', INT64, [1]))
    // The same masking turned around, s + (-8 + 8 * removed): kept candidates sink below
    // REMOVED_BELOW, removed ones keep their score exactly (s + 0).
    nodes.push(node('Sub', ['penalty', 'removed_penalty'], ['kept_penalty']))
    nodes.push(node('Add', ['s', 'kept_penalty'], ['masked_kept']))
    nodes.push(node('TopK', ['masked_kept', 'kr'], ['removed_scores', 'removed_index'], { axis: { i: 1 }, largest: { i: 1 }, sorted: { i: 1 } }))
    // With the ceiling alone, removed_f is already its code.
    let code = ruleMasks.length === 1 ? 'removed_f' : ''
    for (const [mask, bit] of code === '' ? ruleMasks : []) {
      nodes.push(node('Cast', [mask], [`${mask}_f`], { to: { i: FLOAT } }))
      let term = `${mask}_f`
      if (bit !== 1) {
        nodes.push(node('Constant', [], [`${mask}_bit`], { value_float: { f: bit } }))
        nodes.push(node('Mul', [term, `${mask}_bit`], [`${mask}_code`]))
        term = `${mask}_code`
      }
      if (code !== '') {
        nodes.push(node('Add', [code, term], [`rule_code_${bit}`]))
        term = `rule_code_${bit}`
      }
      code = term
    }
    nodes.push(node('GatherElements', [code, 'removed_index'], ['removed_rule'], { axis: { i: 1 } }))
    outputs.push(
      tensorInfo('removed_scores', FLOAT, ['b', 'kr']),
      tensorInfo('removed_index', INT64, ['b', 'kr']),
      tensorInfo('removed_rule', FLOAT, ['b', 'kr']),
    )
  }

  const graph: onnxProto.onnx.IGraphProto = {
    name: 'hardneg_score_block',
    node: nodes,
    input: inputs,
    output: outputs,
  }
  const model: onnxProto.onnx.IModelProto = {
    irVersion: 8,
    producerName: 'hardneg',
    opsetImport: [{ domain: '', version: 17 }],
    graph,
  }
  return onnx.ModelProto.encode(model).finish()
}

