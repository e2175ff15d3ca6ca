/**
 * The exact kernels a run's groups used, gathered for the manifest: how many groups ran
 * each, why, on which CPU, and the int8 kernel's rescoring per query. Private to `mine.ts`.
 */
import type { ManifestExactKernel } from '../output/manifest.js'
import { cpuInt8, type ExactKernel, type KernelChoice, type RescoreCounts } from './search/exact.js'

/** Collects {@link KernelChoice}s group by group. */
export class KernelLog {
  private groups = { fp32: 0, int8: 0 }
  private reasons: string[] = []
  private rescored: number[] = []
  private band: number[] = []

  constructor(private readonly requested: ExactKernel | 'auto') {}

  /** One exact group's kernel and, for int8, its per-query counts. */
  record(choice: KernelChoice, counts: RescoreCounts | undefined): void {
    this.groups[choice.kernel]++
    if (!this.reasons.includes(choice.reason)) this.reasons.push(choice.reason)
    if (counts) {
      for (const x of counts.rescored) this.rescored.push(x)
      for (const x of counts.ceilingBand) this.band.push(x)
    }
  }

  /** The manifest's `search.exactKernel`, or undefined when no group was searched exact. */
  summary(): ManifestExactKernel | undefined {
    if (this.groups.fp32 + this.groups.int8 === 0) return undefined
    const cpu = cpuInt8()
    const out: ManifestExactKernel = { requested: this.requested, groups: { ...this.groups }, reasons: [...this.reasons], cpu: { arch: cpu.arch, int8: cpu.int8, flags: cpu.flags } }
    if (this.rescored.length > 0) {
      const r = stats(this.rescored)
      const b = stats(this.band)
      out.rescore = { queries: this.rescored.length, rescoredMean: r.mean, rescoredP99: r.p99, rescoredMax: r.max, ceilingBandMean: b.mean, ceilingBandP99: b.p99, ceilingBandMax: b.max }
    }
    return out
  }
}

function stats(values: number[]): { mean: number; p99: number; max: number } {
  const sorted = Float64Array.from(values).sort()
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length
  return { mean: Math.round(mean * 100) / 100, p99: sorted[Math.min(sorted.length - 1, Math.floor(0.99 * sorted.length))] ?? 0, max: sorted[sorted.length - 1] ?? 0 }
}
