// Ranks within a score row, with one tie rule used by every metric here.
//
// Tie rule: candidates are ordered by score, highest first, and equal scores by index, lowest
// first — a stable descending sort. This is torch.argmax's documented rule (the first maximal
// index wins), which CLIP_benchmark's top-1 and mean per-class recall rest on; torch.topk leaves
// the order of ties unspecified, so we fix it to the same rule for top-k and recall@K.
// Consequence: a tie between the right answer and a wrong one at a lower index counts against.

/**
 * 1-based rank of candidate `target` in `scores[offset .. offset+count)`, under the tie rule:
 * 1 + (how many score higher) + (how many score the same at a lower index).
 */
export function rankOf(scores: ArrayLike<number>, offset: number, count: number, target: number): number {
  const s = scores[offset + target];
  let rank = 1;
  for (let i = 0; i < count; i++) {
    const v = scores[offset + i];
    if (v > s || (v === s && i < target)) rank++;
  }
  return rank;
}

/**
 * 1-based rank of the best of several positive candidates (the first of them in the tie order),
 * i.e. the position at which a ranked list first shows any positive.
 */
export function bestRankOf(scores: ArrayLike<number>, offset: number, count: number, positives: ArrayLike<number>): number {
  if (positives.length === 0) throw new Error('bestRankOf: no positive candidates');
  let best = positives[0];
  for (let p = 1; p < positives.length; p++) {
    const j = positives[p];
    const v = scores[offset + j];
    const b = scores[offset + best];
    if (v > b || (v === b && j < best)) best = j;
  }
  return rankOf(scores, offset, count, best);
}

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** The median; for an even count, the mean of the two middle values. */
export function median(xs: ArrayLike<number>): number {
  const sorted = Float64Array.from(xs).sort();
  const n = sorted.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/** Sample standard deviation (n − 1); 0 for a single value. */
export function sampleStd(xs: ArrayLike<number>): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}
