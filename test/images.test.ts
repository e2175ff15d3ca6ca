import { createHash } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { writeImageCache } from '../src/images/_cache.js'
import { decodeImage } from '../src/images/_decode.js'
import {
  DEFAULT_IMAGE_DUP_DISTANCE, HardnegError, IMAGE_CACHE_FILE, IMAGE_HASH, formatImageHash, hashImages, imageDistance, inspectImage,
  isNearDuplicate, parseImageHash, type HashedImage, type ImageRef,
} from '../src/index.js'
import { tempDir } from './_helpers.js'
import { TRANSFORMATIONS } from './_image-copies.js'

// Count real decodes: images.ts loads this module lazily, and gets the spy.
vi.mock('../src/images/_decode.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../src/images/_decode.js')>()
  return { ...original, decodeImage: vi.fn(original.decodeImage) }
})
const decodes = (): number => vi.mocked(decodeImage).mock.calls.length
beforeEach(() => {
  vi.mocked(decodeImage).mockClear()
})

const FIXTURES = fileURLToPath(new URL('../fixtures/coco-mini/', import.meta.url))
const NAMES = (await readdir(path.join(FIXTURES, 'images'))).filter((f) => f.endsWith('.jpg')).sort()
const MEASURED = TRANSFORMATIONS.filter((t) => t.measured)

/** Expects `promise` to reject with a HardnegError carrying exactly this code, message and place. */
async function expectError(promise: Promise<unknown>, code: string, message: string, file?: string, row?: number): Promise<void> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(HardnegError)
  expect(err).toMatchObject({ code, message, file, row })
}

// Originals (the fixtures, as a dataset refers to them) and one copy per transformation, hashed once.
let copies: string
let originals: HashedImage[]
let planted: HashedImage[][] // [transformation][image]
beforeAll(async () => {
  copies = await mkdtemp(path.join(os.tmpdir(), 'hardneg-images-'))
  const refs: ImageRef[] = NAMES.map((name, i) => ({ path: `images/${name}`, file: 'pairs.parquet', row: i + 1 }))
  for (const [t, transformation] of MEASURED.entries()) {
    await mkdir(path.join(copies, String(t)))
    for (const name of NAMES) {
      const input = await readFile(path.join(FIXTURES, 'images', name))
      const { width, height } = await sharpSize(input)
      await writeFile(path.join(copies, String(t), name), await transformation.apply(input, width, height))
      refs.push({ path: path.join(copies, String(t), name) }) // absolute: resolves to itself whatever the root
    }
  }
  const { images } = await hashImages(refs, { root: FIXTURES })
  const all = images.map((image) => image as HashedImage)
  originals = all.slice(0, NAMES.length)
  planted = MEASURED.map((_, t) => all.slice(NAMES.length * (1 + t), NAMES.length * (2 + t)))
}, 180_000) // 880 copies made and 960 images hashed; slow on a shared 2-core machine
afterAll(async () => {
  await rm(copies, { recursive: true, force: true })
})

async function sharpSize(input: Buffer): Promise<{ width: number; height: number }> {
  const decoded = await decodeImage(input)
  return { width: decoded.width, height: decoded.height }
}

describe('hashImages on the fixture images', () => {
  it('decodes every image once, with its size, format, digest and hash', async () => {
    expect(originals).toHaveLength(80)
    const first = originals[0] as HashedImage
    const bytes = await readFile(path.join(FIXTURES, 'images', NAMES[0] as string))
    expect(first).toMatchObject({
      path: path.join(FIXTURES, 'images', NAMES[0] as string),
      bytes: bytes.length,
      width: 256,
      height: 169,
      format: 'jpeg',
      sha256: createHash('sha256').update(bytes).digest('hex'),
    })
    expect(first.hash).toHaveLength(IMAGE_HASH.bytes)
    expect(originals.every((o) => o.format === 'jpeg' && Math.max(o.width, o.height) === 256)).toBe(true)
  })

  it.each(MEASURED.map((t, i) => [t.name, i] as const))('every copy made by %s is a near-duplicate of its original, both ways', (_name, t) => {
    for (const [i, original] of originals.entries()) {
      const copy = planted[t]?.[i] as HashedImage
      expect(imageDistance(original.hash, copy.hash), NAMES[i]).toBeLessThanOrEqual(DEFAULT_IMAGE_DUP_DISTANCE)
      expect(imageDistance(copy.hash, original.hash)).toBe(imageDistance(original.hash, copy.hash))
      expect(isNearDuplicate(original.hash, copy.hash) && isNearDuplicate(copy.hash, original.hash)).toBe(true)
    }
  })

  it('never matches two distinct fixture images, nor a copy of one with another', () => {
    let closest = Infinity
    for (const [i, a] of originals.entries()) {
      for (const [j, b] of originals.entries()) {
        if (i === j) continue
        closest = Math.min(closest, imageDistance(a.hash, b.hash))
        for (const copies of planted) closest = Math.min(closest, imageDistance((copies[i] as HashedImage).hash, b.hash))
      }
    }
    // docs/images.md: distinct images measure >= 90 bits, the default is 58; below 80 the margin has shrunk.
    expect(closest).toBeGreaterThan(80)
    expect(originals.some((a, i) => originals.some((b, j) => i !== j && isNearDuplicate(a.hash, b.hash)))).toBe(false)
  })

  it('hashes the same content at two paths alike, and reads each distinct file once', async () => {
    const dir = await tempDir()
    await copyFile(path.join(FIXTURES, 'images', NAMES[3] as string), path.join(dir, 'copy.jpg'))
    const progress: [number, number][] = []
    const result = await hashImages(
      [{ path: 'copy.jpg' }, { path: path.join(FIXTURES, 'images', NAMES[3] as string) }, { path: './copy.jpg' }],
      { root: dir, concurrency: 1, onProgress: (done, total) => progress.push([done, total]) },
    )
    expect(result).toMatchObject({ distinct: 2, decoded: 2, cached: 0, bad: [], cache: 'none' })
    expect(decodes()).toBe(2)
    expect(progress).toEqual([[1, 2], [2, 2]])
    const [a, b, c] = result.images as HashedImage[]
    expect(a?.sha256).toBe(b?.sha256)
    expect(formatImageHash(a!.hash)).toBe(formatImageHash(b!.hash))
    expect(c).toBe(a)
    expect(parseImageHash(formatImageHash(a!.hash))).toEqual(a!.hash)
  })
})

describe('bad images', () => {
  async function badDataset(): Promise<string> {
    const dir = await tempDir()
    await mkdir(path.join(dir, 'images'))
    await copyFile(path.join(FIXTURES, 'images', NAMES[0] as string), path.join(dir, 'images', 'good.jpg'))
    await writeFile(path.join(dir, 'images', 'garbage.jpg'), 'this is not an image, just some garbage bytes\n'.repeat(20))
    const whole = await readFile(path.join(FIXTURES, 'images', NAMES[1] as string))
    await writeFile(path.join(dir, 'images', 'truncated.jpg'), whole.subarray(0, whole.length >> 1))
    await writeFile(path.join(dir, 'images', 'empty.jpg'), '')
    return dir
  }
  const MESSAGES = {
    missing: "pairs.parquet:12: image 'images/x.jpg' not found (ENOENT), expected a readable image file",
    garbage: "pairs.parquet:3: image 'images/garbage.jpg' cannot be decoded (Input buffer contains unsupported image format), expected JPEG, PNG, WebP, GIF, TIFF or AVIF",
    truncated: "pairs.parquet:4: image 'images/truncated.jpg' cannot be decoded (VipsJpeg: premature end of JPEG image), expected JPEG, PNG, WebP, GIF, TIFF or AVIF",
    empty: "pairs.parquet:5: image 'images/empty.jpg' cannot be decoded (Input Buffer is empty), expected JPEG, PNG, WebP, GIF, TIFF or AVIF",
    directory: "pairs.parquet:6: image 'images' is not a file (a directory), expected a readable image file",
    blank: "pairs.parquet:7: image '' has an empty path, expected a path to an image file",
  }

  it.each([
    ['missing', 'images/x.jpg', 12],
    ['garbage', 'images/garbage.jpg', 3],
    ['truncated', 'images/truncated.jpg', 4],
    ['empty', 'images/empty.jpg', 5],
    ['directory', 'images', 6],
    ['blank', '', 7],
  ] as const)('a %s image is E_BAD_IMAGE naming the row and path', async (kind, imagePath, row) => {
    const dir = await badDataset()
    await expectError(inspectImage(imagePath, { root: dir, file: 'pairs.parquet', row }), 'E_BAD_IMAGE', MESSAGES[kind], 'pairs.parquet', row)
    await expectError(hashImages([{ path: imagePath, file: 'pairs.parquet', row }], { root: dir }), 'E_BAD_IMAGE', MESSAGES[kind], 'pairs.parquet', row)
  })

  it('onBadImage error throws the first bad image in ref order, whatever finishes first', async () => {
    const dir = await badDataset()
    const refs: ImageRef[] = [
      { path: 'images/good.jpg', file: 'pairs.parquet', row: 1 },
      { path: 'images/truncated.jpg', file: 'pairs.parquet', row: 4 },
      { path: 'images/x.jpg', file: 'pairs.parquet', row: 12 },
      { path: 'images/garbage.jpg', file: 'pairs.parquet', row: 3 },
    ]
    for (const concurrency of [1, 2, 4]) {
      await expectError(hashImages(refs, { root: dir, concurrency }), 'E_BAD_IMAGE', MESSAGES.truncated, 'pairs.parquet', 4)
    }
  })

  it('onBadImage skip lists every bad ref, in ref order, and keeps the good ones', async () => {
    const dir = await badDataset()
    const refs: ImageRef[] = [
      { path: 'images/x.jpg', file: 'pairs.parquet', row: 12 },
      { path: 'images/good.jpg', file: 'pairs.parquet', row: 1 },
      { path: 'images/garbage.jpg', file: 'pairs.parquet', row: 3 },
      { path: 'images/good.jpg', file: 'pairs.parquet', row: 2 },
      { path: 'images/garbage.jpg', file: 'corpus.jsonl', row: 9 },
    ]
    const result = await hashImages(refs, { root: dir, onBadImage: 'skip' })
    expect(result.bad.map(({ error: _error, ...b }) => b)).toEqual([
      { index: 0, file: 'pairs.parquet', row: 12, path: 'images/x.jpg', reason: 'missing', message: MESSAGES.missing },
      { index: 2, file: 'pairs.parquet', row: 3, path: 'images/garbage.jpg', reason: 'undecodable', message: MESSAGES.garbage },
      { index: 4, file: 'corpus.jsonl', row: 9, path: 'images/garbage.jpg', reason: 'undecodable', message: MESSAGES.garbage.replace('pairs.parquet:3', 'corpus.jsonl:9') },
    ])
    expect(result.bad[0]?.error).toBeInstanceOf(HardnegError)
    expect(result.images.map((i) => i?.width)).toEqual([undefined, 256, undefined, 256, undefined])
    expect(result).toMatchObject({ distinct: 3, decoded: 1, cached: 0 })
  })

  it('gives each bad image its own message while others decode alongside', async () => {
    // libvips shares one error buffer per process; concurrent failures must not swap or lose messages.
    const dir = await badDataset()
    const refs: ImageRef[] = []
    for (let i = 0; i < 8; i++) {
      await copyFile(path.join(dir, 'images', 'truncated.jpg'), path.join(dir, 'images', `t${i}.jpg`))
      await copyFile(path.join(dir, 'images', 'garbage.jpg'), path.join(dir, 'images', `g${i}.jpg`))
      await copyFile(path.join(FIXTURES, 'images', NAMES[i] as string), path.join(dir, 'images', `ok${i}.jpg`))
      refs.push({ path: `images/t${i}.jpg` }, { path: `images/ok${i}.jpg` }, { path: `images/g${i}.jpg` })
    }
    const { bad, decoded } = await hashImages(refs, { root: dir, onBadImage: 'skip', concurrency: 4 })
    expect(decoded).toBe(8)
    expect(bad.map((b) => b.message)).toEqual(Array.from({ length: 8 }, (_, i) => [
      MESSAGES.truncated.replace('pairs.parquet:4: ', '').replace('truncated', `t${i}`),
      MESSAGES.garbage.replace('pairs.parquet:3: ', '').replace('garbage', `g${i}`),
    ]).flat())
  })

  it.each([
    [{ onBadImage: 'drop' }, "--on-bad-image 'drop', expected error or skip"],
    [{ concurrency: 0 }, 'image concurrency 0, expected an integer >= 1'],
  ] as const)('rejects the options %j', async (options, message) => {
    await expectError(hashImages([], options as never), 'E_BAD_OPTION', message)
  })

  it('parseImageHash rejects anything but a hash', () => {
    expect(() => parseImageHash('xyz')).toThrow("image hash 'xyz', expected 320 lower-case hex digits")
  })
})

describe('the hash cache', () => {
  async function cachedDataset(): Promise<{ dir: string; cache: string; refs: ImageRef[] }> {
    const dir = await tempDir()
    await mkdir(path.join(dir, 'images'))
    for (const name of NAMES.slice(0, 6)) await copyFile(path.join(FIXTURES, 'images', name), path.join(dir, 'images', name))
    const refs = NAMES.slice(0, 6).map((name, i) => ({ path: `images/${name}`, file: 'pairs.parquet', row: i + 1 }))
    return { dir, cache: path.join(dir, 'out', IMAGE_CACHE_FILE), refs }
  }

  it('a second run decodes nothing and gives the same images', async () => {
    const { dir, cache, refs } = await cachedDataset()
    const cold = await hashImages(refs, { root: dir, cache })
    expect(cold).toMatchObject({ decoded: 6, cached: 0, cache: 'absent' })
    expect(decodes()).toBe(6)
    expect(await readdir(path.dirname(cache))).toEqual([IMAGE_CACHE_FILE]) // no temporary file left
    const warm = await hashImages(refs, { root: dir, cache })
    expect(warm).toMatchObject({ decoded: 0, cached: 6, cache: 'loaded' })
    expect(decodes()).toBe(6)
    expect(warm.images).toEqual(cold.images)
  })

  it('is shared by concurrent writers (the workers of a distributed run): a writer keeps what others wrote since it read, and no writer leaves a broken file', async () => {
    const { dir, cache, refs } = await cachedDataset()
    const all = await hashImages(refs, { root: dir })
    const entries = all.images.map((image) => image as HashedImage)
    // Worker B read the cache before worker A wrote its three entries; B's write keeps them.
    await writeImageCache(cache, IMAGE_HASH.id, IMAGE_HASH.bytes, entries.slice(0, 3))
    await writeImageCache(cache, IMAGE_HASH.id, IMAGE_HASH.bytes, entries.slice(3))
    expect(await hashImages(refs, { root: dir, cache })).toMatchObject({ decoded: 0, cached: 6, cache: 'loaded' })
    // Eight at once: whoever wins a race, the file is one writer's whole file (a lost entry is decoded again, once).
    await Promise.all(Array.from({ length: 8 }, (_, i) => hashImages(refs.slice(i % 6, (i % 6) + 1), { root: dir, cache: path.join(dir, 'race', IMAGE_CACHE_FILE) })))
    const after = await hashImages(refs, { root: dir, cache: path.join(dir, 'race', IMAGE_CACHE_FILE) })
    expect(after.cache).toBe('loaded')
    expect(await readdir(path.join(dir, 'race'))).toEqual([IMAGE_CACHE_FILE])
  })

  it('re-decodes a file whose mtime or size changed, and only that one', async () => {
    const { dir, cache, refs } = await cachedDataset()
    const before = await hashImages(refs, { root: dir, cache })
    const touched = path.join(dir, 'images', NAMES[1] as string)
    const { mtime } = await stat(touched)
    await utimes(touched, mtime, new Date(mtime.getTime() + 5000))
    // Same path, other content and size: NAMES[2]'s bytes.
    await copyFile(path.join(FIXTURES, 'images', NAMES[4] as string), path.join(dir, 'images', NAMES[2] as string))
    vi.mocked(decodeImage).mockClear()
    const after = await hashImages(refs, { root: dir, cache })
    expect(after).toMatchObject({ decoded: 2, cached: 4 })
    expect(decodes()).toBe(2)
    expect(after.images[1]?.hash).toEqual(before.images[1]?.hash)
    expect(after.images[1]?.mtimeMs).not.toBe(before.images[1]?.mtimeMs)
    expect(after.images[2]?.sha256).toBe(before.images[4]?.sha256)
    expect(imageDistance(after.images[2]!.hash, before.images[4]!.hash)).toBe(0)
    vi.mocked(decodeImage).mockClear()
    expect(await hashImages(refs, { root: dir, cache })).toMatchObject({ decoded: 0, cached: 6 })
  })

  it('a cache of another hash version is ignored and replaced', async () => {
    const { dir, cache, refs } = await cachedDataset()
    const first = await hashImages(refs.slice(0, 2), { root: dir, cache })
    await writeImageCache(cache, 'another-hash-v0', IMAGE_HASH.bytes, first.images as HashedImage[])
    expect(await hashImages(refs.slice(0, 2), { root: dir, cache })).toMatchObject({ decoded: 2, cached: 0, cache: 'stale' })
    expect(await hashImages(refs.slice(0, 2), { root: dir, cache })).toMatchObject({ decoded: 0, cached: 2, cache: 'loaded' })
  })

  it('a cache that cannot be written is E_OUTPUT naming it', async () => {
    const { dir, refs } = await cachedDataset()
    const cache = path.join(dir, 'images', NAMES[0] as string, 'out', IMAGE_CACHE_FILE) // under a file
    await expectError(hashImages(refs.slice(0, 1), { root: dir, cache }), 'E_OUTPUT', `${cache}: cannot write the image cache (ENOTDIR), expected a writable path`, cache)
  })

  it('an unreadable cache file is rebuilt, and a cache keeps what an interrupted run decoded', async () => {
    const { dir, cache, refs } = await cachedDataset()
    await mkdir(path.dirname(cache))
    await writeFile(cache, 'not a cache')
    expect(await hashImages(refs.slice(0, 2), { root: dir, cache })).toMatchObject({ decoded: 2, cache: 'unreadable' })
    const failing = [...refs.slice(2, 4), { path: 'images/x.jpg', file: 'pairs.parquet', row: 9 }]
    await expectError(hashImages(failing, { root: dir, cache }), 'E_BAD_IMAGE', "pairs.parquet:9: image 'images/x.jpg' not found (ENOENT), expected a readable image file", 'pairs.parquet', 9)
    vi.mocked(decodeImage).mockClear()
    expect(await hashImages(refs, { root: dir, cache })).toMatchObject({ decoded: 2, cached: 4, cache: 'loaded' })
  })
})
