// "did you mean …?" for an unknown option: OpenCLIP's spellings and near misses.

/** Options people type from other tools, and what clipscale calls them. */
const SYNONYMS: Record<string, string> = {
  'learning-rate': 'lr',
  'weight-decay': 'wd',
  'warmup-steps': 'warmup',
  'num-samples': 'train-num-samples',
  'log-every': 'log-every-n-steps',
  'output-dir': 'out',
  'output': 'out',
  'vocab-file': 'vocab',
  'num-workers': 'workers',
  'batch': 'batch-size',
  'bs': 'batch-size',
  'scheduler': 'lr-scheduler',
  'checkpoint': 'resume',
};

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** The known option closest to `given` (without dashes), or undefined when none is close. */
export function closestOption(given: string, known: readonly string[]): string | undefined {
  const name = given.replace(/^-+/, '').split('=')[0];
  const dashed = name.replace(/_/g, '-').toLowerCase();
  if (known.includes(dashed)) return dashed;
  const synonym = SYNONYMS[dashed];
  if (synonym && known.includes(synonym)) return synonym;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(dashed, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  // Close enough to be a typo: a third of the name, at least 1, at most 3 edits.
  if (best !== undefined && bestDistance <= Math.min(3, Math.max(1, Math.floor(dashed.length / 3)))) return best;
  // A prefix of a known option (`--grad-clip` for `--grad-clip-norm`).
  return known.find((k) => dashed.length >= 3 && k.startsWith(dashed));
}

/** The hint to add to node's "Unknown option '--x'" message, or ''. */
export function unknownOptionHint(message: string, known: readonly string[]): string {
  const m = /Unknown option '(-{1,2}[^']+)'/.exec(message);
  if (!m) return '';
  const guess = closestOption(m[1], known);
  return guess ? ` (did you mean --${guess}?)` : '';
}
