/**
 * Hugging Face text-embeddings-inference's own shape: `GET /info` (the model, and
 * `max_client_batch_size`, the batch size default) and `POST /embed` with `inputs`,
 * answered by an array of float arrays. TEI embeds text only. Private to the embed folder.
 */
import type { HttpClient } from '../http/client.js'
import type { WireApi } from './_openai.js'
import { gatherVectors, parseBody, ResponseProblem } from './_response.js'

/** What a server's `/info` said, and the batch size it allows one client. */
export interface ServerInfo {
  info: Record<string, unknown> // the body as received
  maxClientBatchSize: number | undefined // TEI's max_client_batch_size, when a positive integer
  modelId: string | undefined // TEI's model_id
}

/**
 * `GET /info`. With `optional` (an OpenAI base URL that may be TEI's `/v1`), any failure
 * or a body that is not TEI's gives undefined instead of an error.
 */
export async function readInfo(http: HttpClient, optional: boolean): Promise<ServerInfo | undefined> {
  try {
    const res = await http.request({ method: 'GET', path: '/info', what: "the server's /info" })
    const info = parseBody(res.body)
    if (typeof info !== 'object' || info === null || Array.isArray(info)) throw new ResponseProblem(undefined, 'an /info body that is not an object', "TEI's /info object")
    const o = info as Record<string, unknown>
    const size = o.max_client_batch_size
    return {
      info: o,
      maxClientBatchSize: typeof size === 'number' && Number.isInteger(size) && size > 0 ? size : undefined,
      modelId: typeof o.model_id === 'string' ? o.model_id : undefined,
    }
  } catch (err) {
    if (optional) return undefined
    throw err
  }
}

/** The TEI `/embed` shape. */
export function teiApi(http: HttpClient): WireApi {
  return {
    endpoint: http.url('/embed'),
    batchable: () => true,
    async embed(inputs, dim, what) {
      const res = await http.request({ path: '/embed', json: { inputs: inputs.map((x) => x.text) }, what })
      const body = parseBody(res.body)
      if (!Array.isArray(body)) {
        throw new ResponseProblem(undefined, `a body of type ${body === null ? 'null' : typeof body}`, "TEI's array of embeddings (one float array per input)")
      }
      return gatherVectors(body, inputs.length, dim, 'earlier responses')
    },
  }
}
