// Dynamic loss scaling (torch.cuda.amp.GradScaler's rule), device-agnostic: the loss
// gradient is multiplied by `scale` before backward, gradients are unscaled in the
// optimizer; a step whose gradients are not finite is skipped and the scale shrinks,
// and after `growthInterval` good steps in a row the scale grows.

export interface LossScalerOptions {
  /** Starting scale. Default 2^16 (PyTorch's). */
  initScale?: number;
  /** Multiplies the scale after `growthInterval` finite steps in a row. Default 2. */
  growthFactor?: number;
  /** Multiplies the scale after a non-finite step. Default 0.5. */
  backoffFactor?: number;
  /** Finite steps in a row before the scale grows. Default 2000. */
  growthInterval?: number;
  /** The scale never falls below this. Default 2^-24 (well below any useful scale, as PyTorch has none). */
  minScale?: number;
  /** The scale never grows above this. Default 2^64; at most 2^127 (kernels take the scale as an f32). */
  maxScale?: number;
}

export interface LossScalerState {
  scale: number;
  goodSteps: number;
  skipped: number;
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(`LossScaler: ${message}`);
}

export class LossScaler {
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly minScale: number;
  readonly maxScale: number;
  /** The scale the next step's loss gradient is multiplied by. */
  scale: number;
  /** Finite steps since the last growth or skip. */
  goodSteps = 0;
  /** Steps skipped for non-finite gradients, in all. */
  skipped = 0;

  constructor(options: LossScalerOptions = {}) {
    const o = { initScale: 2 ** 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2000, minScale: 2 ** -24, maxScale: 2 ** 64, ...options };
    check(Number.isFinite(o.initScale) && o.initScale > 0, `initScale must be a finite number > 0, got ${o.initScale}`);
    check(Number.isFinite(o.growthFactor) && o.growthFactor > 1, `growthFactor must be > 1, got ${o.growthFactor}`);
    check(Number.isFinite(o.backoffFactor) && o.backoffFactor > 0 && o.backoffFactor < 1, `backoffFactor must be in (0, 1), got ${o.backoffFactor}`);
    check(Number.isInteger(o.growthInterval) && o.growthInterval >= 1, `growthInterval must be an integer ≥ 1, got ${o.growthInterval}`);
    check(o.maxScale <= 2 ** 127, `maxScale must be ≤ 2^127 (the kernels take the scale as an f32), got ${o.maxScale}`);
    check(o.minScale > 0 && o.minScale <= o.initScale && o.initScale <= o.maxScale, `need 0 < minScale ≤ initScale ≤ maxScale, got ${o.minScale}, ${o.initScale}, ${o.maxScale}`);
    this.scale = o.initScale;
    this.growthFactor = o.growthFactor;
    this.backoffFactor = o.backoffFactor;
    this.growthInterval = o.growthInterval;
    this.minScale = o.minScale;
    this.maxScale = o.maxScale;
  }

  /**
   * Records a step's outcome; returns whether the optimizer may apply it. `gradsFinite`:
   * every (scaled) gradient was finite (e.g. a finite global norm).
   */
  update(gradsFinite: boolean): boolean {
    if (!gradsFinite) {
      this.skipped++;
      this.goodSteps = 0;
      this.scale = Math.max(this.scale * this.backoffFactor, this.minScale);
      return false;
    }
    this.goodSteps++;
    if (this.goodSteps >= this.growthInterval) {
      this.goodSteps = 0;
      this.scale = Math.min(this.scale * this.growthFactor, this.maxScale);
    }
    return true;
  }

  state(): LossScalerState {
    return { scale: this.scale, goodSteps: this.goodSteps, skipped: this.skipped };
  }

  load(s: LossScalerState): void {
    check(Number.isFinite(s.scale) && s.scale > 0, `a saved scale must be finite and > 0, got ${s.scale}`);
    this.scale = s.scale;
    this.goodSteps = s.goodSteps;
    this.skipped = s.skipped;
  }
}
