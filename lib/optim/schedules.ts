// Learning-rate schedules as OpenCLIP defines them (open_clip_train/scheduler.py), as pure functions
// of the optimizer step (0-based, counted in optimizer steps, i.e. after gradient accumulation).
// The arithmetic is written in the same order as OpenCLIP's Python so the values agree to the last bit
// wherever the platform's cos/pow agree.

export type LrScheduleName = 'cosine' | 'const' | 'const-cooldown';

export const LR_SCHEDULE_NAMES: readonly LrScheduleName[] = ['cosine', 'const', 'const-cooldown'];

export interface LrScheduleConfig {
  name: LrScheduleName;
  /** Peak learning rate (OpenCLIP's --lr). */
  baseLr: number;
  /** Linear warmup length in steps (OpenCLIP's --warmup); 0 for none. */
  warmupSteps: number;
  /** Total optimizer steps of the run. */
  totalSteps: number;
  /** const-cooldown: steps of the final decay (OpenCLIP: batches per epoch × --epochs-cooldown). */
  cooldownSteps?: number;
  /** const-cooldown: 1 for a linear decay, otherwise polynomial (OpenCLIP's --lr-cooldown-power, default 1). */
  cooldownPower?: number;
  /** const-cooldown: learning rate reached at the end (OpenCLIP's --lr-cooldown-end, default 0). */
  cooldownEndLr?: number;
}

/** OpenCLIP's `_warmup_lr`: base_lr * (step + 1) / warmup_length, so step 0 already trains. */
export function warmupLr(baseLr: number, warmupSteps: number, step: number): number {
  return (baseLr * (step + 1)) / warmupSteps;
}

/** OpenCLIP's `cosine_lr`: warmup, then half a cosine from baseLr down to 0 at totalSteps. */
export function cosineLr(baseLr: number, warmupSteps: number, totalSteps: number, step: number): number {
  if (step < warmupSteps) return warmupLr(baseLr, warmupSteps, step);
  const e = step - warmupSteps;
  const es = totalSteps - warmupSteps;
  return 0.5 * (1 + Math.cos((Math.PI * e) / es)) * baseLr;
}

/** OpenCLIP's `const_lr`: warmup, then baseLr. */
export function constLr(baseLr: number, warmupSteps: number, step: number): number {
  return step < warmupSteps ? warmupLr(baseLr, warmupSteps, step) : baseLr;
}

/**
 * OpenCLIP's `const_lr_cooldown`: warmup, baseLr until totalSteps - cooldownSteps, then
 * (1 - e/es)^power * (baseLr - endLr) + endLr. Warmup wins where the two overlap, as in OpenCLIP.
 */
export function constCooldownLr(
  baseLr: number,
  warmupSteps: number,
  totalSteps: number,
  cooldownSteps: number,
  cooldownPower: number,
  cooldownEndLr: number,
  step: number,
): number {
  const startCooldownStep = totalSteps - cooldownSteps;
  if (step < warmupSteps) return warmupLr(baseLr, warmupSteps, step);
  if (step < startCooldownStep) return baseLr;
  const e = step - startCooldownStep;
  const es = totalSteps - startCooldownStep;
  const decay = (1 - e / es) ** cooldownPower;
  return decay * (baseLr - cooldownEndLr) + cooldownEndLr;
}

function checkInt(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new Error(`lr schedule: ${what} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

function checkFinite(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    throw new Error(`lr schedule: ${what} must be a finite number >= ${min}, got ${String(v)}`);
  }
  return v;
}

/**
 * Checks a schedule config and fills OpenCLIP's defaults (cooldown power 1, end lr 0).
 * Throws on what OpenCLIP would divide by zero on, instead of producing NaN mid-run.
 */
export function resolveLrSchedule(cfg: LrScheduleConfig): Required<LrScheduleConfig> {
  if (cfg === null || typeof cfg !== 'object') throw new Error('lr schedule: expected a config object');
  if (!LR_SCHEDULE_NAMES.includes(cfg.name)) {
    throw new Error(`lr schedule: unknown schedule '${String(cfg.name)}' (available: ${LR_SCHEDULE_NAMES.join(', ')})`);
  }
  const baseLr = checkFinite(cfg.baseLr, 'baseLr', 0);
  const warmupSteps = checkInt(cfg.warmupSteps, 'warmupSteps', 0);
  const totalSteps = checkInt(cfg.totalSteps, 'totalSteps', 1);
  const cooldownPower = checkFinite(cfg.cooldownPower ?? 1, 'cooldownPower', 0);
  const cooldownEndLr = checkFinite(cfg.cooldownEndLr ?? 0, 'cooldownEndLr', 0);
  let cooldownSteps = 0;
  if (cfg.name === 'cosine' && warmupSteps >= totalSteps) {
    throw new Error(`lr schedule: cosine needs warmupSteps (${warmupSteps}) < totalSteps (${totalSteps})`);
  }
  if (cfg.name === 'const-cooldown') {
    if (cfg.cooldownSteps === undefined) throw new Error('lr schedule: const-cooldown needs cooldownSteps');
    cooldownSteps = checkInt(cfg.cooldownSteps, 'cooldownSteps', 1);
    if (cooldownSteps > totalSteps) {
      throw new Error(`lr schedule: cooldownSteps (${cooldownSteps}) exceeds totalSteps (${totalSteps})`);
    }
  } else if (cfg.cooldownSteps !== undefined) {
    cooldownSteps = checkInt(cfg.cooldownSteps, 'cooldownSteps', 0);
  }
  return { name: cfg.name, baseLr, warmupSteps, totalSteps, cooldownSteps, cooldownPower, cooldownEndLr };
}

/** The learning rate at optimizer step `step` (0 ≤ step ≤ totalSteps). */
export function learningRate(cfg: LrScheduleConfig, step: number): number {
  return makeLrSchedule(cfg)(step);
}

/** A checked schedule function step → lr; the config is validated once, here. */
export function makeLrSchedule(cfg: LrScheduleConfig): (step: number) => number {
  const c = resolveLrSchedule(cfg);
  return (step: number): number => {
    if (!Number.isSafeInteger(step) || step < 0 || step > c.totalSteps) {
      throw new Error(`lr schedule: step must be an integer in [0, ${c.totalSteps}], got ${String(step)}`);
    }
    switch (c.name) {
      case 'cosine':
        return cosineLr(c.baseLr, c.warmupSteps, c.totalSteps, step);
      case 'const':
        return constLr(c.baseLr, c.warmupSteps, step);
      case 'const-cooldown':
        return constCooldownLr(c.baseLr, c.warmupSteps, c.totalSteps, c.cooldownSteps, c.cooldownPower, c.cooldownEndLr, step);
    }
  };
}
