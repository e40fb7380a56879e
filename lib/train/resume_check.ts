// What a resumed run may change. A checkpoint records the model, the batch, the seed, the precision,
// the schedule and the data it was trained with; resuming with other values would silently make a
// different run (a resumed run once ended "done" at 480 of 512 samples after a batch-size change).
// The differences are listed and the resume is refused. A longer run (--samples) is accepted when it
// keeps the schedule's meaning: every learning rate already used stays the same under the new length
// (const, or const-cooldown before the cooldown began; not cosine, whose curve depends on its end).
import type { JsonValue, TrainingState } from './checkpoint.js';
import { makeLrSchedule, type LrScheduleConfig } from '../optim/schedules.js';

export class ResumeMismatchError extends Error {
  constructor(
    message: string,
    readonly differences: string[],
  ) {
    super(message);
    this.name = 'ResumeMismatchError';
  }
}

/** Position fields of a data description: they change as the run goes, the rest must not. */
const DATA_PROGRESS = new Set(['position', 'sourcePosition', 'skipped']);

function stable(v: unknown): string {
  if (v === undefined) return 'absent';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  return `{${Object.keys(v as object)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
    .join(',')}}`;
}

function obj(v: JsonValue | undefined): Record<string, JsonValue> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, JsonValue>) : {};
}

function compareFields(prefix: string, saved: Record<string, unknown>, now: Record<string, unknown>, skip: Set<string>, out: string[]): void {
  for (const key of new Set([...Object.keys(saved), ...Object.keys(now)])) {
    if (skip.has(key)) continue;
    if (stable(saved[key]) !== stable(now[key])) out.push(`${prefix}${key}: saved ${stable(saved[key])}, now ${stable(now[key])}`);
  }
}

/** Whether the learning rates of steps [0, doneSteps) are the same under both schedules. */
function samePast(saved: LrScheduleConfig, now: LrScheduleConfig, doneSteps: number): boolean {
  try {
    const a = makeLrSchedule(saved);
    const b = makeLrSchedule(now);
    for (let s = 0; s < doneSteps; s++) if (a(s) !== b(s)) return false;
    return true;
  } catch {
    return false;
  }
}

/**
 * The differences between a checkpoint's state and the state the current arguments describe, as
 * readable lines (empty when the resume is faithful). `notes` receives what was accepted (an extension).
 */
export function resumeDifferences(saved: TrainingState, now: TrainingState, notes: string[] = []): string[] {
  const out: string[] = [];
  const sc = obj(saved.config);
  const nc = obj(now.config);
  if (stable(sc.model) !== stable(nc.model)) out.push('model config: differs from the saved one');
  // The global batch decides the run; how it is split over ranks may change (a checkpoint of 2
  // ranks × 8 resumes in one process with batch 16, exactly).
  compareFields('', sc, nc, new Set(['model', 'samples', 'batchSize', 'worldSize']), out);
  const globalBatch = (c: Record<string, JsonValue>) => (typeof c.batchSize === 'number' ? c.batchSize * (typeof c.worldSize === 'number' ? c.worldSize : 1) : c.batchSize);
  if (globalBatch(sc) !== globalBatch(nc)) {
    const describe = (c: Record<string, JsonValue>) => `${stable(c.batchSize)} × ${stable(c.worldSize ?? 1)} rank(s)`;
    out.push(`global batch (batch size × ranks): saved ${describe(sc)}, now ${describe(nc)}`);
  } else if (sc.worldSize !== nc.worldSize) {
    notes.push(`the global batch of ${String(globalBatch(nc))} is now split over ${stable(nc.worldSize ?? 1)} rank(s) (was ${stable(sc.worldSize ?? 1)})`);
  }
  if (saved.precision !== now.precision) out.push(`precision: saved ${saved.precision}, now ${now.precision}`);
  compareFields('data ', obj(obj(saved.dataPosition).data), obj(obj(now.dataPosition).data), DATA_PROGRESS, out);

  const ss = obj(saved.schedule);
  const ns = obj(now.schedule);
  compareFields('schedule ', ss, ns, new Set(['totalSteps']), out);
  const savedSamples = sc.samples;
  const nowSamples = nc.samples;
  if (savedSamples !== nowSamples) {
    if (typeof nowSamples === 'number' && typeof savedSamples === 'number' && nowSamples > savedSamples) {
      if (out.length === 0 && samePast(ss as unknown as LrScheduleConfig, ns as unknown as LrScheduleConfig, saved.step)) {
        notes.push(`samples extended from ${savedSamples} to ${nowSamples} (the learning rates of the ${saved.step} steps done are unchanged)`);
      } else if (out.length === 0) {
        out.push(
          `samples: saved ${savedSamples}, now ${nowSamples}: the ${String(ss.name)} schedule's learning rates for the steps already done would change; ` +
            'extend a run only with a schedule whose past does not depend on its length (const, or const-cooldown before its cooldown)',
        );
      }
    } else {
      out.push(`samples: saved ${stable(savedSamples)}, now ${stable(nowSamples)} (a resumed run may only be made longer)`);
    }
  }
  return out;
}
