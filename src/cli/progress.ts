/**
 * Progress on stderr: a redrawn bar with rows/s and ETA on a terminal, plain periodic
 * lines elsewhere (CI logs, files).
 */
import type { EmbedProgressEvent, ProgressEvent, ReportProgressEvent } from '../index.js'

/** The progress events of every command: mining, embedding, validation and reports. */
export type AnyProgressEvent = ProgressEvent | ReportProgressEvent | EmbedProgressEvent

/** Where progress goes and how often plain lines are printed. */
export interface ProgressOptions {
  write: (text: string) => void // sink, normally process.stderr.write
  tty: boolean // true: redraw one line; false: print plain lines
  intervalSeconds?: number // plain mode: seconds between lines (default 10)
  now?: () => number // clock in ms, for tests (default performance.now)
}

const UNITS: Record<AnyProgressEvent['phase'], string> = {
  scan: 'rows',
  sample: 'rows',
  thumbnails: 'images',
  read: 'rows',
  hash: 'files',
  images: 'images',
  load: 'groups',
  index: 'vectors',
  search: 'rows',
  rescore: 'pairs',
  write: 'rows',
  embed: 'texts',
}

/** Returns an onProgress callback and a `done()` that ends the bar's line. */
export function createProgress(options: ProgressOptions): { onProgress: (e: AnyProgressEvent) => void; done: () => void } {
  const now = options.now ?? (() => performance.now())
  const interval = (options.intervalSeconds ?? 10) * 1000
  let phase = ''
  let started = 0
  let lastPrint = -Infinity
  let open = false

  function onProgress(e: AnyProgressEvent): void {
    const t = now()
    if (e.phase !== phase) {
      if (open) options.write('\n')
      open = false
      phase = e.phase
      started = t
      lastPrint = -Infinity
    }
    const finished = e.done >= e.total
    if (!options.tty && !finished && t - lastPrint < interval) return
    if (options.tty && !finished && t - lastPrint < 200) return
    lastPrint = t
    const line = formatLine(e, (t - started) / 1000)
    if (options.tty) {
      options.write(`\r${line}\x1b[K`)
      open = !finished
      if (finished) options.write('\n')
    } else {
      options.write(line + '\n')
    }
  }

  return {
    onProgress,
    done() {
      if (open) options.write('\n')
      open = false
    },
  }
}

/** `search [########------------] 40% 1,168/2,921 rows  812 rows/s  ETA 2s` */
export function formatLine(e: AnyProgressEvent, elapsedSeconds: number): string {
  const share = e.total > 0 ? Math.min(1, e.done / e.total) : 1
  const width = 20
  const filled = Math.round(share * width)
  const rate = elapsedSeconds > 0 ? e.done / elapsedSeconds : 0
  const eta = rate > 0 ? (e.total - e.done) / rate : NaN
  const unit = UNITS[e.phase]
  const group = 'group' in e && e.group ? ` [${e.group}]` : ''
  return (
    `${e.phase}${group} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(share * 100)}% ` +
    `${e.done.toLocaleString('en-US')}/${e.total.toLocaleString('en-US')} ${unit}  ` +
    `${Math.round(rate).toLocaleString('en-US')} ${unit}/s  ETA ${formatDuration(eta)}`
  )
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?'
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}
