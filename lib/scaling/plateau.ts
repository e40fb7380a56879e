// A run that never left the contrastive loss's initial plateau. With embeddings that tell nothing
// apart, every row of the B×B similarity matrix is uniform and the loss is ln(B); a run whose final
// loss is still near ln(B) learned nothing, and its "score" is chance, not a point of a scaling law.
// The sweep flags such runs in their records; the report counts them and leaves them out of fits.
import type { ScalingRecord } from './record.js';

/** A final loss above this share of ln(B) counts as never having left the plateau: a stuck run sits within 0.01 of ln(B); a slow one (noisy captions) is already lower. */
export const PLATEAU_SHARE = 0.98;

/** Whether a final loss says the run never left the plateau at ln(batch size). */
export function isPlateauLoss(finalLoss: number | null | undefined, batchSize: number): boolean {
  if (finalLoss === null || finalLoss === undefined || !Number.isFinite(finalLoss)) return false;
  if (!(Number.isInteger(batchSize) && batchSize >= 2)) throw new Error(`plateau: batch size must be an integer ≥ 2, got ${batchSize}`);
  return finalLoss >= PLATEAU_SHARE * Math.log(batchSize);
}

/**
 * Whether a record's run never left the plateau: its own `plateau` flag (written by the sweep), or
 * for older records its final loss against ln(batch size). A non-finite final loss (a diverged run)
 * is not flagged here: a diverged run has no final loss to read (the trainer fails it).
 */
export function isPlateauRecord(r: ScalingRecord): boolean {
  if (typeof r.plateau === 'boolean') return r.plateau;
  const loss = typeof r.final_loss === 'number' ? r.final_loss : null;
  if (loss === null || typeof r.batch_size !== 'number') return false;
  return isPlateauLoss(loss, r.batch_size);
}

/** Records split into the usable ones and those stuck at the plateau. */
export function splitPlateau(records: ScalingRecord[]): { usable: ScalingRecord[]; plateau: ScalingRecord[] } {
  const usable: ScalingRecord[] = [];
  const plateau: ScalingRecord[] = [];
  for (const r of records) (isPlateauRecord(r) ? plateau : usable).push(r);
  return { usable, plateau };
}
