/**
 * The four rescoring shapes on the loopback model server (test/_model-server.ts), backed
 * by the same real model (USE lite): a (query, candidate) pair scores
 * p = (cos(query, candidate) + 1) / 2, in [0, 1].
 * - TEI `POST /rerank` {query, texts, raw_scores} -> [{index, score}] sorted by score
 *   (raw_scores: the logit ln(p / (1 - p)) instead of p);
 * - `POST /v1/rerank` {model, query, documents, top_n} -> {results: [{index, relevance_score}]}, sorted;
 * - vLLM `POST /score` {model, text_1, text_2} -> {data: [{index, score}]};
 * - `POST /v1/chat/completions` with logprobs: the judge answers 'Yes' and puts p on
 *   'Yes' (0.9 p) and ' yes' (0.1 p), 1 - p on 'No', so P(Yes)/(P(Yes)+P(No)) = p. It reads
 *   the query and the candidate from the default prompt's 'Query: ' and 'Candidate: '
 *   lines; an image part stands for its proxy text (imageProxyText), as in embedding.
 * Faults (`inject`) apply as on the embedding routes; `mangle` 'count', 'nan', 'bad-index'
 * and 'not-json' break a rescore body.
 */
import { createHash } from 'node:crypto'
import type { Embedder, Fault, ModelServer, Reply } from './_model-server.js'
import { imageProxyText } from './_model-server.js'

/** p = (cos + 1) / 2 for each text against `query`, in float64 from the model's vectors. */
export async function pairScores(embed: Embedder, query: string, texts: readonly string[]): Promise<number[]> {
  const [q, ...others] = await embed([query, ...texts])
  const norm = (v: Float32Array): number => Math.hypot(...v)
  return others.map((c) => {
    let dot = 0
    for (let j = 0; j < q!.length; j++) dot += (q![j] as number) * (c[j] as number)
    return (dot / (norm(q!) * norm(c)) + 1) / 2
  })
}

/** The logit of p, the raw score of a one-label cross-encoder. */
export const logit = (p: number): number => Math.log(p / (1 - p))

function mangled(scores: number[], fault: Fault | undefined): (number | null)[] {
  const out: (number | null)[] = [...scores]
  if (fault?.mangle === 'count') out.pop()
  if (fault?.mangle === 'nan' && out.length > 0) out[0] = null
  return out
}

/** Results as `[{index, <field>}]` sorted by score, best first (as rerankers answer). */
function ranked(scores: (number | null)[], field: string, fault: Fault | undefined): Record<string, unknown>[] {
  const items = scores.map((s, index) => ({ index, [field]: s }))
  items.sort((a, b) => ((b[field] as number) ?? 0) - ((a[field] as number) ?? 0))
  if (fault?.mangle === 'bad-index' && items.length > 1) items[1] = { ...items[1], index: items[0]!.index }
  return items
}

/** The sides of a judge prompt built from the default template: text after 'Query: ' and 'Candidate: '. */
function judgeSides(messages: unknown): { query: string; candidate: string } {
  let text = ''
  for (const m of messages as { content: string | { type: string; text?: string; image_url?: { url: string } }[] }[]) {
    for (const c of typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content) {
      if (c.type === 'text') text += c.text
      else if (c.type === 'image_url') {
        const data = /^data:image\/[a-z+.-]+;base64,(.*)$/s.exec(c.image_url?.url ?? '')
        if (!data) throw new Error('image_url is not a data: URL')
        text += `\u0001${Buffer.from(data[1] as string, 'base64').toString('base64')}\u0002`
      }
    }
  }
  const side = (label: string): string => {
    const m = new RegExp(`${label}: ([\\s\\S]*?)\\n\\n`).exec(text)
    if (!m) throw new Error(`no '${label}: ' line in the prompt`)
    // An image part stands for the proxy text of its bytes and the text after it.
    const img = /^\u0001([^\u0002]*)\u0002([\s\S]*)$/.exec(m[1] as string)
    return img ? imageProxyText(Buffer.from(img[1] as string, 'base64'), (img[2] as string) === '(the image above)' ? '' : (img[2] as string)) : (m[1] as string)
  }
  return { query: side('Query'), candidate: side('Candidate') }
}

/** Adds the four rescoring routes to `server`, scoring with `embed`. */
export function addRescoreRoutes(server: ModelServer, embed: Embedder, options: { model?: string; batchLimit?: number } = {}): void {
  const model = options.model ?? 'use-lite-512'
  const tooMany = (n: number, status: number): Reply | undefined =>
    options.batchLimit !== undefined && n > options.batchLimit
      ? { status, json: { error: `batch size ${n} > maximum allowed batch size ${options.batchLimit}`, error_type: 'validation' } }
      : undefined

  server.route('POST', '/rerank', async ({ body, fault }) => {
    const b = body as { query?: string; texts?: string[]; raw_scores?: boolean }
    if (typeof b.query !== 'string' || !Array.isArray(b.texts)) return { status: 422, json: { error: "missing field 'query' or 'texts'", error_type: 'validation' } }
    const limited = tooMany(b.texts.length, 413)
    if (limited) return limited
    if (fault?.mangle === 'not-json') return { text: 'upstream error' }
    const ps = await pairScores(embed, b.query, b.texts)
    return { json: ranked(mangled(b.raw_scores === true ? ps.map(logit) : ps, fault), 'score', fault) }
  })

  server.route('POST', '/v1/rerank', async ({ body, fault }) => {
    const b = body as { model?: string; query?: string; documents?: string[]; top_n?: number }
    if (b.model !== model) return { status: 404, json: { error: { message: `The model '${b.model}' does not exist.` } } }
    if (typeof b.query !== 'string' || !Array.isArray(b.documents)) return { status: 400, json: { error: { message: "'query' and 'documents' are required" } } }
    const limited = tooMany(b.documents.length, 413)
    if (limited) return limited
    if (fault?.mangle === 'not-json') return { text: '<html>502</html>' }
    const results = ranked(mangled(await pairScores(embed, b.query, b.documents), fault), 'relevance_score', fault).slice(0, b.top_n ?? b.documents.length)
    return { json: { id: 'rerank-test', model, results, usage: { total_tokens: b.documents.length } } }
  })

  server.route('POST', '/score', async ({ body, fault }) => {
    const b = body as { model?: string; text_1?: string; text_2?: string[] }
    if (b.model !== model) return { status: 404, json: { error: { message: `The model '${b.model}' does not exist.` } } }
    if (typeof b.text_1 !== 'string' || !Array.isArray(b.text_2)) return { status: 400, json: { error: { message: "'text_1' and 'text_2' are required" } } }
    const limited = tooMany(b.text_2.length, 413)
    if (limited) return limited
    if (fault?.mangle === 'not-json') return { text: 'oops' }
    const scores = mangled(await pairScores(embed, b.text_1, b.text_2), fault)
    const data = scores.map((score, index) => ({ index, object: 'score', score }))
    if (fault?.mangle === 'bad-index' && data.length > 1) data[1] = { ...data[1]!, index: 0 }
    return { json: { id: 'score-test', object: 'list', model, data } }
  })

  server.route('POST', '/v1/chat/completions', async ({ body, fault }) => {
    const b = body as { model?: string; messages?: unknown; logprobs?: boolean; top_logprobs?: number; max_tokens?: number }
    if (b.model !== model) return { status: 404, json: { error: { message: `The model '${b.model}' does not exist.` } } }
    if (fault?.mangle === 'not-json') return { text: 'Internal Server Error' }
    const { query, candidate } = judgeSides(b.messages)
    const [p] = await pairScores(embed, query, [candidate])
    const tops = [
      { token: 'Yes', logprob: Math.log(0.9 * p!) },
      { token: 'No', logprob: Math.log(1 - p!) },
      { token: ' yes', logprob: Math.log(0.1 * p!) },
    ].sort((a, z) => z.logprob - a.logprob)
    // 'nan' here: a judge that answers neither Yes nor No.
    if (fault?.mangle === 'nan') tops.splice(0, tops.length, { token: 'Maybe', logprob: -0.1 }, { token: 'Perhaps', logprob: -2.4 })
    const content = b.logprobs === true && fault?.mangle !== 'count'
      ? [{ token: tops[0]!.token, logprob: tops[0]!.logprob, top_logprobs: tops.slice(0, b.top_logprobs ?? 0) }]
      : []
    return {
      json: {
        id: `chatcmpl-${createHash('sha256').update(query + candidate).digest('hex').slice(0, 8)}`,
        object: 'chat.completion', model,
        choices: [{ index: 0, message: { role: 'assistant', content: tops[0]!.token.trim() }, logprobs: b.logprobs === true ? { content } : null, finish_reason: 'length' }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      },
    }
  })
}
