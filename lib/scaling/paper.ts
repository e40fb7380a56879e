// The paper beside ours: the same fit (E = β·C^α, the paper's Pareto-bin method for the OpenCLIP runs,
// least squares through the 3 OpenAI models) on the paper's published results, shipped in
// lib/scaling/paper/ (LAION-AI/scaling-laws-openclip, MIT). Its Figure 1 reads: on ImageNet zero-shot
// classification OpenAI's WIT-trained CLIP scales faster (5.86·C^−0.11 for OpenCLIP vs 23.18·C^−0.16);
// on MS-COCO retrieval it is the other way round.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { bootstrapFit, quantile, type ConfidenceIntervals } from './bootstrap.js';
import type { FitMethod } from './fit.js';
import { palette, renderSvg, type PlotSeries } from './plot.js';
import { columnValues, parseCondition, readTable, selectRows } from './table.js';

export interface PaperLaw {
  /** e.g. 'ImageNet zero-shot top-1'. */
  task: string;
  metric: string;
  downstream: string;
  /** 'OpenCLIP (LAION)' or 'OpenAI CLIP (WIT)'. */
  dataset: string;
  method: FitMethod;
  n: number;
  alpha: number;
  beta: number;
  r2: number;
  ci: ConfidenceIntervals;
  /** Every point (compute in GMACs, error) and the fitted frontier points (log₁₀). */
  points: { compute: number; error: number }[];
  fitted: { x: number; y: number }[];
  /** Confidence band of the fitted line over the points' compute range. */
  band: { x: number; lo: number; hi: number }[];
}

const here = dirname(fileURLToPath(import.meta.url));
/** lib/scaling/paper/ from lib/scaling/*.ts and dist/scaling/*.js alike. */
export function paperDir(): string {
  return join(here, '..', '..', 'lib', 'scaling', 'paper');
}

const TASKS = [
  { task: 'ImageNet zero-shot top-1', metric: 'acc1', downstream: 'imagenet1k' },
  { task: 'MS-COCO image retrieval R@5', metric: 'image_retrieval_recall@5', downstream: 'mscoco_captions' },
  { task: 'MS-COCO text retrieval R@5', metric: 'text_retrieval_recall@5', downstream: 'mscoco_captions' },
] as const;

const DATASETS = [
  { dataset: 'OpenCLIP (LAION)', where: 'upstream_dataset!=CLIP-WIT', method: 'pareto-bins' as FitMethod },
  { dataset: 'OpenAI CLIP (WIT)', where: 'upstream_dataset=CLIP-WIT', method: 'all' as FitMethod },
];

/** Confidence band of a bootstrapped line: percentiles of the resampled lines at each compute. */
export function lineBand(draws: { alpha: number; beta: number }[], lo: number, hi: number, level = 0.95, steps = 24): { x: number; lo: number; hi: number }[] {
  const out: { x: number; lo: number; hi: number }[] = [];
  for (let i = 0; i < steps; i++) {
    const x = lo * (hi / lo) ** (i / (steps - 1));
    const ys = draws.map((d) => d.beta * x ** d.alpha).sort((a, b) => a - b);
    out.push({ x, lo: quantile(ys, (1 - level) / 2), hi: quantile(ys, 1 - (1 - level) / 2) });
  }
  return out;
}

/** Fits the paper's Figure 1 laws (and text retrieval) from the shipped CSV. */
export function paperLaws(options: { bootstrapSamples?: number; seed?: number; csv?: string } = {}): PaperLaw[] {
  const table = readTable(options.csv ?? join(paperDir(), 'zeroshot_results.csv'));
  const out: PaperLaw[] = [];
  for (const t of TASKS) {
    for (const d of DATASETS) {
      const rows = selectRows(table, [parseCondition(`downstream_dataset=${t.downstream}`), parseCondition(d.where)]);
      const compute = columnValues(rows, 'gmacs_total');
      const error = columnValues(rows, t.metric).map((s) => 1 - s);
      const b = bootstrapFit(compute, error, { method: d.method, samples: options.bootstrapSamples ?? 1000, seed: options.seed ?? 0 });
      const lo = Math.min(...compute);
      const hi = Math.max(...compute);
      out.push({
        task: t.task,
        metric: t.metric,
        downstream: t.downstream,
        dataset: d.dataset,
        method: d.method,
        n: compute.length,
        alpha: b.fit.alpha,
        beta: b.fit.beta,
        r2: b.fit.r2,
        ci: b.ci,
        points: compute.map((c, i) => ({ compute: c, error: error[i] })),
        fitted: b.fit.fitted,
        band: lineBand(b.draws, lo, hi, b.ci.level),
      });
    }
  }
  return out;
}

const f3 = (v: number) => Number(v.toPrecision(3)).toString();

/** One sentence per task: the two slopes, their intervals, which scales faster and whether they separate. */
export function paperSentences(laws: PaperLaw[]): string[] {
  const out: string[] = [];
  for (const task of [...new Set(laws.map((l) => l.task))]) {
    const [a, b] = laws.filter((l) => l.task === task);
    if (!a || !b) continue;
    const steeper = a.alpha < b.alpha ? a : b;
    const separate = a.ci.alpha[1] < b.ci.alpha[0] || b.ci.alpha[1] < a.ci.alpha[0];
    const law = (l: PaperLaw) => `${l.dataset} E = ${f3(l.beta)}·C^${f3(l.alpha)} (α 95% CI ${f3(l.ci.alpha[0])} to ${f3(l.ci.alpha[1])}, r² ${l.r2.toFixed(2)}, ${l.n} runs)`;
    out.push(`${task}: ${law(a)} vs ${law(b)}: ${steeper.dataset} scales faster${separate ? '' : ' (the intervals overlap: the OpenAI fit has only 3 points)'}.`);
  }
  return out;
}

/** The paper's Figure 1 as SVG, one plot per task: every run, the fit lines with their bands. */
export function paperPlots(laws: PaperLaw[]): { file: string; title: string; svg: string }[] {
  const out: { file: string; title: string; svg: string }[] = [];
  for (const task of [...new Set(laws.map((l) => l.task))]) {
    const series: PlotSeries[] = [];
    laws.filter((l) => l.task === task).forEach((l, i) => {
      const color = palette[(i + 1) % palette.length];
      series.push({ label: `${l.dataset} runs`, points: l.points.map((p) => ({ x: p.compute, y: p.error })), color, marker: i ? 'square' : 'circle' });
      series.push({
        label: `E = ${f3(l.beta)}·C^${f3(l.alpha)} (r² ${l.r2.toFixed(2)})`,
        points: l.band.map((b) => ({ x: b.x, y: l.beta * b.x ** l.alpha })),
        color,
        marker: 'none',
        line: 'dashed',
        band: l.band,
      });
    });
    const title = `The paper: ${task}`;
    const svg = renderSvg({ title, xLabel: 'Compute C (GMACs)', yLabel: 'error (1 − score)', series, xLog: true, yLog: true, notes: ['Cherti et al. 2023, published results;', 'fitted here with the same code as ours'] });
    out.push({ file: `paper_${task.replace(/[^A-Za-z0-9]+/g, '_').replace(/_+$/, '')}.svg`, title, svg });
  }
  return out;
}
