/**
 * The report page: report data in, one self-contained HTML string out (inline CSS, SVG
 * histograms drawn here, thumbnails as data: URIs in one CSS rule each, no script, no
 * external URL). Every text taken from the data goes through `esc`. Private to report.ts.
 */
import type { ReportData, GroupReport } from './report.js'
import { binnedQuantile, occupiedBins, type Histogram } from './_bins.js'
import type { SampleRow } from './_scan.js'

/** Longest text shown in the gallery, in characters; the rest is counted, not shown. */
const MAX_TEXT = 1500

const COLORS = { positive: '#2e7d32', ceiling: '#616161', negative: '#1565c0', filtered: '#c62828' } as const

/** What each rule name means, for the gallery's badges; other names are shown as they are. */
function ruleMeaning(rule: string, data: ReportData): string | undefined {
  const r = data.rules
  switch (rule) {
    case 'margin': return `score > pos_score + ${r.threshold} (UniME margin)`
    case 'max_score': return `score > ${r.maxScore ?? 'max_score'} (absolute cap)`
    case 'relative_margin': return `score > pos_score × (1 − ${r.relativeMargin ?? 'M'}) (TopK-PercPos)`
    case 'pos_sim': return `sim(candidate, positive) > ${r.posSim ?? 'T'} (near-duplicate of the positive)`
    case 'query_sim': return `sim(query, candidate's own query) > ${r.querySim ?? 'T'} (owned by a similar query)`
    default: return undefined
  }
}

/** Escapes text for HTML element content and double- or single-quoted attributes. */
export function esc(text: unknown): string {
  return String(text).replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)
}

const fmt = (x: number | null | undefined, digits = 3): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits))
const int = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toLocaleString('en-US'))
const pct = (n: number | undefined, d: number | undefined): string => (n === undefined || !d ? '–' : `${((100 * n) / d).toFixed(1)}%`)
const groupName = (name: string): string => (name === '' ? '(no group)' : name)

/** The whole page. */
export function renderReportHtml(data: ReportData): string {
  const thumbs = thumbnailClasses(data)
  const title = `hardneg report: ${data.shards}`
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title>`,
    '<link rel="icon" href="data:,">',
    `<style>${CSS}</style>`,
    thumbs.css === '' ? '' : `<style>${thumbs.css}</style>`,
    '</head><body>',
    `<header><h1>hardneg report</h1><p class="sub">${esc(data.shards)} · ${int(data.rows)} rows · mined ${esc(data.manifest.createdAt ?? '?')} by hardneg ${esc(data.manifest.tool?.version ?? '?')}</p>`,
    `<nav><a href="#run">Run</a> <a href="#scores">Scores</a>${data.overall.rescore ? ' <a href="#rescore">Rescorer</a>' : ''}${data.overall.counts?.sweep ? ' <a href="#sweep">Threshold sweep</a>' : ''} <a href="#groups">Groups</a> <a href="#gallery">Gallery</a></nav></header>`,
    '<main>',
    runSection(data),
    scoresSection(data),
    rescoreSection(data),
    sweepSection(data),
    groupsSection(data),
    gallerySection(data, thumbs.classOf),
    '</main>',
    `<footer>Written by <code>hardneg report</code> from ${esc(data.shards)}: ${data.bins} bins over [−1, 1], sample seed ${data.seed}. See docs/report.md.</footer>`,
    '</body></html>',
    '',
  ].join('\n')
}

function runSection(data: ReportData): string {
  const m = data.manifest
  const c = data.overall.counts
  const facts: [string, string][] = [
    ['pairs in', int(m.rows?.in)],
    ['rows written', int(m.rows?.out)],
    ['shards', int(m.shards?.length)],
    ['search', `${esc(m.search?.method ?? '?')} (n_false_negatives over ${esc(m.search?.falseNegativeCounts ?? '?')})`],
    ['FalseNeg% (queries with a filtered candidate)', pct(c?.queriesWithFalseNegatives, c?.rowsIn)],
    ['candidates filtered', int(c?.falseNegatives)],
    ['padded / short / dropped rows', `${int(c?.padded)} / ${int(c?.short)} / ${int(c?.dropped)}`],
    ['queries with several positives / sibling positives left out', `${int(c?.multiPositiveQueries)} / ${int(c?.siblingPositivesExcluded)}`],
    ['total time', m.timings?.total === undefined ? '–' : `${fmt(m.timings.total, 1)} s`],
  ]
  const inputs = (m.inputs ?? []).map(i => `<tr><td>${esc(i.role)}</td><td class="path">${esc(i.path)}</td><td class="num">${int(i.bytes)}</td><td><code title="${esc(i.sha256)}">${esc(String(i.sha256).slice(0, 12))}</code></td></tr>`)
  const options = Object.entries(m.options ?? {}).map(([k, v]) => `<tr><td>${esc(k)}</td><td><code>${esc(JSON.stringify(v))}</code></td></tr>`)
  const timings = Object.entries(m.timings ?? {}).map(([k, v]) => `<tr><td>${esc(k)}</td><td class="num">${fmt(v, 2)} s</td></tr>`)
  return `<section id="run"><h2>Run</h2>
<dl class="facts">${facts.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${v}</dd></div>`).join('')}</dl>
<div class="cols"><div><h3>Inputs</h3>${inputs.length === 0 ? '<p class="note">none recorded</p>' : `<table><tr><th>role</th><th>path</th><th>bytes</th><th>sha256</th></tr>${inputs.join('')}</table>`}
<h3>Timings</h3><table>${timings.join('')}</table></div>
<div><h3>Options</h3><table class="options">${options.join('')}</table></div></div></section>`
}

/** The displayed score range: the occupied bins of every distribution, widened to 0.1 steps. */
function displayRange(data: ReportData): [number, number] {
  const o = data.overall
  const hs = [o.positive, o.negative, o.ceiling, ...(o.filtered ? [o.filtered] : [])]
  const occupied = occupiedBins(hs)
  if (occupied === null) return [-1, 1]
  const width = 2 / data.bins
  const lo = Math.max(-1, Math.floor((-1 + occupied[0] * width) * 10 - 1e-9) / 10)
  const hi = Math.min(1, Math.ceil((-1 + (occupied[1] + 1) * width) * 10 + 1e-9) / 10)
  return hi > lo ? [lo, hi] : [-1, 1]
}

function scoresSection(data: ReportData): string {
  const range = displayRange(data)
  const r = data.rules
  const parts = [`pos_score + ${r.threshold}`]
  if (r.maxScore !== undefined) parts.push(String(r.maxScore))
  if (r.relativeMargin !== undefined) parts.push(`pos_score × ${fmt(1 - r.relativeMargin, 3)}`)
  const ceiling = parts.length === 1 ? parts[0] as string : `min(${parts.join(', ')})`
  const filteredNote = data.layout.filtered
    ? `<b style="color:${COLORS.filtered}">filtered</b>: the scores of the filtered candidates the shards store, at most ${data.keepFiltered || 'N'} per row (<code>--keep-filtered</code>), the highest first; rows with more removals have the rest counted only in n_false_negatives.`
    : '<b>filtered</b>: not available: this run was mined without <code>--keep-filtered</code>, so the shards do not store the filtered candidates (only their count, n_false_negatives). Mine again with <code>--keep-filtered 4</code> to see them here and in the gallery.'
  const others = [r.posSim !== undefined ? `pos_sim > ${r.posSim}` : '', r.querySim !== undefined ? `query_sim > ${r.querySim}` : ''].filter(Boolean)
  const legend = `<div class="legend"><p>Each chart stacks four histograms of one group over the same score axis (cosine similarity), each scaled to its own tallest bin (the count beside it):</p><ul>
<li><b style="color:${COLORS.positive}">positive</b>: pos_score = sim(query, positive) of each written row.</li>
<li><b style="color:${COLORS.ceiling}">ceiling</b>: each row's own margin line, ceiling = ${esc(ceiling)}: a candidate scoring above it is a false negative and is dropped. Because pos_score varies per row the line is a distribution; the dashed line across the chart marks its median.</li>
<li><b style="color:${COLORS.negative}">negatives</b>: the scores of the chosen hard negatives (the n_valid distinct ones of each row, not padding repeats).</li>
<li>${filteredNote}</li></ul>
${others.length > 0 ? `<p>Also on: ${esc(others.join(', '))} (these rules compare other vectors, so their candidates can score below the ceiling).</p>` : ''}
<p>How to read it: negatives piled up just under the ceiling and filtered candidates just above it mean the margin decides many candidates; check those rows in the gallery. If the filtered candidates there are often true negatives, the threshold is too strict; if negatives that mean the same as the positive survive, it is too loose.</p></div>`
  // One chart per group when there is more than one to compare; one group's chart would repeat the overall one.
  const withRows = data.groups.filter(g => g.rows > 0)
  const perGroup = withRows.length > 1
  const charts = [histogramFigure('all groups', data.overall, range, perGroup ? 560 : 760)]
  if (perGroup) for (const g of withRows) charts.push(histogramFigure(`group ${groupName(g.name)}`, g, range, 560))
  return `<section id="scores"><h2>Score distributions</h2>${legend}<div class="charts">${charts.join('\n')}</div></section>`
}

function histogramFigure(caption: string, g: GroupReport, [xlo, xhi]: [number, number], W: number): string {
  const left = 92
  const right = 12
  const panelH = 54
  const gap = 8
  const series: [keyof typeof COLORS, string, Histogram | undefined][] = [
    ['positive', 'positive', g.positive],
    ['ceiling', 'ceiling', g.ceiling],
    ['negative', 'negatives', g.negative],
    ['filtered', 'filtered', g.filtered],
  ]
  const x = (v: number): number => left + ((v - xlo) / (xhi - xlo)) * (W - left - right)
  const top = 16
  const H = top + series.length * (panelH + gap) + 18
  const out: string[] = []
  series.forEach(([key, label, h], p) => {
    const y0 = top + p * (panelH + gap)
    const base = y0 + panelH
    out.push(`<line x1="${left}" y1="${base}" x2="${W - right}" y2="${base}" class="axis"/>`)
    if (h === undefined) {
      out.push(`<text x="${left + 6}" y="${base - panelH / 2 + 4}" class="na">not stored (mined without --keep-filtered)</text>`)
      out.push(`<text x="4" y="${y0 + 14}" class="lbl">${label}</text>`)
      return
    }
    const max = Math.max(0, ...h.counts)
    out.push(`<g class="series" data-series="${key}" data-total="${h.total}"><path d="${stepPath(h, x, xlo, xhi, base, panelH, max)}" fill="${COLORS[key]}" fill-opacity="${key === 'ceiling' ? 0.35 : 0.75}"/></g>`)
    out.push(`<text x="4" y="${y0 + 14}" class="lbl" fill="${COLORS[key]}">${label}</text>`)
    const outside = [h.below > 0 ? `${int(h.below)} below ${h.lo}` : '', h.above > 0 ? `${int(h.above)} above ${h.hi}` : ''].filter(Boolean).join(', ')
    out.push(`<text x="4" y="${y0 + 28}" class="small">n ${int(h.total)}</text>`)
    if (outside !== '') out.push(`<text x="${W - right}" y="${y0 + 10}" class="small" text-anchor="end">${outside} (not drawn)</text>`)
    out.push(`<text x="4" y="${y0 + 40}" class="small">max ${int(max)}/bin</text>`)
  })
  const bottom = top + series.length * (panelH + gap) - gap
  const median = binnedQuantile(g.ceiling, 0.5)
  if (median !== null && median >= xlo && median <= xhi) {
    out.push(`<line x1="${x(median).toFixed(1)}" y1="${top - 2}" x2="${x(median).toFixed(1)}" y2="${bottom}" class="margin"><title>median ceiling ≈ ${fmt(median)}</title></line>`)
    out.push(`<text x="${x(median).toFixed(1)}" y="${top - 5}" class="small" text-anchor="middle">median ceiling ≈ ${fmt(median, 2)}</text>`)
  }
  const step = xhi - xlo > 0.8 ? 0.2 : 0.1
  for (let t = Math.ceil(xlo / step - 1e-9) * step; t <= xhi + 1e-9; t += step) {
    out.push(`<line x1="${x(t).toFixed(1)}" y1="${bottom}" x2="${x(t).toFixed(1)}" y2="${bottom + 4}" class="axis"/><text x="${x(t).toFixed(1)}" y="${bottom + 15}" class="small" text-anchor="middle">${(Math.round(t * 100) / 100).toFixed(1)}</text>`)
  }
  const label = `${caption}: score histograms of positives, ceilings, negatives${g.filtered ? ' and filtered candidates' : ''}`
  return `<figure class="chart"><figcaption>${esc(caption)} <span class="small">(${int(g.rows)} rows)</span></figcaption>` +
    `<svg class="histogram" data-group="${esc(g.name)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(label)}">${out.join('')}</svg></figure>`
}

/** A filled step outline of the bins inside [xlo, xhi], heights scaled so `max` fills the panel. */
function stepPath(h: Histogram, x: (v: number) => number, xlo: number, xhi: number, base: number, height: number, max: number): string {
  const width = (h.hi - h.lo) / h.counts.length
  const first = Math.max(0, Math.floor((xlo - h.lo) / width + 1e-9))
  const last = Math.min(h.counts.length - 1, Math.ceil((xhi - h.lo) / width - 1e-9) - 1)
  const y = (c: number): string => (max === 0 ? base : base - (c / max) * height).toFixed(1)
  const parts = [`M${x(h.lo + first * width).toFixed(1)} ${base}`]
  for (let i = first; i <= last; i++) {
    const c = h.counts[i] as number
    parts.push(`L${x(h.lo + i * width).toFixed(1)} ${y(c)}H${x(h.lo + (i + 1) * width).toFixed(1)}`)
  }
  parts.push(`V${base}Z`)
  return parts.join('')
}

/** The rescorer's scores of positives and negatives (runs with --rescore-url), over its own score range. */
function rescoreSection(data: ReportData): string {
  const r = data.manifest.rescore
  const h = data.overall.rescore
  if (r === undefined || h === undefined) return ''
  const W = 760
  const left = 92
  const right = 12
  const panelH = 54
  const gap = 8
  const top = 16
  const [xlo, xhi] = [h.positive.lo, h.positive.hi]
  const x = (v: number): number => left + ((v - xlo) / (xhi - xlo)) * (W - left - right)
  const out: string[] = []
  const series: [keyof typeof COLORS, string, Histogram][] = [['positive', 'positive', h.positive], ['negative', 'negatives', h.negative]]
  series.forEach(([key, label, hist], p) => {
    const y0 = top + p * (panelH + gap)
    const base = y0 + panelH
    const max = Math.max(0, ...hist.counts)
    out.push(`<line x1="${left}" y1="${base}" x2="${W - right}" y2="${base}" class="axis"/>`)
    out.push(`<g class="series" data-series="rescore-${key}" data-total="${hist.total}"><path d="${stepPath(hist, x, xlo, xhi, base, panelH, max)}" fill="${COLORS[key]}" fill-opacity="0.75"/></g>`)
    out.push(`<text x="4" y="${y0 + 14}" class="lbl" fill="${COLORS[key]}">${label}</text><text x="4" y="${y0 + 28}" class="small">n ${int(hist.total)}</text>`)
    const outside = [hist.below > 0 ? `${int(hist.below)} below ${hist.lo}` : '', hist.above > 0 ? `${int(hist.above)} above ${hist.hi}` : ''].filter(Boolean).join(', ')
    if (outside !== '') out.push(`<text x="${W - right}" y="${y0 + 10}" class="small" text-anchor="end">${outside} (not drawn)</text>`)
  })
  const bottom = top + 2 * (panelH + gap) - gap
  const step = (xhi - xlo) / 10
  for (let i = 0; i <= 10; i++) {
    const t = xlo + i * step
    out.push(`<line x1="${x(t).toFixed(1)}" y1="${bottom}" x2="${x(t).toFixed(1)}" y2="${bottom + 4}" class="axis"/><text x="${x(t).toFixed(1)}" y="${bottom + 15}" class="small" text-anchor="middle">${fmt(t, 1)}</text>`)
  }
  const H = bottom + 22
  const c = r.counts
  return `<section id="rescore"><h2>Rescorer scores</h2>
<p class="note">Second stage: <code>${esc(r.identity.api)}</code> with model <code>${esc(r.identity.model)}</code> at ${esc(r.url)}, scores in its own space (${esc(r.identity.scoreSpace)}). A rescored candidate scoring above r(pos) − ${esc(r.rule.margin)}${r.rule.maxScore !== undefined ? ` or above ${esc(r.rule.maxScore)}` : ''} is a false negative; the top ${esc(r.rule.top)} embedding survivors of each query were rescored, negatives taken in ${esc(r.rule.rank)} order. ${int(c.pairsScored)} pairs scored (${int(c.cacheHits)} from the cache, ${int(c.sent)} sent in ${int(c.requests)} requests, ${int(c.retries)} retries); ${int(data.overall.counts?.falseNegativesByRule.rescore)} candidates removed; ${int(c.positiveOutranked)} rows whose positive a rescored candidate outscored (the pair may be noise).</p>
<figure class="chart"><figcaption>rescorer scores of positives and of the chosen negatives</figcaption><svg class="histogram rescore" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="histograms of the rescorer's scores">${out.join('')}</svg></figure></section>`
}

/**
 * FalseNeg% against the margin β from the run's `--sweep-thresholds` (the manifest's
 * counts), as a line chart and a table: UniME's β ablation on the user's own data.
 */
function sweepSection(data: ReportData): string {
  const sweep = data.overall.counts?.sweep
  if (sweep === undefined || sweep.length === 0) return ''
  const points = [...sweep].sort((a, b) => a.threshold - b.threshold)
  const W = 560
  const H = 240
  const left = 52
  const right = 16
  const top = 16
  const bottom = 36
  const lo = Math.min(...points.map(p => p.threshold))
  const hi = Math.max(...points.map(p => p.threshold))
  const span = hi > lo ? hi - lo : 1
  const x = (t: number): number => left + ((t - lo) / span) * (W - left - right) * (hi > lo ? 1 : 0.5) + (hi > lo ? 0 : (W - left - right) / 2)
  const y = (share: number): number => top + (1 - share) * (H - top - bottom)
  const out: string[] = []
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(`<line x1="${left}" y1="${y(tick).toFixed(1)}" x2="${W - right}" y2="${y(tick).toFixed(1)}" class="axis" stroke-opacity="0.3"/>`)
    out.push(`<text x="${left - 6}" y="${(y(tick) + 4).toFixed(1)}" class="small" text-anchor="end">${tick * 100}%</text>`)
  }
  const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.threshold).toFixed(1)} ${y(p.falseNegativeQueryShare).toFixed(1)}`).join('')
  out.push(`<path d="${path}" fill="none" stroke="${COLORS.filtered}" stroke-width="2"/>`)
  for (const p of points) {
    const own = p.threshold === data.rules.threshold
    out.push(`<g class="point" data-threshold="${p.threshold}" data-share="${p.falseNegativeQueryShare}"><circle cx="${x(p.threshold).toFixed(1)}" cy="${y(p.falseNegativeQueryShare).toFixed(1)}" r="${own ? 5 : 3.5}" fill="${own ? '#000' : COLORS.filtered}"/>` +
      `<text x="${x(p.threshold).toFixed(1)}" y="${(y(p.falseNegativeQueryShare) - 8).toFixed(1)}" class="small" text-anchor="middle">${(100 * p.falseNegativeQueryShare).toFixed(1)}%</text></g>`)
    out.push(`<text x="${x(p.threshold).toFixed(1)}" y="${H - bottom + 16}" class="small" text-anchor="middle">${esc(p.threshold)}</text>`)
  }
  out.push(`<text x="${(left + W - right) / 2}" y="${H - 4}" class="small" text-anchor="middle">margin β (a candidate above pos_score + β is a false negative)</text>`)
  const rows = points.map(p => `<tr${p.threshold === data.rules.threshold ? ' class="total"' : ''}><td class="num">${esc(p.threshold)}</td><td class="num">${int(p.falseNegatives)}</td>` +
    `<td class="num">${int(p.queriesWithFalseNegatives)}</td><td class="num">${(100 * p.falseNegativeQueryShare).toFixed(1)}%</td></tr>`)
  return `<section id="sweep"><h2>Threshold sweep</h2>
<p class="note">What the margin rule alone would filter at each β, counted in the same pass as the run (<code>--sweep-thresholds</code>; ${esc(data.manifest.search?.falseNegativeCounts === 'whole-pool' ? 'over the whole pool' : 'over the candidates fetched')}). The run's own β (${esc(data.rules.threshold)}) is the black point. UniME reports FalseNeg% 81.7 / 53.2 / 22.9 / 18.2 / 13.1 for β −0.1 / 0 / 0.1 / 0.2 / 0.3 on its data.</p>
<div class="cols"><figure class="chart"><figcaption>FalseNeg% against β</figcaption><svg class="sweep" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="FalseNeg% against the margin β">${out.join('')}</svg></figure>
<table class="sweep"><tr><th>β</th><th>false negatives</th><th>queries with one</th><th>FalseNeg%</th></tr>${rows.join('')}</table></div></section>`
}

function groupsSection(data: ReportData): string {
  const ruleNames = [...new Set(data.groups.flatMap(g => Object.keys(g.storedByRule)))]
  const row = (label: string, g: GroupReport, cls = ''): string => {
    const c = g.counts
    const stored = ruleNames.map(r => `${esc(r)} ${int(g.storedByRule[r] ?? 0)}`).join(', ')
    return `<tr class="${cls}"><td>${esc(label)}</td><td class="num">${int(c?.rowsIn)}</td><td class="num">${int(g.rows)}</td>` +
      `<td class="num">${c ? pct(c.queriesWithFalseNegatives, c.rowsIn) : pct(g.rowsWithFalseNegatives, g.rows)}</td>` +
      `<td class="num">${int(c?.falseNegatives ?? g.falseNegatives)}</td><td class="num">${int(c?.padded)}</td><td class="num">${int(c?.short)}</td><td class="num">${int(c?.dropped)}</td>` +
      `<td class="num">${fmt(g.positive.mean)}</td><td class="num">${fmt(g.negative.mean)}</td><td class="num">${fmt(g.hardness)}</td>` +
      (data.layout.filtered ? `<td>${stored || '–'}</td>` : '') + '</tr>'
  }
  const head = '<tr><th>group</th><th>pairs in</th><th>rows written</th><th title="share of queries with at least one candidate filtered as a false negative">FalseNeg%</th>' +
    '<th>candidates filtered</th><th>padded</th><th>short</th><th>dropped</th><th>mean pos</th><th>mean neg</th><th title="mean negative score / mean positive score">hardness</th>' +
    (data.layout.filtered ? '<th>stored filtered, by rule</th>' : '') + '</tr>'
  const rows = data.groups.map(g => row(groupName(g.name), g))

  return `<section id="groups"><h2>Per group</h2><table class="groups">${head}${rows.join('')}${data.groups.length > 1 ? row('all', data.overall, 'total') : ''}</table>
<p class="note">Pairs in, FalseNeg%, candidates filtered, padded, short and dropped come from the manifest (dropped rows are not in the shards); the means are over the written rows: mean pos over pos_score, mean neg over the distinct negatives; hardness = mean neg / mean pos (closer to 1: harder negatives).</p></section>`
}

function gallerySection(data: ReportData, classOf: (p: string) => string): string {
  if (data.samplesRequested === 0) return '<section id="gallery"><h2>Gallery</h2><p class="note">No rows sampled (--samples 0).</p></section>'
  const k = data.manifest.options?.k
  const intro = `<p class="note">${data.samples.length} of ${int(data.rows)} rows, drawn uniformly with seed ${data.seed} (<code>--samples ${data.samplesRequested} --seed ${data.seed}</code>), in shard order. ` +
    'Each shows the query and its positive, the chosen negatives with their scores (Δ = score − the row\'s ceiling; padding repeats greyed), and the candidates filtered as false negatives with the rule that filtered them.' +
    (data.layout.filtered ? '' : ' This run was mined without <code>--keep-filtered</code>: the filtered candidates were not stored, only counted.') + '</p>'
  const cards = data.samples.map(s => sampleCard(s, data, classOf, typeof k === 'number' ? k : undefined))
  return `<section id="gallery"><h2>Gallery</h2>${intro}${cards.join('\n')}</section>`
}

function sampleCard(s: SampleRow, data: ReportData, classOf: (p: string) => string, k: number | undefined): string {
  const image = (p: string | undefined, size: 'big' | 'small'): string => {
    if (p === undefined) return ''
    const t = data.thumbnails[p]
    if (t === undefined) return `<span class="path ${size}">${esc(p)}</span>`
    if ('missing' in t) return `<i class="th ${size} missing" title="${esc(t.missing)}">${esc(t.missing.split(':')[0])}</i>`
    return `<i class="th ${size} ${classOf(p)}" title="${esc(p)}"></i>`
  }
  const delta = (score: number): string => `${score - s.ceiling > 0 ? '+' : ''}${fmt(score - s.ceiling)}`
  const negImages = data.layout.images.negatives !== undefined
  const filteredImages = data.layout.images.filtered !== undefined
  const cell = (shown: boolean, p: string | undefined): string => (shown ? `<td>${image(p, 'small')}</td>` : '')
  const rescored = s.posRescore !== undefined
  const negs = s.negatives.map((n, i) => `<tr class="neg${n.repeat ? ' repeat' : ''}"><td class="num rank">${i + 1}</td>${cell(negImages, n.image)}<td>${text(n.text)}</td>` +
    `<td class="num score">${fmt(n.score)}</td><td class="num delta">${delta(n.score)}</td>${rescored ? `<td class="num rescore">${fmt(n.rescore)}</td>` : ''}</tr>`)
  let filtered: string
  if (s.filtered === undefined) filtered = `<p class="note">${int(s.nFalseNegatives)} candidates filtered (not stored: mined without --keep-filtered).</p>`
  else if (s.filtered.length === 0) filtered = `<p class="note">No candidate was filtered for this query.</p>`
  else {
    const rows = s.filtered.map(f => {
      const meaning = ruleMeaning(f.rule, data)
      return `<tr class="filtered-row">${cell(filteredImages, f.image)}<td>${text(f.text)}</td><td class="num score">${fmt(f.score)}</td><td class="num delta">${delta(f.score)}</td>` +
        `<td><span class="rule" title="${esc(meaning ?? 'a rule named by the run')}">${esc(f.rule)}</span></td></tr>`
    })
    const more = s.nFalseNegatives > s.filtered.length ? `, ${int(s.nFalseNegatives - s.filtered.length)} more filtered, not stored` : ''
    filtered = `<table class="filtered${filteredImages ? ' tiles' : ''}"><caption>filtered as false negatives (${s.filtered.length} stored${more})</caption><tr>${filteredImages ? '<th>image</th>' : ''}<th>text</th><th>score</th><th>Δ</th><th>rule</th></tr>${rows.join('')}</table>`
  }
  return `<article class="sample" id="row-${s.index}" data-row="${s.index}">
<header><b>row ${int(s.index + 1)}</b> · id <code>${esc(s.id)}</code> · group <code>${esc(groupName(s.group))}</code> · pos_score <b>${fmt(s.posScore)}</b> · ceiling ${fmt(s.ceiling)} · ${s.nValid}${k === undefined ? '' : `/${k}`} distinct negatives · ${int(s.nFalseNegatives)} filtered</header>
<div class="pair"><div class="side"><h4>query</h4>${image(s.queryImage, 'big')}${text(s.query)}</div><div class="side"><h4>positive <span class="small">${fmt(s.posScore)}${rescored ? ` · rescore <span class="pos-rescore">${fmt(s.posRescore)}</span>` : ''}</span></h4>${image(s.positiveImage, 'big')}${text(s.positive)}</div></div>
<table class="negs${negImages ? ' tiles' : ''}"><caption>negatives</caption><tr><th>#</th>${negImages ? '<th>image</th>' : ''}<th>text</th><th>score</th><th>Δ</th>${rescored ? '<th>rescore</th>' : ''}</tr>${negs.join('')}</table>
${filtered}</article>`
}

function text(t: string): string {
  if (t === '') return '<p class="text empty">(no text)</p>'
  if (t.length <= MAX_TEXT) return `<p class="text">${esc(t)}</p>`
  return `<p class="text">${esc(t.slice(0, MAX_TEXT))}<span class="small"> … ${int(t.length - MAX_TEXT)} more characters</span></p>`
}

/** One CSS class per embedded image, so an image shown several times is in the page once. */
function thumbnailClasses(data: ReportData): { css: string; classOf: (p: string) => string } {
  const classes = new Map<string, string>()
  const rules: string[] = []
  for (const [p, t] of Object.entries(data.thumbnails)) {
    if (!('dataUri' in t)) continue
    const name = `t${classes.size}`
    classes.set(p, name)
    rules.push(`.${name}{background-image:url(${t.dataUri})}`)
  }
  return { css: rules.join('\n'), classOf: p => classes.get(p) ?? '' }
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;margin:0;background:#fafafa}
header,main,footer{max-width:1180px;margin:0 auto;padding:0 16px}
header{padding-top:12px}h1{margin:0;font-size:22px}.sub{color:#555;margin:2px 0 6px}nav a{margin-right:12px}
h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}h3{margin:14px 0 6px;font-size:15px}h4{margin:0 0 4px;font-size:13px;color:#555}
table{border-collapse:collapse;background:#fff;font-size:13px}td,th{border:1px solid #e2e2e2;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0}.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.path{word-break:break-all}
code{font:12px ui-monospace,Menlo,Consolas,monospace}.options td:first-child{white-space:nowrap}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:6px;margin:0}.facts div{background:#fff;border:1px solid #e2e2e2;padding:6px 8px}
.facts dt{color:#555;font-size:12px}.facts dd{margin:0;font-weight:600}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:16px}@media(max-width:900px){.cols{grid-template-columns:1fr}}
.legend{background:#fff;border:1px solid #e2e2e2;padding:4px 12px}.legend ul{margin:4px 0}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{margin:0;background:#fff;border:1px solid #e2e2e2;padding:6px}
figcaption{font-weight:600}svg text{font:11px system-ui,sans-serif}svg .lbl{font-weight:600}svg .small{fill:#555;font-size:10px}svg .na{fill:#888;font-style:italic}
svg .axis{stroke:#999;stroke-width:1}svg .margin{stroke:#000;stroke-width:1.2;stroke-dasharray:4 3}
.groups tr.total td{font-weight:600;background:#f6f6f6}.note{color:#555}.small{color:#666;font-size:11px}
.sample{background:#fff;border:1px solid #d6d6d6;border-radius:4px;margin:14px 0;padding:8px 10px}
.sample>header{padding:0 0 6px;font-size:13px}.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin-bottom:6px}
.side{border-left:3px solid ${COLORS.positive};padding-left:8px}.side:first-child{border-color:#444}
.text{margin:0;white-space:pre-wrap;word-break:break-word;max-height:9em;overflow:auto}.text.empty{color:#888;font-style:italic}
.sample table{width:100%;margin-top:6px}caption{text-align:left;font-weight:600;padding:2px 0}
.sample td:has(>.text){width:70%}.neg.repeat{color:#999}.filtered caption{color:${COLORS.filtered}}
.rule{display:inline-block;background:#fde7e7;color:${COLORS.filtered};border-radius:3px;padding:0 5px;font:12px ui-monospace,monospace}
.th{display:inline-block;background:#eee center/contain no-repeat;vertical-align:top;margin:0 6px 4px 0}
.th.big{width:128px;height:128px}.th.small{width:80px;height:80px}
.th.missing{background:repeating-linear-gradient(45deg,#f3f3f3,#f3f3f3 6px,#e4e4e4 6px,#e4e4e4 12px);border:1px dashed #b00;color:#900;font:11px sans-serif;font-style:normal;text-align:center;display:inline-flex;align-items:center;justify-content:center}
.tiles tbody{display:flex;flex-wrap:wrap;gap:6px}.tiles tr:first-child{display:none}
.tiles tr{display:flex;flex-direction:column;width:124px;border:1px solid #e2e2e2;background:#fff}.tiles td{border:0;padding:1px 5px;width:auto!important;text-align:left}
.tiles .th.small{width:112px;height:84px;margin:0}.tiles .text{max-height:5em;font-size:12px}
.tiles td.num::before{color:#777;font-size:11px}.tiles td.score::before{content:"score "}.tiles td.delta::before{content:"Δ "}.tiles td.rescore::before{content:"rescore "}.tiles td.rank::before{content:"#"}
span.path{display:block;font:11px ui-monospace,monospace;color:#555}
footer{color:#777;font-size:12px;padding:24px 16px}
`
