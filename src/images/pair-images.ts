/**
 * The images a run's pairs name, decoded and hashed once (`hashImages`), with the pair
 * rows a bad image drops under `--on-bad-image skip`. `mine` and `embed` decide bad rows
 * through this one function, so both drop the same rows.
 */
import path from 'node:path'
import { hashImages, type BadImage, type HashedImage, type ImageRef } from './images.js'
import type { PairFile } from '../pairs/files.js'

/** The images of a run: hashes by path as written, and the pair rows to drop. */
export interface PairImages {
  byPath: Map<string, HashedImage> // image path as written -> its decode and hashes
  badRows: Set<number> // pair rows with a bad image (only with onBadImage 'skip')
  bad: PairBadImage[] // each bad image reference, in reference order (only with onBadImage 'skip')
  summary: { root: string; distinct: number; decoded: number; cached: number; cache: string; badRows: number } // for the manifest
}

/** A bad image reference of a pair row, as `embed`'s manifest lists it. */
export interface PairBadImage {
  pairRow: number // 0-based pair row across all pairs files
  file: string // pairs file as given
  row: number // 1-based data row within `file`
  role: 'query' | 'positive' // the side that names the image
  path: string // image path as written
  reason: BadImage['reason'] // missing, unreadable or undecodable
  message: string // the one-line message `--on-bad-image error` would have thrown
}

/**
 * Hashes every image the pairs of `files` name (query side first, then positive, row by
 * row). With `onBadImage: 'error'` the first bad image is thrown as `hashImages` throws it.
 */
export async function hashPairImages(
  files: readonly PairFile[],
  options: { root: string; cache: string; onBadImage: 'error' | 'skip'; onProgress?: (done: number, total: number) => void },
): Promise<PairImages> {
  const refs: (ImageRef & { pairRow: number; file: string; row: number; role: 'query' | 'positive' })[] = []
  for (const f of files) {
    for (const p of f.pairs) {
      const row = p.row - f.firstRow + 1
      if (p.queryImage !== '') refs.push({ path: p.queryImage, file: f.file, row, role: 'query', pairRow: p.row })
      if (p.positiveImage !== '') refs.push({ path: p.positiveImage, file: f.file, row, role: 'positive', pairRow: p.row })
    }
  }
  const result = await hashImages(refs, {
    root: options.root,
    cache: options.cache,
    onBadImage: options.onBadImage,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  })
  const byPath = new Map<string, HashedImage>()
  refs.forEach((ref, i) => {
    const image = result.images[i]
    if (image && !byPath.has(ref.path)) byPath.set(ref.path, image)
  })
  const badRows = new Set(result.bad.map((b) => (refs[b.index] as { pairRow: number }).pairRow))
  const bad = result.bad.map((b): PairBadImage => {
    const ref = refs[b.index] as (typeof refs)[number]
    return { pairRow: ref.pairRow, file: ref.file, row: ref.row, role: ref.role, path: b.path, reason: b.reason, message: b.message }
  })
  return {
    byPath,
    badRows,
    bad,
    summary: {
      root: path.resolve(options.root),
      distinct: result.distinct,
      decoded: result.decoded,
      cached: result.cached,
      cache: result.cache,
      badRows: badRows.size,
    },
  }
}
