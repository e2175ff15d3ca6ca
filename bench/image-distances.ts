/**
 * Which perceptual hash, and which default `imageDupDistance`: measured on the fixture images.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/image-distances.js [--images DIR]
 *
 * For every image in fixtures/coco-mini/images (default) it makes near-duplicates in
 * memory with sharp, the copies web-scale sets are full of, and compares hashes:
 * - near-duplicate distances: each original against each of its copies, per transformation;
 * - distinct distances: every pair of distinct originals, and every copy of one image
 *   against every other original (a copy must not match another image either).
 * A hash is usable when the largest near-duplicate distance is below the smallest distinct
 * distance; the default threshold then sits in that gap. Transformations marked (info)
 * are harder than the issue's list and do not count towards the choice.
 *
 * Every hash starts from the same raster `hashImages` uses (src/images/_decode.ts: sharp,
 * EXIF orientation, grayscale, shrunk to fit 256 x 256), then src/images/_phash.ts (box filter
 * of each crop, ignoring aspect, then the hash); the last kind is `hashImages`'s own
 * (IMAGE_HASH) and its distance is `imageDistance`.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { decodeImage, type GrayRaster } from '../src/images/_decode.js'
import { cropResample, cropSetDistance, cropSetHash, differenceHash, integralImage } from '../src/images/_phash.js'
import { IMAGE_HASH, imageDistance } from '../src/images/images.js'
import { TRANSFORMATIONS } from '../test/_image-copies.js'

interface HashKind {
  name: string
  bits: number // bits per hash (a crop set holds one per crop)
  hash: (raster: GrayRaster) => Uint8Array
  distance: (a: Uint8Array, b: Uint8Array) => number
}

const WHOLE = [0]
const FIVE = [0, 0.025, 0.05, 0.075, 0.1]
const phash = (crops: number[], n: number, b: number): Pick<HashKind, 'bits' | 'hash' | 'distance'> => ({
  bits: b * b,
  hash: (r) => cropSetHash(r.data, r.width, r.height, crops, n, b),
  distance: (x, y) => cropSetDistance(x, y, (b * b) / 8),
})

const HASHES: HashKind[] = [
  { name: 'dHash 64 (9x8), whole image', bits: 64, hash: (r) => differenceHash(cropResample(integralImage(r.data, r.width, r.height), r.width, r.height, 0, 9, 8), 8, 8), distance: (x, y) => cropSetDistance(x, y, 8) },
  { name: 'pHash 64 (DCT 32, 8x8), whole image', ...phash(WHOLE, 32, 8) },
  { name: 'pHash 256 (DCT 64, 16x16), whole image', ...phash(WHOLE, 64, 16) },
  { name: 'pHash 64 (DCT 32, 8x8), 5 crops', ...phash(FIVE, 32, 8) },
  { name: 'pHash 144 (DCT 32, 12x12), 5 crops', ...phash(FIVE, 32, 12) },
  { name: 'pHash 256 (DCT 32, 16x16), 3 crops (0, 5, 10 %)', ...phash([0, 0.05, 0.1], 32, 16) },
  { name: 'pHash 256 (DCT 64, 16x16), 5 crops', ...phash(FIVE, 64, 16) },
  {
    name: `chosen: IMAGE_HASH (pHash 256, DCT ${IMAGE_HASH.dct}, crops ${IMAGE_HASH.crops.map((c) => c * 100).join(', ')} %)`,
    bits: IMAGE_HASH.block * IMAGE_HASH.block,
    hash: (r) => cropSetHash(r.data, r.width, r.height, IMAGE_HASH.crops, IMAGE_HASH.dct, IMAGE_HASH.block),
    distance: imageDistance,
  },
]

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const at = args.indexOf('--images')
  const dir = resolve((at >= 0 ? args[at + 1] : undefined) ?? 'fixtures/coco-mini/images')
  const files = (await readdir(dir)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort()

  // hashes[kind][image][0 = original, 1 + t = transformation t]
  const hashes: Uint8Array[][][] = HASHES.map(() => [])
  for (const [i, file] of files.entries()) {
    const original = await readFile(join(dir, file))
    const { width, height } = await decodeImage(original)
    const versions = [original, ...(await Promise.all(TRANSFORMATIONS.map((t) => t.apply(original, width, height))))]
    const rasters = await Promise.all(versions.map(async (v) => (await decodeImage(v, { maxSide: IMAGE_HASH.raster })).gray!))
    for (const [k, kind] of HASHES.entries()) hashes[k]![i] = rasters.map(kind.hash)
  }

  const summary: string[] = []
  for (const [k, kind] of HASHES.entries()) {
    const h = hashes[k]!
    const d = kind.distance
    console.log(`\n### ${kind.name}: ${kind.bits} bits per hash, ${files.length} images\n`)
    console.log('| transformation | near-duplicate distance: max | mean | copy vs the other originals: min |')
    console.log('|---|---|---|---|')
    let nearMax = 0
    let crossMin = Infinity
    let infoMax = 0
    for (const [t, tr] of TRANSFORMATIONS.entries()) {
      let max = 0
      let sum = 0
      let cross = Infinity
      for (let i = 0; i < files.length; i++) {
        const near = Math.max(d(h[i]![0]!, h[i]![1 + t]!), d(h[i]![1 + t]!, h[i]![0]!))
        max = Math.max(max, near)
        sum += near
        for (let j = 0; j < files.length; j++) if (j !== i) cross = Math.min(cross, d(h[i]![1 + t]!, h[j]![0]!), d(h[j]![0]!, h[i]![1 + t]!))
      }
      if (tr.measured) {
        nearMax = Math.max(nearMax, max)
        crossMin = Math.min(crossMin, cross)
      } else if (tr.name.includes('crop') && !tr.name.includes('left') && Number(/([\d.]+) %/.exec(tr.name)?.[1]) <= 10) {
        infoMax = Math.max(infoMax, max)
      }
      console.log(`| ${tr.name} | ${max} | ${(sum / files.length).toFixed(1)} | ${cross} |`)
    }
    const distinct: number[] = []
    let closest = ''
    let least = Infinity
    for (let i = 0; i < files.length; i++) {
      for (let j = i + 1; j < files.length; j++) {
        const dist = d(h[i]![0]!, h[j]![0]!)
        if (dist < least) [least, closest] = [dist, `${files[i]} / ${files[j]}`]
        distinct.push(dist)
      }
    }
    distinct.sort((a, b) => a - b)
    const pct = (p: number): number => distinct[Math.floor((p / 100) * (distinct.length - 1))]!
    console.log(`\ndistinct pairs (${distinct.length}): min ${least} (${closest}), 1st percentile ${pct(1)}, median ${pct(50)}`)
    const floor = Math.min(least, crossMin)
    const ok = nearMax < floor
    const mid = Math.round((nearMax + floor) / 2)
    console.log(`near-duplicates max ${nearMax} (crops between levels up to 10 %: ${infoMax}); distinct min ${least}, copies vs other originals min ${crossMin}: ${ok ? `thresholds ${nearMax}..${floor - 1} separate them, midpoint ${mid}` : 'no threshold separates them'}`)
    summary.push(`| ${kind.name} | ${nearMax} | ${infoMax} | ${least} | ${crossMin} | ${ok ? `${nearMax}..${floor - 1}` : 'none'} |`)
  }
  console.log('\n### Summary\n')
  console.log('| hash | near-duplicates: max | (info) crops between levels, up to 10 %: max | distinct originals: min | copies vs other originals: min | thresholds that separate |')
  console.log('|---|---|---|---|---|---|')
  for (const line of summary) console.log(line)
}

await main()
