/**
 * A validation report in the forms people and CI systems read: grouped text, JSON,
 * JUnit XML (one test case per check) and GitHub Actions workflow annotations.
 */

import { countBySeverity, reportFails, type CheckResult, type Finding, type Severity, type ValidationReport } from './_findings.js'

/** Output forms of {@link formatReport}. */
export type ReportFormat = 'text' | 'json' | 'junit' | 'github'

/** Options of {@link formatReport}. */
export interface FormatReportOptions {
  format?: ReportFormat // text (default), json, junit or github
  failOn?: Severity | 'none' // the severity that fails the run, for the verdict and JUnit failures (default 'error')
  shown?: number // text: findings printed per code (default 5)
}

/**
 * Renders `report`. Text groups findings by code with counts and the first few of each;
 * JSON holds every kept finding; JUnit has one `<testcase>` per check (classname = check
 * group, name = code), failing when the check's findings reach `failOn`; github prints
 * one `::error`/`::warning`/`::notice` workflow command per kept finding.
 *
 * @example
 * process.stdout.write(formatReport(report, { format: 'junit' }))
 */
export function formatReport(report: ValidationReport, options: FormatReportOptions = {}): string {
  const failOn = options.failOn ?? 'error'
  switch (options.format ?? 'text') {
    case 'text':
      return formatText(report, failOn, options.shown ?? 5)
    case 'json':
      return formatJson(report, failOn)
    case 'junit':
      return formatJunit(report, failOn)
    case 'github':
      return formatGithub(report, failOn)
  }
}

function verdict(report: ValidationReport, failOn: Severity | 'none'): string {
  const n = countBySeverity(report)
  const ran = report.checks.filter(c => c.status === 'ran').length
  const skipped = report.checks.length - ran
  const counts = `${plural(n.error, 'error')}, ${plural(n.warning, 'warning')}, ${n.info} info`
  const outcome = reportFails(report, failOn) ? 'FAILED' : 'passed'
  return `hardneg validate: ${outcome} (--fail-on ${failOn}): ${counts} from ${plural(ran, 'check')}${skipped > 0 ? `, ${skipped} skipped` : ''}`
}

function formatText(report: ValidationReport, failOn: Severity | 'none', shown: number): string {
  const lines: string[] = []
  const byCode = groupFindings(report.findings)
  for (const c of report.checks) {
    if (c.status !== 'ran' || c.count === 0) continue
    lines.push(`${c.severity.padEnd(7)} ${c.code} (${c.count.toLocaleString('en-US')}): ${c.title}`)
    const kept = byCode.get(c.code) ?? []
    for (const f of kept.slice(0, shown)) lines.push(`  ${f.message}`)
    const more = c.totalled ? 0 : c.count - Math.min(shown, kept.length)
    if (more > 0) lines.push(`  ... ${more.toLocaleString('en-US')} more${kept.length > shown ? ' (--format json lists up to --max-findings per code)' : ''}`)
  }
  const skipped = report.checks.filter(c => c.status === 'skipped')
  if (skipped.length > 0) lines.push(`skipped: ${skipped.map(c => `${c.code} (${c.reason})`).join('; ')}`)
  const passed = report.checks.filter(c => c.status === 'ran' && c.count === 0)
  if (passed.length > 0) lines.push(`passed: ${passed.map(c => c.code).join(', ')}`)
  lines.push(verdict(report, failOn))
  return lines.join('\n') + '\n'
}

function formatJson(report: ValidationReport, failOn: Severity | 'none'): string {
  const body = {
    ok: !reportFails(report, failOn),
    failOn,
    counts: countBySeverity(report),
    checks: report.checks,
    findings: report.findings,
  }
  return JSON.stringify(body, null, 2) + '\n'
}

function formatJunit(report: ValidationReport, failOn: Severity | 'none'): string {
  const byCode = groupFindings(report.findings)
  const suites = new Map<string, CheckResult[]>()
  for (const c of report.checks) {
    const list = suites.get(c.group) ?? []
    list.push(c)
    suites.set(c.group, list)
  }
  const fails = (c: CheckResult): boolean => reportFails({ findings: [], checks: [c] }, failOn)
  const total = report.checks.length
  const failures = report.checks.filter(fails).length
  const skippedAll = report.checks.filter(c => c.status === 'skipped').length
  const out = ['<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="hardneg validate" tests="${total}" failures="${failures}" errors="0" skipped="${skippedAll}">`]
  for (const [group, checks] of suites) {
    const f = checks.filter(fails).length
    const s = checks.filter(c => c.status === 'skipped').length
    out.push(`  <testsuite name="${attr(group)}" tests="${checks.length}" failures="${f}" errors="0" skipped="${s}">`)
    for (const c of checks) {
      const open = `    <testcase classname="${attr(group)}" name="${attr(c.code)}"`
      const kept = byCode.get(c.code) ?? []
      const listing = kept.map(x => x.message).join('\n') + (c.count > kept.length && !c.totalled ? `\n... ${c.count - kept.length} more` : '')
      if (c.status === 'skipped') {
        out.push(`${open}>`, `      <skipped message="${attr(c.reason ?? '')}"/>`, '    </testcase>')
      } else if (fails(c)) {
        out.push(`${open}>`, `      <failure type="${attr(c.code)}" message="${attr(`${c.count} ${c.severity}${c.count === 1 ? '' : 's'}: ${c.title}`)}">${text(listing)}</failure>`, '    </testcase>')
      } else if (c.count > 0) {
        out.push(`${open}>`, `      <system-out>${text(`${c.count} ${c.severity} finding${c.count === 1 ? '' : 's'}: ${c.title}\n${listing}`)}</system-out>`, '    </testcase>')
      } else {
        out.push(`${open}/>`)
      }
    }
    out.push('  </testsuite>')
  }
  out.push('</testsuites>')
  return out.join('\n') + '\n'
}

const COMMAND: Record<Severity, string> = { error: 'error', warning: 'warning', info: 'notice' }

function formatGithub(report: ValidationReport, failOn: Severity | 'none'): string {
  const lines = report.findings.map(f => {
    const props = [`file=${property(f.file)}`]
    if (f.line !== undefined) props.push(`line=${f.line}`)
    props.push(`title=${property(f.code)}`)
    return `::${COMMAND[f.severity]} ${props.join(',')}::${data(f.message)}`
  })
  lines.push(verdict(report, failOn))
  return lines.join('\n') + '\n'
}

function groupFindings(findings: readonly Finding[]): Map<string, Finding[]> {
  const out = new Map<string, Finding[]>()
  for (const f of findings) {
    const list = out.get(f.code) ?? []
    list.push(f)
    out.set(f.code, list)
  }
  return out
}

function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`
}

// ---- escaping

/** Characters XML 1.0 cannot hold even escaped (C0 controls but tab/LF/CR, U+FFFE/U+FFFF, lone surrogates). */
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

function text(s: string): string {
  return s.replace(NOT_XML, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function attr(s: string): string {
  return text(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;')
}

/** A workflow command's message (GitHub's toolkit escapeData). */
function data(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
}

/** A workflow command's property value (GitHub's toolkit escapeProperty). */
function property(s: string): string {
  return data(s).replace(/:/g, '%3A').replace(/,/g, '%2C')
}
