/**
 * Flag value parsers: each turns a string into a typed value or throws a one-line
 * E_BAD_OPTION naming the flag, the value found and what was expected.
 */
import { HardnegError } from '../index.js'

/** A parser for a finite number, optionally within [min, max]. */
export function numberArg(flag: string, min = -Infinity, max = Infinity): (value: string) => number {
  return (value) => {
    const n = value.trim() === '' ? Number.NaN : Number(value)
    if (!Number.isFinite(n) || n < min || n > max) {
      const range = Number.isFinite(min) && Number.isFinite(max) ? ` from ${min} to ${max}` : Number.isFinite(min) ? ` >= ${min}` : ''
      throw new HardnegError('E_BAD_OPTION', `${flag}: '${value}', expected a number${range}`)
    }
    return n
  }
}

/** A parser for an integer >= `min`. */
export function intArg(flag: string, min: number): (value: string) => number {
  return (value) => {
    const n = /^[+-]?\d+$/.test(value.trim()) ? Number(value) : Number.NaN
    if (!Number.isSafeInteger(n) || n < min) throw new HardnegError('E_BAD_OPTION', `${flag}: '${value}', expected an integer >= ${min}`)
    return n
  }
}

/** A parser for one of a fixed set of words. */
export function choiceArg<T extends string>(flag: string, choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new HardnegError('E_BAD_OPTION', `${flag}: '${value}', expected one of ${choices.join(', ')}`)
    }
    return value as T
  }
}

/** A parser for `MIN:MAX` rank windows. */
export function rangeArg(flag: string): (value: string) => [number, number] {
  return (value) => {
    const m = /^(\d+):(\d+)$/.exec(value.trim())
    const min = m ? Number(m[1]) : Number.NaN
    const max = m ? Number(m[2]) : Number.NaN
    if (!m || max <= min) throw new HardnegError('E_BAD_OPTION', `${flag}: '${value}', expected MIN:MAX with integers 0 <= MIN < MAX`)
    return [min, max]
  }
}

/** A parser for comma-separated column lists. */
export function listArg(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter((s) => s !== '')]
}

/** A parser for comma-separated numbers, each within [min, max]. */
export function numberListArg(flag: string, min: number, max: number): (value: string) => number[] {
  const one = numberArg(flag, min, max)
  return (value) => {
    const parts = value.split(',').map((s) => s.trim())
    if (parts.some((p) => p === '')) throw new HardnegError('E_BAD_OPTION', `${flag}: '${value}', expected comma-separated numbers from ${min} to ${max}`)
    return parts.map((p) => {
      try {
        return one(p)
      } catch {
        throw new HardnegError('E_BAD_OPTION', `${flag}: '${p}' in '${value}', expected comma-separated numbers from ${min} to ${max}`)
      }
    })
  }
}
