/**
 * The layout's rules, checked on the source tree: a file whose name starts with `_` is
 * private to its folder, so no import from another folder may reach it; no source file
 * grows past 500 lines; `src/index.ts` re-exports by name only.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const src = path.join(root, 'src')

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** Relative specifiers of static imports, `export ... from` and dynamic `import()`, comments stripped. */
export function importSpecifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
  const found: string[] = []
  for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]+)\1/gm)) found.push(m[2]!)
  return found
}

/** `importer -> target` for every import that reaches into another folder's private file. */
export function privateReaches(files: readonly string[], read: (file: string) => string): string[] {
  const bad: string[] = []
  for (const file of files) {
    for (const spec of importSpecifiers(read(file))) {
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts')
      if (path.basename(target).startsWith('_') && path.dirname(target) !== path.dirname(file)) {
        bad.push(`${path.relative(root, file)} imports ${path.relative(root, target)}, private to ${path.relative(root, path.dirname(target))}/`)
      }
    }
  }
  return bad
}

describe('source layout', () => {
  const files = sourceFiles(src)
  const read = (f: string) => readFileSync(f, 'utf8')

  it('no import reaches into another folder\'s private (_) file', () => {
    expect(privateReaches(files, read)).toEqual([])
  })

  it('the check names both files of a reach, for static, re-export and dynamic imports', () => {
    const fake: Record<string, string> = {
      [path.join(src, 'mine', 'mine.ts')]: [
        "import { a } from '../pairs/_csv.js'",
        "export { b } from './_inputs.js'",
        "const m = await import('../images/_decode.js')",
        "// import { c } from '../report/_html.js'",
      ].join('\n'),
    }
    expect(privateReaches(Object.keys(fake), (f) => fake[f]!)).toEqual([
      'src/mine/mine.ts imports src/pairs/_csv.ts, private to src/pairs/',
      'src/mine/mine.ts imports src/images/_decode.ts, private to src/images/',
    ])
  })

  it('no source file is over 500 lines', () => {
    const long = files
      .map((f) => ({ file: path.relative(root, f), lines: read(f).split('\n').length - 1 }))
      .filter((f) => f.lines > 500)
    expect(long).toEqual([])
  })

  it('src/ holds only the public API, the error type, shared types and the seeded generator at its top level', () => {
    const top = readdirSync(src, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort()
    expect(top).toEqual(['errors.ts', 'index.ts', 'random.ts', 'types.ts'])
  })

  it('src/index.ts re-exports by name only', () => {
    const text = read(path.join(src, 'index.ts'))
    expect(text).not.toMatch(/export\s*\*/)
    for (const spec of importSpecifiers(text)) expect(path.basename(spec).startsWith('_'), spec).toBe(false)
  })
})
