/**
 * When to retry and how long to wait: the status codes and network failures worth another
 * attempt, exponential backoff with jitter, and `Retry-After` in either of its forms.
 * Private to `client.ts`.
 */

/** Statuses that say "try again later": rate limits, timeouts and server-side failures. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

/**
 * A 413, or a 422 whose body says the batch is too large (TEI: `batch size 64 > maximum
 * allowed batch size 32`), asks the caller to send fewer inputs per request.
 */
export function isBatchTooLarge(status: number, body: string): boolean {
  if (status === 413) return true
  if (status !== 422) return false
  return /batch[ _-]?size|too (large|big|many)|maximum allowed|exceeds? (the )?(max|limit)/i.test(body)
}

/**
 * `Retry-After` as milliseconds from `now`: delta-seconds (`120`) or an HTTP date
 * (`Wed, 21 Oct 2026 07:28:00 GMT`); undefined when absent or unreadable.
 */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined
  const text = value.trim()
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000)
  const at = Date.parse(text)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - now)
}

/**
 * The wait before retry `retry` (1 = the first retry): `Retry-After` when the server sent
 * one (capped at `maxRetryAfterMs`), else "equal jitter" backoff: half of
 * `min(maxMs, baseMs * 2^(retry-1))` plus a random share of the other half, so waits grow
 * and concurrent clients spread out.
 */
export function backoffDelay(
  retry: number,
  options: { baseMs: number; maxMs: number; maxRetryAfterMs: number; retryAfter: number | undefined; random: () => number },
): number {
  if (options.retryAfter !== undefined) return Math.min(options.retryAfter, options.maxRetryAfterMs)
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** (retry - 1))
  return cap / 2 + options.random() * (cap / 2)
}

/**
 * Network failures worth a retry, in words: the connection dropped, was refused or reset,
 * or the attempt timed out ('timed out'); undefined for anything else (a bug, rethrown).
 */
export function networkFailure(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined
  if (err.name === 'TimeoutError') return 'timed out'
  const code = (err as NodeJS.ErrnoException).code
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return `${code}: ${err.message}`
  return undefined
}
