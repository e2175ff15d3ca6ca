/**
 * Image hashing throughput on real JPEGs, with the cache cold and warm.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/images.js [--copies 20] [--concurrency 1,4]
 *
 * Copies the 80 fixture JPEGs (fixtures/coco-mini/images, <= 256 px) `--copies` times into
 * a temporary directory (distinct files, so nothing is shared between them), then times
 * `hashImages` over all of them:
 * - cold, no cache, once per `--concurrency` value;
 * - cold, writing a cache file (the first run of a mining job);
 * - warm, the same refs again with that cache (a re-run: stat per file, no decode).
 * Also times the hash math alone (crop resampling and DCTs on an already decoded raster),
 * to show how much of a decode it adds. Prints one markdown table, with the process's CPU
 * time per image (user + system, every thread) beside the wall time: on a shared machine
 * the wall time depends on the other load, the CPU time much less. The files were just
 * written, so reads come from the page cache: disk speed is not measured.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { decodeImage } from '../src/images/_decode.js'
import { cropSetHash } from '../src/images/_phash.js'
import { IMAGE_CACHE_FILE, IMAGE_HASH, hashImages, type HashImagesOptions, type ImageRef } from '../src/images/images.js'

function flag(name: string, fallback: string): string {
  const args = process.argv.slice(2)
  const at = args.indexOf(name)
  return (at >= 0 ? args[at + 1] : undefined) ?? fallback
}

async function main(): Promise<void> {
  const copies = Number(flag('--copies', '20'))
  const levels = flag('--concurrency', '1,4').split(',').map(Number)
  const source = resolve('fixtures/coco-mini/images')
  const names = (await readdir(source)).filter((f) => f.endsWith('.jpg')).sort()
  const dir = await mkdtemp(join(tmpdir(), 'hardneg-bench-images-'))
  try {
    const refs: ImageRef[] = []
    let bytes = 0
    for (let c = 0; c < copies; c++) {
      await mkdir(join(dir, String(c)))
      for (const name of names) {
        await copyFile(join(source, name), join(dir, String(c), name))
        refs.push({ path: `${c}/${name}` })
        if (c === 0) bytes += (await stat(join(source, name))).size
      }
    }
    console.log(`${refs.length} JPEGs (${names.length} fixtures x ${copies}), mean ${(bytes / names.length / 1024).toFixed(1)} KiB; ${cpus().length} cores, load average ${loadavg()[0]?.toFixed(2)}, Node ${process.version}\n`)

    const rows: string[] = []
    const run = async (label: string, options: HashImagesOptions): Promise<void> => {
      const start = performance.now()
      const cpu = process.cpuUsage()
      const result = await hashImages(refs, { root: dir, ...options })
      const seconds = (performance.now() - start) / 1000
      const { user, system } = process.cpuUsage(cpu)
      const cpuMs = (user + system) / 1000 / refs.length
      rows.push(`| ${label} | ${options.concurrency ?? 4} | ${result.decoded} | ${result.cached} | ${seconds.toFixed(2)} | ${Math.round(refs.length / seconds)} | ${cpuMs.toFixed(2)} | ${Math.round((cpus().length * 1000) / cpuMs)} |`)
    }
    for (const concurrency of levels) await run('cold, no cache', { concurrency })
    const cache = join(dir, 'out', IMAGE_CACHE_FILE)
    await run('cold, writing the cache', { cache })
    await run('warm: the cache from the run above', { cache })
    const cacheBytes = (await stat(cache)).size

    // The hash math alone, on rasters decoded beforehand.
    const rasters = await Promise.all(names.map(async (n) => (await decodeImage(await readFile(join(source, n)), { maxSide: IMAGE_HASH.raster })).gray!))
    const reps = 5
    const start = performance.now()
    for (let r = 0; r < reps; r++) for (const g of rasters) cropSetHash(g.data, g.width, g.height, IMAGE_HASH.crops, IMAGE_HASH.dct, IMAGE_HASH.block)
    const mathMs = (performance.now() - start) / (reps * rasters.length)

    console.log('| run | concurrency | decoded | from cache | wall s | images/s | CPU ms per image (all threads) | images/s if every core were free |')
    console.log('|---|---|---|---|---|---|---|---|')
    for (const row of rows) console.log(row)
    console.log(`\ncache file: ${(cacheBytes / 1024).toFixed(0)} KiB for ${refs.length} images (${Math.round(cacheBytes / refs.length)} bytes each)`)
    console.log(`hash math alone (${IMAGE_HASH.crops.length} crops: box filter to ${IMAGE_HASH.dct} x ${IMAGE_HASH.dct}, DCT, median): ${mathMs.toFixed(2)} ms per image, one thread`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
