/**
 * Choosing the k hard negatives from a query's ranked, filtered candidates, and padding
 * rows that have fewer than k.
 */
import { HardnegError } from '../errors.js'
import { mulberry32 } from '../random.js'

/** How negatives are picked from the ranked candidates. */
export interface SelectOptions {
  k: number // negatives per row (default 8)
  sampling: 'top' | 'random' // top: the k best (of the window `range` when given); random: k drawn from the rank window `range` (default 'top')
  range?: [number, number] // 0-based ranks [min, max) of the ranked candidates to pick from: top takes ranks min, min+1, ... (sentence-transformers' range_min/range_max); random draws from them (default: top from rank 0; random [0, 100])
  minScore?: number // candidates scoring below this are too easy and never picked (sentence-transformers' min_score; default: off)
  seed: number // random only: seed; the draw for a row depends only on the seed and the row's position in the input (default 0)
  pad: 'repeat' | 'none' | 'drop' // fewer than k left: repeat existing ones (UniME), keep the row short, or drop it (default 'repeat')
}

/** What happened to one row. */
export type SelectOutcome = 'full' | 'padded' | 'short' | 'dropped'

/**
 * Picks up to `k` positions out of `available` ranked candidates (0 = best) and applies
 * the pad policy. Returns positions into the ranked list, in output order, or null when
 * the row is dropped. A row with no candidate at all cannot be padded and is dropped
 * under 'repeat' and 'drop', kept empty under 'none'.
 */
export function selectNegatives(
  available: number,
  row: number,
  options: SelectOptions,
): { picks: number[]; outcome: SelectOutcome } {
  const { k, pad } = options
  let picks: number[]
  if (options.sampling === 'random') {
    const [min, max] = options.range ?? [0, 100]
    const window = Math.max(0, Math.min(max, available) - min)
    picks = sampleWithoutReplacement(window, Math.min(k, window), rowSeed(options.seed, row)).map((p) => p + min)
    picks.sort((a, b) => a - b)
  } else {
    const [min, max] = options.range ?? [0, k]
    picks = []
    for (let i = min; i < Math.min(min + k, max, available); i++) picks.push(i)
  }
  if (picks.length === k) return { picks, outcome: 'full' }
  if (pad === 'none') return { picks, outcome: 'short' }
  if (pad === 'drop' || picks.length === 0) return { picks: [], outcome: 'dropped' }
  const valid = picks.length
  for (let i = valid; i < k; i++) picks.push(picks[i % valid] as number)
  return { picks, outcome: 'padded' }
}

/** How many ranked candidates a query needs so that selection never runs short for lack of fetching. */
export function candidatesNeeded(options: SelectOptions): number {
  if (options.sampling === 'random') return (options.range ?? [0, 100])[1]
  return options.range === undefined ? options.k : Math.min(options.range[1], options.range[0] + options.k)
}

/**
 * How many of a query's ranked candidates (`scores`, best first) may be picked: those
 * scoring at least `minScore` (as float32), all of them when it is off.
 */
export function eligibleCount(scores: ArrayLike<number>, options: Pick<SelectOptions, 'minScore'>): number {
  if (options.minScore === undefined) return scores.length
  const floor = Math.fround(options.minScore)
  let n = 0
  while (n < scores.length && (scores[n] as number) >= floor) n++
  return n
}

/** Checks k, the rank window and the seed; throws E_BAD_OPTION naming the option. */
export function checkSelectOptions(options: SelectOptions): void {
  if (!Number.isInteger(options.k) || options.k < 1) {
    throw new HardnegError('E_BAD_OPTION', `k: ${String(options.k)}, expected an integer >= 1`)
  }
  if (!['top', 'random'].includes(options.sampling)) {
    throw new HardnegError('E_BAD_OPTION', `sampling: '${String(options.sampling)}', expected 'top' or 'random'`)
  }
  if (!['repeat', 'none', 'drop'].includes(options.pad)) {
    throw new HardnegError('E_BAD_OPTION', `pad: '${String(options.pad)}', expected 'repeat', 'none' or 'drop'`)
  }
  if (options.minScore !== undefined && (typeof options.minScore !== 'number' || !Number.isFinite(options.minScore) || options.minScore < -1 || options.minScore > 1)) {
    throw new HardnegError('E_BAD_OPTION', `minScore: ${String(options.minScore)}, expected a number from -1 to 1`)
  }
  if (!Number.isSafeInteger(options.seed) || options.seed < 0) {
    throw new HardnegError('E_BAD_OPTION', `seed: ${String(options.seed)}, expected an integer >= 0`)
  }
  if (options.range !== undefined) {
    const [min, max] = options.range
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max <= min) {
      throw new HardnegError('E_BAD_OPTION', `range: ${String(min)}:${String(max)}, expected MIN:MAX with integers 0 <= MIN < MAX`)
    }
    if (max - min < options.k) {
      throw new HardnegError('E_BAD_OPTION', `range: ${min}:${max} holds ${max - min} ranks, expected at least k = ${options.k}`)
    }
  }
}

/** A 32-bit seed for one row, mixed so that neighbouring rows draw independently (splitmix32 finaliser). */
function rowSeed(seed: number, row: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(row + 1, 0x85ebca6b) ^ Math.floor(seed / 2 ** 32)) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d)
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b)
  return (h ^ (h >>> 16)) >>> 0
}

/** `count` distinct integers from [0, n), by a partial Fisher-Yates shuffle. */
function sampleWithoutReplacement(n: number, count: number, seed: number): number[] {
  const next = mulberry32(seed)
  const swapped = new Map<number, number>()
  const out: number[] = []
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(next() * (n - i))
    const vi = swapped.get(i) ?? i
    const vj = swapped.get(j) ?? j
    swapped.set(j, vi)
    out.push(vj)
  }
  return out
}
