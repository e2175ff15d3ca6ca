/**
 * vitest global setup: compiles src/ into dist/ once per run, so that tests which start
 * the real command (`node bin/hardneg.js ...`, as a user or a Slurm job would) run the
 * code under test, not an earlier build.
 */
import { execFileSync } from 'node:child_process'
import path from 'node:path'

export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '..')
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })
}
