/**
 * The false-negative rules. UniME's margin rule and the opt-in caps fold into one
 * per-query score ceiling; the two similarity rules compare other vectors.
 */
import { HardnegError } from '../errors.js'

/** Which candidates count as false negatives. */
export interface FalseNegativeRules {
  threshold: number // margin above the positive's score; candidates scoring higher are false negatives (default 0.1)
  maxScore?: number // absolute cap: candidates scoring higher are false negatives (off by default)
  relativeMargin?: number // NV-Retriever TopK-PercPos: candidates scoring above posScore * (1 - M) are false negatives (off by default)
  posSim?: number // candidates whose similarity to the positive exceeds this are near-duplicates of it (off by default)
  querySim?: number // candidates owned by a query this similar to ours are false negatives (off by default)
}

/** The defaults: UniME's margin rule with beta = 0.1 and nothing else. */
export const DEFAULT_RULES: FalseNegativeRules = { threshold: 0.1 }

/**
 * The highest score a candidate may have and still be a negative, as float32:
 * `min(posScore + threshold, maxScore, posScore * (1 - relativeMargin))`.
 */
export function scoreCeiling(posScore: number, rules: FalseNegativeRules): number {
  let cap = posScore + rules.threshold
  if (rules.maxScore !== undefined) cap = Math.min(cap, rules.maxScore)
  if (rules.relativeMargin !== undefined) cap = Math.min(cap, posScore * (1 - rules.relativeMargin))
  return Math.fround(cap)
}

/**
 * The rule names a mined row gives its filtered candidates (`--keep-filtered`), in the
 * order they are tried: the first that removes a candidate names it.
 */
export const RULE_NAMES = ['margin', 'max_score', 'relative_margin', 'pos_sim', 'query_sim'] as const

/** One of {@link RULE_NAMES}. */
export type FalseNegativeRule = (typeof RULE_NAMES)[number]

/**
 * Which of the three folded rules puts `score` above the ceiling of `posScore`: the first
 * of margin, max_score, relative_margin whose own float32 bound it exceeds, or undefined
 * when it is not above {@link scoreCeiling}. Each bound rounds like the ceiling does, so
 * exactly the candidates above the ceiling get a name.
 */
export function ceilingRule(score: number, posScore: number, rules: FalseNegativeRules): 'margin' | 'max_score' | 'relative_margin' | undefined {
  const s = Math.fround(score)
  if (s > Math.fround(posScore + rules.threshold)) return 'margin'
  if (rules.maxScore !== undefined && s > Math.fround(rules.maxScore)) return 'max_score'
  if (rules.relativeMargin !== undefined && s > Math.fround(posScore * (1 - rules.relativeMargin))) return 'relative_margin'
  return undefined
}

/** Checks that every rule value is a finite number in its range; throws E_BAD_OPTION naming the option. */
export function checkRules(rules: FalseNegativeRules): void {
  const check = (name: string, value: number | undefined, lo: number, hi: number): void => {
    if (value === undefined) return
    if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value > hi) {
      throw new HardnegError('E_BAD_OPTION', `${name}: ${String(value)}, expected a number from ${lo} to ${hi}`)
    }
  }
  check('threshold', rules.threshold, -2, 2)
  check('maxScore', rules.maxScore, -1, 1)
  check('relativeMargin', rules.relativeMargin, 0, 1)
  check('posSim', rules.posSim, -1, 1)
  check('querySim', rules.querySim, -1, 1)
}

/** One candidate's scores, as a searcher that does not mask in bulk sees them. */
export interface CandidateScores {
  score: number // sim(query, candidate)
  posSim?: number // sim(positive, candidate), when the posSim rule is on
  querySim?: number // sim(query, candidate's owning query), when the querySim rule is on; undefined = no owner
}

/**
 * True when the rules remove the candidate. `ceiling` is {@link scoreCeiling} of the
 * query's positive score.
 */
export function isFalseNegative(c: CandidateScores, ceiling: number, rules: FalseNegativeRules): boolean {
  if (Math.fround(c.score) > ceiling) return true
  if (rules.posSim !== undefined && c.posSim !== undefined && c.posSim > rules.posSim) return true
  if (rules.querySim !== undefined && c.querySim !== undefined && c.querySim > rules.querySim) return true
  return false
}

/**
 * Splits scored candidates into kept negatives and a count of false negatives.
 *
 * @example
 * const { kept, removed } = filterFalseNegatives(cands, 0.8, { threshold: 0.1 })
 */
export function filterFalseNegatives<T extends CandidateScores>(
  candidates: Iterable<T>,
  posScore: number,
  rules: FalseNegativeRules,
): { kept: T[]; removed: number } {
  const ceiling = scoreCeiling(posScore, rules)
  const kept: T[] = []
  let removed = 0
  for (const c of candidates) {
    if (isFalseNegative(c, ceiling, rules)) removed++
    else kept.push(c)
  }
  return { kept, removed }
}
