// `clipscale embed` on weights saved under OpenCLIP's state-dict names gives OpenCLIP's features.
//
// The reference below is written from the architecture's definition (open_clip/transformer.py,
// model.py), in float64, sharing no code with lib/nn: conv patchify, class token, positional
// embedding, ln_pre, pre-norm residual blocks with nn.MultiheadAttention's semantics (packed
// in_proj split into q/k/v, q scaled by 1/√head_dim, causal mask for text, out_proj), GELU (erf) or
// QuickGELU, ln_post on the class token and `@ proj`; text: token embedding + positions, the same
// blocks, ln_final, pooling at argmax(ids) (the first maximum, as torch.argmax), `@ text_projection`.
// The weights are random and written to safetensors under names listed here from OpenCLIP, so a
// naming or layout difference fails the load or the comparison.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { command, runEmbed, type EmbedResult } from '../lib/cli/commands/embed.js';
import { UsageError } from '../lib/cli/command.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { SYNTHETIC_NORMALIZATION } from '../lib/data/synthetic_normalization.js';
import { transformImage } from '../lib/data/transforms.js';
import { readNpy, writeNpy } from '../lib/eval/npy.js';
import { loadCheckpoint } from '../lib/train/load.js';
import { bf16BitsFromF32, f16BitsFromF32, f32FromBf16Bits, f32FromF16Bits, writeSafetensors, type TensorRecord } from '../lib/train/safetensors.js';
import { randn, relErr } from './_helpers/numeric.js';

const dir = mkdtempSync(join(tmpdir(), 'clipscale-embed-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const f = (name: string) => join(dir, name);

// ---------------------------------------------------------------------------------------------
// A micro config (OpenCLIP schema) with uneven sizes, so transposed or mixed-up axes show.

interface MicroConfig {
  embed_dim: number;
  quick_gelu: boolean;
  vision_cfg: { image_size: number; patch_size: number; width: number; head_width: number; layers: number; mlp_ratio: number };
  text_cfg: { context_length: number; vocab_size: number; width: number; heads: number; layers: number; mlp_ratio: number };
}

function microConfig(quickGelu: boolean): MicroConfig {
  return {
    embed_dim: 12,
    quick_gelu: quickGelu,
    vision_cfg: { image_size: 12, patch_size: 4, width: 16, head_width: 8, layers: 2, mlp_ratio: 4 },
    text_cfg: { context_length: 8, vocab_size: 40, width: 20, heads: 4, layers: 2, mlp_ratio: 2 },
  };
}

function writeConfig(cfg: MicroConfig, name: string): string {
  const path = f(`${name}.json`);
  writeFileSync(path, JSON.stringify(cfg));
  return path;
}

// ---------------------------------------------------------------------------------------------
// Random weights under OpenCLIP's names.

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

function openClipWeights(cfg: MicroConfig, seed: number): Weights {
  const w: Weights = new Map();
  let s = seed;
  const put = (name: string, shape: number[], scale: number, offset = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = randn(n, s++, scale);
    if (offset) for (let i = 0; i < n; i++) data[i] += offset;
    w.set(name, { shape, data });
  };
  const blocks = (prefix: string, width: number, layers: number, hidden: number) => {
    for (let l = 0; l < layers; l++) {
      const b = `${prefix}.resblocks.${l}`;
      put(`${b}.ln_1.weight`, [width], 0.2, 1);
      put(`${b}.ln_1.bias`, [width], 0.1);
      put(`${b}.attn.in_proj_weight`, [3 * width, width], 1 / Math.sqrt(width));
      put(`${b}.attn.in_proj_bias`, [3 * width], 0.1);
      put(`${b}.attn.out_proj.weight`, [width, width], 1 / Math.sqrt(width));
      put(`${b}.attn.out_proj.bias`, [width], 0.1);
      put(`${b}.ln_2.weight`, [width], 0.2, 1);
      put(`${b}.ln_2.bias`, [width], 0.1);
      put(`${b}.mlp.c_fc.weight`, [hidden, width], 1 / Math.sqrt(width));
      put(`${b}.mlp.c_fc.bias`, [hidden], 0.1);
      put(`${b}.mlp.c_proj.weight`, [width, hidden], 1 / Math.sqrt(hidden));
      put(`${b}.mlp.c_proj.bias`, [width], 0.1);
    }
  };
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  const grid = v.image_size / v.patch_size;
  put('visual.class_embedding', [v.width], 0.5);
  put('visual.positional_embedding', [grid * grid + 1, v.width], 0.3);
  put('visual.proj', [v.width, cfg.embed_dim], 1 / Math.sqrt(v.width));
  put('visual.conv1.weight', [v.width, 3, v.patch_size, v.patch_size], 1 / Math.sqrt(3 * v.patch_size ** 2));
  put('visual.ln_pre.weight', [v.width], 0.2, 1);
  put('visual.ln_pre.bias', [v.width], 0.1);
  blocks('visual.transformer', v.width, v.layers, Math.floor(v.width * v.mlp_ratio));
  put('visual.ln_post.weight', [v.width], 0.2, 1);
  put('visual.ln_post.bias', [v.width], 0.1);
  put('token_embedding.weight', [t.vocab_size, t.width], 0.5);
  put('positional_embedding', [t.context_length, t.width], 0.3);
  blocks('transformer', t.width, t.layers, Math.floor(t.width * t.mlp_ratio));
  put('ln_final.weight', [t.width], 0.2, 1);
  put('ln_final.bias', [t.width], 0.1);
  put('text_projection', [t.width, cfg.embed_dim], 1 / Math.sqrt(t.width));
  w.set('logit_scale', { shape: [], data: Float32Array.of(Math.log(1 / 0.07)) }); // a 0-d tensor, as PyTorch saves it
  return w;
}

async function saveWeights(path: string, w: Weights, dtype: 'F32' | 'BF16' | 'F16' = 'F32', prefix = '', extra: Record<string, TensorRecord> = {}): Promise<void> {
  const records: Record<string, TensorRecord> = { ...extra };
  for (const [name, { shape, data }] of w) records[prefix + name] = { dtype, shape, data };
  await writeSafetensors(path, records, { format: 'pt' });
}

/** The weights as a BF16 or F16 file holds them. */
function rounded(w: Weights, dtype: 'BF16' | 'F16'): Weights {
  const round = dtype === 'BF16' ? (x: number) => f32FromBf16Bits(bf16BitsFromF32(x)) : (x: number) => f32FromF16Bits(f16BitsFromF32(x));
  return new Map([...w].map(([k, { shape, data }]) => [k, { shape, data: Float32Array.from(data, round) }]));
}

// ---------------------------------------------------------------------------------------------
// The float64 reference.

/** erf to ~1e-15: its Maclaurin series for |x| < 2.5, the continued fraction of erfc beyond. */
function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 2.5) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = exp(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …)))), evaluated from the tail.
  let t = a;
  for (let k = 120; k >= 1; k--) t = a + k / 2 / t;
  return Math.sign(x) * (1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / t);
}

const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const quickGelu = (x: number) => x / (1 + Math.exp(-1.702 * x));

type Mat = { rows: number; cols: number; d: Float64Array };
const mat = (rows: number, cols: number): Mat => ({ rows, cols, d: new Float64Array(rows * cols) });

/** x @ Wᵀ + b with W [out, in] (nn.Linear). */
function linear(x: Mat, W: Float32Array, b: Float32Array | null, out: number): Mat {
  const y = mat(x.rows, out);
  for (let i = 0; i < x.rows; i++) {
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let k = 0; k < x.cols; k++) s += x.d[i * x.cols + k] * W[o * x.cols + k];
      y.d[i * out + o] = s;
    }
  }
  return y;
}

/** x @ P with P [in, out] (OpenCLIP's proj / text_projection parameters). */
function project(x: Mat, P: Float32Array, out: number): Mat {
  const y = mat(x.rows, out);
  for (let i = 0; i < x.rows; i++) for (let o = 0; o < out; o++) {
    let s = 0;
    for (let k = 0; k < x.cols; k++) s += x.d[i * x.cols + k] * P[k * out + o];
    y.d[i * out + o] = s;
  }
  return y;
}

function layerNorm(x: Mat, g: Float32Array, b: Float32Array): Mat {
  const y = mat(x.rows, x.cols);
  const n = x.cols;
  for (let i = 0; i < x.rows; i++) {
    let mean = 0;
    for (let k = 0; k < n; k++) mean += x.d[i * n + k];
    mean /= n;
    let v = 0;
    for (let k = 0; k < n; k++) v += (x.d[i * n + k] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / n + 1e-5);
    for (let k = 0; k < n; k++) y.d[i * n + k] = (x.d[i * n + k] - mean) * inv * g[k] + b[k];
  }
  return y;
}

function add(a: Mat, b: Mat): Mat {
  const y = mat(a.rows, a.cols);
  for (let i = 0; i < y.d.length; i++) y.d[i] = a.d[i] + b.d[i];
  return y;
}

/** nn.MultiheadAttention(x, x, x, attn_mask) with packed in_proj, batch of one. */
function multiheadAttention(x: Mat, w: Weights, p: string, heads: number, causal: boolean): Mat {
  const W = x.cols;
  const dh = W / heads;
  const qkv = linear(x, w.get(`${p}.in_proj_weight`)!.data, w.get(`${p}.in_proj_bias`)!.data, 3 * W);
  const T = x.rows;
  const ctx = mat(T, W);
  const scale = 1 / Math.sqrt(dh);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < T; i++) {
      const scores = new Float64Array(T);
      let max = -Infinity;
      for (let j = 0; j < T; j++) {
        if (causal && j > i) {
          scores[j] = -Infinity; // the additive −inf mask above the diagonal
          continue;
        }
        let s = 0;
        for (let c = 0; c < dh; c++) s += qkv.d[i * 3 * W + h * dh + c] * scale * qkv.d[j * 3 * W + W + h * dh + c];
        scores[j] = s;
        max = Math.max(max, s);
      }
      let z = 0;
      for (let j = 0; j < T; j++) z += (scores[j] = Math.exp(scores[j] - max));
      for (let c = 0; c < dh; c++) {
        let s = 0;
        for (let j = 0; j < T; j++) s += (scores[j] / z) * qkv.d[j * 3 * W + 2 * W + h * dh + c];
        ctx.d[i * W + h * dh + c] = s;
      }
    }
  }
  return linear(ctx, w.get(`${p}.out_proj.weight`)!.data, w.get(`${p}.out_proj.bias`)!.data, W);
}

/** OpenCLIP's ResidualAttentionBlock: x + attn(ln_1(x)), then + mlp(ln_2(x)). */
function residualBlock(x: Mat, w: Weights, p: string, heads: number, hidden: number, causal: boolean, act: (v: number) => number): Mat {
  const g = (n: string) => w.get(`${p}.${n}`)!.data;
  x = add(x, multiheadAttention(layerNorm(x, g('ln_1.weight'), g('ln_1.bias')), w, `${p}.attn`, heads, causal));
  const h = linear(layerNorm(x, g('ln_2.weight'), g('ln_2.bias')), g('mlp.c_fc.weight'), g('mlp.c_fc.bias'), hidden);
  for (let i = 0; i < h.d.length; i++) h.d[i] = act(h.d[i]);
  return add(x, linear(h, g('mlp.c_proj.weight'), g('mlp.c_proj.bias'), x.cols));
}

function referenceEncodeImage(cfg: MicroConfig, w: Weights, pixels: Float32Array, n: number): Float64Array {
  const v = cfg.vision_cfg;
  const S = v.image_size;
  const P = v.patch_size;
  const W = v.width;
  const grid = S / P;
  const act = cfg.quick_gelu ? quickGelu : gelu;
  const conv = w.get('visual.conv1.weight')!.data;
  const cls = w.get('visual.class_embedding')!.data;
  const pos = w.get('visual.positional_embedding')!.data;
  const out = new Float64Array(n * cfg.embed_dim);
  for (let b = 0; b < n; b++) {
    const img = (c: number, y: number, xx: number) => pixels[b * 3 * S * S + c * S * S + y * S + xx];
    // conv1 (stride = kernel = patch, no bias), flattened row-major over the grid; class token first.
    let x = mat(grid * grid + 1, W);
    for (let k = 0; k < W; k++) x.d[k] = cls[k] + pos[k];
    for (let gy = 0; gy < grid; gy++) for (let gx = 0; gx < grid; gx++) {
      const t = 1 + gy * grid + gx;
      for (let o = 0; o < W; o++) {
        let s = 0;
        for (let c = 0; c < 3; c++) for (let ky = 0; ky < P; ky++) for (let kx = 0; kx < P; kx++) {
          s += conv[((o * 3 + c) * P + ky) * P + kx] * img(c, gy * P + ky, gx * P + kx);
        }
        x.d[t * W + o] = s + pos[t * W + o];
      }
    }
    x = layerNorm(x, w.get('visual.ln_pre.weight')!.data, w.get('visual.ln_pre.bias')!.data);
    for (let l = 0; l < v.layers; l++) {
      x = residualBlock(x, w, `visual.transformer.resblocks.${l}`, W / v.head_width, Math.floor(W * v.mlp_ratio), false, act);
    }
    const pooled: Mat = { rows: 1, cols: W, d: x.d.slice(0, W) };
    const y = project(layerNorm(pooled, w.get('visual.ln_post.weight')!.data, w.get('visual.ln_post.bias')!.data), w.get('visual.proj')!.data, cfg.embed_dim);
    out.set(y.d, b * cfg.embed_dim);
  }
  return out;
}

function referenceEncodeText(cfg: MicroConfig, w: Weights, ids: Int32Array, n: number): Float64Array {
  const t = cfg.text_cfg;
  const C = t.context_length;
  const W = t.width;
  const act = cfg.quick_gelu ? quickGelu : gelu;
  const table = w.get('token_embedding.weight')!.data;
  const pos = w.get('positional_embedding')!.data;
  const out = new Float64Array(n * cfg.embed_dim);
  for (let b = 0; b < n; b++) {
    let x = mat(C, W);
    for (let i = 0; i < C; i++) for (let k = 0; k < W; k++) x.d[i * W + k] = table[ids[b * C + i] * W + k] + pos[i * W + k];
    for (let l = 0; l < t.layers; l++) x = residualBlock(x, w, `transformer.resblocks.${l}`, t.heads, Math.floor(W * t.mlp_ratio), true, act);
    x = layerNorm(x, w.get('ln_final.weight')!.data, w.get('ln_final.bias')!.data);
    let eot = 0;
    for (let i = 1; i < C; i++) if (ids[b * C + i] > ids[b * C + eot]) eot = i; // first maximum
    const pooled: Mat = { rows: 1, cols: W, d: x.d.slice(eot * W, (eot + 1) * W) };
    out.set(project(pooled, w.get('text_projection')!.data, cfg.embed_dim).d, b * cfg.embed_dim);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Inputs

const nImages = 5;
const pixels = randn(nImages * 3 * 12 * 12, 901);
writeNpy(f('pixels.npy'), pixels, [nImages, 3, 12, 12]);

// OpenCLIP-style rows (sot … eot, zero padding), a full row, a row truncated with eot last,
// and a row whose largest id appears twice (pooling takes the first).
const sot = 38;
const eotId = 39;
const tokenRows = [
  [sot, 5, 17, 3, eotId, 0, 0, 0],
  [sot, 1, eotId, 0, 0, 0, 0, 0],
  [sot, 30, 22, 9, 14, 2, 7, eotId],
  [sot, 11, 12, 13, 14, 15, 16, eotId],
  [4, 33, 2, 33, 1, 0, 0, 0],
  [eotId, 0, 0, 0, 0, 0, 0, 0],
];
const tokens32 = Int32Array.from(tokenRows.flat());
writeNpy(f('tokens.npy'), BigInt64Array.from(tokenRows.flat(), BigInt), [tokenRows.length, 8]); // int64, as torch saves ids

/** Runs `clipscale embed …` in-process (its function, so parallel tests need not share console.log). */
async function embed(args: string[]): Promise<{ image?: Float32Array; text?: Float32Array; result: EmbedResult }> {
  const result = await runEmbed(args);
  const read = (p?: { path: string }) => (p ? (readNpy(p.path).data as Float32Array) : undefined);
  return { image: read(result.image_features), text: read(result.text_features), result };
}

/** Largest per-row relative error ‖ours − ref‖/‖ref‖ over rows of `dim`. */
function worstRowErr(ours: Float32Array, ref: Float64Array, dim: number): number {
  let worst = 0;
  for (let r = 0; r < ref.length / dim; r++) worst = Math.max(worst, relErr(ours.subarray(r * dim, (r + 1) * dim), ref.subarray(r * dim, (r + 1) * dim)));
  return worst;
}

// ---------------------------------------------------------------------------------------------

test('the float64 erf of the reference is right (GELU depends on it)', (t) => {
  const known: [number, number][] = [[0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [3, 0.9999779095030014], [-1.5, -0.9661051464753108]];
  for (const [x, v] of known) t.true(Math.abs(erf(x) - v) < 1e-14, `erf(${x}) = ${erf(x)}, expected ${v}`);
});

for (const quick of [false, true]) {
  const act = quick ? 'QuickGELU' : 'GELU (erf)';
  test(`clipscale embed gives OpenCLIP's encode_image/encode_text features (${act}, float64 reference, rel. error ≤ 1e-4)`, async (t) => {
    const name = quick ? 'micro-quick' : 'micro-gelu';
    const cfg = microConfig(quick);
    const w = openClipWeights(cfg, quick ? 200 : 100);
    await saveWeights(f(`${name}.safetensors`), w);
    const out = f(`out-${name}`);
    const r = await embed(['--model', writeConfig(cfg, name), '--weights', f(`${name}.safetensors`), '--pixels', f('pixels.npy'), '--tokens', f('tokens.npy'), '--out', out, '--json']);
    const refImage = referenceEncodeImage(cfg, w, pixels, nImages);
    const refText = referenceEncodeText(cfg, w, tokens32, tokenRows.length);
    const written = r.result as Required<EmbedResult>;
    t.deepEqual(written.image_features.shape, [nImages, cfg.embed_dim]);
    t.deepEqual(written.text_features.shape, [tokenRows.length, cfg.embed_dim]);
    const eImg = worstRowErr(r.image!, refImage, cfg.embed_dim);
    const eTxt = worstRowErr(r.text!, refText, cfg.embed_dim);
    t.log(`${act}: worst per-row relative error: image ${eImg.toExponential(2)}, text ${eTxt.toExponential(2)}`);
    t.true(eImg <= 1e-4, `image features differ from the reference: ${eImg}`);
    t.true(eTxt <= 1e-4, `text features differ from the reference: ${eTxt}`);
    // Not normalised: OpenCLIP's encode_* return raw projections.
    const norm0 = Math.hypot(...r.image!.subarray(0, cfg.embed_dim));
    t.true(Math.abs(norm0 - 1) > 0.05, `features look normalised (norm ${norm0})`);
  });
}

test('the activation matters: QuickGELU weights embedded as GELU miss the reference', async (t) => {
  // Guards the comparison itself: a model that differs only in its activation must not pass.
  const cfg = microConfig(true);
  const w = openClipWeights(cfg, 200);
  await saveWeights(f('act.safetensors'), w);
  const r = await embed(['--model', writeConfig(microConfig(false), 'act-gelu'), '--weights', f('act.safetensors'), '--pixels', f('pixels.npy'), '--out', f('out-act')]);
  const e = worstRowErr(r.image!, referenceEncodeImage(cfg, w, pixels, nImages), cfg.embed_dim);
  t.true(e > 1e-3, `GELU vs QuickGELU should differ, got ${e}`);
});

for (const dtype of ['BF16', 'F16'] as const) {
  test(`${dtype} weights, a DDP "module." prefix and an old attn_mask buffer load and match the reference on the rounded weights`, async (t) => {
    const cfg = microConfig(false);
    const w = openClipWeights(cfg, 300);
    const mask = new Float32Array(64).map((_, i) => (i % 8 > Math.floor(i / 8) ? -Infinity : 0));
    const file = f(`${dtype}.safetensors`);
    await saveWeights(file, w, dtype, 'module.', { 'module.attn_mask': { dtype: 'F32', shape: [8, 8], data: mask } });
    const r = await embed(['--model', writeConfig(cfg, dtype), '--weights', file, '--pixels', f('pixels.npy'), '--tokens', f('tokens.npy'), '--out', f(`out-${dtype}`)]);
    const wr = rounded(w, dtype);
    const eImg = worstRowErr(r.image!, referenceEncodeImage(cfg, wr, pixels, nImages), cfg.embed_dim);
    const eTxt = worstRowErr(r.text!, referenceEncodeText(cfg, wr, tokens32, tokenRows.length), cfg.embed_dim);
    t.log(`${dtype} weights: image ${eImg.toExponential(2)}, text ${eTxt.toExponential(2)}`);
    t.true(eImg <= 1e-4 && eTxt <= 1e-4);
    // And the rounding is visible: against the unrounded weights the features differ.
    t.true(worstRowErr(r.image!, referenceEncodeImage(cfg, w, pixels, nImages), cfg.embed_dim) > 10 * eImg);
  });
}

test('weights that do not fit the config are refused with every fault named', async (t) => {
  const cfg = microConfig(false);
  const w = openClipWeights(cfg, 400);
  w.delete('visual.ln_post.bias');
  w.set('logit_bias', { shape: [1], data: Float32Array.of(-10) });
  await saveWeights(f('bad.safetensors'), w);
  const err = await t.throwsAsync(loadCheckpoint(writeConfig(cfg, 'bad'), f('bad.safetensors')));
  t.regex(err!.message, /missing 1 tensor\(s\) the model needs: visual\.ln_post\.bias/);
  t.regex(err!.message, /tensor\(s\) this config has no parameter for: logit_bias/);

  // The same weights against a config with a longer context: the mismatch names the tensor and both shapes.
  const good = openClipWeights(cfg, 400);
  await saveWeights(f('good.safetensors'), good);
  const longer = microConfig(false);
  longer.text_cfg.context_length = 10;
  const err2 = await t.throwsAsync(loadCheckpoint(writeConfig(longer, 'longer'), f('good.safetensors')));
  t.regex(err2!.message, /positional_embedding: file \[8, 20\], model \[10, 20\] \(text_cfg\.context_length/);

  await t.throwsAsync(loadCheckpoint(writeConfig(cfg, 'x'), f('missing.safetensors')), { message: /cannot read .*missing\.safetensors.*no such file/ });
  writeFileSync(f('foreign.safetensors'), 'PK\u0003\u0004 not a safetensors file at all');
  await t.throwsAsync(loadCheckpoint(writeConfig(cfg, 'x'), f('foreign.safetensors')), { message: /safetensors: .*foreign\.safetensors/ });
});

test('bad embed inputs give clear errors', async (t) => {
  const cfg = microConfig(false);
  await saveWeights(f('inputs.safetensors'), openClipWeights(cfg, 500));
  const base = ['--model', writeConfig(cfg, 'inputs'), '--weights', f('inputs.safetensors'), '--out', f('out-inputs')];
  writeNpy(f('px-wrong.npy'), new Float32Array(2 * 3 * 16 * 16), [2, 3, 16, 16]);
  await t.throwsAsync(command.run([...base, '--pixels', f('px-wrong.npy')]), { message: /expected an N×3×12×12 array .* got shape \(2, 3, 16, 16\)/ });
  writeNpy(f('ids-big.npy'), Int32Array.of(1, 2, 3, 40, 0, 0, 0, 0), [1, 8]);
  await t.throwsAsync(command.run([...base, '--tokens', f('ids-big.npy')]), { message: /token id 40 at row 0, position 3 is outside the model's vocabulary \[0, 40\)/ });
  writeNpy(f('ids-float.npy'), new Float32Array(8), [1, 8]);
  await t.throwsAsync(command.run([...base, '--tokens', f('ids-float.npy')]), { message: /token ids must be int32 or int64, got float32/ });
  await t.throwsAsync(command.run(base), { instanceOf: UsageError, message: /nothing to embed/ });
  // Without --vocab: the default for a 40-token model is the synthetic vocabulary, too large for it.
  writeFileSync(f('x.txt'), 'a red circle\n');
  await t.throwsAsync(command.run([...base, '--texts', f('x.txt')]), { message: /the default vocabulary \('synthetic'\) has \d+ tokens but the model's text_cfg.vocab_size is 40/ });
  await t.throwsAsync(command.run(['--weights', f('inputs.safetensors'), '--out', f('out-inputs'), '--pixels', f('pixels.npy')]), { instanceOf: UsageError, message: /--model is required when --weights is a file/ });
  await t.throwsAsync(command.run([...base, '--pixels', f('pixels.npy'), '--bogus']), { instanceOf: UsageError });
});

test('--images (eval transform) and --texts (tokenizer) give the features of the preprocessed arrays', async (t) => {
  const tok = defaultSyntheticTokenizer();
  const cfg = microConfig(false);
  cfg.text_cfg.vocab_size = tok.vocabSize;
  const w = openClipWeights(cfg, 600);
  await saveWeights(f('files.safetensors'), w);
  const imgDir = f('images');
  mkdirSync(join(imgDir, 'sub'), { recursive: true });
  const files = [join(imgDir, 'a.png'), join(imgDir, 'sub', 'b.png')];
  for (const [i, file] of files.entries()) {
    const raw = Buffer.from(Array.from({ length: 20 * 14 * 3 }, (_, k) => (k * (7 + i * 13)) % 256));
    await sharp(raw, { raw: { width: 20, height: 14, channels: 3 } }).png().toFile(file);
  }
  writeFileSync(f('captions.txt'), 'a red circle\n\na small blue square on the left\n');
  const configPath = writeConfig(cfg, 'files');
  const r = await embed(['--model', configPath, '--weights', f('files.safetensors'), '--images', imgDir, '--texts', f('captions.txt'), '--vocab', 'synthetic', '--out', f('out-files')]);
  t.deepEqual(readFileSync(join(f('out-files'), 'image_files.txt'), 'utf8').trim().split('\n'), files);

  // A model that is not a 49,408-token one gets the synthetic world's normalisation by default.
  const px = new Float32Array(2 * 3 * 12 * 12);
  for (const [i, file] of files.entries()) await transformImage(file, { size: 12, train: false, normalization: SYNTHETIC_NORMALIZATION }, px, i * 3 * 144);
  writeNpy(f('px-files.npy'), px, [2, 3, 12, 12]);
  writeNpy(f('ids-files.npy'), tok.tokenize(['a red circle', 'a small blue square on the left'], 8), [2, 8]);
  const ref = await embed(['--model', configPath, '--weights', f('files.safetensors'), '--pixels', f('px-files.npy'), '--tokens', f('ids-files.npy'), '--out', f('out-arrays')]);
  t.deepEqual(r.image, ref.image);
  t.deepEqual(r.text, ref.text);
  t.is(r.text!.length, 2 * cfg.embed_dim);
  // --image-mean/--image-std choose another (here OpenAI's, given by name and by value).
  const pxOpenai = new Float32Array(2 * 3 * 12 * 12);
  for (const [i, file] of files.entries()) await transformImage(file, { size: 12, train: false }, pxOpenai, i * 3 * 144);
  writeNpy(f('px-openai.npy'), pxOpenai, [2, 3, 12, 12]);
  const refOpenai = await embed(['--model', configPath, '--weights', f('files.safetensors'), '--pixels', f('px-openai.npy'), '--out', f('out-arrays-openai')]);
  const named = await embed(['--model', configPath, '--weights', f('files.safetensors'), '--images', imgDir, '--image-mean', 'openai', '--image-std', 'openai', '--out', f('out-files-openai')]);
  const byValue = await embed(['--model', configPath, '--weights', f('files.safetensors'), '--images', imgDir, '--image-mean', '0.48145466,0.4578275,0.40821073', '--image-std', '0.26862954,0.26130258,0.27577711', '--out', f('out-files-openai2')]);
  t.deepEqual(named.image, refOpenai.image);
  t.deepEqual(byValue.image, refOpenai.image);
  t.notDeepEqual(named.image, r.image);
  await t.throwsAsync(embed(['--model', configPath, '--weights', f('files.safetensors'), '--images', imgDir, '--image-mean', '0.5,0.5', '--image-std', '0.2,0.2,0.2', '--out', f('x')]), { message: /--image-mean must be three numbers R,G,B, got '0.5,0.5'/ });
});
