/**
 * Near-duplicate copies of an image, as web-scale sets hold them: the transformations the
 * image tests plant and bench/image-distances.ts measures (docs/images.md). All made with
 * sharp in memory; every copy is re-encoded as JPEG (quality 90 unless stated).
 */
import sharp from 'sharp'

/** One way of copying an image. */
export interface Transformation {
  name: string // label in tables and test names
  measured: boolean // in the list: must be caught; false = shown for information only
  apply: (input: Buffer, width: number, height: number) => Promise<Buffer>
}

const jpeg = (s: sharp.Sharp, quality = 90): Promise<Buffer> => s.jpeg({ quality }).toBuffer()
/** Crops `f` of the width and of the height off each border (centred), e.g. 0.05 keeps the middle 90 %. */
const cropEach = (input: Buffer, w: number, h: number, f: number): sharp.Sharp => {
  const dx = Math.round(w * f)
  const dy = Math.round(h * f)
  return sharp(input).extract({ left: dx, top: dy, width: w - 2 * dx, height: h - 2 * dy })
}

/** The list first (`measured`), then harder edits for information. */
export const TRANSFORMATIONS: Transformation[] = [
  { name: 'JPEG q50', measured: true, apply: (b) => jpeg(sharp(b), 50) },
  { name: 'JPEG q70', measured: true, apply: (b) => jpeg(sharp(b), 70) },
  { name: 'resize 50 %', measured: true, apply: (b, w) => jpeg(sharp(b).resize(Math.round(w * 0.5))) },
  { name: 'resize 75 %', measured: true, apply: (b, w) => jpeg(sharp(b).resize(Math.round(w * 0.75))) },
  { name: 'crop 5 % off each border', measured: true, apply: (b, w, h) => jpeg(cropEach(b, w, h, 0.05)) },
  { name: 'crop 10 % off each border', measured: true, apply: (b, w, h) => jpeg(cropEach(b, w, h, 0.1)) },
  { name: 'brightness +15 %', measured: true, apply: (b) => jpeg(sharp(b).modulate({ brightness: 1.15 })) },
  { name: 'brightness -15 %', measured: true, apply: (b) => jpeg(sharp(b).modulate({ brightness: 0.85 })) },
  { name: 'brightness +25 %', measured: true, apply: (b) => jpeg(sharp(b).modulate({ brightness: 1.25 })) },
  { name: 'brightness -25 %', measured: true, apply: (b) => jpeg(sharp(b).modulate({ brightness: 0.75 })) },
  {
    name: 'combined: crop 5 %, resize 75 %, +15 %, q70',
    measured: true,
    apply: async (b, w, h) => {
      const cropped = await cropEach(b, w, h, 0.05).png().toBuffer()
      return jpeg(sharp(cropped).resize(Math.round(w * 0.9 * 0.75)).modulate({ brightness: 1.15 }), 70)
    },
  },
  // For information: edits between the crop levels, and harder edits than the issue lists.
  ...[0.0125, 0.0375, 0.0625, 0.0875, 0.125, 0.15].map((f): Transformation => ({
    name: `(info) crop ${+(f * 100).toFixed(2)} % off each border`,
    measured: false,
    apply: (b, w, h) => jpeg(cropEach(b, w, h, f)),
  })),
  { name: '(info) crop 10 % off the left only', measured: false, apply: (b, w, h) => jpeg(sharp(b).extract({ left: Math.round(w * 0.1), top: 0, width: w - Math.round(w * 0.1), height: h })) },
  { name: '(info) grayscale', measured: false, apply: (b) => jpeg(sharp(b).greyscale()) },
  { name: '(info) mirrored', measured: false, apply: (b) => jpeg(sharp(b).flop()) },
]

