/**
 * safetensors headers, as `safetensors.torch.save_file` and `safetensors.numpy.save_file`
 * write them: an 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the raw
 * little-endian, C-order tensor bytes, offsets counted from byte 8 + N. Only the header is
 * read here; `embeddings.ts` reads the chosen tensor's rows at the offset returned, as it
 * does for `.npy`. Private to `src/embeddings/`.
 */

import { HardnegError } from '../errors.js'
import type { EmbeddingDtype } from './_vectors.js'

/** Where the chosen 2-D tensor lies in the file. */
export interface SafetensorsLayout {
  file: string // path as the user gave it
  tensor: string // name of the tensor read
  dtype: EmbeddingDtype // element type on disk
  rows: number // shape[0]
  dim: number // shape[1]
  dataOffset: number // byte offset of row 0 in the file
  byteLength: number // rows * dim * element size
}

/** Fills `target` with the file's bytes from `position` on; throws if the file ends first. */
export type ReadAt = (target: Uint8Array, position: number) => Promise<void>

const DTYPES: ReadonlyMap<string, EmbeddingDtype> = new Map([['F32', 'float32'], ['F16', 'float16'], ['BF16', 'bfloat16']])
const ITEM_BYTES: Readonly<Record<EmbeddingDtype, number>> = { float32: 4, float16: 2, bfloat16: 2 }
/** The header size the safetensors library itself refuses to go beyond. */
const MAX_HEADER_BYTES = 100_000_000
const METADATA = '__metadata__'

interface Entry {
  dtype: string
  shape: number[]
  data_offsets: [number, number]
}

/**
 * Reads the header of a `.safetensors` file of `size` bytes and picks the tensor to load:
 * `key` when given, else the file's only 2-D tensor. The tensor must be F32, F16 or BF16,
 * 2-D, with `data_offsets` spanning exactly its bytes, and the file long enough to hold them.
 *
 * Throws `E_BAD_FILE` for a truncated file or a header that is not a JSON object,
 * `E_MISSING_COLUMN` when `key` names no tensor, `E_BAD_OPTION` when several 2-D tensors
 * leave the choice open, and `E_EMBEDDING_HEADER` for an unsupported or inconsistent tensor.
 */
export async function readSafetensorsLayout(read: ReadAt, size: number, file: string, key: string | undefined): Promise<SafetensorsLayout> {
  const fail = (code: 'E_BAD_FILE' | 'E_EMBEDDING_HEADER' | 'E_MISSING_COLUMN' | 'E_BAD_OPTION', detail: string): never => {
    throw new HardnegError(code, detail, { file })
  }
  const truncated = (need: number, what: string): never =>
    fail('E_BAD_FILE', `truncated .safetensors file: ${size} bytes, expected ${need} (${what})`)
  if (size < 8) truncated(8, 'the 8-byte header length')
  const lengthBytes = new Uint8Array(8)
  await read(lengthBytes, 0)
  const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true)
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail('E_BAD_FILE', `.safetensors header length ${headerLength} bytes, expected at most ${MAX_HEADER_BYTES} (is this a .safetensors file?)`)
  }
  const dataStart = 8 + Number(headerLength)
  if (size < dataStart) truncated(dataStart, `8 + a ${headerLength}-byte header`)
  const raw = new Uint8Array(Number(headerLength))
  await read(raw, 8)
  const text = Buffer.from(raw).toString('utf8')
  let header: unknown
  try {
    header = JSON.parse(text)
  } catch {
    header = undefined
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    const shown = text.trim().length > 200 ? `${text.trim().slice(0, 200)}...` : text.trim()
    fail('E_BAD_FILE', `.safetensors header is not a JSON object: ${shown}; expected {"name": {"dtype", "shape", "data_offsets"}, ...}`)
  }

  const entries = new Map<string, unknown>(Object.entries(header as object).filter(([name]) => name !== METADATA))
  const shapeOf = (entry: unknown): unknown => (typeof entry === 'object' && entry !== null ? (entry as { shape?: unknown }).shape : undefined)
  const describe = (name: string, entry: unknown): string => {
    const dtype = typeof entry === 'object' && entry !== null ? (entry as { dtype?: unknown }).dtype : undefined
    const shape = shapeOf(entry)
    return `${name} ${typeof dtype === 'string' ? dtype : '?'} ${Array.isArray(shape) ? `[${shape.join(', ')}]` : '?'}`
  }
  let tensor: string
  if (key !== undefined) {
    if (!entries.has(key)) {
      const names = [...entries.keys()]
      fail('E_MISSING_COLUMN', `tensor '${key}' not found, expected one of: ${names.length === 0 ? '(none)' : names.join(', ')}`)
    }
    tensor = key
  } else {
    const flat = [...entries].filter(([, entry]) => (shapeOf(entry) as unknown[] | undefined)?.length === 2).map(([name]) => name)
    if (flat.length === 0) {
      const found = [...entries].map(([name, entry]) => describe(name, entry))
      fail('E_EMBEDDING_HEADER', `no 2-D tensor, expected one [rows, dim] tensor; found ${found.length === 0 ? 'no tensors' : found.join(', ')}`)
    }
    if (flat.length > 1) {
      fail('E_BAD_OPTION', `${flat.length} 2-D tensors (${flat.join(', ')}), expected one; name the one to read with embeddingKey (--embedding-key)`)
    }
    tensor = flat[0]!
  }

  const entry = checkEntry(entries.get(tensor), tensor, fail)
  if (entry.shape.length !== 2) {
    fail('E_EMBEDDING_HEADER', `tensor '${tensor}' has shape [${entry.shape.join(', ')}], expected 2-D [rows, dim]`)
  }
  const [rows, dim] = entry.shape as [number, number]
  if (dim === 0) fail('E_EMBEDDING_HEADER', `tensor '${tensor}' has shape [${rows}, 0], expected dim >= 1`)
  const dtype = DTYPES.get(entry.dtype) ?? fail('E_EMBEDDING_HEADER', `tensor '${tensor}' has dtype ${entry.dtype}, expected F32, F16 or BF16`)
  const itemBytes = ITEM_BYTES[dtype]
  const [begin, end] = entry.data_offsets
  const byteLength = rows * dim * itemBytes
  if (end - begin !== byteLength) {
    fail('E_EMBEDDING_HEADER',
      `tensor '${tensor}' data_offsets [${begin}, ${end}] hold ${end - begin} bytes, expected ${byteLength} (${rows} x ${dim} x ${itemBytes})`)
  }
  if (size < dataStart + end) truncated(dataStart + end, `8 + ${headerLength}-byte header + tensor '${tensor}' ending at data byte ${end}`)
  return { file, tensor, dtype, rows, dim, dataOffset: dataStart + begin, byteLength }
}

function checkEntry(entry: unknown, name: string, fail: (code: 'E_EMBEDDING_HEADER', detail: string) => never): Entry {
  const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>
  const count = (x: unknown): boolean => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
  const offsets = e.data_offsets
  if (typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !e.shape.every(count)
    || !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(count) || offsets[0] > offsets[1]) {
    const shown = JSON.stringify(entry) ?? String(entry)
    fail('E_EMBEDDING_HEADER',
      `tensor '${name}' has entry ${shown.length > 200 ? `${shown.slice(0, 200)}...` : shown}, expected {"dtype": string, "shape": [rows, dim], "data_offsets": [begin, end]}`)
  }
  return e as unknown as Entry
}
