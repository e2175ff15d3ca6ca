/**
 * The one place sharp is imported. images.ts loads this file on its first decode, so a
 * text-only run never loads libvips.
 */
import sharp from 'sharp'

/** A grayscale raster, row-major, one byte per pixel. */
export interface GrayRaster {
  width: number
  height: number
  data: Uint8Array
}

/** What one decode yields. */
export interface DecodedImage {
  width: number // pixels, as displayed (EXIF orientation applied)
  height: number // pixels, as displayed
  format: string // sharp's decoder name: jpeg, png, webp, gif, tiff, avif, heif, ...
  gray: GrayRaster | undefined // with `maxSide`: the image in grayscale, at most maxSide px on its longer side
}

/**
 * Decodes `input` fully; with `maxSide`, also reduces it to a grayscale raster: EXIF
 * orientation applied, transparency flattened onto white, shrunk (never enlarged) to fit
 * `maxSide` x `maxSide` keeping its aspect. Throws sharp's error when the image cannot
 * be decoded; decoder warnings (a truncated JPEG, for example) count as errors, as they
 * do for PIL.
 */
export async function decodeImage(input: Buffer, options: { maxSide?: number } = {}): Promise<DecodedImage> {
  const meta = await sharp(input, { failOn: 'warning' }).metadata()
  const shown = { width: meta.autoOrient.width, height: meta.autoOrient.height, format: meta.format }
  const { maxSide } = options
  if (maxSide === undefined) {
    // Decoding the pixels is what proves an image sound; the header alone does not.
    await sharp(input, { failOn: 'warning' }).raw().toBuffer()
    return { ...shown, gray: undefined }
  }
  // Orientation and flattening cost a pass each, so they run only where they change something.
  let image = sharp(input, { failOn: 'warning' })
  if ((meta.orientation ?? 1) !== 1) image = image.autoOrient()
  if (meta.hasAlpha) image = image.flatten({ background: '#ffffff' })
  const { data, info } = await image
    .greyscale()
    .resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true })
  if (info.channels !== 1 || data.length !== info.width * info.height) {
    throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, expected one channel`)
  }
  return { ...shown, gray: { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) } }
}

/** A small JPEG of an image, for embedding in a page. */
export interface Thumbnail {
  jpeg: Buffer // JPEG bytes
  width: number // pixels
  height: number // pixels
}

/**
 * A JPEG thumbnail of `input` that fits `maxSide` x `maxSide` (aspect kept, never
 * enlarged, EXIF orientation applied, transparency flattened onto white). Throws sharp's
 * error when the image cannot be decoded.
 */
export async function thumbnailJpeg(input: Buffer, options: { maxSide: number; quality: number }): Promise<Thumbnail> {
  const { data, info } = await sharp(input, { failOn: 'error' })
    .autoOrient()
    .flatten({ background: '#ffffff' })
    .resize(options.maxSide, options.maxSide, { fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: options.quality, mozjpeg: true })
    .toBuffer({ resolveWithObject: true })
  return { jpeg: data, width: info.width, height: info.height }
}
