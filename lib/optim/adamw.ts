// AdamW over a model's parameters: fp32 moments per parameter, OpenCLIP's decay
// groups, decoupled weight decay and bias correction in the native op.
import type { Parameter } from '../nn/module.js';
import * as ops from '../ops.js';
import { Tensor } from '../tensor.js';
import { FlatParameters } from './flat_parameters.js';
import { ADAMW_DEFAULTS, type AdamWHyperparameters, DEFAULT_WEIGHT_DECAY_RULE, type WeightDecayRule, parseWeightDecayRule, usesWeightDecay } from './param_groups.js';

export class AdamW implements Disposable {
  readonly params: Parameter[];
  readonly hyper: AdamWHyperparameters;
  /** Steps taken (the bias corrections use step + 1 for the next one). */
  step = 0;
  readonly m: Tensor[];
  readonly v: Tensor[];
  /** Which parameters are decayed: 'openclip-3' (released OpenCLIP, default) or 'openclip-main'. */
  readonly weightDecayRule: WeightDecayRule;
  private readonly decays: boolean[];
  /** On the CPU: parameters, gradients and moments are views of flat buffers (one pass per decay group). */
  private readonly flat: FlatParameters | null;

  constructor(params: Parameter[], hyper: Partial<AdamWHyperparameters> = {}, options: { weightDecayRule?: WeightDecayRule; flat?: boolean } = {}) {
    this.params = params;
    this.hyper = { ...ADAMW_DEFAULTS, ...hyper };
    // Checked here, not at the first step: a bad value should fail before any work is done.
    const { lr, beta1, beta2, eps, weightDecay } = this.hyper;
    if (!(Number.isFinite(lr) && lr >= 0)) throw new Error(`AdamW: lr must be a finite number >= 0, got ${lr}`);
    if (!(beta1 >= 0 && beta1 < 1)) throw new Error(`AdamW: beta1 must be in [0, 1), got ${beta1}`);
    if (!(beta2 >= 0 && beta2 < 1)) throw new Error(`AdamW: beta2 must be in [0, 1), got ${beta2}`);
    if (!(Number.isFinite(eps) && eps > 0)) throw new Error(`AdamW: eps must be a finite number > 0, got ${eps}`);
    if (!(Number.isFinite(weightDecay) && weightDecay >= 0)) throw new Error(`AdamW: weightDecay must be a finite number >= 0, got ${weightDecay}`);
    this.weightDecayRule = parseWeightDecayRule(options.weightDecayRule ?? DEFAULT_WEIGHT_DECAY_RULE, 'AdamW');
    this.decays = params.map((p) => usesWeightDecay(p.name, p.shape, { rule: this.weightDecayRule }));
    // On the CPU the parameters are rebound to views of flat buffers (options.flat: false keeps
    // them as they are): their old data/grad tensors are freed, so take p.data / p.grad after
    // constructing the optimizer (a tensor taken before fails loudly as disposed). Elsewhere the moments live with their parameters (on the GPU for a
    // model moved there first).
    this.flat = options.flat !== false && FlatParameters.possible(params) ? new FlatParameters(params, this.decays) : null;
    this.m = this.flat ? this.flat.m : params.map((p) => Tensor.zeros(p.shape, 'f32', p.device));
    this.v = this.flat ? this.flat.v : params.map((p) => Tensor.zeros(p.shape, 'f32', p.device));
  }

  /** Whether a parameter gets weight decay (under this optimizer's rule). */
  usesDecay(name: string): boolean {
    const i = this.params.findIndex((p) => p.name === name);
    if (i < 0) throw new Error(`AdamW: no parameter named '${name}'`);
    return this.decays[i];
  }

  /**
   * One update at learning rate `lr` from the gradients now in the parameters. With a gate the
   * device decides whether it is applied (ops.AdamWGate) and `step` is not advanced here: the
   * caller adds 1 when it learns (a step late) that the update was applied.
   * `zeroGrads` (no gate): on the CPU's flat buffers the gradients are left zero, cleared in the
   * same pass as they are read; returns whether they were (elsewhere they are left as they are,
   * and the caller zeroes them before the next backward as usual).
   */
  update(lr: number, gradScale = 1, gate?: ops.AdamWGate, zeroGrads = false): boolean {
    const stepNumber = this.step + 1;
    if (!gate) this.step = stepNumber;
    // An inference scope's packed weights would go stale (see Module.inference).
    for (const p of this.params) p.dropPacked();
    const { beta1, beta2, eps, weightDecay } = this.hyper;
    if (this.flat) {
      const zeroGrad = zeroGrads && !gate;
      // The same per-element update as below, over each decay group's range at once.
      for (const g of this.flat.groups)
        ops.adamwStep(g.params, g.grads, g.m, g.v, {
          lr, step: stepNumber, beta1, beta2, eps, weightDecay: g.decay ? weightDecay : 0, gradScale, ...(gate ? { gate } : {}), zeroGrad,
        });
      if (gate) ops.adamwCommit(gate);
      return zeroGrad;  // the groups cover the whole gradient buffer
    }
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i];
      ops.adamwStep(p.data, p.grad, this.m[i], this.v[i], {
        lr,
        step: stepNumber,
        beta1,
        beta2,
        eps,
        weightDecay: this.decays[i] ? weightDecay : 0,
        gradScale,
        // The parameter's 16-bit copy (when it keeps one) is rewritten in the same kernel.
        ...(p.halfCopy ? { paramBf16: p.halfCopy } : {}),
        ...(gate ? { gate } : {}),
      });
    }
    if (gate) ops.adamwCommit(gate);
    return false;
  }

  /**
   * Zeroes every parameter's gradient; true if done here (flat buffers: one fill), false if the
   * caller should zero them itself (model.zeroGrad()).
   */
  zeroGrad(): boolean {
    if (!this.flat) return false;
    this.flat.zeroGrad();
    return true;
  }

  dispose(): void {
    if (this.flat) this.flat.dispose();
    else for (const t of [...this.m, ...this.v]) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
