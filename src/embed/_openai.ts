/**
 * The OpenAI embeddings shape (`POST {base}/embeddings`), served by vLLM, TEI, Infinity,
 * Ollama and NVIDIA NIM: texts in batches as `input` with `encoding_format: base64`, and
 * for image sides vLLM's chat-style embedding request (`messages` holding the image as a
 * `data:` URL plus the text), one input per request. Private to the embed folder.
 */
import { readFile } from 'node:fs/promises'
import { HardnegError } from '../errors.js'
import type { HttpClient } from '../http/client.js'
import type { EmbedInput } from './_inputs.js'
import { gatherVectors, parseBody, ResponseProblem, type Vectors } from './_response.js'

/** What one API shape offers the run. */
export interface WireApi {
  endpoint: string // the path embeddings are posted to, for messages
  embed(inputs: readonly EmbedInput[], dim: number | undefined, what: string): Promise<Vectors> // one request
  batchable(input: EmbedInput): boolean // false: this input goes alone in its request
}

/** The model to name in requests: the one given, else the only one `GET {base}/models` lists. */
export async function openaiModel(http: HttpClient, model: string | undefined): Promise<string> {
  if (model !== undefined) return model
  const res = await http.request({ method: 'GET', path: '/models', what: 'the model list (no --model given)' })
  let ids: string[] = []
  try {
    const body = parseBody(res.body) as { data?: { id?: unknown }[] }
    ids = (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string')
  } catch {
    // reported below as no model found
  }
  if (ids.length !== 1) {
    throw new HardnegError('E_BAD_OPTION', `--model not given and server ${res.url} lists ${ids.length === 0 ? 'no models' : `${ids.length} models (${ids.slice(0, 5).join(', ')})`}, expected --model NAME`)
  }
  return ids[0] as string
}

/** The OpenAI shape for `model`; `models` records the `model` field each response names. */
export function openaiApi(http: HttpClient, model: string, models: Set<string>): WireApi {
  const request = async (json: unknown, count: number, dim: number | undefined, what: string): Promise<Vectors> => {
    const res = await http.request({ path: '/embeddings', json, what })
    const body = parseBody(res.body) as { data?: unknown; model?: unknown }
    if (typeof body !== 'object' || body === null || !Array.isArray(body.data)) {
      throw new ResponseProblem(undefined, `a body without a 'data' array (keys: ${typeof body === 'object' && body !== null ? Object.keys(body).join(', ') || 'none' : typeof body})`, "OpenAI's {data: [{index, embedding}]}")
    }
    if (typeof body.model === 'string') models.add(body.model)
    return gatherVectors(inIndexOrder(body.data, count), count, dim, 'earlier responses')
  }
  return {
    endpoint: http.url('/embeddings'),
    batchable: (input) => input.image === undefined,
    async embed(inputs, dim, what) {
      const [first] = inputs
      if (inputs.length === 1 && first?.image !== undefined) {
        const bytes = await readImage(first.image.file, first.image.path)
        const content = [
          { type: 'image_url', image_url: { url: `data:${first.image.mime};base64,${bytes.toString('base64')}` } },
          ...(first.text !== '' ? [{ type: 'text', text: first.text }] : []),
        ]
        return request({ model, messages: [{ role: 'user', content }], encoding_format: 'base64' }, 1, dim, what)
      }
      return request({ model, input: inputs.map((x) => x.text), encoding_format: 'base64' }, inputs.length, dim, what)
    },
  }
}

/** `data` reordered by each item's `index`, which must name every input exactly once. */
function inIndexOrder(data: readonly unknown[], count: number): unknown[] {
  if (data.length !== count) return data.map((d) => (d as { embedding?: unknown })?.embedding)
  const out: unknown[] = new Array(count)
  const seen = new Uint8Array(count)
  data.forEach((d, k) => {
    const item = d as { index?: unknown; embedding?: unknown } | null
    const index = item?.index ?? k
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= count || seen[index]) {
      throw new ResponseProblem(undefined, `item ${k} of 'data' has index ${JSON.stringify(index)}`, `each index from 0 to ${count - 1} once`)
    }
    seen[index] = 1
    out[index] = item?.embedding
  })
  return out
}

async function readImage(file: string, shown: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (err) {
    throw new HardnegError('E_BAD_IMAGE', `image '${shown}' cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}) when sending it, expected the file decoded before`)
  }
}
