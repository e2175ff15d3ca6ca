/**
 * The one error class hardneg throws for bad input or bad options. Anything else
 * that escapes is a bug.
 */

/** Stable codes: scripts and tests match on these, never on message text. */
export type ErrorCode =
  | 'E_BAD_OPTION' // an option is out of range or not a number
  | 'E_BAD_FILE' // a file cannot be opened, or is not the format its name says
  | 'E_NPY_HEADER' // a .npy header is unreadable or describes an unsupported array
  | 'E_EMBEDDING_HEADER' // a safetensors header or Arrow/Parquet schema describes an unsupported embedding array
  | 'E_DIM_MISMATCH' // embedding dimensions disagree between files
  | 'E_ROW_MISMATCH' // embedding row count differs from the pair count
  | 'E_ID_MISMATCH' // embedding ids do not match the pair ids one to one (missing, extra or repeated)
  | 'E_BAD_VECTOR' // a NaN/Inf, all-zero, null or wrong-length embedding row
  | 'E_MISSING_COLUMN' // a column (or safetensors tensor) the options name is not in the file
  | 'E_BAD_ROW' // a malformed CSV/JSONL row or an empty required field
  | 'E_EMPTY' // a dataset with no rows
  | 'E_OUTPUT' // the output directory cannot be used
  | 'E_BAD_IMAGE' // an image a pair refers to is missing or cannot be decoded
  | 'E_SERVER' // a remote server refused a request, or kept failing after the bounded retries
  | 'E_BAD_RESPONSE' // a remote server answered with a malformed response (wrong count, dimension, values or order)

/** Where an error happened: a file and, when known, a 1-based row (data rows, header excluded). */
export interface ErrorPlace {
  file?: string // path as the user gave it
  row?: number // 1-based data row number within `file`
}

/**
 * Bad input or options. `message` starts with the place (`file:row: `) and states the
 * value found next to the value expected; the CLI prints it as one line and exits 2.
 */
export class HardnegError extends Error {
  readonly code: ErrorCode
  readonly file: string | undefined
  readonly row: number | undefined

  constructor(code: ErrorCode, detail: string, place: ErrorPlace = {}) {
    super(formatPlace(place) + detail)
    this.name = 'HardnegError'
    this.code = code
    this.file = place.file
    this.row = place.row
  }
}

function formatPlace({ file, row }: ErrorPlace): string {
  if (file === undefined) return ''
  return row === undefined ? `${file}: ` : `${file}:${row}: `
}

/** True when `err` is a HardnegError (also across module copies). */
export function isHardnegError(err: unknown): err is HardnegError {
  return err instanceof HardnegError || (err instanceof Error && err.name === 'HardnegError' && 'code' in err)
}
