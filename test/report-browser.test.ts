/**
 * The report as a person sees it: rendered in headless Chromium (Debian's `chromium`
 * package, which .ci/run installs; driven by playwright-core, which downloads no browser).
 * Screenshots go to test-artifacts/. Without Chromium the tests are skipped and say why.
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runMineNegatives, type CliIO } from '../src/cli/main.js'
import { buildReportData, writeReport } from '../src/index.js'
import { tempDir } from './_helpers.js'
import { imageRun } from './_report-fixture.js'

const CHROMIUM = process.env.HARDNEG_CHROMIUM ?? '/usr/bin/chromium'
const hasChromium = existsSync(CHROMIUM)
const ARTIFACTS = path.resolve(import.meta.dirname, '..', 'test-artifacts')
const skipped = hasChromium ? '' : ` (SKIPPED: no Chromium at ${CHROMIUM}; install Debian's chromium package as .ci/run does, or set HARDNEG_CHROMIUM)`
if (!hasChromium) console.warn(`report-browser tests skipped: no Chromium at ${CHROMIUM}`)

const quietIO: CliIO = { stdout: () => undefined, stderr: () => undefined, stderrIsTTY: false }

/** Opens a page and records everything that would mean it is not self-contained or broken. */
async function open(browser: Browser, file: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
  const problems: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`)
  })
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`))
  page.on('request', (r) => {
    if (!/^(file|data):/.test(r.url())) problems.push(`external request: ${r.url()}`)
  })
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' })
  return { page, problems }
}

describe('the report in headless Chromium', () => {
  let browser: Browser | undefined
  beforeAll(async () => {
    if (!hasChromium) return
    await mkdir(ARTIFACTS, { recursive: true })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
    })
  })
  afterAll(async () => {
    await browser?.close()
  })

  it.skipIf(!hasChromium)(`renders the report of the fixture run with no console error${skipped}`, async () => {
    const dir = await tempDir()
    const out = path.join(dir, 'snli')
    // The embedded SNLI fixture run, as `mine-negatives --keep-filtered 3 --report` writes it.
    expect(await runMineNegatives(['--out', out, '--quiet', '--keep-filtered', '3'], quietIO)).toBe(0)
    const { out: file, data } = await writeReport({ shards: out, samples: 24, seed: 5 })
    const { page, problems } = await open(browser!, file)
    try {
      expect(await page.title()).toBe(`hardneg report: ${out}`)
      // One group: the overall chart only, with its four series drawn.
      await expect.poll(() => page.locator('svg.histogram').count()).toBe(1)
      expect(await page.locator('svg.histogram g.series').count()).toBe(4)
      const totals = await page.locator('svg.histogram g.series').evaluateAll((gs) => gs.map((g) => [g.getAttribute('data-series'), Number(g.getAttribute('data-total'))]))
      expect(totals).toEqual([['positive', 2921], ['ceiling', 2921], ['negative', data.overall.negative.total], ['filtered', data.overall.filtered!.total]])
      const box = await page.locator('svg.histogram').boundingBox()
      expect(box!.width).toBeGreaterThan(400)
      expect(await page.locator('article.sample').count()).toBe(24)
      const filtered = data.samples.reduce((n, s) => n + s.filtered!.length, 0)
      expect(filtered).toBeGreaterThan(0)
      expect(await page.locator('tr.filtered-row').count()).toBe(filtered)
      await expect.poll(() => page.locator('tr.filtered-row .rule').first().textContent()).toBe('margin')
      expect(await page.locator('table.groups tr').count()).toBe(2)
      await page.locator('svg.histogram').first().screenshot({ path: path.join(ARTIFACTS, 'report-histogram.png') })
      await page.screenshot({ path: path.join(ARTIFACTS, 'report.png'), fullPage: true })
      expect(problems).toEqual([])
    } finally {
      await page.close()
    }
  })

  it.skipIf(!hasChromium)(`shows thumbnails, placeholders and markup as text in an image run${skipped}`, async () => {
    const dir = await tempDir()
    const run = await imageRun(dir, { rows: 30, queryText: (i) => (i === 2 ? '<script>window.__hardnegInjected = 1</script> <b>bold?</b>' : `photo ${i}`) })
    const { out: file } = await writeReport({ shards: run, samples: 30 })
    const data = await buildReportData({ shards: run, samples: 30, thumbnails: false })
    const { page, problems } = await open(browser!, file)
    try {
      // Two groups: the overall chart and one per group.
      expect(await page.locator('svg.histogram').count()).toBe(3)
      expect(await page.locator('article.sample').count()).toBe(30)
      expect(await page.locator('tr.filtered-row').count()).toBe(data.samples.reduce((n, s) => n + s.filtered!.length, 0))
      expect(await page.evaluate(() => (window as unknown as Record<string, unknown>).__hardnegInjected)).toBeUndefined()
      expect(await page.locator('#row-2 .side .text').first().textContent()).toBe('<script>window.__hardnegInjected = 1</script> <b>bold?</b>')
      expect(await page.locator('#row-2 b', { hasText: 'bold?' }).count()).toBe(0)
      const backgrounds = await page.locator('i.th:not(.missing)').evaluateAll((els) => els.map((e) => getComputedStyle(e).backgroundImage))
      expect(backgrounds.length).toBeGreaterThan(150)
      for (const b of backgrounds) expect(b.startsWith('url("data:image/jpeg;base64,')).toBe(true)
      // Thumbnails decode: the browser paints them (a drawn data: URI loads as an image).
      const decoded = await page.evaluate(async () => {
        const style = getComputedStyle(document.querySelector('i.th:not(.missing)')!).backgroundImage
        const img = new Image()
        img.src = style.slice(5, -2)
        await img.decode()
        return [img.naturalWidth, img.naturalHeight]
      })
      expect(Math.max(...decoded)).toBeGreaterThan(40)
      expect(await page.locator('#row-0 i.th.missing').first().textContent()).toBe('missing')
      expect(await page.locator('#row-1 i.th.missing').first().textContent()).toBe('undecodable')
      expect(await page.locator('.rule', { hasText: 'image_duplicate' }).count()).toBeGreaterThan(0)
      await page.screenshot({ path: path.join(ARTIFACTS, 'report-images.png') })
      await page.locator('#row-2').screenshot({ path: path.join(ARTIFACTS, 'report-image-sample.png') })
      expect(problems).toEqual([])
    } finally {
      await page.close()
    }
  })
})
