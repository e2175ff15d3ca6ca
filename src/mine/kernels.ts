/**
 * The exact kernels a run's groups used, gathered for the manifest: which kernel each group
 * ran, why, on which CPU, and the int8 kernel's rescoring per query. A worker hands its log's
 * state to its part; the merge adds the parts' states up to what the one-process run records.
 */
import { HardnegError } from '../errors.js'
import type { ManifestExactKernel } from '../output/manifest.js'
import { cpuInt8, type ExactKernel, type KernelChoice, type RescoreCounts } from './search/exact.js'

/** A log's content as plain data: a part carries it, {@link KernelLog.merge} adds several up. */
export interface KernelLogState {
  requested: ExactKernel | 'auto'
  cpu: ManifestExactKernel['cpu'] // the CPU the choices looked at
  kernels: [string, ExactKernel][] // group name and the kernel it ran, in the order searched
  split: string[] // groups searched against a part of their pool (a pool-part worker's)
  reasons: string[]
  rescored: Record<string, number> // exact dot products per query -> how many queries
  band: Record<string, number> // candidates straddling the ceiling per query -> how many queries
}

/** Collects {@link KernelChoice}s group by group. */
export class KernelLog {
  private readonly state: KernelLogState

  constructor(requested: ExactKernel | 'auto') {
    const cpu = cpuInt8()
    this.state = { requested, cpu: { arch: cpu.arch, int8: cpu.int8, flags: cpu.flags }, kernels: [], split: [], reasons: [], rescored: {}, band: {} }
  }

  /**
   * The logs of several workers as one: groups and reasons united, the per-query counts
   * added, the first worker's CPU. Workers that ran one group with different kernels (auto
   * on a cluster of unlike CPUs) made rows no one-process run makes: E_PARTS_INCOMPLETE.
   */
  static merge(states: readonly KernelLogState[], file?: string): KernelLog {
    const log = new KernelLog(states[0]?.requested ?? 'auto')
    if (states[0]) log.state.cpu = structuredClone(states[0].cpu)
    const ran = new Map<string, { kernel: ExactKernel; worker: number }>()
    states.forEach((s, worker) => {
      for (const [group, kernel] of s.kernels) {
        const first = ran.get(group)
        if (first && first.kernel !== kernel) {
          throw new HardnegError('E_PARTS_INCOMPLETE', `group '${group}' was searched with the ${first.kernel} kernel by worker ${first.worker} (CPU ${describeCpu(states[first.worker]?.cpu)}) and with ${kernel} by worker ${worker} (CPU ${describeCpu(s.cpu)}), expected one kernel per group: rerun the workers with --exact-kernel int8 (the same rows on every CPU) or --exact-kernel fp32`, file !== undefined ? { file } : {})
        }
        if (!first) {
          ran.set(group, { kernel, worker })
          log.state.kernels.push([group, kernel])
        }
      }
      for (const g of s.split) addOnce(log.state.split, g)
      for (const r of s.reasons) addOnce(log.state.reasons, r)
      addCounts(log.state.rescored, s.rescored)
      addCounts(log.state.band, s.band)
    })
    return log
  }

  /**
   * One exact group's kernel and, for int8, its per-query counts; `split` when only a part of
   * its pool was searched here. A group searched in several calls counts once.
   */
  record(group: string, choice: KernelChoice, counts: RescoreCounts | undefined, split = false): void {
    if (!this.state.kernels.some(([g]) => g === group)) this.state.kernels.push([group, choice.kernel])
    if (split) addOnce(this.state.split, group)
    addOnce(this.state.reasons, choice.reason)
    if (counts) {
      for (const x of counts.rescored) this.state.rescored[x] = (this.state.rescored[x] ?? 0) + 1
      for (const x of counts.ceilingBand) this.state.band[x] = (this.state.band[x] ?? 0) + 1
    }
  }

  /** A copy of what was logged, for a worker's part. */
  snapshot(): KernelLogState {
    return structuredClone(this.state)
  }

  /** The manifest's `search.exactKernel`, or undefined when no group was searched exact. */
  summary(): ManifestExactKernel | undefined {
    const kernels = this.state.kernels.map(([, k]) => k)
    if (kernels.length === 0) return undefined
    const groups = { fp32: kernels.filter((k) => k === 'fp32').length, int8: kernels.filter((k) => k === 'int8').length }
    // Sorted, so that a merge of parts lists them as the one-process run does.
    const out: ManifestExactKernel = { requested: this.state.requested, groups, reasons: [...this.state.reasons].sort(), cpu: structuredClone(this.state.cpu) }
    const r = stats(this.state.rescored)
    if (r) {
      const b = stats(this.state.band) ?? { mean: 0, p99: 0, max: 0 }
      out.rescore = { queries: r.n, rescoredMean: r.mean, rescoredP99: r.p99, rescoredMax: r.max, ceilingBandMean: b.mean, ceilingBandP99: b.p99, ceilingBandMax: b.max }
      const split = this.state.kernels.filter(([g, k]) => k === 'int8' && this.state.split.includes(g)).length
      if (split > 0) out.rescore.splitGroups = split
    }
    return out
  }
}

function describeCpu(cpu: ManifestExactKernel['cpu'] | undefined): string {
  return cpu ? `${cpu.arch}, int8 ${cpu.int8}, flags ${cpu.flags.join(' ') || 'none'}` : 'unknown'
}

function addOnce(list: string[], value: string): void {
  if (!list.includes(value)) list.push(value)
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [value, n] of Object.entries(from)) into[value] = (into[value] ?? 0) + n
}

/** Mean (two decimals), 99th percentile (the value at floor(0.99 n) in ascending order) and maximum of a histogram. */
function stats(histogram: Record<string, number>): { n: number; mean: number; p99: number; max: number } | undefined {
  const bins = Object.entries(histogram).map(([v, n]) => [Number(v), n] as const).sort((a, b) => a[0] - b[0])
  const n = bins.reduce((a, [, c]) => a + c, 0)
  if (n === 0) return undefined
  const mean = bins.reduce((a, [v, c]) => a + v * c, 0) / n
  const at = Math.min(n - 1, Math.floor(0.99 * n))
  let seen = 0
  let p99 = 0
  for (const [v, c] of bins) {
    seen += c
    if (seen > at) {
      p99 = v
      break
    }
  }
  return { n, mean: Math.round(mean * 100) / 100, p99, max: bins[bins.length - 1]?.[0] ?? 0 }
}
