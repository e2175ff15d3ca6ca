import { describe, expect, it } from 'vitest'
import { checkSelectOptions, selectNegatives, type SelectOptions } from '../src/mine/select.js'
import { checkRules, filterFalseNegatives, scoreCeiling } from '../src/mine/filters.js'

const base: SelectOptions = { k: 4, sampling: 'top', seed: 0, pad: 'repeat' }

describe('selectNegatives', () => {
  it.each([
    ['repeat', 6, [0, 1, 2, 3], 'full'],
    ['repeat', 3, [0, 1, 2, 0], 'padded'],
    ['repeat', 1, [0, 0, 0, 0], 'padded'],
    ['repeat', 0, [], 'dropped'],
    ['none', 3, [0, 1, 2], 'short'],
    ['none', 0, [], 'short'],
    ['drop', 3, [], 'dropped'],
    ['drop', 4, [0, 1, 2, 3], 'full'],
  ] as const)('pad %s with %i candidates', (pad, available, picks, outcome) => {
    expect(selectNegatives(available, 7, { ...base, pad })).toEqual({ picks, outcome })
  })

  it('draws random picks from the rank window, sorted, without repeats, reproducibly', () => {
    const opts: SelectOptions = { ...base, k: 5, sampling: 'random', range: [10, 30], seed: 42 }
    const a = selectNegatives(100, 3, opts)
    expect(a.outcome).toBe('full')
    expect(new Set(a.picks).size).toBe(5)
    for (const p of a.picks) expect(p >= 10 && p < 30).toBe(true)
    expect([...a.picks].sort((x, y) => x - y)).toEqual(a.picks)
    expect(selectNegatives(100, 3, opts)).toEqual(a)
    expect(selectNegatives(100, 4, opts).picks).not.toEqual(a.picks)
    expect(selectNegatives(100, 3, { ...opts, seed: 43 }).picks).not.toEqual(a.picks)
  })

  it('pads a random draw when the window holds fewer candidates than k', () => {
    const r = selectNegatives(12, 0, { ...base, k: 4, sampling: 'random', range: [10, 30], seed: 1 })
    expect(r).toEqual({ picks: [10, 11, 10, 11], outcome: 'padded' })
  })

  it.each([
    [{ k: 0 }, 'k: 0, expected an integer >= 1'],
    [{ k: 2.5 }, 'k: 2.5, expected an integer >= 1'],
    [{ sampling: 'best' }, "sampling: 'best', expected 'top' or 'random'"],
    [{ pad: 'zero' }, "pad: 'zero', expected 'repeat', 'none' or 'drop'"],
    [{ seed: -1 }, 'seed: -1, expected an integer >= 0'],
    [{ range: [5, 5] }, 'range: 5:5, expected MIN:MAX with integers 0 <= MIN < MAX'],
    [{ sampling: 'random', range: [0, 3] }, 'range: 0:3 holds 3 ranks, expected at least k = 4'],
  ])('rejects %o', (patch, message) => {
    expect(() => checkSelectOptions({ ...base, ...(patch as Partial<SelectOptions>) })).toThrow(message)
    try {
      checkSelectOptions({ ...base, ...(patch as Partial<SelectOptions>) })
    } catch (err) {
      expect((err as Error).message).toBe(message)
      expect((err as { code: string }).code).toBe('E_BAD_OPTION')
    }
  })
})

describe('false-negative rules', () => {
  it('folds the margin rule and the caps into one ceiling', () => {
    expect(scoreCeiling(0.5, { threshold: 0.1 })).toBe(Math.fround(0.6))
    expect(scoreCeiling(0.5, { threshold: 0.1, maxScore: 0.55 })).toBe(Math.fround(0.55))
    expect(scoreCeiling(0.5, { threshold: 0.1, relativeMargin: 0.05 })).toBe(Math.fround(0.475))
    expect(scoreCeiling(-0.5, { threshold: 0.1 })).toBe(Math.fround(-0.4))
    // TopK-PercPos with a negative positive score: the ceiling rises above it.
    expect(scoreCeiling(-0.5, { threshold: 0.1, relativeMargin: 0.1 })).toBe(Math.fround(-0.45))
  })

  it('drops candidates above pos_score + threshold, and keeps the one exactly at it', () => {
    const cands = [0.9, 0.61, 0.6, 0.3].map((score) => ({ score: Math.fround(score) }))
    const { kept, removed } = filterFalseNegatives(cands, 0.5, { threshold: 0.1 })
    expect(removed).toBe(2)
    expect(kept.map((c) => c.score)).toEqual([Math.fround(0.6), Math.fround(0.3)])
  })

  it('applies the positive- and query-similarity rules', () => {
    const cands = [
      { score: 0.2, posSim: 0.95, querySim: 0.1 },
      { score: 0.2, posSim: 0.5, querySim: 0.97 },
      { score: 0.2, posSim: 0.5, querySim: 0.1 },
    ]
    expect(filterFalseNegatives(cands, 0.5, { threshold: 0.1, posSim: 0.9, querySim: 0.95 }).removed).toBe(2)
    expect(filterFalseNegatives(cands, 0.5, { threshold: 0.1 }).removed).toBe(0)
  })

  it.each([
    [{ threshold: Number.NaN }, 'threshold: NaN, expected a number from -2 to 2'],
    [{ threshold: 0.1, relativeMargin: 1.5 }, 'relativeMargin: 1.5, expected a number from 0 to 1'],
    [{ threshold: 0.1, posSim: 2 }, 'posSim: 2, expected a number from -1 to 1'],
  ])('rejects %o', (rules, message) => {
    expect(() => checkRules(rules)).toThrow(message)
  })
})
