// Which learned tasks a report puts in its headline, by one rule applied to every task: a headline
// law must be measurable over the whole grid. A task that is weakly learned (its error hardly moves
// off chance) or that saturates (its error reaches zero inside the grid, so the top of the compute
// range measures nothing) has no law to headline; it stays in the tables with the reason.
import type { LawRow } from './findings.js';

/** A headline task's best point (mean over its seeds) must close at least this share (half) of the way from chance to a perfect score. */
export const HEADLINE_PROGRESS = 0.5;

export type HeadlineVerdict =
  | { metric: string; status: 'headline' }
  | { metric: string; status: 'weakly learned'; best: number; chance: number; progress: number }
  | { metric: string; status: 'saturates'; perfect: { distribution: string; points: number }[] };

/** How far a score is from chance towards a perfect score (0 at chance, 1 perfect). */
export function progressOverChance(score: number, chance: number): number {
  return chance >= 1 ? 0 : (score - chance) / (1 - chance);
}

/** The verdict on one learned task from its laws (one row per distribution). */
export function headlineVerdict(metric: string, laws: LawRow[]): HeadlineVerdict {
  const rows = laws.filter((l) => l.task === metric);
  const saturated = rows.filter((l) => (l.perfect ?? 0) > 0).map((l) => ({ distribution: l.distribution, points: l.perfect! }));
  if (saturated.length) return { metric, status: 'saturates', perfect: saturated };
  const best = Math.max(...rows.map((l) => l.best));
  const chance = rows[0]?.chance ?? 0;
  const progress = progressOverChance(best, chance);
  if (progress < HEADLINE_PROGRESS) return { metric, status: 'weakly learned', best, chance, progress };
  return { metric, status: 'headline' };
}

/** The rule as the report states it. */
export function headlineRuleText(): string {
  return (
    `Headline tasks are the paper's Figure 1 metrics (zero-shot top-1, retrieval recall@5) that are learned, by one rule for every task: ` +
    `the best point's score (the mean over its seeds, as the fit takes it) must close at least ${Math.round(HEADLINE_PROGRESS * 100)}% of the way from chance to a perfect score (else "weakly learned"), ` +
    `and no point may reach a perfect score (else "saturates": its error hits the evaluation's floor inside the grid, so the top of the compute range measures nothing). ` +
    `Tasks left out keep their laws in the tables.`
  );
}
