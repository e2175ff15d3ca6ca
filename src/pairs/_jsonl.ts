/**
 * JSON Lines pairs files: one JSON object per line. Blank lines are skipped but still
 * counted, so `place` is the 1-based line number an editor shows.
 */

import { createInterface } from 'node:readline'
import { HardnegError } from '../errors.js'
import { emptyFileError, openInput, readFailure } from './_source.js'
import type { PairSource, SourceRow } from './_source.js'

interface ParsedLine {
  line: number // 1-based line number
  object: Record<string, unknown>
}

/** Open a JSONL file and read up to its first object, whose keys are the columns. */
export async function openJsonlSource(file: string): Promise<PairSource> {
  const { handle } = await openInput(file)
  const input = handle.createReadStream({ autoClose: false, encoding: 'utf8' })
  const reader = createInterface({ input, crlfDelay: Infinity })
  const lines = reader[Symbol.asyncIterator]()
  let line = 0

  const close = async (): Promise<void> => {
    reader.close()
    input.destroy()
    await handle.close()
  }

  async function nextObject(): Promise<ParsedLine | undefined> {
    for (;;) {
      let result: IteratorResult<string>
      try {
        result = await lines.next()
      } catch (err) {
        throw readFailure(file, err)
      }
      if (result.done) return undefined
      line++
      let text = result.value
      if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      if (text.trim() === '') continue
      return { line, object: parseObject(text, file, line) }
    }
  }

  let first: ParsedLine | undefined
  try {
    first = await nextObject()
    if (first === undefined) throw emptyFileError(file)
  } catch (err) {
    await close()
    throw err
  }

  async function* rows(select: readonly string[]): AsyncGenerator<SourceRow> {
    for (let next = first; next !== undefined; next = await nextObject()) {
      const { object } = next
      yield { place: next.line, values: select.map(key => (Object.hasOwn(object, key) ? object[key] : undefined)) }
    }
  }

  return { columns: Object.keys(first.object), rows, close }
}

function parseObject(text: string, file: string, line: number): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new HardnegError('E_BAD_ROW', `invalid JSON (${reason}), expected one object per line`, { file, row: line })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HardnegError('E_BAD_ROW', `found ${describeJson(value)}, expected one object per line`, { file, row: line })
  }
  return value as Record<string, unknown>
}

function describeJson(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return `a ${typeof value}`
}
