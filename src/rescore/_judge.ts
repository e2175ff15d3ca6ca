/**
 * The MLLM judge of UniME-V2 over an OpenAI-compatible chat endpoint: the prompt
 * template with the query and the candidate (images as `data:` URLs beside their text),
 * and the score P(Yes) / (P(Yes) + P(No)) read from the log-probabilities of the one
 * token it generates. Private to the rescore folder.
 */
import type { RescoreSide } from './_apis.js'
import { RescoreResponseProblem } from './_apis.js'

/**
 * The default judge prompt (docs/rescore.md). `{query}` and `{candidate}` stand for the two
 * sides: their text, with their image (if any) placed just before it.
 */
export const DEFAULT_JUDGE_PROMPT = [
  'You are checking training data for a retrieval model. A candidate counts as a match for a query',
  'when it answers the query, describes the same thing, or would satisfy the query as well as its',
  'correct answer does.',
  '',
  'Query: {query}',
  '',
  'Candidate: {candidate}',
  '',
  'Is the candidate a match for the query? Answer with one word: Yes or No.',
].join('\n')

/** A template must name both sides once each. */
export function checkPrompt(template: string, from: string): void {
  for (const slot of ['{query}', '{candidate}']) {
    const n = template.split(slot).length - 1
    if (n !== 1) throw new Error(`${from}: ${n === 0 ? 'no' : `${n} times`} ${slot}, expected ${slot} exactly once`)
  }
}

type Part = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } }

/** The chat messages for one (query, candidate) pair. */
export function judgeMessages(template: string, query: RescoreSide, candidate: RescoreSide, dataUrl: (file: string) => string): { role: 'user'; content: Part[] }[] {
  const parts: Part[] = []
  let text = ''
  const flush = (): void => {
    if (text !== '') parts.push({ type: 'text', text })
    text = ''
  }
  for (const piece of template.split(/(\{query\}|\{candidate\})/)) {
    const side = piece === '{query}' ? query : piece === '{candidate}' ? candidate : undefined
    if (side === undefined) {
      text += piece
      continue
    }
    if (side.image !== undefined) {
      flush()
      parts.push({ type: 'image_url', image_url: { url: dataUrl(side.image.file) } })
    }
    text += side.text === '' && side.image !== undefined ? '(the image above)' : side.text
  }
  flush()
  return [{ role: 'user', content: parts }]
}

/**
 * P(Yes) / (P(Yes) + P(No)) from a chat completion's first token: every entry of its
 * `top_logprobs` (and the chosen token) whose letters read `yes` or `no`, in any case
 * and with any leading space or tokenizer marker, adds exp(logprob) to its side.
 */
export function yesProbability(body: unknown): number {
  const choice = (body as { choices?: unknown })?.choices
  const first = Array.isArray(choice) ? (choice[0] as { logprobs?: { content?: unknown } } | undefined) : undefined
  const content = first?.logprobs?.content
  const token = Array.isArray(content) ? (content[0] as { token?: unknown; logprob?: unknown; top_logprobs?: unknown } | undefined) : undefined
  if (token === undefined || !Array.isArray(token.top_logprobs)) {
    throw new RescoreResponseProblem('a completion without choices[0].logprobs.content[0].top_logprobs', 'logprobs of the generated token (send logprobs: true, top_logprobs: 20)')
  }
  const entries = [...(token.top_logprobs as { token?: unknown; logprob?: unknown }[])]
  if (!entries.some((e) => e?.token === token.token)) entries.push({ token: token.token, logprob: token.logprob })
  let yes = 0
  let no = 0
  const seen = new Set<string>()
  for (const e of entries) {
    if (typeof e?.token !== 'string' || typeof e.logprob !== 'number' || seen.has(e.token)) continue
    seen.add(e.token)
    const word = e.token.replace(/[^a-z]/gi, '').toLowerCase()
    if (word === 'yes') yes += Math.exp(e.logprob)
    else if (word === 'no') no += Math.exp(e.logprob)
  }
  if (yes + no === 0) {
    const tokens = entries.map((e) => JSON.stringify(e?.token)).slice(0, 6).join(', ')
    throw new RescoreResponseProblem(`top_logprobs without a Yes or No token (${tokens})`, 'the judge to answer Yes or No')
  }
  return yes / (yes + no)
}
