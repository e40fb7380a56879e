// The scaling report of a sweep directory: fits E = β·C^α per task and caption distribution,
// looks for a data-size bottleneck, and writes report.md, SVG plots and index.html.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { bootstrapFit, type ConfidenceIntervals } from './bootstrap.js';
import { type FitMethod } from './fit.js';
import { escapeXml, markers, palette, renderSvg, type LineStyle, type PlotSeries } from './plot.js';
import { readResults, recordCompute, type ScalingRecord } from './record.js';

export interface LawRow {
  task: string;
  distribution: string;
  /** Points with this task's metric. */
  n: number;
  /** Of those, points left out of the fit because their score is perfect (E = 0 has no logarithm). */
  perfect?: number;
  /** The fitted law, or null with `reason` when there were too few points. */
  fit: { alpha: number; beta: number; r2: number; method: FitMethod; ci: ConfidenceIntervals } | null;
  reason?: string;
}

export interface BottleneckRow {
  task: string;
  distribution: string;
  model: string;
  samples_seen: number;
  /** Error with each data size at this model and budget, smallest data size first. */
  errors: { data_size: number; error: number }[];
  /** Relative error increase of the smallest data size over the largest, E_small / E_large − 1: > 0 where less data hurts. */
  gap: number;
}

export interface ReportOptions {
  /** Fit method of the laws (default: the paper's 'pareto-bins', falling back to 'all' when the points fall in one bin). */
  method?: FitMethod;
  bootstrapSamples?: number;
  seed?: number;
}

export interface Report {
  markdown: string;
  html: string;
  /** SVG files by file name. */
  plots: { file: string; title: string; svg: string }[];
  laws: LawRow[];
  bottlenecks: BottleneckRow[];
}

const fmt = (v: number, digits = 3) => (Number.isFinite(v) ? Number(v.toPrecision(digits)).toString() : String(v));
const fileSafe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function sortedTasks(records: ScalingRecord[]): string[] {
  return unique(records.flatMap((r) => Object.keys(r.metrics))).sort();
}

/** Fits one law per task and distribution. */
export function fitLaws(records: ScalingRecord[], options: ReportOptions = {}): LawRow[] {
  const rows: LawRow[] = [];
  for (const task of sortedTasks(records)) {
    for (const distribution of unique(records.map((r) => r.distribution)).sort()) {
      const all = records.filter((r) => r.distribution === distribution && r.metrics[task] !== undefined);
      if (all.length === 0) continue;
      // A perfect score (E = 0, e.g. recall@10 on a small retrieval set) cannot sit on log axes: it is left out and counted.
      const points = all.filter((r) => 1 - r.metrics[task] > 0);
      const perfect = all.length - points.length;
      const compute = points.map(recordCompute);
      const error = points.map((r) => 1 - r.metrics[task]);
      const methods: FitMethod[] = options.method ? [options.method] : ['pareto-bins', 'all'];
      let row: LawRow = { task, distribution, n: points.length, ...(perfect ? { perfect } : {}), fit: null };
      const reasons: string[] = [];
      for (const method of methods) {
        try {
          const b = bootstrapFit(compute, error, { method, samples: options.bootstrapSamples ?? 1000, seed: options.seed ?? 0 });
          row = { task, distribution, n: points.length, ...(perfect ? { perfect } : {}), fit: { alpha: b.fit.alpha, beta: b.fit.beta, r2: b.fit.r2, method, ci: b.ci } };
          break;
        } catch (err) {
          reasons.push(`${method}: ${(err as Error).message}`);
        }
      }
      if (!row.fit) row.reason = reasons.join('; ');
      rows.push(row);
    }
  }
  return rows;
}

/** For each task, distribution, model and budget seen with several data sizes: how much less data costs. */
export function findBottlenecks(records: ScalingRecord[]): BottleneckRow[] {
  const out: BottleneckRow[] = [];
  const groups = new Map<string, ScalingRecord[]>();
  for (const r of records) {
    const key = JSON.stringify([r.distribution, r.model, r.samples_seen]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const task of sortedTasks(records)) {
    for (const group of groups.values()) {
      const withTask = group.filter((r) => r.metrics[task] !== undefined);
      const sizes = unique(withTask.map((r) => r.data_size)).sort((a, b) => a - b);
      if (sizes.length < 2) continue;
      // several runs of one data size (seeds) are averaged
      const errors = sizes.map((data_size) => {
        const runs = withTask.filter((r) => r.data_size === data_size);
        return { data_size, error: runs.reduce((s, r) => s + 1 - r.metrics[task], 0) / runs.length };
      });
      const { distribution, model, samples_seen } = group[0];
      // a relative gap over a perfect score (E = 0) is not a number
      if (!(errors[errors.length - 1].error > 0)) continue;
      out.push({ task, distribution, model, samples_seen, errors, gap: errors[0].error / errors[errors.length - 1].error - 1 });
    }
  }
  const order = modelOrder(records);
  return out.sort((a, b) => a.task.localeCompare(b.task) || a.distribution.localeCompare(b.distribution) || order.indexOf(a.model) - order.indexOf(b.model) || a.samples_seen - b.samples_seen);
}

function lawText(f: { alpha: number; beta: number }): string {
  return `E = ${fmt(f.beta)}·C^${fmt(f.alpha)}`;
}

function modelOrder(records: ScalingRecord[]): string[] {
  const gm = new Map<string, number>();
  for (const r of records) gm.set(r.model, r.gmacs);
  return [...gm.keys()].sort((a, b) => gm.get(a)! - gm.get(b)! || a.localeCompare(b));
}

/** Plots of error against compute for one task: every point, and each distribution's fitted line. */
function computePlot(task: string, records: ScalingRecord[], laws: LawRow[], distributions: string[], models: string[]): { file: string; title: string; svg: string } | null {
  if (!records.some((r) => r.metrics[task] !== undefined && 1 - r.metrics[task] > 0)) return null; // every score perfect: nothing on log axes
  const series: PlotSeries[] = [];
  const notes: string[] = [];
  distributions.forEach((dist, di) => {
    const color = palette[di % palette.length];
    const pts = records.filter((r) => r.distribution === dist && r.metrics[task] !== undefined);
    models.forEach((model, mi) => {
      const mine = pts.filter((r) => r.model === model && 1 - r.metrics[task] > 0).map((r) => ({ x: recordCompute(r), y: 1 - r.metrics[task] }));
      if (mine.length) series.push({ label: `${dist} · ${model}`, points: mine, color, marker: markers[mi % markers.length], line: 'none' });
    });
    const law = laws.find((l) => l.task === task && l.distribution === dist)?.fit;
    if (law && pts.length) {
      const cs = pts.map(recordCompute);
      const lo = Math.min(...cs);
      const hi = Math.max(...cs);
      const line = Array.from({ length: 20 }, (_, i) => lo * (hi / lo) ** (i / 19)).map((x) => ({ x, y: law.beta * x ** law.alpha }));
      series.push({ label: `${dist} fit (${law.method})`, points: line, color, marker: 'none', line: 'dashed' });
      notes.push(`${dist}: ${lawText(law)}`);
    }
  });
  const title = `${task}: error vs compute`;
  const svg = renderSvg({
    title,
    xLabel: 'Compute C (GMACs per sample × samples seen)',
    yLabel: `${task} error (1 − score)`,
    series,
    xLog: true,
    yLog: true,
    notes,
  });
  return { file: `compute_${fileSafe(task)}.svg`, title, svg };
}

/** Error against samples seen for one task and distribution: a line per model and data size. */
function samplesPlot(task: string, dist: string, records: ScalingRecord[], models: string[]): { file: string; title: string; svg: string } | null {
  const pts = records.filter((r) => r.distribution === dist && r.metrics[task] !== undefined && 1 - r.metrics[task] > 0);
  if (pts.length === 0) return null;
  const sizes = unique(pts.map((r) => r.data_size)).sort((a, b) => b - a);
  const styles: LineStyle[] = ['solid', 'dashed', 'dotted'];
  const series: PlotSeries[] = [];
  models.forEach((model, mi) => {
    sizes.forEach((size, si) => {
      const mine = pts
        .filter((r) => r.model === model && r.data_size === size)
        .sort((a, b) => a.samples_seen - b.samples_seen)
        .map((r) => ({ x: r.samples_seen, y: 1 - r.metrics[task] }));
      if (mine.length) {
        series.push({ label: `${model}, data ${fmtCount(size)}`, points: mine, color: palette[mi % palette.length], marker: markers[si % markers.length], line: styles[si % styles.length] });
      }
    });
  });
  const title = `${task} (${dist}): error vs samples seen`;
  const svg = renderSvg({ title, xLabel: 'Samples seen', yLabel: `${task} error (1 − score)`, series, xLog: true, yLog: true });
  return { file: `samples_${fileSafe(task)}_${fileSafe(dist)}.svg`, title, svg };
}

function fmtCount(n: number): string {
  for (const [unit, v] of [['B', 1e9], ['M', 1e6], ['k', 1e3]] as const) if (n >= v) return `${Number((n / v).toPrecision(3))}${unit}`;
  return String(n);
}

function mdTable(header: string[], rows: string[][]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [`| ${header.map(esc).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

function htmlTable(header: string[], rows: string[][]): string {
  return `<table><thead><tr>${header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** Plain-language findings, stated from the fits and the data-size comparison. */
function findings(laws: LawRow[], bottlenecks: BottleneckRow[], distributions: string[]): string[] {
  const out: string[] = [];
  for (const law of laws) {
    if (!law.fit) {
      out.push(`${law.task} / ${law.distribution}: no law fitted (${law.reason})${law.perfect ? `; ${law.perfect} point(s) with a perfect score left out` : ''}.`);
      continue;
    }
    const [lo, hi] = law.fit.ci.alpha;
    const verdict = hi < 0 ? 'error falls with compute' : lo > 0 ? 'error RISES with compute' : 'no clear trend with compute (the interval on α includes 0)';
    out.push(`${law.task} / ${law.distribution}: ${verdict}: α = ${fmt(law.fit.alpha)} (${Math.round(law.fit.ci.level * 100)}% CI ${fmt(lo)} to ${fmt(hi)}), β = ${fmt(law.fit.beta)}, r² = ${fmt(law.fit.r2, 2)}, ${law.n} points${law.perfect ? ` (${law.perfect} with a perfect score left out)` : ''}.`);
  }
  if (distributions.length >= 2) {
    for (const task of unique(laws.map((l) => l.task))) {
      const fits = laws.filter((l) => l.task === task && l.fit);
      if (fits.length < 2) continue;
      const [a, b] = fits;
      const overlap = a.fit!.ci.alpha[0] <= b.fit!.ci.alpha[1] && b.fit!.ci.alpha[0] <= a.fit!.ci.alpha[1];
      out.push(
        `${task}: α is ${fmt(a.fit!.alpha)} for ${a.distribution} and ${fmt(b.fit!.alpha)} for ${b.distribution}; ` +
          (overlap ? 'their confidence intervals overlap, so this study does not separate the two slopes.' : 'their confidence intervals do not overlap: the two caption distributions scale differently on this task.'),
      );
    }
  }
  if (bottlenecks.length) {
    const hurting = bottlenecks.filter((b) => b.gap > 0);
    const budgets = unique(bottlenecks.map((b) => b.samples_seen)).sort((x, y) => x - y);
    const meanGap = (s: number) => {
      const g = bottlenecks.filter((b) => b.samples_seen === s).map((b) => b.gap);
      return g.reduce((x, y) => x + y, 0) / g.length;
    };
    out.push(
      `Data size: the smaller data size has the higher error in ${hurting.length} of ${bottlenecks.length} comparisons at equal model and samples seen; ` +
        `the mean relative error increase of the smaller data size (E_small / E_large − 1) by samples seen is ${budgets.map((s) => `${fmtCount(s)}: ${(100 * meanGap(s)).toFixed(1)}%`).join(', ')}. ` +
        (meanGap(budgets[budgets.length - 1]) > meanGap(budgets[0]) && meanGap(budgets[budgets.length - 1]) > 0
          ? 'The gap grows with samples seen: a data bottleneck, as repeated samples give less than fresh ones.'
          : 'The gap does not grow with samples seen: no data bottleneck shows at these budgets.'),
    );
  }
  return out;
}

/** Builds the report of a set of records (no files written). */
export function buildReport(records: ScalingRecord[], options: ReportOptions = {}, source = 'results.jsonl'): Report {
  if (records.length === 0) throw new Error(`report: ${source} holds no records`);
  const laws = fitLaws(records, options);
  const bottlenecks = findBottlenecks(records);
  const distributions = unique(records.map((r) => r.distribution)).sort();
  const tasks = sortedTasks(records);
  const models = modelOrder(records);

  const plots: Report['plots'] = [];
  for (const task of tasks) {
    const c = computePlot(task, records, laws, distributions, models);
    if (c) plots.push(c);
    for (const dist of distributions) {
      const p = samplesPlot(task, dist, records, models);
      if (p) plots.push(p);
    }
  }

  // the laws, the distributions side by side per task
  const lawHeader = ['task', ...distributions.flatMap((d) => [`${d}: α (95% CI)`, `${d}: β`, `${d}: r²`])];
  const lawRows = tasks.map((task) => [
    task,
    ...distributions.flatMap((d) => {
      const l = laws.find((x) => x.task === task && x.distribution === d);
      if (!l?.fit) return ['—', '—', '—'];
      return [`${fmt(l.fit.alpha)} (${fmt(l.fit.ci.alpha[0])} to ${fmt(l.fit.ci.alpha[1])})`, fmt(l.fit.beta), fmt(l.fit.r2, 2)];
    }),
  ]);
  const pointHeader = ['model', 'GMACs/sample', 'params', 'data size', 'samples seen', 'distribution', 'compute (GMACs)', ...tasks, 'wall s'];
  const pointRows = [...records]
    .sort((a, b) => a.distribution.localeCompare(b.distribution) || recordCompute(a) - recordCompute(b))
    .map((r) => [r.model, fmt(r.gmacs), fmtCount(r.params), fmtCount(r.data_size), fmtCount(r.samples_seen), r.distribution, fmt(recordCompute(r)), ...tasks.map((t) => (r.metrics[t] === undefined ? '—' : fmt(r.metrics[t]))), fmt(r.wall_s)]);
  const bottleneckHeader = ['task', 'distribution', 'model', 'samples seen', 'error by data size', 'E_small / E_large − 1'];
  const bottleneckRows = bottlenecks.map((b) => [b.task, b.distribution, b.model, fmtCount(b.samples_seen), b.errors.map((e) => `${fmtCount(e.data_size)}: ${fmt(e.error)}`).join(', '), `${(100 * b.gap).toFixed(1)}%`]);
  const method = laws.find((l) => l.fit)?.fit?.method ?? options.method ?? 'pareto-bins';
  const found = findings(laws, bottlenecks, distributions);
  const summary = `${records.length} trained points: models ${models.join(', ')}; data sizes ${unique(records.map((r) => r.data_size)).sort((a, b) => a - b).map(fmtCount).join(', ')}; samples seen ${unique(records.map((r) => r.samples_seen)).sort((a, b) => a - b).map(fmtCount).join(', ')}; caption distributions ${distributions.join(', ')}.`;
  const lawNote = `E = β·C^α with C = GMACs per sample × samples seen and E = 1 − score, fitted in log₁₀–log₁₀ space (${method === 'pareto-bins' ? "the paper's method: the lowest error in each of 5 equal bins of log C, fitted at the bin centres" : 'least squares on every point'}); intervals are percentile bootstrap intervals (${options.bootstrapSamples ?? 1000} resamples, seed ${options.seed ?? 0}).`;

  const markdown = [
    '# Scaling report',
    '',
    `Source: \`${source}\`. ${summary}`,
    '',
    '## Fitted laws',
    '',
    lawNote,
    '',
    mdTable(lawHeader, lawRows),
    '',
    ...laws.filter((l) => l.fit).map((l) => `- ${l.task} / ${l.distribution}: ${lawText(l.fit!)} (α = ${l.fit!.alpha.toFixed(4)}, β = ${l.fit!.beta.toFixed(4)}, ${l.fit!.method}, n = ${l.n})`),
    '',
    '## Findings',
    '',
    ...found.map((f) => `- ${f}`),
    '',
    ...(bottleneckRows.length ? ['## Data size at equal model and samples seen', '', mdTable(bottleneckHeader, bottleneckRows), ''] : []),
    '## Plots',
    '',
    ...plots.map((p) => `![${p.title}](${p.file})`),
    '',
    '## Every point',
    '',
    mdTable(pointHeader, pointRows),
    '',
  ].join('\n');

  const html = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><title>Scaling report</title>',
    '<style>body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}',
    'table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}',
    'th{background:#f4f4f4}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}</style></head><body>',
    '<h1>Scaling report</h1>',
    `<p>Source: <code>${escapeXml(source)}</code>. ${escapeXml(summary)} <a href="report.md">report.md</a></p>`,
    '<h2>Fitted laws</h2>',
    `<p>${escapeXml(lawNote)}</p>`,
    htmlTable(lawHeader, lawRows),
    '<h2>Findings</h2>',
    `<ul>${found.map((f) => `<li>${escapeXml(f)}</li>`).join('')}</ul>`,
    '<h2>Plots</h2>',
    ...plots.map((p) => `<figure><img src="${escapeXml(p.file)}" alt="${escapeXml(p.title)}"><figcaption>${escapeXml(p.title)}</figcaption></figure>`),
    ...(bottleneckRows.length ? ['<h2>Data size at equal model and samples seen</h2>', htmlTable(bottleneckHeader, bottleneckRows)] : []),
    '<h2>Every point</h2>',
    htmlTable(pointHeader, pointRows),
    '</body></html>',
    '',
  ].join('\n');

  return { markdown, html, plots, laws, bottlenecks };
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
