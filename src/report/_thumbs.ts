/**
 * Thumbnails of the images a report's gallery shows: each distinct image read and shrunk
 * once (sharp, loaded only when a report has images), embedded as a JPEG data: URI, and
 * left out with a stated reason when missing, undecodable or past the page's image
 * budget. Private to the report files.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { thumbnailJpeg } from '../images/images.js'

/** An embedded image, or why there is none. */
export type ReportThumbnail =
  | { dataUri: string; width: number; height: number } // JPEG as a data: URI, and its size in pixels
  | { missing: string } // one line: why the image is not shown

/** Options of {@link makeThumbnails}. */
export interface ThumbnailOptions {
  root: string // directory relative image paths resolve against
  quality: number // JPEG quality, 1-100
  budgetBytes: number // embedded data: URI characters in all; images past it are left out
  concurrency: number // images decoded at once
  onProgress?: (done: number, total: number) => void // after each image
}

/** One image the page shows, at most `maxSide` pixels on its longer side. */
export interface ThumbnailRequest {
  path: string // image path as the shards hold it
  maxSide: number // longest side in pixels
}

/**
 * Thumbnails for `requests` (in the order the page shows them, paths repeating), keyed by
 * path; an image shown at two sizes is made once, at the larger. The budget is spent in
 * request order, so the first samples keep their images when a page would grow too large.
 */
export async function makeThumbnails(requests: readonly ThumbnailRequest[], options: ThumbnailOptions): Promise<Record<string, ReportThumbnail>> {
  const sides = new Map<string, number>()
  for (const r of requests) sides.set(r.path, Math.max(r.maxSide, sides.get(r.path) ?? 0))
  const distinct = [...sides.keys()]
  const made = new Array<ReportThumbnail>(distinct.length)
  let done = 0
  let nextIndex = 0
  const worker = async (): Promise<void> => {
    while (nextIndex < distinct.length) {
      const i = nextIndex++
      const p = distinct[i] as string
      made[i] = await thumbnail(p, sides.get(p) as number, options)
      options.onProgress?.(++done, distinct.length)
    }
  }
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, options.concurrency) }, worker))
  for (const r of results) if (r.status === 'rejected') throw r.reason
  const out: Record<string, ReportThumbnail> = {}
  let spent = 0
  for (const [i, p] of distinct.entries()) {
    const t = made[i] as ReportThumbnail
    if ('dataUri' in t) {
      if (spent + t.dataUri.length > options.budgetBytes) {
        out[p] = { missing: `not embedded: the page's image budget (${(options.budgetBytes / 1e6).toFixed(2)} MB) is spent` }
        continue
      }
      spent += t.dataUri.length
    }
    out[p] = t
  }
  return out
}

async function thumbnail(imagePath: string, maxSide: number, options: ThumbnailOptions): Promise<ReportThumbnail> {
  const abs = path.resolve(options.root, imagePath)
  let bytes: Buffer
  try {
    bytes = await readFile(abs)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return { missing: code === 'ENOENT' ? `missing: no file ${abs}` : `unreadable: ${abs} (${code ?? String(err)})` }
  }
  try {
    const t = await thumbnailJpeg(bytes, { maxSide, quality: options.quality })
    return { dataUri: `data:image/jpeg;base64,${t.jpeg.toString('base64')}`, width: t.width, height: t.height }
  } catch (err) {
    return { missing: `undecodable: ${abs} (${err instanceof Error ? err.message.split('\n')[0] : String(err)})` }
  }
}
