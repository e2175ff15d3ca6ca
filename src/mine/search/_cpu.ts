/**
 * What this CPU offers integer matrix multiplies: the instruction-set flags the int8
 * kernel's choice looks at. Private to search/.
 */
import { readFileSync } from 'node:fs'
import os from 'node:os'

/** The CPU as the kernel choice sees it. */
export interface CpuInt8 {
  arch: string // process.arch
  flags: string[] // the flags that matter here, as /proc/cpuinfo names them (avx2, avx512bw, avx512_vnni, avx_vnni, asimddp), sorted
  int8: 'vnni' | 'dotprod' | 'avx2' | 'none' // the best integer dot-product path: 4-way u8 x s8 adds into int32 (VNNI, Arm dot product), pairwise int16 adds (AVX2), or none worth using
}

const WANTED = ['avx2', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'asimddp']

let cached: CpuInt8 | undefined

/** Reads the CPU's flags once (Linux: /proc/cpuinfo; elsewhere from the architecture alone). */
export function cpuInt8(): CpuInt8 {
  if (cached) return cached
  let text = ''
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8')
  } catch {
    // not Linux
  }
  const line = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(text)?.[1] ?? ''
  const present = new Set(line.split(/\s+/))
  const flags = WANTED.filter((f) => present.has(f)).sort()
  const arch = process.arch
  let int8: CpuInt8['int8'] = 'none'
  if (arch === 'x64') int8 = present.has('avx512_vnni') || present.has('avx_vnni') ? 'vnni' : present.has('avx2') ? 'avx2' : 'none'
  // Every Apple arm64 core has the dot-product instructions; on Linux the flag says.
  else if (arch === 'arm64') int8 = present.has('asimddp') || os.platform() === 'darwin' ? 'dotprod' : 'none'
  cached = { arch, flags, int8 }
  return cached
}
