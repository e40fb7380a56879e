// Which parameters get weight decay, and AdamW's defaults, as OpenCLIP trains CLIP.
//
// OpenCLIP's current rule (open_clip_train/optim.py, make_wd_exclude) skips decay for every
// parameter with ndim <= 1 (biases, LayerNorm gains, class_embedding, logit_scale) and for the exact
// names the model lists in `no_weight_decay()`: for CLIP that is `positional_embedding` (text) plus the
// vision tower's `visual.positional_embedding` and `visual.class_embedding`; CustomTextCLIP adds the
// `text.` prefixed ones and `text.cls_emb`. Everything else (projections, conv1, token_embedding,
// attention and MLP weights) is decayed.
//
// Older OpenCLIP (the version the scaling-laws paper trained with) used
//   exclude = ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
// which decays the 2-D positional embeddings. `rule: 'legacy'` reproduces that one.

export type WeightDecayRule = 'openclip' | 'legacy';

/**
 * The names OpenCLIP's CLIP / CustomTextCLIP `no_weight_decay()` return. `logit_scale` and
 * `logit_bias` are scalars (already excluded by the ndim rule) and are listed so a model that stores
 * them with a shape of [1, 1] still gets none.
 */
export const OPENCLIP_NO_WEIGHT_DECAY: ReadonlySet<string> = new Set([
  'positional_embedding',
  'visual.positional_embedding',
  'visual.class_embedding',
  'text.positional_embedding',
  'text.cls_emb',
  'logit_scale',
  'logit_bias',
]);

export interface WeightDecayOptions {
  /** 'openclip' (default): ndim <= 1 or a no_weight_decay name. 'legacy': the old substring rule. */
  rule?: WeightDecayRule;
  /** Exact names to exclude instead of OPENCLIP_NO_WEIGHT_DECAY (rule 'openclip' only). */
  noWeightDecay?: Iterable<string>;
}

function checkShape(name: string, shape: readonly number[]): void {
  if (typeof name !== 'string' || name.length === 0) throw new Error('weight decay: parameter name must be a non-empty string');
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new Error(`weight decay: parameter '${name}' has an invalid shape ${JSON.stringify(shape)}`);
  }
}

/** True when the parameter is exempt from weight decay under OpenCLIP's rule. */
export function excludeFromWeightDecay(name: string, shape: readonly number[], options: WeightDecayOptions = {}): boolean {
  checkShape(name, shape);
  const rule = options.rule ?? 'openclip';
  if (rule === 'legacy') {
    return shape.length < 2 || name.includes('bn') || name.includes('ln') || name.includes('bias') || name.includes('logit_scale');
  }
  if (rule !== 'openclip') throw new Error(`weight decay: unknown rule '${String(rule)}' (expected 'openclip' or 'legacy')`);
  if (shape.length <= 1) return true;
  const names = options.noWeightDecay === undefined ? OPENCLIP_NO_WEIGHT_DECAY : new Set(options.noWeightDecay);
  return names.has(name);
}

export function usesWeightDecay(name: string, shape: readonly number[], options: WeightDecayOptions = {}): boolean {
  return !excludeFromWeightDecay(name, shape, options);
}

export interface ParamGroup {
  /** 'wd' or 'no_wd', as OpenCLIP names its two groups. */
  name: 'wd' | 'no_wd';
  weightDecay: number;
  /** Parameter names in the order given. */
  params: string[];
}

/**
 * OpenCLIP's two-group split: decayed parameters with `weightDecay`, the rest with 0. Groups with
 * no members are left out; every name must be unique.
 */
export function weightDecayParamGroups(
  params: Iterable<{ name: string; shape: readonly number[] }>,
  weightDecay: number,
  options: WeightDecayOptions = {},
): ParamGroup[] {
  if (!Number.isFinite(weightDecay) || weightDecay < 0) {
    throw new Error(`weight decay: weightDecay must be a finite number >= 0, got ${String(weightDecay)}`);
  }
  const decayed: string[] = [];
  const exempt: string[] = [];
  const seen = new Set<string>();
  for (const { name, shape } of params) {
    if (seen.has(name)) throw new Error(`weight decay: parameter '${name}' is listed twice`);
    seen.add(name);
    (excludeFromWeightDecay(name, shape, options) ? exempt : decayed).push(name);
  }
  const groups: ParamGroup[] = [];
  if (exempt.length > 0) groups.push({ name: 'no_wd', weightDecay: 0, params: exempt });
  if (decayed.length > 0) groups.push({ name: 'wd', weightDecay, params: decayed });
  return groups;
}

export interface AdamWHyperparameters {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** OpenCLIP's AdamW defaults for ViT CLIP training (params.py: lr 5e-4, betas 0.9/0.98, eps 1e-6, --wd 0.2). */
export const ADAMW_DEFAULTS: Readonly<AdamWHyperparameters> = Object.freeze({
  lr: 5e-4,
  beta1: 0.9,
  beta2: 0.98,
  eps: 1e-6,
  weightDecay: 0.2,
});

/**
 * OpenCLIP's `get_default_params`: the ViT defaults when the model name contains "vit"
 * (case-insensitive), otherwise the ResNet ones (beta2 0.999, eps 1e-8); weight decay 0.2 for both.
 */
export function adamwDefaultsFor(modelName: string): AdamWHyperparameters {
  if (modelName.toLowerCase().includes('vit')) return { ...ADAMW_DEFAULTS };
  return { ...ADAMW_DEFAULTS, beta2: 0.999, eps: 1e-8 };
}
