// The scaling report of a sweep directory, written to be read in a minute: first what was found, in
// sentences with numbers and 95% intervals (the headline law per task and caption distribution,
// whether the slopes separate, the data bottleneck, the paper's laws fitted by the same code); then
// one figure per headline task like the paper's Figure 1; then the tables.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { chanceScore, learnedThreshold } from './chance.js';
import type { FitMethod } from './fit.js';
import { averageSeeds, findBottlenecks, fitLaws, gapsByBudget, gapTrend, slopesSeparate, type AveragedPoint, type BottleneckRow, type GapAtBudget, type GapTrend, type LawRow } from './findings.js';
import { headlineRuleText, headlineVerdict, type HeadlineVerdict } from './headline.js';
import { foldDuplicates, isHeadlineMetric, readableMetric, type FoldedMetric } from './metrics.js';
import { paperLaws, paperPlots, paperSentences, type PaperLaw } from './paper.js';
import { splitPlateau } from './plateau.js';
import { escapeXml, markers, palette, renderSvg, type LineStyle, type PlotSeries } from './plot.js';
import { pointKey, readResults, recordCompute, recordKey, type ScalingRecord } from './record.js';

export type { BottleneckRow, LawRow } from './findings.js';

export interface ReportOptions {
  /** Fit method of the laws (default: the paper's 'pareto-bins', falling back to 'all' when the points fall in one bin). */
  method?: FitMethod;
  bootstrapSamples?: number;
  seed?: number;
  /** Fit the paper's published results too and show them beside ours (default true). */
  paper?: boolean;
}

export interface Plot {
  file: string;
  title: string;
  svg: string;
}

export interface Report {
  markdown: string;
  html: string;
  /** SVG files by file name: the headline figures first. */
  plots: Plot[];
  /** The summary, one sentence (or short paragraph) per finding, as in the report's first section. */
  summary: string[];
  laws: LawRow[];
  /** Metrics with a law in the summary and a figure of their own. */
  headline: string[];
  /** Learned Figure 1 metrics left out of the headline, with the reason (weakly learned, saturates). */
  demoted: HeadlineVerdict[];
  /** Metrics near chance in every distribution: no law reported. */
  notLearned: string[];
  /** Runs that never left the plateau at ln(batch size), by recordKey. */
  plateau: string[];
  folded: FoldedMetric[];
  bottlenecks: BottleneckRow[];
  gaps: GapAtBudget[];
  trend: GapTrend | null;
  paper: PaperLaw[];
}

const fmt = (v: number, digits = 3) => (Number.isFinite(v) ? Number(v.toPrecision(digits)).toString() : String(v));
const pct = (v: number) => `${(100 * v).toFixed(v !== 0 && Math.abs(v) < 0.1 ? 1 : 0)}%`;
const fileSafe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');
const unique = <T>(values: T[]): T[] => [...new Set(values)];

/** How many seeds the fitted points average, for the method note. */
function seedsText(laws: LawRow[]): string {
  const fitted = laws.filter((l) => l.n > 0);
  if (!fitted.length) return 'one seed per point';
  const lo = Math.min(...fitted.map((l) => l.seeds[0]));
  const hi = Math.max(...fitted.map((l) => l.seeds[1]));
  if (hi <= 1) return 'one seed per point';
  const count = lo === hi ? `${hi} seeds` : `${lo} to ${hi} seeds (fewer where a seed's run stayed at the plateau)`;
  return `${count} per point: a point's error is the mean over its seeds before the frontier is taken, and the bootstrap resamples points`;
}

function fmtCount(n: number): string {
  for (const [unit, v] of [['B', 1e9], ['M', 1e6], ['k', 1e3]] as const) if (n >= v) return `${Number((n / v).toPrecision(3))}${unit}`;
  return String(n);
}

function lawText(f: { alpha: number; beta: number }): string {
  return `E = ${fmt(f.beta)}·C^${fmt(f.alpha)}`;
}

function ciText(ci: [number, number]): string {
  return `95% CI ${fmt(ci[0])} to ${fmt(ci[1])}`;
}

function modelOrder(records: ScalingRecord[]): string[] {
  const gm = new Map<string, number>();
  for (const r of records) gm.set(r.model, r.gmacs);
  return [...gm.keys()].sort((a, b) => gm.get(a)! - gm.get(b)! || a.localeCompare(b));
}

function decades(values: number[]): number {
  return values.length ? Math.log10(Math.max(...values) / Math.min(...values)) : 0;
}

/** Which runs were stuck, e.g. 'micro at 1.02k-4.1k samples seen, tiny at 1.02k'. */
function stuckList(plateau: ScalingRecord[], models: string[]): string {
  return models
    .filter((m) => plateau.some((r) => r.model === m))
    .map((m) => {
      const budgets = unique(plateau.filter((r) => r.model === m).map((r) => r.samples_seen)).sort((a, b) => a - b);
      return `${m} at ${budgets.map(fmtCount).join(', ')} samples seen`;
    })
    .join('; ');
}

/** Why a task may stay at chance in the synthetic world. */
function notLearnedHint(metric: string): string {
  if (/^zeroshot_shape_acc/.test(metric)) return ' (its objects are 6-14 pixels across in 32-pixel images cut into 8-pixel patches; within these budgets the models learn colour long before shape)';
  return '';
}

// ---------------------------------------------------------------------------------------------
// Figures

/** The paper's Figure 1 for one task: every run, frontier points used by the fit filled, fit lines with 95% bands, chance. */
function headlineFigure(metric: string, usable: ScalingRecord[], plateau: ScalingRecord[], laws: LawRow[], distributions: string[]): Plot | null {
  const pts = usable.filter((r) => r.metrics[metric] !== undefined && 1 - r.metrics[metric] > 0);
  if (pts.length === 0) return null;
  const sizes = unique(usable.map((r) => r.data_size)).sort((a, b) => b - a);
  const series: PlotSeries[] = [];
  const notes: string[] = [];
  distributions.forEach((dist, di) => {
    const color = palette[(di + 1) % palette.length];
    const law = laws.find((l) => l.task === metric && l.distribution === dist);
    const used = new Set(law?.fit?.used ?? []);
    sizes.forEach((size, si) => {
      const mine = pts.filter((r) => r.distribution === dist && r.data_size === size);
      if (!mine.length) return;
      const marker = si === 0 ? 'circle' : markers[(si + 1) % markers.length];
      // a point is drawn as the fit sees it: its error averaged over its seeds
      const points = averageSeeds(mine, metric).filter((p) => p.error > 0);
      const frontier = points.filter((p) => used.has(p.key));
      const others = points.filter((p) => !used.has(p.key));
      const xy = (ps: AveragedPoint[]) => ps.map((p) => ({ x: p.compute, y: p.error }));
      series.push({ label: `${dist}, data set of ${fmtCount(size)}`, points: xy(frontier), color, marker, hollow: frontier.length === 0 });
      if (others.length) series.push({ label: `${dist}, ${fmtCount(size)} (not on the frontier)`, points: xy(others), color, marker, hollow: true, hideInLegend: true });
    });
    if (law?.fit) {
      const f = law.fit;
      series.push({
        label: `${dist}: ${lawText(f)}`,
        points: f.band.map((b) => ({ x: b.x, y: f.beta * b.x ** f.alpha })),
        color,
        marker: 'none',
        line: 'dashed',
        band: f.band,
      });
      notes.push(`${dist}: α ${fmt(f.alpha)} [${fmt(f.ci.alpha[0])}, ${fmt(f.ci.alpha[1])}], r² ${f.r2.toFixed(2)}`);
    } else if (law) {
      notes.push(`${dist}: ${law.learned ? 'no law fitted' : 'not learned'}`);
    }
  });
  const stuck = plateau.filter((r) => r.metrics[metric] !== undefined && 1 - r.metrics[metric] > 0);
  if (stuck.length) {
    series.push({ label: 'never left the plateau (not fitted)', points: stuck.map((r) => ({ x: recordCompute(r), y: 1 - r.metrics[metric] })), color: '#999999', marker: 'diamond', hollow: true });
  }
  const maxSeeds = Math.max(1, ...laws.filter((l) => l.task === metric).map((l) => l.seeds?.[1] ?? 1));
  notes.push('[ ]: 95% interval of α; band: 95% of the line', 'filled: frontier points the fit uses', maxSeeds > 1 ? 'hollow: the other points; each point: mean over its seeds' : 'hollow: the other runs');
  const chance = chanceScore(metric, pts[0]);
  const title = `${readableMetric(metric)}: error vs compute`;
  const svg = renderSvg({
    title,
    xLabel: 'Compute C (GMACs per sample × samples seen)',
    yLabel: 'error (1 − score)',
    series,
    xLog: true,
    yLog: true,
    notes,
    width: 1000,
    legendWidth: 320,
    references: chance !== null && chance < 1 ? [{ y: 1 - chance, label: `chance (E = ${fmt(1 - chance)})`, color: '#555555' }] : [],
  });
  return { file: `figure_${fileSafe(metric)}.svg`, title, svg };
}

/** Error against samples seen for one task and distribution: a line per model and data size (the bottleneck shows as lines that part). */
function samplesPlot(metric: string, dist: string, records: ScalingRecord[], models: string[]): Plot | null {
  const pts = records.filter((r) => r.distribution === dist && r.metrics[metric] !== undefined && 1 - r.metrics[metric] > 0);
  if (pts.length === 0) return null;
  const sizes = unique(pts.map((r) => r.data_size)).sort((a, b) => b - a);
  const styles: LineStyle[] = ['solid', 'dashed', 'dotted'];
  const series: PlotSeries[] = [];
  models.forEach((model, mi) => {
    sizes.forEach((size, si) => {
      // one point per budget: the mean over its seeds (the line would zigzag between seeds otherwise)
      const runs = pts.filter((r) => r.model === model && r.data_size === size);
      const mine = averageSeeds(runs, metric)
        .map((p) => ({ x: runs.find((r) => pointKey(r) === p.key)!.samples_seen, y: p.error }))
        .sort((a, b) => a.x - b.x);
      if (mine.length) series.push({ label: `${model}, data ${fmtCount(size)}`, points: mine, color: palette[mi % palette.length], marker: markers[si % markers.length], line: styles[si % styles.length] });
    });
  });
  const title = `${readableMetric(metric)}, ${dist}: error vs samples seen`;
  const svg = renderSvg({ title, xLabel: 'Samples seen', yLabel: 'error (1 − score)', series, xLog: true, yLog: true });
  return { file: `samples_${fileSafe(metric)}_${fileSafe(dist)}.svg`, title, svg };
}

// ---------------------------------------------------------------------------------------------
// Sentences

function lawClause(l: LawRow): string {
  if (!l.learned) return `${l.distribution}: not learned (best ${fmt(l.best)} against chance ${fmt(l.chance ?? 0)})`;
  if (!l.fit) return `${l.distribution}: no law fitted (${l.reason})`;
  const f = l.fit;
  const weak = f.r2 < 0.9 ? ' — a weak law, r² below 0.9' : '';
  const direction = f.ci.alpha[1] < 0 ? 'error falls as' : f.ci.alpha[0] > 0 ? 'error RISES with compute:' : 'no clear trend (the interval on α holds 0):';
  return `${l.distribution}: ${direction} ${lawText(f)} (α ${ciText(f.ci.alpha)}), r² ${f.r2.toFixed(2)} over ${f.decades.toFixed(1)} decades of compute${weak}`;
}

function headlineSentence(metric: string, laws: LawRow[]): string {
  const rows = laws.filter((l) => l.task === metric);
  const parts = rows.map(lawClause);
  let verdict = '';
  const fitted = rows.filter((l) => l.fit && l.learned && l.fit.ci.alpha[1] < 0);
  if (fitted.length >= 2) {
    const [a, b] = fitted;
    const faster = a.fit!.alpha < b.fit!.alpha ? a : b;
    verdict = slopesSeparate(a.fit!, b.fit!)
      ? ` The slopes separate: ${faster.distribution} scales faster (the 95% intervals on α do not overlap).`
      : ` The 95% intervals on α overlap: this study does not separate the two slopes.`;
  }
  return `**${readableMetric(metric)}** — ${parts.join('; ')}.${verdict}`;
}

/** A learned task left out of the headline: why, and its laws all the same. */
function demotedSentence(v: HeadlineVerdict, laws: LawRow[]): string {
  const rows = laws.filter((l) => l.task === v.metric);
  let why = '';
  if (v.status === 'weakly learned') {
    why = `weakly learned: its best score is ${fmt(v.best)} against chance ${fmt(v.chance)}, ${pct(v.progress)} of the way from chance to a perfect score${notLearnedHint(v.metric)}`;
  } else if (v.status === 'saturates') {
    why = `it saturates: a perfect score at ${v.perfect.map((p) => `${p.points} ${p.distribution} point${p.points > 1 ? 's' : ''}`).join(' and ')} (the error hits the evaluation's floor inside the grid, so the top of the compute range measures nothing)`;
  }
  return `**${readableMetric(v.metric)}** — not a headline law, ${why}. Its fits all the same: ${rows.map(lawClause).join('; ')}.`;
}

function bottleneckSentence(gaps: GapAtBudget[], trend: GapTrend | null, smallest: number, largest: number, tasks: number): string | null {
  if (gaps.length < 2 || !trend) return null;
  const first = gaps[0];
  const last = gaps[gaps.length - 1];
  const grows = trend.ci[0] > 0;
  const at = (g: GapAtBudget) => `${pct(g.mean)} (95% CI ${pct(g.ci[0])} to ${pct(g.ci[1])}) at ${fmtCount(g.samples_seen)} samples seen (${fmt(g.passes, 2)} passes over the small set)`;
  return (
    `**Data bottleneck** — at equal model and samples seen, training on ${fmtCount(smallest)} instead of ${fmtCount(largest)} distinct samples raises the error by ${at(first)} and by ${at(last)} ` +
    `(geometric mean of E_small / E_large over ${last.comparisons} model × task × distribution comparisons, ${tasks} headline tasks, minus 1). ` +
    `Across all ${trend.comparisons} comparisons, ln(E_small / E_large) grows by ${fmt(trend.slope)} per decade of samples seen (95% CI ${fmt(trend.ci[0])} to ${fmt(trend.ci[1])}): ` +
    (grows ? 'the gap grows with samples seen — repeated samples give less than fresh ones, so growing samples seen alone hits the data bottleneck.' : 'the interval holds 0, so this study does not show the gap growing with samples seen.')
  );
}

function paperComparison(paper: PaperLaw[], laws: LawRow[], headline: string[]): string | null {
  if (!paper.length) return null;
  const ours: string[] = [];
  for (const metric of headline) {
    const fitted = laws.filter((l) => l.task === metric && l.fit && l.learned && l.fit.ci.alpha[1] < 0);
    if (fitted.length < 2) continue;
    const [a, b] = fitted;
    const faster = a.fit!.alpha < b.fit!.alpha ? a : b;
    ours.push(`${readableMetric(metric)}: ${faster.distribution}${slopesSeparate(a.fit!, b.fit!) ? '' : ' (not separated)'}`);
  }
  return (
    "**The paper beside ours** — the same fitting code on the paper's published results (lib/scaling/paper/): " +
    paperSentences(paper).join(' ') +
    (ours.length ? ` In this study, the distribution that scales faster: ${ours.join('; ')}.` : '')
  );
}

// ---------------------------------------------------------------------------------------------
// Markdown and HTML from one list of blocks

type Block =
  | { kind: 'h1' | 'h2' | 'h3' | 'p'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; header: string[]; rows: string[][] }
  | { kind: 'figure'; file: string; title: string };

function toMarkdown(blocks: Block[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out: string[] = [];
  for (const b of blocks) {
    if (b.kind === 'h1') out.push(`# ${b.text}`, '');
    else if (b.kind === 'h2') out.push(`## ${b.text}`, '');
    else if (b.kind === 'h3') out.push(`### ${b.text}`, '');
    else if (b.kind === 'p') out.push(b.text, '');
    else if (b.kind === 'list') out.push(...b.items.map((i) => `- ${i}`), '');
    else if (b.kind === 'table') out.push(`| ${b.header.map(esc).join(' | ')} |`, `| ${b.header.map(() => '---').join(' | ')} |`, ...b.rows.map((r) => `| ${r.map(esc).join(' | ')} |`), '');
    else if (b.kind === 'figure') out.push(`![${b.title}](${b.file})`, '');
  }
  return out.join('\n');
}

/** Escapes text for HTML and turns **bold** and `code` into tags. */
function inline(text: string): string {
  return escapeXml(text).replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>').replace(/`([^`]+)`/g, '<code>$1</code>');
}

function toHtml(blocks: Block[], title: string): string {
  const out = [
    '<!DOCTYPE html>',
    `<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>`,
    '<style>body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}',
    'table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}',
    'th{background:#f4f4f4}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}li{margin:0.4em 0}</style></head><body>',
  ];
  for (const b of blocks) {
    if (b.kind === 'h1' || b.kind === 'h2' || b.kind === 'h3') out.push(`<${b.kind}>${inline(b.text)}</${b.kind}>`);
    else if (b.kind === 'p') out.push(`<p>${inline(b.text)}</p>`);
    else if (b.kind === 'list') out.push(`<ul>${b.items.map((i) => `<li>${inline(i)}</li>`).join('')}</ul>`);
    else if (b.kind === 'table') out.push(`<table><thead><tr>${b.header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${b.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`);
    else if (b.kind === 'figure') out.push(`<figure><img src="${escapeXml(b.file)}" alt="${escapeXml(b.title)}"><figcaption>${escapeXml(b.title)}</figcaption></figure>`);
  }
  out.push('<p><a href="report.md">report.md</a></p>', '</body></html>', '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------

/** Builds the report of a set of records (no files written). */
export function buildReport(records: ScalingRecord[], options: ReportOptions = {}, source = 'results.jsonl'): Report {
  if (records.length === 0) throw new Error(`report: ${source} holds no records`);
  const { metrics, folded } = foldDuplicates(records);
  const { usable, plateau } = splitPlateau(records);
  const laws = fitLaws(usable, metrics, plateau, options);
  const distributions = unique(records.map((r) => r.distribution)).sort();
  const models = modelOrder(records);
  const learnedSomewhere = (m: string) => laws.some((l) => l.task === m && l.learned);
  // the paper's Figure 1 metrics where the records have them; otherwise every metric
  const named = metrics.filter(isHeadlineMetric);
  const candidates = named.length ? named : metrics;
  // one rule for every learned task: weakly learned or saturating tasks have no law to headline
  const verdicts = candidates.filter(learnedSomewhere).map((m) => headlineVerdict(m, laws));
  const headline = verdicts.filter((v) => v.status === 'headline').map((v) => v.metric);
  const demoted = verdicts.filter((v) => v.status !== 'headline');
  const notLearned = metrics.filter((m) => laws.some((l) => l.task === m) && !learnedSomewhere(m));
  const notLearnedHeadline = notLearned.filter((m) => candidates.includes(m));
  const dataSizes = unique(records.map((r) => r.data_size)).sort((a, b) => a - b);
  const budgets = unique(records.map((r) => r.samples_seen)).sort((a, b) => a - b);

  const bottlenecks = findBottlenecks(usable, metrics);
  const headlineBottlenecks = bottlenecks.filter((b) => headline.includes(b.task));
  const gaps = gapsByBudget(headlineBottlenecks, 2000, options.seed ?? 0);
  const trend = gapTrend(headlineBottlenecks, 2000, options.seed ?? 0);
  const paper = options.paper === false ? [] : paperLaws({ bootstrapSamples: options.bootstrapSamples ?? 1000, seed: options.seed ?? 0 });

  // --- summary
  const compute = records.map(recordCompute);
  const gmacs = unique(records.map((r) => r.gmacs));
  const summary: string[] = [];
  summary.push(
    `**What was trained** — ${records.length} runs: ${models.length} model${models.length > 1 ? 's' : ''} (${models.join(', ')}: ${decades(gmacs).toFixed(2)} decades of GMACs per sample), ` +
      `${budgets.length} budgets (${fmtCount(budgets[0])} to ${fmtCount(budgets[budgets.length - 1])} samples seen: ${decades(budgets).toFixed(2)} decades), ` +
      `${dataSizes.length} data size${dataSizes.length > 1 ? 's' : ''} (${dataSizes.map(fmtCount).join(', ')} distinct samples), caption distributions ${distributions.join(' and ')}; ` +
      `compute C spans ${decades(compute).toFixed(2)} decades. ` +
      (plateau.length
        ? `${plateau.length} run${plateau.length > 1 ? 's' : ''} never left the loss plateau at ln(batch size) (${stuckList(plateau, models)}): flagged, drawn grey and left out of every fit.`
        : 'Every run left the loss plateau at ln(batch size).'),
  );
  for (const m of headline) summary.push(headlineSentence(m, laws));
  for (const v of demoted) summary.push(demotedSentence(v, laws));
  for (const m of notLearnedHeadline) {
    const rows = laws.filter((l) => l.task === m);
    const best = Math.max(...rows.map((l) => l.best));
    const chance = rows[0].chance ?? 0;
    if (rows.every((l) => l.n === 0 && !l.perfect)) {
      summary.push(`**${readableMetric(m)}** — no law: every run never left the plateau.`);
      continue;
    }
    summary.push(`**${readableMetric(m)}** — not learned: its best score is ${fmt(best)} against chance ${fmt(chance)} (a task counts as learned from ${fmt(learnedThreshold(chance))})${notLearnedHint(m)}; no law is reported for it.`);
  }
  const b = bottleneckSentence(gaps, trend, dataSizes[0], dataSizes[dataSizes.length - 1], unique(headlineBottlenecks.map((x) => x.task)).length);
  if (b) summary.push(b);
  else if (dataSizes.length < 2) summary.push('**Data bottleneck** — not measured: this grid has one data size (the full preset has two).');
  const p = paperComparison(paper, laws, headline);
  if (p) summary.push(p);

  // --- figures
  const figures: Plot[] = [];
  for (const m of headline) {
    const f = headlineFigure(m, usable, plateau, laws, distributions);
    if (f) figures.push(f);
  }
  const samplePlots: Plot[] = [];
  if (dataSizes.length > 1) {
    for (const m of headline) {
      for (const d of distributions) {
        const s = samplesPlot(m, d, usable, models);
        if (s) samplePlots.push(s);
      }
    }
  }
  const paperFigures = paperPlots(paper);

  // --- tables
  const method = laws.find((l) => l.fit)?.fit?.method ?? options.method ?? 'pareto-bins';
  const lawNote =
    `E = β·C^α with C = GMACs per sample × samples seen and E = 1 − score, fitted in log₁₀–log₁₀ space ` +
    `(${method === 'pareto-bins' ? "the paper's method: the lowest error in each of 5 equal bins of log C, fitted at the bin centres" : 'least squares on every point'}) ` +
    `on the runs that left the plateau; intervals are percentile bootstrap intervals over the points (${options.bootstrapSamples ?? 1000} resamples, seed ${options.seed ?? 0}), ${seedsText(laws)}.`;
  const lawHeader = ['task', ...distributions.flatMap((d) => [`${d}: α (95% CI)`, `${d}: β`, `${d}: r²`]), 'status'];
  const lawRows = metrics.map((task) => [
    task,
    ...distributions.flatMap((d) => {
      const l = laws.find((x) => x.task === task && x.distribution === d);
      if (!l?.fit) return ['—', '—', '—'];
      return [`${fmt(l.fit.alpha)} (${fmt(l.fit.ci.alpha[0])} to ${fmt(l.fit.ci.alpha[1])})`, fmt(l.fit.beta), fmt(l.fit.r2, 2)];
    }),
    headline.includes(task) ? 'headline' : demoted.find((v) => v.metric === task)?.status ?? (notLearned.includes(task) ? 'not learned' : laws.some((l) => l.task === task && !l.learned) ? 'learned by some' : 'learned'),
  ]);
  const lawLines = laws.map((l) => {
    const tail = `${l.n} points${l.seeds[1] > 1 ? ` (${l.runs} runs: ${l.seeds[0] === l.seeds[1] ? l.seeds[0] : `${l.seeds[0]} to ${l.seeds[1]}`} seeds a point, errors averaged)` : ''}${l.perfect ? ` (${l.perfect} with a perfect score left out)` : ''}${l.plateau ? `, ${l.plateau} stuck at the plateau left out` : ''}`;
    if (l.n === 0 && !l.perfect) return `${l.task} / ${l.distribution}: no law: every run never left the plateau; ${tail}.`;
    if (!l.learned) return `${l.task} / ${l.distribution}: not learned: best ${fmt(l.best)}, chance ${fmt(l.chance ?? 0)}; ${tail}.`;
    if (!l.fit) return `${l.task} / ${l.distribution}: no law fitted (${l.reason}); ${tail}.`;
    return `${l.task} / ${l.distribution}: ${lawText(l.fit)} (α = ${l.fit.alpha.toFixed(4)}, β = ${l.fit.beta.toFixed(4)}, ${ciText(l.fit.ci.alpha)}, r² = ${fmt(l.fit.r2, 2)}, ${l.fit.method} over ${l.fit.decades.toFixed(2)} decades), ${tail}.`;
  });
  const bottleneckHeader = ['task', 'distribution', 'model', 'samples seen', 'error by data size', 'E_small / E_large − 1'];
  const bottleneckRows = headlineBottlenecks.map((x) => [x.task, x.distribution, x.model, fmtCount(x.samples_seen), x.errors.map((e) => `${fmtCount(e.data_size)}: ${fmt(e.error)}`).join(', '), pct(x.gap)]);
  const gapHeader = ['samples seen', 'passes over the small set', 'comparisons', 'geometric mean of E_small / E_large, − 1', '95% CI'];
  const gapRows = gaps.map((g) => [fmtCount(g.samples_seen), fmt(g.passes, 3), String(g.comparisons), pct(g.mean), `${pct(g.ci[0])} to ${pct(g.ci[1])}`]);
  const plateauKeys = new Set(plateau.map(recordKey));
  const pointHeader = ['model', 'GMACs/sample', 'params', 'data size', 'samples seen', 'distribution', 'compute (GMACs)', 'final loss', ...metrics, 'CPU s', 'wall s', 'flag'];
  const pointRows = [...records]
    .sort((a, c) => a.distribution.localeCompare(c.distribution) || recordCompute(a) - recordCompute(c))
    .map((r) => [
      r.model,
      fmt(r.gmacs),
      fmtCount(r.params),
      fmtCount(r.data_size),
      fmtCount(r.samples_seen),
      r.distribution,
      fmt(recordCompute(r)),
      typeof r.final_loss === 'number' ? r.final_loss.toFixed(3) : '—',
      ...metrics.map((t) => (r.metrics[t] === undefined ? '—' : fmt(r.metrics[t]))),
      typeof r.cpu_s === 'number' ? fmt(r.cpu_s) : '—',
      fmt(r.wall_s),
      plateauKeys.has(recordKey(r)) ? 'never left the plateau' : '',
    ]);
  const paperHeader = ['task', 'dataset', 'law', 'α 95% CI', 'r²', 'runs', 'fit'];
  const paperRows = paper.map((l) => [l.task, l.dataset, lawText(l), `${fmt(l.ci.alpha[0])} to ${fmt(l.ci.alpha[1])}`, l.r2.toFixed(2), String(l.n), l.method]);
  const cpuTotal = records.reduce((s, r) => s + (typeof r.cpu_s === 'number' ? r.cpu_s : 0), 0);

  const title = 'Scaling report';
  const blocks: Block[] = [
    { kind: 'h1', text: title },
    { kind: 'h2', text: 'What this study found' },
    { kind: 'list', items: summary },
    { kind: 'p', text: `${headlineRuleText()} ${lawNote} Source: \`${source}\`${cpuTotal > 0 ? `; ${fmt(cpuTotal / 60, 3)} CPU-minutes of training and evaluation in all` : ''}.` },
    ...(figures.length ? [{ kind: 'h2' as const, text: 'Figures: error vs compute, as the paper\'s Figure 1' }, ...figures.map((f) => ({ kind: 'figure' as const, file: f.file, title: f.title }))] : []),
    ...(paperFigures.length
      ? [
          { kind: 'h2' as const, text: "The paper's Figure 1, fitted by the same code" },
          { kind: 'table' as const, header: paperHeader, rows: paperRows },
          ...paperFigures.map((f) => ({ kind: 'figure' as const, file: f.file, title: f.title })),
        ]
      : []),
    { kind: 'h2', text: 'Laws of every task' },
    { kind: 'table', header: lawHeader, rows: lawRows },
    { kind: 'list', items: lawLines },
    ...(folded.length ? [{ kind: 'p' as const, text: `Folded (equal on every point, shown once): ${folded.map((f) => `${f.metric} = ${f.sameAs}`).join('; ')}. On the balanced zero-shot sets mean per-class recall is top-1 accuracy.` }] : []),
    ...(gapRows.length
      ? [
          { kind: 'h2' as const, text: 'Data size at equal model and samples seen' },
          { kind: 'table' as const, header: gapHeader, rows: gapRows },
          ...samplePlots.map((f) => ({ kind: 'figure' as const, file: f.file, title: f.title })),
          { kind: 'table' as const, header: bottleneckHeader, rows: bottleneckRows },
        ]
      : []),
    { kind: 'h2', text: 'Every run' },
    { kind: 'table', header: pointHeader, rows: pointRows },
  ];

  return {
    markdown: toMarkdown(blocks),
    html: toHtml(blocks, title),
    plots: [...figures, ...paperFigures, ...samplePlots],
    summary,
    laws,
    headline,
    demoted,
    notLearned,
    plateau: plateau.map(recordKey),
    folded,
    bottlenecks,
    gaps,
    trend,
    paper,
  };
}

/** Reads DIR/results.jsonl and writes DIR/report.md, DIR/index.html and the SVG plots beside them. */
export function writeReport(dir: string, options: ReportOptions & { outDir?: string } = {}): Report & { files: string[]; tornLines: number[] } {
  const path = join(dir, 'results.jsonl');
  const { records, tornLines } = readResults(path);
  const report = buildReport(records, options, path);
  const outDir = options.outDir ?? dir;
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  const write = (name: string, text: string) => {
    const p = join(outDir, name);
    writeFileSync(p, text);
    files.push(p);
  };
  write('report.md', report.markdown);
  for (const p of report.plots) write(p.file, p.svg);
  write('index.html', report.html);
  return { ...report, files, tornLines };
}
