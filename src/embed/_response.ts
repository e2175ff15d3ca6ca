/**
 * Checks every embedding response the same way, whatever API shape it came in: one vector
 * per input, the same dimension throughout, finite values; base64 float32 or a plain float
 * array (accepted where base64 was asked for: some servers ignore `encoding_format`).
 * Private to the embed folder.
 */

/** A response that breaks the contract; `index` is the input (within the request) it concerns. */
export class ResponseProblem extends Error {
  constructor(
    readonly index: number | undefined, // input within the request, when one is to blame
    readonly found: string, // what the response holds
    readonly expected: string, // what it should hold
  ) {
    super(`${found}, expected ${expected}`)
  }
}

/** A request's vectors, row-major float32, one row per input in request order. */
export interface Vectors {
  dim: number // values per vector
  data: Float32Array // rows * dim values
}

/** Parses a response body as JSON, or reports what it starts with. */
export function parseBody(body: Buffer): unknown {
  const text = body.toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    const start = text.replace(/\s+/g, ' ').slice(0, 80)
    throw new ResponseProblem(undefined, `a body that is not JSON (${JSON.stringify(start)}${text.length > 80 ? '...' : ''})`, 'a JSON embedding response')
  }
}

/**
 * Gathers `embeddings` (one per input, already in input order) into one matrix.
 * `dim` is the dimension of earlier responses (undefined before the first).
 */
export function gatherVectors(embeddings: readonly unknown[], count: number, dim: number | undefined, dimFrom: string): Vectors {
  if (embeddings.length !== count) {
    throw new ResponseProblem(undefined, `${embeddings.length} embedding${embeddings.length === 1 ? '' : 's'} for ${count} input${count === 1 ? '' : 's'}`, 'one per input')
  }
  let data: Float32Array | undefined
  let width = dim
  embeddings.forEach((e, i) => {
    const v = decodeVector(e, i)
    if (width === undefined) {
      if (v.length === 0) throw new ResponseProblem(i, 'an empty embedding', 'at least one value')
      width = v.length
    }
    if (v.length !== width) {
      throw new ResponseProblem(i, `an embedding of ${v.length} values`, `${width} (the dimension of ${dim === undefined ? 'the first embedding of this response' : dimFrom})`)
    }
    data ??= new Float32Array(count * width)
    for (let j = 0; j < v.length; j++) {
      const x = v[j] as number
      if (!Number.isFinite(x)) throw new ResponseProblem(i, `${String(x)} at value ${j} of its embedding`, 'finite numbers')
    }
    data.set(v, i * width)
  })
  return { dim: width ?? 0, data: data ?? new Float32Array(0) }
}

/** One embedding as float32: base64 little-endian float32 bytes, or an array of numbers. */
function decodeVector(e: unknown, i: number): Float32Array {
  if (typeof e === 'string') {
    const bytes = Buffer.from(e, 'base64')
    if (bytes.length % 4 !== 0 || (bytes.length === 0 && e.length > 0)) {
      throw new ResponseProblem(i, `a base64 embedding of ${bytes.length} bytes`, 'a whole number of little-endian float32 values (4 bytes each)')
    }
    const out = new Float32Array(bytes.length / 4)
    new Uint8Array(out.buffer).set(bytes)
    return out
  }
  if (Array.isArray(e)) {
    const out = new Float32Array(e.length)
    for (let j = 0; j < e.length; j++) {
      const x = e[j]
      // JSON has no NaN: servers write it as null or a string; both are reported as found.
      if (typeof x !== 'number') throw new ResponseProblem(i, `${JSON.stringify(x)} at value ${j} of its embedding`, 'finite numbers')
      out[j] = x
    }
    return out
  }
  throw new ResponseProblem(i, `an embedding of type ${e === null ? 'null' : typeof e}`, 'an array of numbers or a base64 string')
}
