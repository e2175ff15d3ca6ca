/**
 * The embedding loop: cuts the inputs still to do into batches (an image input alone),
 * keeps `concurrency` requests in flight, halves a batch the server finds too large, checks
 * each response, writes its vectors to every row that carries them and journals the batch.
 * The first failure stops new work; the batches in flight settle before it is thrown, so
 * everything journaled is on disk. Private to the embed folder.
 */
import { HardnegError } from '../errors.js'
import { HttpError } from '../http/client.js'
import type { InputPlan, Side } from './_inputs.js'
import { rangeDigest, type JournalWriter } from './_journal.js'
import { encodeRows, type EmbedDtype, type NpyWriter } from './_npy-writer.js'
import type { WireApi } from './_openai.js'
import { ResponseProblem, type Vectors } from './_response.js'

/** Options of {@link runBatches}. */
export interface RunOptions {
  plan: InputPlan // the inputs and the rows carrying each
  api: WireApi // how a batch is sent
  batchSize: number // inputs per request to start with
  concurrency: number // requests in flight
  done: Uint8Array // 1 for inputs already embedded (a resumed run)
  dim: number | undefined // the dimension, when known (a resumed run)
  dtype: EmbedDtype // what the matrices hold
  writers: (dim: number) => Promise<Partial<Record<Side, NpyWriter>>> // the matrices; created on the first call
  journal: JournalWriter // where finished batches are recorded
  onInputs?: (count: number) => void // after each batch is written: inputs it held
}

/** What the loop did. */
export interface RunOutcome {
  dim: number | undefined // undefined when nothing was left to embed
  batchSize: number // the batch size at the end (smaller after halving)
  halvings: number // batches split because the server found them too large
  embedded: number // inputs embedded by this run
}

/** Sends every input not yet done; see the file comment. */
export async function runBatches(options: RunOptions): Promise<RunOutcome> {
  const { plan, api, done } = options
  const inputs = plan.inputs
  const n = inputs.length
  let batchSize = options.batchSize
  let dim = options.dim
  let halvings = 0
  let embedded = 0
  let cursor = 0
  const retry: [number, number][] = []
  let failure: { error: unknown } | undefined
  let writers: Promise<Partial<Record<Side, NpyWriter>>> | undefined = dim !== undefined ? options.writers(dim) : undefined

  const next = (): [number, number] | undefined => {
    if (retry.length > 0) return retry.shift()
    while (cursor < n && done[cursor]) cursor++
    if (cursor >= n) return undefined
    const start = cursor
    let end = start + 1
    if (api.batchable(inputs[start]!)) {
      while (end < n && end - start < batchSize && !done[end] && api.batchable(inputs[end]!)) end++
    }
    cursor = end
    return [start, end]
  }

  const send = async (start: number, end: number): Promise<void> => {
    const count = end - start
    const what = count === 1 ? `1 input (${plan.describe(start)})` : `${count} inputs (${plan.describe(start)} to ${plan.describe(end - 1)})`
    let vectors: Vectors
    try {
      vectors = await api.embed(inputs.slice(start, end), dim, what)
      if (dim !== undefined && vectors.dim !== dim) {
        throw new ResponseProblem(0, `an embedding of ${vectors.dim} values`, `${dim} (the dimension of earlier responses)`)
      }
    } catch (err) {
      if (err instanceof HttpError && err.batchTooLarge && count > 1) {
        const mid = start + Math.ceil(count / 2)
        retry.unshift([start, mid], [mid, end])
        batchSize = Math.min(batchSize, mid - start)
        halvings++
        return
      }
      throw placed(err, plan, api, start, count, what)
    }
    dim ??= vectors.dim
    const files = await (writers ??= options.writers(vectors.dim))
    const bytes = encodeRows(vectors.data, options.dtype, (k) => {
      const i = start + Math.floor(k / vectors.dim)
      const p = plan.place(i)
      throw new HardnegError('E_BAD_RESPONSE',
        `server ${api.endpoint}: embedding of ${plan.describe(i)} holds ${vectors.data[k]} at value ${k % vectors.dim}, expected values within float16's range (|x| <= 65504), or --dtype float32`,
        { file: p.file, row: p.row })
    })
    const rowBytes = bytes.length / count
    for (const slot of plan.slots(start, end)) {
      const out = new Uint8Array(slot.rows.length * rowBytes)
      for (let k = 0; k < slot.input.length; k++) {
        const at = slot.input[k]! * rowBytes
        out.set(bytes.subarray(at, at + rowBytes), k * rowBytes)
      }
      await (files[slot.side] as NpyWriter).writeRows(slot.rows, out)
    }
    await options.journal.record({ start, end, sha1: rangeDigest(bytes) })
    done.fill(1, start, end)
    embedded += count
    options.onInputs?.(count)
  }

  const worker = async (): Promise<void> => {
    for (let r = next(); r !== undefined && failure === undefined; r = failure === undefined ? next() : undefined) {
      try {
        await send(r[0], r[1])
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.allSettled(Array.from({ length: options.concurrency }, worker))
  if (failure !== undefined) throw failure.error
  return { dim, batchSize, halvings, embedded }
}

/** A failed request as one error placed at the pairs file and row of the input it concerns. */
function placed(err: unknown, plan: InputPlan, api: WireApi, start: number, count: number, what: string): unknown {
  if (err instanceof ResponseProblem) {
    const i = start + (err.index ?? 0)
    const p = plan.place(i)
    const whose = err.index !== undefined ? `embedding ${err.index} of ${count} (${plan.describe(i)})` : `response to ${what}`
    return new HardnegError('E_BAD_RESPONSE', `server ${api.endpoint}: ${whose}: ${err.found}, expected ${err.expected}`, { file: p.file, row: p.row })
  }
  if (err instanceof HttpError) {
    const p = plan.place(start)
    return new HardnegError('E_SERVER', err.detail, { file: p.file, row: p.row })
  }
  if (err instanceof HardnegError && err.file === undefined) {
    const p = plan.place(start)
    return new HardnegError(err.code, err.message, { file: p.file, row: p.row })
  }
  return err
}
