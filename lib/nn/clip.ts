// The CLIP model: an image tower, a text tower and a learnable logit scale, with
// OpenCLIP's parameter names so its state dicts load as they are.
import type { Tensor } from '../tensor.js';
import { Rng } from '../util/rng.js';
import { type ClipConfig, type ClipConfigOverrides, loadModelConfig, parseModelConfig } from './config.js';
import { constant } from './init.js';
import { Module, Parameter } from './module.js';
import { TextTransformer } from './text.js';
import { checkFits, modelBytes } from './memory_estimate.js';
import { VisionTransformer } from './vision.js';

/** ln(1/0.07), OpenCLIP's initial logit scale. */
export const INIT_LOGIT_SCALE = Math.log(1 / 0.07);
/** The clamp after each step: the scale never exceeds 100. */
export const MAX_LOGIT_SCALE = Math.log(100);

export class CLIP extends Module {
  readonly config: ClipConfig;
  readonly visual: VisionTransformer;
  readonly text: TextTransformer;
  readonly logitScale: Parameter;

  /** `recompute`: activation recomputation in both towers (OpenCLIP's --grad-checkpointing). */
  constructor(config: ClipConfig, options: { recompute?: boolean } = {}) {
    super();
    checkFits(modelBytes(config), 'CLIP: this model config (weights and gradients)');
    this.config = config;
    this.visual = new VisionTransformer(config, options.recompute ?? false);
    this.text = new TextTransformer(config, options.recompute ?? false);
    // OpenCLIP stores logit_scale with shape [] (a 0-d tensor).
    this.logitScale = new Parameter('logit_scale', []);
    constant(this.logitScale, INIT_LOGIT_SCALE);
  }

  parameters(): Parameter[] {
    return [...this.text.parameters(), ...this.visual.parameters(), this.logitScale];
  }

  protected override children(): Module[] {
    return [this.visual, this.text];
  }

  /** OpenCLIP's initialisation from a seed. */
  init(seed: number): this {
    const rng = new Rng(seed);
    this.visual.init(rng);
    this.text.init(rng);
    constant(this.logitScale, INIT_LOGIT_SCALE);
    return this;
  }

  /** Image features [B, embed_dim], not normalised, in a buffer the next call reuses. */
  encodeImage(images: Tensor): Tensor {
    return this.visual.forward(images);
  }

  /** Text features [B, embed_dim], not normalised, in a buffer the next call reuses. */
  encodeText(ids: Tensor): Tensor {
    return this.text.forward(ids);
  }

  /** The parameters by OpenCLIP name. */
  namedParameters(): Map<string, Parameter> {
    return new Map(this.parameters().map((p) => [p.name, p]));
  }

  /** A copy of every parameter as Float32Arrays, by OpenCLIP name. */
  stateDict(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const p of this.parameters()) out.set(p.name, { shape: p.shape, data: new Float32Array(p.values()) });
    return out;
  }

  /**
   * Loads parameters by OpenCLIP name. Every parameter must be present with its exact shape
   * (a 1-element logit_scale of shape [] or [1] is accepted); names the model does not have
   * are reported unless `strict` is false.
   */
  loadStateDict(state: ReadonlyMap<string, { shape: readonly number[]; data: ArrayLike<number> }>, strict = true): void {
    const params = this.namedParameters();
    const missing = [...params.keys()].filter((k) => !state.has(k));
    if (missing.length) throw new Error(`loadStateDict: missing ${missing.length} parameter(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
    if (strict) {
      const extra = [...state.keys()].filter((k) => !params.has(k) && k !== 'attn_mask' && !k.endsWith('.attn_mask'));
      if (extra.length) throw new Error(`loadStateDict: unexpected parameter(s) for this config: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`);
    }
    for (const [name, p] of params) {
      const s = state.get(name)!;
      const numel = s.shape.reduce((a, b) => a * b, 1);
      const sameShape = s.shape.length === p.shape.length && s.shape.every((d, i) => d === p.shape[i]);
      if (!sameShape && !(p.numel === 1 && numel === 1)) {
        throw new Error(`loadStateDict: ${name} has shape [${s.shape.join(', ')}], the model expects [${p.shape.join(', ')}]`);
      }
      if (s.data.length !== p.numel) throw new Error(`loadStateDict: ${name} holds ${s.data.length} values, expected ${p.numel}`);
      p.values().set(s.data);
    }
  }

  parameterCount(): number {
    return this.parameters().reduce((a, p) => a + p.numel, 0);
  }
}

export interface CreateModelOptions {
  /** Initialisation seed (default 0). */
  seed?: number;
  /** Config fields to change, e.g. `{ text_cfg: { vocab_size: 798 } }`. */
  overrides?: ClipConfigOverrides;
  /** Activation recomputation per block: less memory, one more forward per block in training. */
  recompute?: boolean;
}

/** A freshly initialised CLIP from a config name (lib/configs/models), a JSON path, or a config object. */
export function createModel(model: string | ClipConfig, options: CreateModelOptions = {}): CLIP {
  const config = typeof model === 'string' ? loadModelConfig(model, options.overrides ?? {}) : parseModelConfig(model);
  return new CLIP(config, { recompute: options.recompute ?? false }).init(options.seed ?? 0);
}

