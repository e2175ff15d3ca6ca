/**
 * The duplicate rules of a run with images: a candidate that shows the query's or the
 * positive's picture (a near-duplicate image) or repeats its text is a false negative,
 * whatever its embedding score. Checked on the ranked candidates a query is about to be
 * served, so a pool of 50k images costs a few comparisons per query, not 50k.
 */
import { imageDistance, type ImageHash } from '../images/images.js'
import { normaliseText, type PoolEntry } from './pool.js'
import type { PairRecord } from '../types.js'

/** Why the duplicate rules remove a candidate. */
export type DuplicateRule = 'image_duplicate' | 'text_duplicate'

/** Options of {@link createDuplicateCheck}. */
export interface DuplicateCheckOptions {
  hashOf: (imagePath: string) => ImageHash | undefined // perceptual hash of an image path as the pairs file wrote it (undefined = unknown, never a duplicate)
  maxDistance: number // images at most this far apart ({@link imageDistance}) are near-duplicates (--image-dup-distance)
}

/** Decides, for one query and one candidate, whether a duplicate rule removes the candidate. */
export type DuplicateCheck = (pair: PairRecord, entry: PoolEntry) => DuplicateRule | undefined

/**
 * The duplicate rules:
 * - `image_duplicate`: the candidate has an image within `maxDistance` of the query's or
 *   the positive's image (re-encoded, resized, lightly cropped or brightness-shifted copies).
 * - `text_duplicate`: the candidate's normalised text equals the query's or the
 *   positive's, and one of the two has no image (the same words, with or without a
 *   picture attached). Two sides that share only a text but show different images (one
 *   instruction over many pictures) are not duplicates.
 *
 * @example
 * const isDuplicate = createDuplicateCheck({ hashOf: (p) => hashes.get(p), maxDistance: 58 })
 * if (isDuplicate(pair, pool.entries[j]) !== undefined) skip(j)
 */
export function createDuplicateCheck(options: DuplicateCheckOptions): DuplicateCheck {
  const { hashOf, maxDistance } = options
  // Per-query normalised texts are asked for many candidates in a row.
  let lastPair: PairRecord | undefined
  let sides: { text: string; image: ImageHash | undefined; hasImage: boolean }[] = []
  // A candidate is met by many queries; normalise its text once.
  const normalised = new WeakMap<PoolEntry, string>()
  return (pair, entry) => {
    if (pair !== lastPair) {
      lastPair = pair
      sides = [
        { text: normaliseText(pair.query), image: pair.queryImage === '' ? undefined : hashOf(pair.queryImage), hasImage: pair.queryImage !== '' },
        { text: normaliseText(pair.positive), image: pair.positiveImage === '' ? undefined : hashOf(pair.positiveImage), hasImage: pair.positiveImage !== '' },
      ]
    }
    const image = entry.image === '' ? undefined : hashOf(entry.image)
    if (image !== undefined) {
      for (const side of sides) if (side.image !== undefined && imageDistance(image, side.image) <= maxDistance) return 'image_duplicate'
    }
    let text = normalised.get(entry)
    if (text === undefined) normalised.set(entry, (text = normaliseText(entry.text)))
    if (text !== '') {
      for (const side of sides) if (side.text === text && (!side.hasImage || entry.image === '')) return 'text_duplicate'
    }
    return undefined
  }
}
