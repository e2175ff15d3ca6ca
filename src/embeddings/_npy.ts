/**
 * The `.npy` container: its preamble and header (format versions 1.0, 2.0 and 3.0, the
 * header a Python dict literal), opening a file and reading byte ranges of it fully.
 */

import { open, type FileHandle } from 'node:fs/promises'
import { endianness } from 'node:os'
import { HardnegError } from '../errors.js'

/** What a `.npy` header says about the matrix that follows it. */
export interface NpyHeader {
  file: string // path as the user gave it
  dtype: 'float32' | 'float16' // element type on disk (always little-endian)
  rows: number // number of embedding rows (shape[0])
  dim: number // vector dimension (shape[1])
  dataOffset: number // byte offset of row 0 in the file (the header length)
  byteLength: number // bytes of array data: rows * dim * 4 (float32) or * 2 (float16)
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // '\x93NUMPY'
const MAX_HEADER_BYTES = 1 << 20
export const CHUNK_BYTES = 16 * 1024 * 1024 // raw bytes per read call
const DTYPES: ReadonlyMap<string, NpyHeader['dtype']> = new Map([
  ['<f4', 'float32'], ['=f4', 'float32'], ['|f4', 'float32'], ['f4', 'float32'],
  ['<f2', 'float16'], ['=f2', 'float16'], ['|f2', 'float16'], ['f2', 'float16'],
])

/** Opens a `.npy` or safetensors file for reading, with E_BAD_FILE naming the file. */
export async function openNpy(file: string, format: 'npy' | 'safetensors' = 'npy'): Promise<FileHandle> {
  try {
    return await open(file, 'r')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err)
    throw new HardnegError('E_BAD_FILE', `cannot open (${reason}), expected a readable .${format} file`, { file })
  }
}

/** Reads and checks the header of an open `.npy` file; see `readNpyHeader`. */
export async function readHeaderFrom(fh: FileHandle, file: string): Promise<NpyHeader> {
  if (endianness() !== 'LE') throw new Error('hardneg reads .npy data through typed arrays, which needs a little-endian host')
  const stat = await fh.stat()
  if (!stat.isFile()) throw new HardnegError('E_BAD_FILE', 'not a regular file, expected a .npy file', { file })
  const size = stat.size
  const truncated = (need: number, what: string): HardnegError =>
    new HardnegError('E_BAD_FILE', `truncated .npy file: ${size} bytes, expected ${need} (${what})`, { file })

  const pre = new Uint8Array(Math.min(12, size))
  await readFully(fh, pre, 0, file)
  for (let i = 0; i < MAGIC.length; i++) {
    if (i === pre.length) throw truncated(10, 'the .npy preamble')
    if (pre[i] !== MAGIC[i]) {
      throw new HardnegError('E_BAD_FILE',
        `not a .npy file: starts with '${showBytes(pre.subarray(0, 6))}', expected '\\x93NUMPY'`, { file })
    }
  }
  if (pre.length < 8) throw truncated(10, 'the .npy preamble')
  const major = pre[6]!
  const minor = pre[7]!
  if (minor !== 0 || major < 1 || major > 3) {
    throw new HardnegError('E_NPY_HEADER', `.npy format version ${major}.${minor} not supported, expected 1.0, 2.0 or 3.0`, { file })
  }
  const preLen = major === 1 ? 10 : 12
  if (pre.length < preLen) throw truncated(preLen, 'the .npy preamble')
  const view = new DataView(pre.buffer, pre.byteOffset, pre.byteLength)
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  if (headerLen > MAX_HEADER_BYTES) {
    throw new HardnegError('E_NPY_HEADER', `.npy header length ${headerLen} bytes, expected at most ${MAX_HEADER_BYTES}`, { file })
  }
  const dataOffset = preLen + headerLen
  if (size < dataOffset) throw truncated(dataOffset, `a ${dataOffset}-byte header`)
  const raw = new Uint8Array(headerLen)
  await readFully(fh, raw, preLen, file)
  const text = major === 3 ? Buffer.from(raw).toString('utf8') : Buffer.from(raw).toString('latin1')

  const fields = parseHeaderDict(text, file)
  for (const key of ['descr', 'fortran_order', 'shape']) {
    if (!fields.has(key)) {
      throw new HardnegError('E_NPY_HEADER',
        `.npy header has no '${key}' key, expected keys 'descr', 'fortran_order' and 'shape'`, { file })
    }
  }
  const descr = fields.get('descr')
  const dtype = typeof descr === 'string' ? DTYPES.get(descr) : undefined
  if (dtype === undefined) {
    throw new HardnegError('E_NPY_HEADER',
      `dtype ${pyRepr(descr)} not supported, expected float32 ('<f4') or float16 ('<f2')`, { file })
  }
  const fortran = fields.get('fortran_order')
  if (fortran === true) {
    throw new HardnegError('E_NPY_HEADER',
      'fortran_order True not supported, expected C order; save with np.save(path, np.ascontiguousarray(arr))', { file })
  }
  if (fortran !== false) {
    throw new HardnegError('E_NPY_HEADER', `fortran_order ${pyRepr(fortran)} not understood, expected True or False`, { file })
  }
  const shape = fields.get('shape')
  const dims = isTuple(shape) ? shape.tuple : undefined
  if (dims?.length !== 2 || !dims.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new HardnegError('E_NPY_HEADER', `shape ${pyRepr(shape)} not supported, expected 2-D (rows, dim)`, { file })
  }
  const [rows, dim] = dims as [number, number]
  if (dim === 0) throw new HardnegError('E_NPY_HEADER', `shape ${pyRepr(shape)} has dim 0, expected dim >= 1`, { file })
  const itemSize = dtype === 'float32' ? 4 : 2
  const byteLength = rows * dim * itemSize
  if (size < dataOffset + byteLength) {
    throw truncated(dataOffset + byteLength, `${dataOffset}-byte header + ${rows} rows x ${dim} dim x ${itemSize} bytes`)
  }
  return { file, dtype, rows, dim, dataOffset, byteLength }
}

/** Fills `target` from byte `position` on; short reads are retried, end of file is an error. */
export async function readFully(fh: FileHandle, target: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0
  while (done < target.byteLength) {
    const length = Math.min(target.byteLength - done, CHUNK_BYTES)
    const { bytesRead } = await fh.read(target, done, length, position + done)
    if (bytesRead === 0) {
      throw new HardnegError('E_BAD_FILE',
        `file ended at byte ${position + done}, expected ${position + target.byteLength} bytes (did it change while being read?)`,
        { file })
    }
    done += bytesRead
  }
}

// ---- the header dict: a Python literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }

type PyValue = string | number | boolean | null | PyValue[] | { tuple: PyValue[] } | Map<string, PyValue>

function isTuple(v: PyValue | undefined): v is { tuple: PyValue[] } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map)
}

function parseHeaderDict(text: string, file: string): Map<string, PyValue> {
  let pos = 0
  const fail = (why: string): never => {
    const shown = text.trim().length > 200 ? `${text.trim().slice(0, 200)}...` : text.trim()
    throw new HardnegError('E_NPY_HEADER', `.npy header is not a Python dict literal (${why} at offset ${pos}): ${shown}`, { file })
  }
  const skip = (): void => {
    while (pos < text.length && ' \t\r\n'.includes(text[pos]!)) pos++
  }
  const items = (close: string): PyValue[] => {
    const out: PyValue[] = []
    for (skip(); text[pos] !== close; skip()) {
      out.push(value())
      skip()
      if (text[pos] === ',') pos++
      else if (text[pos] !== close) fail(`expected ',' or '${close}'`)
    }
    pos++
    return out
  }
  const value = (): PyValue => {
    skip()
    const c = text[pos]
    if (c === undefined) return fail('unexpected end')
    if (c === '{') {
      pos++
      const dict = new Map<string, PyValue>()
      for (skip(); text[pos] !== '}'; skip()) {
        const key = value()
        if (typeof key !== 'string') fail('expected a string key')
        skip()
        if (text[pos++] !== ':') fail("expected ':'")
        dict.set(key as string, value())
        skip()
        if (text[pos] === ',') pos++
        else if (text[pos] !== '}') fail("expected ',' or '}'")
      }
      pos++
      return dict
    }
    if (c === '(') {
      pos++
      return { tuple: items(')') }
    }
    if (c === '[') {
      pos++
      return items(']')
    }
    if (c === "'" || c === '"') {
      let s = ''
      for (pos++; text[pos] !== c; pos++) {
        if (pos >= text.length) fail('unterminated string')
        if (text[pos] === '\\') pos++
        s += text[pos]
      }
      pos++
      return s
    }
    const word = /^(?:-?\d+L?|True|False|None)/.exec(text.slice(pos, pos + 40))?.[0]
    if (word === undefined) return fail(`unexpected ${JSON.stringify(c)}`)
    pos += word.length
    return word === 'True' ? true : word === 'False' ? false : word === 'None' ? null : Number(word.replace('L', ''))
  }
  const dict = value()
  skip()
  if (!(dict instanceof Map) || pos !== text.length) fail('expected one dict')
  return dict as Map<string, PyValue>
}

function pyRepr(v: PyValue | undefined): string {
  if (v === undefined) return ''
  if (v === null) return 'None'
  if (typeof v === 'boolean') return v ? 'True' : 'False'
  if (typeof v === 'number') return String(v)
  if (typeof v === 'string') return `'${v}'`
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `'${k}': ${pyRepr(x)}`).join(', ')}}`
  return v.tuple.length === 1 ? `(${pyRepr(v.tuple[0])},)` : `(${v.tuple.map(pyRepr).join(', ')})`
}

function showBytes(bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) {
    s += b >= 0x20 && b < 0x7f && b !== 0x27 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`
  }
  return s
}
