/**
 * `embed` on pairs with images (MMEB-train's layout, coco-mini): vLLM's chat-style
 * embedding request carries each image as a data: URL of the file's bytes plus the side's
 * text; the test server embeds an image through its documented proxy text. Bad images fail
 * as in mine, or are skipped so that mine skips the same rows.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collectPairs, embedPairs, isHardnegError, mineNegatives, type EmbedManifest, type PairRecord } from '../src/index.js'
import { tempDir } from './_helpers.js'
import { halfRows, modelAndServer, ROOT, toHalfBits } from './_embed-fixture.js'
import { imageProxyText, type Embedder, type ModelServer } from './_model-server.js'

const COCO = path.join(ROOT, 'fixtures', 'coco-mini')
const PARQUET = path.join(COCO, 'mmeb-style.parquet')
let pairs: PairRecord[]
let server: ModelServer
let use: Embedder
let reference: Map<string, Float32Array>

beforeAll(async () => {
  pairs = await collectPairs({ file: PARQUET, preset: 'mmeb' })
  const texts = pairs.flatMap((p) => [p.queryImage === '' ? p.query : '', p.positiveImage === '' ? p.positive : '']).filter((t) => t !== '')
  ;({ server, use, reference } = await modelAndServer(texts))
})
afterAll(async () => {
  await server?.close()
})

/** What the server embeds for a side: its text, or the proxy of its image and text. */
async function expectedVector(text: string, image: string): Promise<Float32Array> {
  // Text sides were computed in batches above (USE moves by ~2e-7 with the batch); an image
  // side's proxy text is computed alone, as the server computes it.
  if (image === '') return reference.get(text) as Float32Array
  return (await use([imageProxyText(await readFile(path.join(COCO, image)), text)]))[0] as Float32Array
}

describe('embed with images', () => {
  it('sends each image side as a chat-style request (data: URL of the bytes, plus the text); the vectors are the server\'s', async () => {
    const out = path.join(await tempDir(), 'emb')
    const since = server.requests.length
    const r = await embedPairs({ pairs: PARQUET, preset: 'mmeb', server: `${server.url}/v1`, api: 'openai', out })
    const chat = server.requests.slice(since).filter((q) => (q.body as { messages?: unknown } | undefined)?.messages !== undefined)
    expect(chat.length).toBe(160) // 80 positive images alone (t2i), 80 query images with their instruction (i2t)
    const i2t = pairs.find((p) => p.queryImage !== '') as PairRecord
    const sent = chat.find((q) => JSON.stringify(q.body).includes('"text"')) as { body: { model: string; encoding_format: string; messages: { role: string; content: { type: string; text?: string; image_url?: { url: string } }[] }[] } }
    expect(sent.body.model).toBe('use-lite-512')
    expect(sent.body.encoding_format).toBe('base64')
    const [message] = sent.body.messages
    expect(message?.role).toBe('user')
    expect(message?.content.map((c) => c.type)).toEqual(['image_url', 'text'])
    expect(message?.content[1]?.text).toBe(i2t.query)
    const url = message?.content[0]?.image_url?.url as string
    expect(url.startsWith('data:image/jpeg;base64,')).toBe(true)
    const bytes = Buffer.from(url.slice('data:image/jpeg;base64,'.length), 'base64')
    const names = [...new Set(pairs.map((p) => p.queryImage).filter((x) => x !== ''))]
    const matches = await Promise.all(names.map(async (n) => (await readFile(path.join(COCO, n))).equals(bytes)))
    expect(matches.filter(Boolean).length).toBe(1)
    const imageOnly = chat.find((q) => !JSON.stringify(q.body).includes('"text"')) as { body: { messages: { content: unknown[] }[] } }
    expect(imageOnly.body.messages[0]?.content.length).toBe(1)

    const q = await halfRows(r.files.queries as string)
    const p = await halfRows(r.files.positives as string)
    const rows = [0, 1, 80, 81, 159]
    for (const i of rows) {
      const pair = pairs[i] as PairRecord
      expect(q.bits.subarray(i * 512, (i + 1) * 512)).toEqual(toHalfBits([await expectedVector(pair.query, pair.queryImage)]))
      expect(p.bits.subarray(i * 512, (i + 1) * 512)).toEqual(toHalfBits([await expectedVector(pair.positive, pair.positiveImage)]))
    }
    expect(r.manifest.counts).toMatchObject({ pairs: 160, texts: 320, distinct: 320 }) // the 80 i2t queries share one instruction, each over its own picture

    // mine takes the files as they are.
    const mined = await mineNegatives({ pairs: PARQUET, preset: 'mmeb', queryEmbeddings: r.files.queries as string, positiveEmbeddings: r.files.positives as string, out: path.join(path.dirname(out), 'shards'), k: 4 })
    expect(mined.summary.rowsOut).toBe(160)
  })

  it('a bad image fails as in mine; with --on-bad-image skip the row is left out, listed, zero, and mine skips the same row', async () => {
    const dir = await tempDir()
    await mkdir(path.join(dir, 'images'))
    const rows = [...pairs.slice(0, 6), ...pairs.slice(80, 86)]
    for (const p of rows) for (const img of [p.queryImage, p.positiveImage]) if (img !== '') await copyFile(path.join(COCO, img), path.join(dir, img))
    await writeFile(path.join(dir, 'images', 'broken.jpg'), 'not a jpeg')
    const lines = rows.map((p, i) => ({
      subset: p.group, qry: p.query, qry_image_path: p.queryImage,
      pos_text: p.positive, pos_image_path: i === 2 ? 'images/missing.jpg' : i === 9 ? 'images/broken.jpg' : p.positiveImage,
    }))
    const file = path.join(dir, 'pairs.jsonl')
    await writeFile(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
    const base = { pairs: file, preset: 'mmeb' as const, server: `${server.url}/v1`, api: 'openai' as const }

    let message = ''
    try {
      await embedPairs({ ...base, out: path.join(dir, 'e1') })
    } catch (err) {
      if (!isHardnegError(err)) throw err
      message = `${err.code}: ${err.message}`
    }
    expect(message).toBe(`E_BAD_IMAGE: ${file}:3: positive image 'images/missing.jpg' not found (ENOENT), expected a readable image file`)

    const out = path.join(dir, 'e2')
    const r = await embedPairs({ ...base, out, onBadImage: 'skip' })
    const manifest = JSON.parse(await readFile(path.join(out, 'embed-manifest.json'), 'utf8')) as EmbedManifest
    expect(manifest.skipped).toEqual([
      { row: 2, file, fileRow: 3, side: 'positive', path: 'images/missing.jpg', reason: 'missing' },
      { row: 9, file, fileRow: 10, side: 'positive', path: 'images/broken.jpg', reason: 'undecodable' },
    ])
    expect(r.summary.skippedRows).toBe(2)
    const q = await halfRows(r.files.queries as string)
    expect(q.rows).toBe(12)
    for (const row of [2, 9]) expect(q.bits.subarray(row * 512, (row + 1) * 512).every((b) => b === 0)).toBe(true)
    expect(q.bits.subarray(3 * 512, 4 * 512).some((b) => b !== 0)).toBe(true)

    // mine with the same policy drops the same two rows and never reads their zero vectors.
    const mineMessage = await mineNegatives({ pairs: file, preset: 'mmeb', queryEmbeddings: r.files.queries as string, positiveEmbeddings: r.files.positives as string, out: path.join(dir, 's1'), k: 2 })
      .then(() => '', (err: unknown) => (isHardnegError(err) ? `${err.code}: ${err.message}` : String(err)))
    expect(mineMessage).toBe(message)
    const mined = await mineNegatives({ pairs: file, preset: 'mmeb', queryEmbeddings: r.files.queries as string, positiveEmbeddings: r.files.positives as string, out: path.join(dir, 's2'), k: 2, onBadImage: 'skip' })
    expect([mined.summary.rowsIn, mined.summary.rowsOut, mined.summary.badImageRows]).toEqual([12, 10, 2])
  })

  it('TEI embeds text only: pairs with images ask for --api openai', async () => {
    let message = ''
    try {
      await embedPairs({ pairs: PARQUET, preset: 'mmeb', server: server.url, api: 'tei', out: path.join(await tempDir(), 'e') })
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toBe("api 'tei': the pairs have image columns and TEI embeds text only, expected --api openai (vLLM's chat-style embedding request)")
  })
})
