// The CLIP model: an image tower, a text tower and a learnable logit scale, with
// OpenCLIP's parameter names so its state dicts load as they are.
import type { Tensor } from '../tensor.js';
import { Rng } from '../util/rng.js';
import { type ClipConfig, type ClipConfigOverrides, loadModelConfig, parseModelConfigWith } from './config.js';
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
  /** The learned logit bias (SigLIP; config init_logit_bias), shape [] as OpenCLIP's; null when the model has none. */
  readonly logitBias: Parameter | null;
  /** Initial value of logit_scale (ln(1/0.07), or ln 10 for SigLIP training). */
  readonly initLogitScale: number;

  /** `recompute`: activation recomputation in both towers (OpenCLIP's --grad-checkpointing). */
  constructor(config: ClipConfig, options: { recompute?: boolean; initLogitScale?: number } = {}) {
    super();
    checkFits(modelBytes(config), 'CLIP: this model config (weights and gradients)');
    this.config = config;
    this.visual = new VisionTransformer(config, options.recompute ?? false);
    this.text = new TextTransformer(config, options.recompute ?? false);
    if (this.visual.outputDim !== this.text.outputDim) {
      throw new Error(`CLIP: image features have ${this.visual.outputDim} dimensions and text features ${this.text.outputDim}`);
    }
    // OpenCLIP stores logit_scale (and logit_bias) with shape [] (a 0-d tensor).
    this.initLogitScale = options.initLogitScale ?? INIT_LOGIT_SCALE;
    this.logitScale = new Parameter('logit_scale', []);
    constant(this.logitScale, this.initLogitScale);
    this.logitBias = config.init_logit_bias !== undefined ? new Parameter('logit_bias', []) : null;
    if (this.logitBias) constant(this.logitBias, config.init_logit_bias as number);
  }

  parameters(): Parameter[] {
    return [...this.text.parameters(), ...this.visual.parameters(), this.logitScale, ...(this.logitBias ? [this.logitBias] : [])];
  }

  protected override children(): Module[] {
    return [this.visual, this.text];
  }

  /** OpenCLIP's initialisation from a seed. */
  init(seed: number): this {
    const rng = new Rng(seed);
    this.visual.init(rng);
    this.text.init(rng);
    constant(this.logitScale, this.initLogitScale);
    if (this.logitBias) constant(this.logitBias, this.config.init_logit_bias as number);
    return this;
  }

  /**
   * Image features [B, embed_dim], not normalised, in a buffer the next call reuses. Inside
   * `using _ = model.inference()` nothing is kept for backward and the buffers are the
   * inference set (constant in depth); the features are bit-identical.
   */
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
    for (const p of this.parameters()) out.set(p.name, { shape: p.shape, data: p.hostValues() });
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
    if (missing.length) {
      const custom = this.config.custom_text ?? false;
      const hint = missing.includes('logit_bias') && missing.length === 1
        ? " (the config has 'init_logit_bias' but the weights have no logit_bias)"
        : !custom && state.has('text.token_embedding.weight')
          ? " (the weights name the text tower 'text.…', as OpenCLIP's CustomTextCLIP does: set 'custom_text': true)"
          : custom && state.has('token_embedding.weight')
            ? " (the weights name the text tower without 'text.', as OpenCLIP's CLIP does: set 'custom_text': false)"
            : '';
      throw new Error(`loadStateDict: missing ${missing.length} parameter(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}${hint}`);
    }
    if (strict) {
      const extra = [...state.keys()].filter((k) => !params.has(k) && k !== 'attn_mask' && !k.endsWith('.attn_mask'));
      if (extra.length) {
        const hint = extra.includes('logit_bias')
          ? " (the weights have a logit_bias, as SigLIP models do: give the config 'init_logit_bias', e.g. -10)"
          : extra.some((k) => k.startsWith('text.')) && !this.config.custom_text
            ? " (the weights name the text tower 'text.…', as OpenCLIP's CustomTextCLIP does: set 'custom_text': true)"
            : '';
        throw new Error(`loadStateDict: unexpected parameter(s) for this config: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}${hint}`);
      }
    }
    for (const [name, p] of params) {
      const s = state.get(name)!;
      const numel = s.shape.reduce((a, b) => a * b, 1);
      const sameShape = s.shape.length === p.shape.length && s.shape.every((d, i) => d === p.shape[i]);
      if (!sameShape && !(p.numel === 1 && numel === 1)) {
        throw new Error(`loadStateDict: ${name} has shape [${s.shape.join(', ')}], the model expects [${p.shape.join(', ')}]`);
      }
      if (s.data.length !== p.numel) throw new Error(`loadStateDict: ${name} holds ${s.data.length} values, expected ${p.numel}`);
      p.setValues(s.data);
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
  /** Initial logit_scale (default ln(1/0.07); open_clip_train --siglip uses ln 10). */
  initLogitScale?: number;
}

/** A freshly initialised CLIP from a config name (lib/configs/models), a JSON path, or a config object. */
export function createModel(model: string | ClipConfig, options: CreateModelOptions = {}): CLIP {
  const config = typeof model === 'string' ? loadModelConfig(model, options.overrides ?? {}) : parseModelConfigWith(model, options.overrides ?? {});
  return new CLIP(config, { recompute: options.recompute ?? false, ...(options.initLogitScale !== undefined ? { initLogitScale: options.initLogitScale } : {}) }).init(options.seed ?? 0);
}

