/**
 * Validation findings as data: the table of checks (stable codes, severity, what each
 * asserts), the finding and report shapes, and the log the checks write into, which
 * counts every finding but keeps at most `maxFindings` of each code.
 */

/** How bad a finding is; `--fail-on` picks the lowest that fails a run. */
export type Severity = 'error' | 'warning' | 'info'

/** The part of the data a check looks at (the JUnit suite it reports under). */
export type CheckGroup = 'pairs' | 'images' | 'embeddings' | 'integrity' | 'negatives' | 'rescore' | 'contamination' | 'coverage'

/** One check: where it belongs, how severe its findings are, and what it asserts. */
export interface CheckSpec {
  group: CheckGroup
  severity: Severity
  title: string // what holds when the check passes
}

/** Every check, in report order. Codes are stable: scripts and CI match on them. */
export const CHECKS = {
  // pairs file
  V_NO_ROWS: { group: 'pairs', severity: 'error', title: 'the pairs file has data rows' },
  V_BAD_ROW: { group: 'pairs', severity: 'error', title: 'every record parses (field count, JSON object)' },
  V_MISSING_COLUMN: { group: 'pairs', severity: 'error', title: 'every column the options name is present' },
  V_BAD_TYPE: { group: 'pairs', severity: 'error', title: 'values have the expected types' },
  V_EMPTY_TEXT: { group: 'pairs', severity: 'error', title: 'no query or positive is empty, null or missing' },
  V_BLANK_TEXT: { group: 'pairs', severity: 'warning', title: 'no query or positive is whitespace only' },
  V_EMPTY_ID: { group: 'pairs', severity: 'error', title: 'no id is empty or null' },
  V_DUPLICATE_ID: { group: 'pairs', severity: 'error', title: 'ids are unique' },
  V_DUPLICATE_PAIR: { group: 'pairs', severity: 'warning', title: '(query, positive) pairs are unique' },
  V_SMALL_GROUP: { group: 'pairs', severity: 'warning', title: 'every group has enough distinct positives for k negatives' },
  // images
  V_IMAGE_MISSING: { group: 'images', severity: 'error', title: 'every image path names an existing, readable file' },
  V_IMAGE_UNDECODABLE: { group: 'images', severity: 'error', title: 'every image decodes fully' },
  V_IMAGE_SIZE: { group: 'images', severity: 'error', title: 'every image is within the size limits' },
  // embedding files
  V_EMB_HEADER: { group: 'embeddings', severity: 'error', title: 'the .npy header is readable, 2-D float32/float16, C order' },
  V_EMB_ROWS: { group: 'embeddings', severity: 'error', title: 'one embedding row per pair' },
  V_EMB_DIM: { group: 'embeddings', severity: 'error', title: 'one dimension across embedding files' },
  V_EMB_NAN: { group: 'embeddings', severity: 'error', title: 'no NaN or Inf values' },
  V_EMB_ZERO: { group: 'embeddings', severity: 'error', title: 'no all-zero vectors' },
  V_EMB_NORM: { group: 'embeddings', severity: 'warning', title: 'vectors are close to unit length' },
  // shard set integrity
  V_MANIFEST_MISSING: { group: 'integrity', severity: 'error', title: 'manifest.json is present' },
  V_MANIFEST_INVALID: { group: 'integrity', severity: 'error', title: 'manifest.json is a consistent hardneg manifest' },
  V_SHARD_MISSING: { group: 'integrity', severity: 'error', title: 'every shard the manifest lists exists' },
  V_SHARD_STRAY: { group: 'integrity', severity: 'error', title: 'no Parquet file the manifest does not list' },
  V_SHARD_ROWS: { group: 'integrity', severity: 'error', title: 'shard row counts match the manifest' },
  V_SHARD_SHA: { group: 'integrity', severity: 'error', title: 'shard sha256 sums match the manifest' },
  V_SHARD_UNREADABLE: { group: 'integrity', severity: 'error', title: 'every shard is readable Parquet' },
  V_SCHEMA: { group: 'integrity', severity: 'error', title: 'shards have the mined columns with their types, no nulls, aligned lists' },
  // mined rows
  V_SHORT_ROW: { group: 'negatives', severity: 'error', title: 'every row has k negatives, or fewer as the pad policy allows' },
  V_N_VALID: { group: 'negatives', severity: 'error', title: 'n_valid matches the negatives (distinct, padding cycles them)' },
  V_NEG_IS_POSITIVE: { group: 'negatives', severity: 'error', title: "no negative is the row's positive" },
  V_NEG_IS_QUERY: { group: 'negatives', severity: 'error', title: "no negative is the row's query" },
  V_NEG_IS_LABELED_POSITIVE: { group: 'negatives', severity: 'error', title: 'no negative is a labeled positive of the same query (the positive of a row with the same query)' },
  V_NEG_LIKE_POSITIVE: { group: 'negatives', severity: 'warning', title: 'no negative equals the positive up to case and whitespace' },
  V_SCORE_RANGE: { group: 'negatives', severity: 'error', title: 'scores are finite cosine similarities in [-1, 1]' },
  V_SCORE_ABOVE_MARGIN: { group: 'negatives', severity: 'error', title: 'negative scores are at most the ceiling (pos_score + threshold, caps)' },
  V_SCORES_UNSORTED: { group: 'negatives', severity: 'error', title: 'the first n_valid negatives are sorted by descending score' },
  V_POS_BELOW_NEG: { group: 'negatives', severity: 'warning', title: 'every positive scores at least its best negative (else the pair may be noise)' },
  // rescoring from embeddings
  V_INPUT_CHANGED: { group: 'rescore', severity: 'warning', title: 'the given inputs are the files the manifest recorded' },
  V_RESCORE_UNMAPPED: { group: 'rescore', severity: 'error', title: 'every sampled id maps to a pair row' },
  V_PAIR_MISMATCH: { group: 'rescore', severity: 'error', title: "a shard row's texts match its pair in the pairs file" },
  V_RESCORE_MISMATCH: { group: 'rescore', severity: 'error', title: 'recomputed scores match the shard within the tolerance' },
  V_RESCORE_SKIPPED: { group: 'rescore', severity: 'info', title: 'negatives that could not be rescored (corpus candidates)' },
  // contamination
  V_CONTAMINATION: { group: 'contamination', severity: 'error', title: 'no query, positive or negative is in a forbid set' },
  // coverage
  V_SAMPLED: { group: 'coverage', severity: 'info', title: 'which rows the row checks covered' },
} as const satisfies Record<string, CheckSpec>

/** A stable finding code, e.g. `V_EMPTY_TEXT`. */
export type FindingCode = keyof typeof CHECKS

/** One problem found. `message` starts with the place (`file:row: `), then found vs expected. */
export interface Finding {
  code: FindingCode // stable code, see CHECKS and docs/validate.md
  severity: Severity // from the code
  file: string // the file (or shard directory) as the user gave it
  row?: number // 1-based data row (CSV/TSV/Parquet: header excluded; JSONL: line; .npy: row index + 1)
  line?: number // 1-based line in a text file, where known exactly (JSONL)
  message: string // one line: place, what was found, what was expected
}

/** The outcome of one check in a run. */
export interface CheckResult {
  code: FindingCode
  group: CheckGroup
  severity: Severity
  title: string // what holds when the check passes
  status: 'ran' | 'skipped' // skipped: the check applied but could not run (the reason says why)
  reason?: string // why it was skipped
  count: number // findings of this code, including those beyond maxFindings
}

/** What {@link validateDataset} and {@link validateShards} return. */
export interface ValidationReport {
  findings: Finding[] // at most maxFindings per code, in the order found
  checks: CheckResult[] // every check that ran or was skipped, in CHECKS order
}

/** Where a finding is. */
export interface FindingPlace {
  file: string
  row?: number
  line?: number
}

/** Collects findings and which checks ran; see {@link Finding}. */
export class FindingLog {
  private readonly findings: Finding[] = []
  private readonly counts = new Map<FindingCode, number>()
  private readonly skips = new Map<FindingCode, string>()

  constructor(readonly maxFindings: number) {}

  /** Marks checks as run (a check that finds nothing still passes, and is reported). */
  ran(...codes: FindingCode[]): void {
    for (const code of codes) {
      this.skips.delete(code)
      if (!this.counts.has(code)) this.counts.set(code, 0)
    }
  }

  /** Marks a check as applicable but not run, unless it ran elsewhere in this report. */
  skip(code: FindingCode, reason: string): void {
    if (!this.counts.has(code)) this.skips.set(code, reason)
  }

  /** Records a finding; `detail` (a function when costly to build) follows the place in the message. */
  add(code: FindingCode, place: FindingPlace, detail: string | (() => string)): void {
    const n = (this.counts.get(code) ?? 0) + 1
    this.counts.set(code, n)
    this.skips.delete(code)
    if (n > this.maxFindings) return
    const text = typeof detail === 'string' ? detail : detail()
    const where = place.row === undefined ? `${place.file}: ` : `${place.file}:${place.row}: `
    this.findings.push({
      code,
      severity: CHECKS[code].severity,
      file: place.file,
      ...(place.row !== undefined ? { row: place.row } : {}),
      ...(place.line !== undefined ? { line: place.line } : {}),
      message: where + text,
    })
  }

  /**
   * Records `count` occurrences of `code` as one finding: for conditions that are
   * reported as a total with its first place rather than row by row.
   */
  addCount(code: FindingCode, place: FindingPlace, count: number, detail: string): void {
    if (count <= 0) return
    const before = this.counts.get(code) ?? 0
    this.add(code, place, detail)
    this.counts.set(code, before + count)
  }

  /** Findings of `code` so far, including those beyond the cap. */
  count(code: FindingCode): number {
    return this.counts.get(code) ?? 0
  }

  /** The report so far. */
  report(): ValidationReport {
    const checks: CheckResult[] = []
    for (const [code, spec] of Object.entries(CHECKS) as [FindingCode, CheckSpec][]) {
      const count = this.counts.get(code)
      const reason = this.skips.get(code)
      if (count !== undefined) checks.push({ code, ...spec, status: 'ran', count })
      else if (reason !== undefined) checks.push({ code, ...spec, status: 'skipped', reason, count: 0 })
    }
    return { findings: [...this.findings], checks }
  }
}

/**
 * One report from several (dataset and shards of one CI step): findings concatenated,
 * a check that ran in any of them ran, counts added.
 */
export function mergeReports(...reports: ValidationReport[]): ValidationReport {
  const byCode = new Map<FindingCode, CheckResult>()
  for (const { checks } of reports) {
    for (const c of checks) {
      const seen = byCode.get(c.code)
      if (seen === undefined) byCode.set(c.code, { ...c })
      else if (c.status === 'ran') {
        byCode.set(c.code, { ...c, count: (seen.status === 'ran' ? seen.count : 0) + c.count })
      }
    }
  }
  const order = Object.keys(CHECKS)
  const checks = [...byCode.values()].sort((a, b) => order.indexOf(a.code) - order.indexOf(b.code))
  return { findings: reports.flatMap(r => r.findings), checks }
}

const RANK: Record<Severity | 'none', number> = { error: 3, warning: 2, info: 1, none: 4 }

/**
 * True when a finding reaches `failOn`: 'error' (the default) fails on errors only,
 * 'warning' on warnings too, 'none' never.
 */
export function reportFails(report: ValidationReport, failOn: Severity | 'none' = 'error'): boolean {
  return report.checks.some(c => c.count > 0 && RANK[c.severity] >= RANK[failOn])
}

/** Number of findings per severity, including those beyond maxFindings. */
export function countBySeverity(report: ValidationReport): Record<Severity, number> {
  const out: Record<Severity, number> = { error: 0, warning: 0, info: 0 }
  for (const c of report.checks) out[c.severity] += c.count
  return out
}

/** A text for a message: JSON-quoted, cut to 60 characters. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text)
}
