/**
 * Runs a command as a child process and measures its wall time, peak RSS and (with GNU
 * time) CPU time. Private to bench/.
 *
 * Peak RSS comes from GNU time (`/usr/bin/time -f '%e %M'`, the kernel's ru_maxrss of
 * the child) when it is installed, else from polling `/proc/<pid>/status` VmHWM (the
 * high-water mark, so a poll can only miss growth in the last interval before exit).
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

/** Options of {@link runMeasured}. */
export interface MeasureOptions {
  env?: NodeJS.ProcessEnv // child environment (default: this process's)
  cwd?: string // working directory (default: this process's)
  echo?: (line: string) => void // each stderr line of the child as it arrives (default: none)
}

/** What one measured run gave. */
export interface Measured {
  code: number // exit code (non-zero, or -1 when killed by a signal)
  wallSeconds: number // wall time, spawn to exit, seen from here
  peakRssBytes: number // peak resident set size of the child (0 when it could not be read)
  rssSource: 'gnu-time' | 'proc-vmhwm' // how peakRssBytes was measured
  cpuSeconds?: number // user + system CPU seconds of the child (GNU time only): less moved by other work on the machine than wall time
  stdout: string // everything the child wrote on stdout
  stderr: string // everything the child wrote on stderr
  stderrLines: { at: number; line: string }[] // stderr lines with their arrival, seconds after spawn
}

/** GNU time, where present. */
export const GNU_TIME = '/usr/bin/time'

/** Runs `command args` and measures it; never throws for a non-zero exit. */
export async function runMeasured(command: string, args: readonly string[], options: MeasureOptions = {}): Promise<Measured> {
  const useTime = existsSync(GNU_TIME)
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'hardneg-bench-'))
  const timeFile = path.join(tmp, 'time.txt')
  try {
    const [cmd, argv] = useTime ? [GNU_TIME, ['-f', '%e %M %U %S', '-o', timeFile, command, ...args]] : [command, [...args]]
    const t0 = performance.now()
    const child = spawn(cmd, argv, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let partial = ''
    const stderrLines: Measured['stderrLines'] = []
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s))
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s
      const at = (performance.now() - t0) / 1000
      const parts = (partial + s).split(/\r|\n/)
      partial = parts.pop() ?? ''
      for (const line of parts) {
        if (line === '') continue
        stderrLines.push({ at, line })
        options.echo?.(line)
      }
    })
    let hwm = 0
    const poll = useTime
      ? undefined
      : setInterval(() => {
          readFile(`/proc/${child.pid}/status`, 'utf8')
            .then((s) => {
              const m = /VmHWM:\s+(\d+) kB/.exec(s)
              if (m) hwm = Math.max(hwm, Number(m[1]) * 1024)
            })
            .catch(() => {})
        }, 100)
    const code = await new Promise<number>((resolve, reject) => {
      child.on('error', reject)
      child.on('close', (c) => resolve(c ?? -1))
    })
    const wallSeconds = (performance.now() - t0) / 1000
    if (poll) clearInterval(poll)
    if (partial !== '') stderrLines.push({ at: wallSeconds, line: partial })
    let peakRssBytes = hwm
    let cpuSeconds: number | undefined
    if (useTime) {
      // GNU time writes "Command exited with non-zero status N" before the format line.
      const text = await readFile(timeFile, 'utf8').catch(() => '')
      const last = text.trim().split('\n').pop() ?? ''
      const kb = Number(last.split(' ')[1])
      peakRssBytes = Number.isFinite(kb) ? kb * 1024 : 0
      const cpu = Number(last.split(' ')[2]) + Number(last.split(' ')[3])
      if (Number.isFinite(cpu)) cpuSeconds = cpu
    }
    return { code, wallSeconds, peakRssBytes, rssSource: useTime ? 'gnu-time' : 'proc-vmhwm', ...(cpuSeconds !== undefined ? { cpuSeconds } : {}), stdout, stderr, stderrLines }
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

/**
 * Rows per second of the search phase from hardneg's plain progress lines
 * (`search [###---] 40% 1,168/2,921 rows  812 rows/s  ETA 2s`), between the first and
 * the last such line. undefined when there are fewer than two.
 */
export function searchRate(lines: Measured['stderrLines']): number | undefined {
  const points: { at: number; done: number }[] = []
  for (const { at, line } of lines) {
    const m = /^search(?: \[[^\]]*\])? \[[#-]*\] \d+% ([\d,]+)\/([\d,]+) rows/.exec(line)
    if (m) points.push({ at, done: Number((m[1] ?? '').replace(/,/g, '')) })
  }
  const first = points[0]
  const last = points[points.length - 1]
  if (!first || !last || last.at <= first.at) return undefined
  return (last.done - first.done) / (last.at - first.at)
}
