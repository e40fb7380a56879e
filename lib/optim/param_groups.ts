// Which parameters get weight decay, and AdamW's defaults, as OpenCLIP trains CLIP.
//
// Two rules, both OpenCLIP's:
// - 'openclip-3' (default): the released open_clip_train 3.x (open_clip_train/main.py), which is also
//   what the scaling-laws paper's runs used:
//     exclude = p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
//   so the 2-D positional embeddings ARE decayed, and so is any matrix whose name happens to
//   contain "ln" or "bn" as a substring is NOT.
// - 'openclip-main': OpenCLIP's unreleased main branch (open_clip_train/optim.py, make_wd_exclude):
//   no decay for every parameter with ndim <= 1 (biases, LayerNorm gains, class_embedding,
//   logit_scale) and for the exact names the model lists in `no_weight_decay()`: for CLIP that is
//   `positional_embedding` (text) plus `visual.positional_embedding` and `visual.class_embedding`;
//   CustomTextCLIP adds the `text.` prefixed ones and `text.cls_emb`. Everything else decays.

export type WeightDecayRule = 'openclip-3' | 'openclip-main';

/** The rule used when none is given: the released OpenCLIP's (and the scaling-laws paper's). */
export const DEFAULT_WEIGHT_DECAY_RULE: WeightDecayRule = 'openclip-3';

export const WEIGHT_DECAY_RULES: readonly WeightDecayRule[] = ['openclip-3', 'openclip-main'];

/** Checks a rule name from a user (CLI, config) and returns it typed. */
export function parseWeightDecayRule(value: unknown, where = 'weight decay'): WeightDecayRule {
  if (typeof value === 'string' && (WEIGHT_DECAY_RULES as readonly string[]).includes(value)) return value as WeightDecayRule;
  throw new Error(`${where}: unknown rule ${JSON.stringify(value)} (expected ${WEIGHT_DECAY_RULES.map((r) => `'${r}'`).join(' or ')})`);
}

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
  /** 'openclip-3' (default): the released substring rule. 'openclip-main': ndim <= 1 or a no_weight_decay name. */
  rule?: WeightDecayRule;
  /** Exact names to exclude instead of OPENCLIP_NO_WEIGHT_DECAY (rule 'openclip-main' only). */
  noWeightDecay?: Iterable<string>;
}

function checkShape(name: string, shape: readonly number[]): void {
  if (typeof name !== 'string' || name.length === 0) throw new Error('weight decay: parameter name must be a non-empty string');
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new Error(`weight decay: parameter '${name}' has an invalid shape ${JSON.stringify(shape)}`);
  }
}

/** True when the parameter is exempt from weight decay under the rule (default 'openclip-3'). */
export function excludeFromWeightDecay(name: string, shape: readonly number[], options: WeightDecayOptions = {}): boolean {
  checkShape(name, shape);
  const rule = parseWeightDecayRule(options.rule ?? DEFAULT_WEIGHT_DECAY_RULE);
  if (rule === 'openclip-3') {
    return shape.length < 2 || name.includes('bn') || name.includes('ln') || name.includes('bias') || name.includes('logit_scale');
  }
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
