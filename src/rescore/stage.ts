/**
 * The rescore stage of a mining run: mined rows whose negatives are the top N survivors
 * of the embedding rules (in embedding order, no padding) come in; the rescorer scores
 * each query against its positive and those candidates, the rule removes its false
 * negatives, and the k negatives are selected (sampling, rank window, pad policy) from
 * what survives. Rows are rescored in blocks, so that a block's requests run
 * concurrently; rows come out in the order they went in.
 */
import { selectNegatives, type SelectOptions, type SelectOutcome } from '../mine/select.js'
import type { FilteredCandidate, MinedRow } from '../types.js'
import { decideRescore, type RescoreDecision, type RescoreRule, type Rescorer, type RescoreSide } from './rescore.js'

/** Options of {@link rescoreRows}. */
export interface RescoreStageOptions {
  rescorer: Rescorer // the server and its cache
  rule: RescoreRule // top, margin, max score, rank order
  select: SelectOptions // the run's selection of the k negatives from the survivors
  keepFiltered: number // filtered candidates kept per row (the rule's removals join those of the embedding rules)
  side: (text: string, image: string) => RescoreSide // a query, positive or candidate side as the rescorer takes it
  rowOf: (row: MinedRow) => { row: number; label: string } // the row's 0-based input position (for the sampling seed) and its place for messages
  blockRows?: number // rows rescored together (default 256)
  onRow?: (row: MinedRow | null, outcome: SelectOutcome, input: MinedRow, decision: RescoreDecision) => void // every row's outcome after the stage (null when dropped)
  onPairs?: (done: number) => void // pairs scored so far (cache hits included)
}

/**
 * Rescores `rows` (each holding its top N embedding survivors as `negatives`, `n_valid`
 * of them distinct) and yields the final rows; dropped rows are not yielded (see `onRow`).
 *
 * @example
 * for await (const row of rescoreRows(candidateRows, { rescorer, rule, select, keepFiltered: 0, side, rowOf })) write(row)
 */
export async function* rescoreRows(rows: AsyncIterable<MinedRow>, options: RescoreStageOptions): AsyncGenerator<MinedRow> {
  const blockRows = options.blockRows ?? 256
  let block: MinedRow[] = []
  let pairsBefore = 0
  const flush = async function* (): AsyncGenerator<MinedRow> {
    const requests = block.map((r) => ({
      query: options.side(r.query, r.queryImage ?? ''),
      candidates: [options.side(r.positive, r.positiveImage ?? ''), ...r.negatives.slice(0, Math.min(r.nValid, options.rule.top)).map((t, i) => options.side(t, r.negImages?.[i] ?? ''))],
      label: options.rowOf(r).label,
    }))
    const base = pairsBefore
    const scores = await options.rescorer.score(requests, (done) => options.onPairs?.(base + done))
    pairsBefore += requests.reduce((n, q) => n + q.candidates.length, 0)
    for (const [i, input] of block.entries()) {
      const decision = decideRescore(scores[i] as number[], options.rule)
      const { row, outcome } = finish(input, decision, options)
      options.onRow?.(row, outcome, input, decision)
      if (row) yield row
    }
    block = []
  }
  for await (const row of rows) {
    block.push(row)
    if (block.length === blockRows) yield* flush()
  }
  if (block.length > 0) yield* flush()
}

/** One row's survivors selected into its final row. */
function finish(input: MinedRow, d: RescoreDecision, options: RescoreStageOptions): { row: MinedRow | null; outcome: SelectOutcome } {
  const { picks, outcome } = selectNegatives(d.kept.length, options.rowOf(input).row, options.select)
  if (outcome === 'dropped') return { row: null, outcome }
  const at = picks.map((p) => d.kept[p] as number)
  const filtered = options.keepFiltered > 0 ? mergeFiltered(input, d, options.keepFiltered) : undefined
  const row: MinedRow = {
    ...input,
    negatives: at.map((j) => input.negatives[j] as string),
    negIds: at.map((j) => input.negIds[j] as string),
    negScores: at.map((j) => input.negScores[j] as number),
    nValid: new Set(picks).size,
    nFalseNegatives: input.nFalseNegatives + d.removed.length,
    ...(input.negImages ? { negImages: at.map((j) => input.negImages?.[j] as string) } : {}),
    ...(filtered ? { filtered } : {}),
    posRescore: d.posScore,
    negRescores: at.map((j) => d.scores[j] as number),
  }
  return { row, outcome }
}

/** The embedding rules' filtered candidates and the rescore rule's, highest embedding score first, at most `keep`. */
function mergeFiltered(input: MinedRow, d: RescoreDecision, keep: number): FilteredCandidate[] {
  const removed: (FilteredCandidate & { order: number })[] = d.removed.map((j) => ({
    text: input.negatives[j] as string,
    id: input.negIds[j] as string,
    score: input.negScores[j] as number,
    rule: 'rescore',
    ...(input.negImages ? { image: input.negImages[j] as string } : {}),
    order: j,
  }))
  // Both lists are best first; on a tie the embedding rules' candidate comes first, each list keeping its order.
  const all = [...(input.filtered ?? []).map((f, i) => ({ ...f, order: i - 2 ** 31 })), ...removed]
  all.sort((a, b) => b.score - a.score || a.order - b.order)
  return all.slice(0, keep).map(({ order: _order, ...f }) => f)
}
