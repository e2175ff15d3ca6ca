/**
 * Images of multimodal pairs: each referenced image decoded once (exists, decodes, size
 * and format), its content digest and a crop-tolerant perceptual hash, cached next to the
 * output; near-duplicate tests between hashes. sharp is loaded on the first decode only,
 * so importing this module (or the package) costs a text-only run nothing.
 */
import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { HardnegError, type ErrorPlace } from '../errors.js'
import { readImageCache, writeImageCache, type CachedImage, type ImageCacheStatus } from './_cache.js'
import type { DecodedImage, GrayRaster, Thumbnail } from './_decode.js'
import { cropSetDistance, cropSetHash } from './_phash.js'

export type { ImageCacheStatus } from './_cache.js'

/**
 * The perceptual hash, chosen by measurement (docs/images.md): pHash-256 (2-D DCT of a
 * 32 x 32 grayscale raster, coefficients [1..16] x [1..16], median threshold) of the whole
 * image and of four centred crops (2.5, 5, 7.5 and 10 % off each border), so that a
 * lightly cropped copy still matches. 5 x 32 bytes per image.
 */
export const IMAGE_HASH = Object.freeze({
  id: 'phash256-dct32-crops-0,0.025,0.05,0.075,0.1-raster256-v1', // cache key: another id invalidates a cache file
  raster: 256, // sharp first shrinks every image to fit raster x raster, grayscale, aspect kept, never enlarged
  dct: 32, // each crop is box-filtered to dct x dct (aspect ignored) before the DCT
  block: 16, // block x block coefficients, one bit each
  crops: Object.freeze([0, 0.025, 0.05, 0.075, 0.1]), // fraction cut off each border, per hash
  bytes: 160, // bytes per image: crops.length * block * block / 8
})

/**
 * Default of `--image-dup-distance`: two images whose {@link imageDistance} is at most
 * this are near-duplicates. Measured on the fixture images: near-duplicates at most 26,
 * distinct images at least 90 (docs/images.md).
 */
export const DEFAULT_IMAGE_DUP_DISTANCE = 58

/** File name of the hash cache that mining keeps in `--out`. */
export const IMAGE_CACHE_FILE = '.hardneg-image-cache.bin'

/** A perceptual hash: {@link IMAGE_HASH}.bytes bytes, compared with {@link imageDistance}. */
export type ImageHash = Uint8Array

/** What decoding an image tells. */
export interface ImageInfo {
  path: string // absolute path the image was read from
  bytes: number // file size in bytes
  mtimeMs: number // modification time (fs.Stats.mtimeMs)
  width: number // pixels, as displayed (EXIF orientation applied)
  height: number // pixels, as displayed
  format: string // sharp's decoder: jpeg, png, webp, gif, tiff, avif, ...
}

/** A decoded image with its content identity and perceptual hash. */
export interface HashedImage extends ImageInfo {
  sha256: string // hex digest of the file's bytes: same digest, same image content
  hash: ImageHash // perceptual hash; near-duplicates have a small imageDistance
}

/** An image a dataset refers to, with the place that refers to it (quoted in messages). */
export interface ImageRef {
  path: string // as written in the dataset; relative paths resolve against `root`
  file?: string // the file that refers to it, e.g. the pairs file as the user gave it
  row?: number // 1-based data row within `file`
  role?: string // which side refers to it, e.g. 'query' or 'positive', quoted before 'image' in messages (default: none)
}

/** Why an image is bad. */
export type BadImageReason = 'missing' | 'unreadable' | 'undecodable'

/** A ref whose image cannot be used: a finding, or the error `--on-bad-image error` throws. */
export interface BadImage {
  index: number // position of the ref among the refs given
  file: string | undefined // from the ref
  row: number | undefined // from the ref
  path: string // as the ref wrote it
  reason: BadImageReason // missing: no such file; unreadable: not a readable file; undecodable: sharp cannot decode it
  message: string // one line: place, what was found, what was expected (the error's message)
  error: HardnegError // code E_BAD_IMAGE, with file and row
}

/** Options of {@link inspectImage}. */
export interface InspectImageOptions {
  root?: string // directory a relative path resolves against (default: the current directory)
  file?: string // file that refers to the image, for the message (default: none)
  row?: number // 1-based row within `file`, for the message (default: none)
}

/** Options of {@link hashImages}. */
export interface HashImagesOptions {
  root?: string // directory relative image paths resolve against (default: the current directory)
  cache?: string // hash cache file, read first and rewritten when something changed; mining uses `<out>/${IMAGE_CACHE_FILE}` (default: no cache)
  onBadImage?: 'error' | 'skip' // error: stop and throw the first bad image in ref order; skip: list every bad image in `bad` (default 'error')
  concurrency?: number // images read and decoded at once (default 4; sharp's own thread count is left alone)
  onProgress?: (done: number, total: number) => void // after each distinct image; total = distinct images
}

/** What {@link hashImages} returns. */
export interface HashImagesResult {
  images: (HashedImage | undefined)[] // aligned with the refs; undefined where the image is bad
  bad: BadImage[] // one per ref whose image is bad, in ref order (only with onBadImage 'skip')
  distinct: number // distinct image files among the refs
  decoded: number // images decoded by this call
  cached: number // images taken from the cache without decoding
  cache: ImageCacheStatus | 'none' // the cache file as found: none (no cache option), absent, loaded, stale (another hash), unreadable
}

const FORMATS = 'JPEG, PNG, WebP, GIF, TIFF or AVIF'
const CROP_BYTES = IMAGE_HASH.bytes / IMAGE_HASH.crops.length

/**
 * Hamming distance between two image hashes, tolerant of centred crops: the smallest of
 * whole image against whole image, and each crop of one against the whole of the other
 * (0 = same hash; distinct images measure 90 and more of 256).
 */
export function imageDistance(a: ImageHash, b: ImageHash): number {
  if (a.length !== IMAGE_HASH.bytes || b.length !== IMAGE_HASH.bytes) {
    throw new RangeError(`image hashes of ${a.length} and ${b.length} bytes, expected ${IMAGE_HASH.bytes}`)
  }
  return cropSetDistance(a, b, CROP_BYTES)
}

/**
 * True when two images are near-duplicates: a re-encoded, resized, lightly cropped or
 * brightness-shifted copy of one another.
 *
 * @example
 * ```ts
 * if (isNearDuplicate(candidate.hash, query.hash)) dropAsFalseNegative(candidate)
 * ```
 */
export function isNearDuplicate(a: ImageHash, b: ImageHash, maxDistance: number = DEFAULT_IMAGE_DUP_DISTANCE): boolean {
  return imageDistance(a, b) <= maxDistance
}

/** An image hash as lower-case hex (320 digits), e.g. for a manifest or a shard column. */
export function formatImageHash(hash: ImageHash): string {
  return Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex')
}

/** The inverse of {@link formatImageHash}; throws E_BAD_OPTION on anything else. */
export function parseImageHash(hex: string): ImageHash {
  if (hex.length !== IMAGE_HASH.bytes * 2 || !/^[0-9a-f]+$/.test(hex)) {
    throw new HardnegError('E_BAD_OPTION', `image hash '${hex.slice(0, 24)}${hex.length > 24 ? '...' : ''}', expected ${IMAGE_HASH.bytes * 2} lower-case hex digits`)
  }
  return Uint8Array.from(Buffer.from(hex, 'hex'))
}

/**
 * Decodes one image fully and hashes it. Throws a {@link HardnegError} (E_BAD_IMAGE)
 * placed at `options.file`/`options.row` when the file is missing, unreadable or cannot
 * be decoded, e.g. `pairs.parquet:12: image 'images/x.jpg' not found (ENOENT), expected a
 * readable image file`.
 */
export async function inspectImage(imagePath: string, options: InspectImageOptions = {}): Promise<HashedImage> {
  const outcome = await hashFile(path.resolve(options.root ?? '.', imagePath), imagePath === '', undefined)
  if ('failure' in outcome) throw badImageError(imagePath, outcome.failure, options)
  return outcome.image
}

/**
 * Decodes and hashes every distinct image the refs name (each file once, `concurrency`
 * at a time), taking unchanged files from the cache. With `onBadImage: 'error'` the
 * first bad image in ref order is thrown (after the images in flight settle and the
 * cache is saved); with 'skip' every bad ref is listed in `bad` for the caller to drop
 * and count.
 *
 * @example
 * ```ts
 * const refs = pairs.flatMap((p, i) => p.positiveImage
 *   ? [{ path: p.positiveImage, file: 'train.parquet', row: i + 1, role: 'positive' }] : [])
 * const { images, bad } = await hashImages(refs, {
 *   root: 'data/', cache: `out/${IMAGE_CACHE_FILE}`, onBadImage: 'skip',
 * })
 * ```
 */
export async function hashImages(refs: Iterable<ImageRef>, options: HashImagesOptions = {}): Promise<HashImagesResult> {
  const { onBadImage = 'error', concurrency = 4, onProgress } = options
  if (onBadImage !== 'error' && onBadImage !== 'skip') {
    throw new HardnegError('E_BAD_OPTION', `--on-bad-image '${String(onBadImage)}', expected error or skip`)
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new HardnegError('E_BAD_OPTION', `image concurrency ${String(concurrency)}, expected an integer >= 1`)
  }
  const root = path.resolve(options.root ?? '.')
  const list = [...refs]
  // Distinct files in order of first reference, so the first bad image thrown is the first in ref order.
  const byPath = new Map<string, { abs: string; empty: boolean }>()
  const slotOf = list.map((ref) => {
    const abs = path.resolve(root, ref.path)
    if (!byPath.has(abs)) byPath.set(abs, { abs, empty: ref.path === '' })
    return abs
  })
  const files = [...byPath.values()]

  const loaded = options.cache === undefined ? undefined : await readImageCache(options.cache, IMAGE_HASH.id, IMAGE_HASH.bytes)
  const cache = loaded?.entries ?? new Map<string, CachedImage>()
  let changed = loaded?.status === 'stale' || loaded?.status === 'unreadable'

  const outcomes = new Map<string, Outcome>()
  let next = 0
  let done = 0
  let stop = false
  let decoded = 0
  const worker = async (): Promise<void> => {
    while (!stop && next < files.length) {
      const { abs, empty } = files[next++] as (typeof files)[number]
      const outcome = await hashFile(abs, empty, loaded === undefined ? undefined : cache)
      outcomes.set(abs, outcome)
      if ('failure' in outcome) {
        changed = cache.delete(abs) || changed
        if (onBadImage === 'error') stop = true
      } else if (outcome.decoded) {
        decoded++
        cache.set(abs, outcome.image)
        changed = true
      }
      done++
      onProgress?.(done, files.length)
    }
  }
  const settled = await Promise.allSettled(Array.from({ length: Math.min(concurrency, files.length) }, worker))
  const crash = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (options.cache !== undefined && changed) {
    try {
      await writeImageCache(options.cache, IMAGE_HASH.id, IMAGE_HASH.bytes, cache.values())
    } catch (err) {
      if (crash === undefined) {
        throw new HardnegError('E_OUTPUT', `cannot write the image cache (${(err as NodeJS.ErrnoException).code ?? String(err)}), expected a writable path`, { file: options.cache })
      }
    }
  }
  if (crash !== undefined) throw crash.reason

  const images: (HashedImage | undefined)[] = []
  const bad: BadImage[] = []
  for (const [index, ref] of list.entries()) {
    const outcome = outcomes.get(slotOf[index] as string)
    if (outcome !== undefined && 'image' in outcome) {
      images.push(outcome.image)
    } else {
      images.push(undefined)
      if (outcome === undefined) continue // never decoded: only after a bad image, which was thrown above
      const error = badImageError(ref.path, outcome.failure, ref, ref.role)
      if (onBadImage === 'error') throw error
      bad.push({ index, file: ref.file, row: ref.row, path: ref.path, reason: outcome.failure.reason, message: error.message, error })
    }
  }
  return { images, bad, distinct: files.length, decoded, cached: done - decoded - countFailures(outcomes), cache: loaded?.status ?? 'none' }
}

interface Failure {
  reason: BadImageReason
  detail: string // the message after "image 'path' "
}

type Outcome = { image: HashedImage; decoded: boolean } | { failure: Failure }

let decoder: Promise<typeof import('./_decode.js')> | undefined

export type { Thumbnail } from './_decode.js'

/**
 * A JPEG thumbnail of `input` that fits `maxSide` x `maxSide` (aspect kept, never
 * enlarged, EXIF orientation applied, transparency flattened onto white). Throws sharp's
 * error when the image cannot be decoded. sharp loads on the first call.
 */
export async function thumbnailJpeg(input: Buffer, options: { maxSide: number; quality: number }): Promise<Thumbnail> {
  const decode = await (decoder ??= import('./_decode.js'))
  return decode.thumbnailJpeg(input, options)
}

/** Lets any number of shared tasks run at once, or one exclusive task alone. */
class Gate {
  private running = 0
  private closed: Promise<void> | undefined // set while an exclusive task waits or runs
  private idle: (() => void) | undefined

  async shared<T>(task: () => Promise<T>): Promise<T> {
    while (this.closed !== undefined) await this.closed
    this.running++
    try {
      return await task()
    } finally {
      if (--this.running === 0) this.idle?.()
    }
  }

  async exclusive<T>(task: () => Promise<T>): Promise<T> {
    while (this.closed !== undefined) await this.closed
    let open!: () => void
    this.closed = new Promise<void>((resolve) => (open = resolve))
    try {
      while (this.running > 0) await new Promise<void>((resolve) => (this.idle = resolve))
      return await task()
    } finally {
      this.idle = undefined
      this.closed = undefined
      open()
    }
  }
}

const gate = new Gate()

async function hashFile(abs: string, empty: boolean, cache: Map<string, CachedImage> | undefined): Promise<Outcome> {
  if (empty) return { failure: { reason: 'missing', detail: 'has an empty path, expected a path to an image file' } }
  let info
  try {
    info = await stat(abs)
  } catch (err) {
    return { failure: readFailure(err) }
  }
  if (!info.isFile()) {
    return { failure: { reason: 'unreadable', detail: `is not a file (${info.isDirectory() ? 'a directory' : 'a special file'}), expected a readable image file` } }
  }
  const hit = cache?.get(abs)
  if (hit !== undefined && hit.bytes === info.size && hit.mtimeMs === info.mtimeMs) return { image: hit, decoded: false }
  let data: Buffer
  try {
    data = await readFile(abs)
  } catch (err) {
    return { failure: readFailure(err) }
  }
  const { decodeImage } = await (decoder ??= import('./_decode.js'))
  const decode = (): Promise<DecodedImage> => decodeImage(data, { maxSide: IMAGE_HASH.raster })
  let image
  try {
    image = await gate.shared(decode)
  } catch {
    // libvips keeps one error buffer per process, and every sharp call clears it when it
    // ends: a decode failing while others run can lose its message or get another's. So a
    // failed decode is repeated with nothing else decoding, which gives its own message.
    try {
      image = await gate.exclusive(decode)
    } catch (err) {
      const reason = oneLine(err instanceof Error ? err.message : String(err))
      return { failure: { reason: 'undecodable', detail: `cannot be decoded (${reason}), expected ${FORMATS}` } }
    }
  }
  const gray = image.gray as GrayRaster
  return {
    decoded: true,
    image: {
      path: abs,
      bytes: info.size,
      mtimeMs: info.mtimeMs,
      width: image.width,
      height: image.height,
      format: image.format,
      sha256: createHash('sha256').update(data).digest('hex'),
      hash: cropSetHash(gray.data, gray.width, gray.height, IMAGE_HASH.crops, IMAGE_HASH.dct, IMAGE_HASH.block),
    },
  }
}

function readFailure(err: unknown): Failure {
  const code = (err as NodeJS.ErrnoException).code ?? 'EIO'
  if (code === 'ENOENT' || code === 'ENOTDIR') return { reason: 'missing', detail: `not found (${code}), expected a readable image file` }
  return { reason: 'unreadable', detail: `cannot be read (${code}), expected a readable image file` }
}

function badImageError(shown: string, failure: Failure, place: ErrorPlace, role?: string): HardnegError {
  const what = role === undefined ? 'image' : `${role} image`
  return new HardnegError('E_BAD_IMAGE', `${what} '${shown}' ${failure.detail}`, { file: place.file, row: place.row })
}

function countFailures(outcomes: Map<string, Outcome>): number {
  let n = 0
  for (const o of outcomes.values()) if ('failure' in o) n++
  return n
}

function oneLine(text: string): string {
  return text.trim().split(/\s*\n\s*/).join('; ')
}

/** The MIME type of an image of sharp's `format` (jpeg, png, webp, gif, heif, ...), for data: URLs. */
export function imageMimeType(format: string): string {
  if (format === 'jpeg' || format === 'jpg') return 'image/jpeg'
  if (format === 'heif') return 'image/avif'
  if (format === 'svg') return 'image/svg+xml'
  return `image/${format}`
}
