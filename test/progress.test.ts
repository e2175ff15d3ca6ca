import { describe, expect, it } from 'vitest'
import { createProgress, formatLine } from '../src/cli/progress.js'

describe('progress', () => {
  it('formats rows/s and ETA', () => {
    expect(formatLine({ phase: 'search', done: 1000, total: 4000, group: 'MSCOCO_t2i' }, 2)).toBe(
      'search [MSCOCO_t2i] [#####---------------] 25% 1,000/4,000 rows  500 rows/s  ETA 6s',
    )
    expect(formatLine({ phase: 'search', done: 0, total: 273000 }, 0)).toBe(
      'search [--------------------] 0% 0/273,000 rows  0 rows/s  ETA ?',
    )
    expect(formatLine({ phase: 'search', done: 3000, total: 273000 }, 10)).toContain('ETA 15m00s')
  })

  it('prints plain lines at most every interval when not on a terminal, and the last one always', () => {
    const lines: string[] = []
    let now = 0
    const p = createProgress({ write: (t) => void lines.push(t), tty: false, intervalSeconds: 10, now: () => now })
    for (let done = 100; done <= 1000; done += 100) {
      now += 3000
      p.onProgress({ phase: 'search', done, total: 1000 })
    }
    p.done()
    expect(lines.length).toBe(4)
    expect(lines.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true)
    expect(lines.at(-1)).toMatch(/^search \[#{20}\] 100% 1,000\/1,000 rows/)
  })

  it('redraws one line on a terminal and ends it', () => {
    const out: string[] = []
    let now = 0
    const p = createProgress({ write: (t) => void out.push(t), tty: true, now: () => now })
    for (let done = 1; done <= 3; done++) {
      now += 1000
      p.onProgress({ phase: 'search', done, total: 3 })
    }
    p.done()
    const text = out.join('')
    expect(text.startsWith('\rsearch')).toBe(true)
    expect(text.endsWith('\n')).toBe(true)
    expect(text.split('\n').length).toBe(2)
  })
})
