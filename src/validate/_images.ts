/**
 * Image checks of validation, through the image module: every image a pairs file or a
 * shard set names exists, decodes (each distinct file once) and has a size within the
 * limits; and no image is a near-duplicate of a forbidden one. Forbidden images are kept
 * as perceptual hashes (160 bytes each) and scanned linearly. sharp loads only when
 * there is an image to decode. Private to the validate files.
 */

import { hashImages, imageDistance, IMAGE_HASH, type ImageHash } from '../images/images.js'
import type { FindingLog, FindingPlace } from './_findings.js'

/** An image path found in checked data, where it was found and which side it belongs to. */
export interface PlacedImage {
  path: string // as the data wrote it (non-empty)
  place: FindingPlace // the pairs file or shard, and its 1-based data row
  role: string // which side of the pair the image is: 'query', 'positive', or 'negative N' in a shard
}

/** Where a forbidden image was named. */
export interface ForbiddenPlace {
  file: string // the forbid file as the user gave it
  row: number // its 1-based data row
  path: string // the image path as the forbid file wrote it
}

/** Size limits of {@link checkImages}. */
export interface ImageLimits {
  minSide: number // smallest accepted width and height, pixels
  maxPixels: number // largest accepted width x height, pixels
}

/** What {@link checkImages} needs. */
export interface ImageCheckOptions {
  root: string // directory relative image paths resolve against
  cache?: string | undefined // hash cache file (default: none)
  concurrency: number // images decoded at once
  limits?: ImageLimits | undefined // size limits (default: no size check)
  forbidden?: ForbiddenImages | undefined // near-duplicates of these are V_CONTAMINATION (default: no check)
  maxDistance: number // largest imageDistance that counts as a near-duplicate
  onProgress?: ((done: number, total: number) => void) | undefined // after each distinct image
}

/** Forbidden images as perceptual hashes with the place that named each; a linear scan finds the nearest. */
export class ForbiddenImages {
  private constructor(
    private readonly hashes: Uint8Array, // size x IMAGE_HASH.bytes
    private readonly places: readonly ForbiddenPlace[],
  ) {}

  /**
   * Hashes the images the forbid files name, each file's relative paths against its own
   * root. A bad forbidden image throws its E_BAD_IMAGE error (exit 2): a contamination
   * check with holes would pass what it never compared.
   */
  static async hash(
    sources: readonly { file: string; root: string; refs: readonly { path: string; row: number }[] }[],
    options: { cache?: string | undefined; concurrency: number; onProgress?: ((done: number, total: number) => void) | undefined },
  ): Promise<ForbiddenImages> {
    const seen = new Set<string>()
    const hashes: ImageHash[] = []
    const places: ForbiddenPlace[] = []
    for (const { file, root, refs } of sources) {
      const { images } = await hashImages(refs.map(r => ({ path: r.path, file, row: r.row })), {
        root, cache: options.cache, concurrency: options.concurrency, onBadImage: 'error', onProgress: options.onProgress,
      })
      for (const [i, image] of images.entries()) {
        const ref = refs[i]!
        if (image === undefined || seen.has(image.path)) continue
        seen.add(image.path)
        hashes.push(image.hash)
        places.push({ file, row: ref.row, path: ref.path })
      }
    }
    const flat = new Uint8Array(hashes.length * IMAGE_HASH.bytes)
    for (const [i, h] of hashes.entries()) flat.set(h, i * IMAGE_HASH.bytes)
    return new ForbiddenImages(flat, places)
  }

  /** Number of distinct forbidden image files. */
  get size(): number {
    return this.places.length
  }

  /** The closest forbidden image within `maxDistance` of `hash`, or undefined. O(size). */
  nearest(hash: ImageHash, maxDistance: number): { place: ForbiddenPlace; distance: number } | undefined {
    let best: { place: ForbiddenPlace; distance: number } | undefined
    const n = IMAGE_HASH.bytes
    for (let i = 0; i < this.places.length; i++) {
      const distance = imageDistance(hash, this.hashes.subarray(i * n, (i + 1) * n))
      if (distance <= maxDistance && (best === undefined || distance < best.distance)) best = { place: this.places[i]!, distance }
    }
    return best
  }
}

/**
 * Decodes the images `refs` name and records V_IMAGE_MISSING, V_IMAGE_UNDECODABLE,
 * V_IMAGE_SIZE (with `limits`) and V_CONTAMINATION (with `forbidden`) per ref, in ref
 * order. The caller marks which checks ran.
 */
export async function checkImages(refs: readonly PlacedImage[], options: ImageCheckOptions, log: FindingLog): Promise<void> {
  if (refs.length === 0) return
  // Refs carry no place: the finding log adds it, so the module's message is the detail.
  const { images, bad } = await hashImages(refs.map(r => ({ path: r.path })), {
    root: options.root, cache: options.cache, concurrency: options.concurrency, onBadImage: 'skip', onProgress: options.onProgress,
  })
  for (const b of bad) {
    const ref = refs[b.index]!
    log.add(b.reason === 'undecodable' ? 'V_IMAGE_UNDECODABLE' : 'V_IMAGE_MISSING', ref.place, `${ref.role} ${b.message}`)
  }
  const nearest = new Map<string, ReturnType<ForbiddenImages['nearest']>>()
  for (const [i, image] of images.entries()) {
    if (image === undefined) continue
    const ref = refs[i]!
    const shown = `${ref.role} image '${ref.path}'`
    const { width, height } = image
    const limits = options.limits
    if (limits !== undefined && Math.min(width, height) < limits.minSide) {
      log.add('V_IMAGE_SIZE', ref.place, `${shown} is ${width} x ${height} px, expected each side at least ${limits.minSide} px (--min-image-side)`)
    } else if (limits !== undefined && width * height > limits.maxPixels) {
      log.add('V_IMAGE_SIZE', ref.place, `${shown} is ${width} x ${height} px (${megapixels(width * height)} megapixels), expected at most ${megapixels(limits.maxPixels)} megapixels (--max-image-pixels)`)
    }
    if (options.forbidden === undefined) continue
    if (!nearest.has(image.path)) nearest.set(image.path, options.forbidden.nearest(image.hash, options.maxDistance))
    const hit = nearest.get(image.path)
    if (hit !== undefined) {
      log.add('V_CONTAMINATION', ref.place,
        `${shown} is a near-duplicate of image '${hit.place.path}' at ${hit.place.file}:${hit.place.row} (distance ${hit.distance}, at most ${options.maxDistance} counts), expected no image of the forbid sets`)
    }
  }
}

function megapixels(pixels: number): string {
  return Number((pixels / 1e6).toPrecision(4)).toString()
}
