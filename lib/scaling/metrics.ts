// Which metrics a scaling report shows and how it names them: duplicates folded (mean per-class
// recall equals top-1 accuracy on a balanced set), the headline tasks picked (top-1 zero-shot
// accuracy and retrieval recall@5, as the paper's Figure 1), and readable names.
import type { ScalingRecord } from './record.js';

export interface FoldedMetric {
  /** The metric left out... */
  metric: string;
  /** ...because it equals this one on every point. */
  sameAs: string;
}

/** Metric names of a set of records, sorted. */
export function metricNames(records: ScalingRecord[]): string[] {
  return [...new Set(records.flatMap((r) => Object.keys(r.metrics)))].sort();
}

/** How much a name is preferred as the one kept of equal metrics: accuracy over per-class recall. */
function keepRank(metric: string): number {
  if (/_acc1$/.test(metric)) return 0;
  if (/_mean_per_class_recall$/.test(metric)) return 2;
  return 1;
}

/**
 * Metrics that equal another metric on every point that has both (within 1e-9), e.g. mean per-class
 * recall and top-1 accuracy on the balanced zero-shot sets: one is kept, the others are listed.
 */
export function foldDuplicates(records: ScalingRecord[]): { metrics: string[]; folded: FoldedMetric[] } {
  const names = metricNames(records).sort((a, b) => keepRank(a) - keepRank(b) || a.localeCompare(b));
  const kept: string[] = [];
  const folded: FoldedMetric[] = [];
  for (const name of names) {
    const twin = kept.find((k) => {
      let shared = 0;
      for (const r of records) {
        const a = r.metrics[k];
        const b = r.metrics[name];
        if (a === undefined || b === undefined) continue;
        if (Math.abs(a - b) > 1e-9) return false;
        shared++;
      }
      return shared > 0 && records.every((r) => (r.metrics[k] === undefined) === (r.metrics[name] === undefined));
    });
    if (twin) folded.push({ metric: name, sameAs: twin });
    else kept.push(name);
  }
  return { metrics: kept.sort(), folded };
}

/** The paper's Figure 1 metrics: zero-shot top-1 accuracy and retrieval recall@5. */
export function isHeadlineMetric(metric: string): boolean {
  return /^zeroshot_.+_acc1$/.test(metric) || /^retrieval_(image|text)_retrieval_recall@5$/.test(metric);
}

const TASK_NAMES: Record<string, string> = {
  shape: 'shape classification',
  colour: 'colour classification',
  shape_colour: 'shape + colour classification (64 classes)',
};

/** A metric as people read it, e.g. 'colour classification (zero-shot top-1)'. */
export function readableMetric(metric: string): string {
  const zs = /^zeroshot_(.+)_(acc(\d+)|mean_per_class_recall)$/.exec(metric);
  if (zs) {
    const task = TASK_NAMES[zs[1]] ?? `${zs[1]} classification`;
    return `${task} (zero-shot ${zs[3] ? `top-${zs[3]}` : 'mean per-class recall'})`;
  }
  const rt = /^retrieval_(image|text)_retrieval_recall@(\d+)$/.exec(metric);
  if (rt) return `${rt[1]} retrieval (recall@${rt[2]})`;
  return metric;
}
