// Typed op functions over the native binding. Each takes Tensors, checks nothing
// itself (native code checks and throws errors naming the op), and writes into
// the output tensors it is given, so a model can preallocate everything.
import { native } from './native.js';
import type { Tensor } from './tensor.js';

type N = import('./native.js').NativeTensor;
const h = (t: Tensor): N => t.handle;
const ho = (t: Tensor | null | undefined): N | null => (t ? t.handle : null);
// Ops registered by later groups are looked up by name; a missing one is a build mismatch.
function fn<F>(name: string): F {
  const f = native[name];
  if (typeof f !== 'function') throw new Error(`clipscale: the native addon has no op '${name}'; rebuild it (npm rebuild clipscale)`);
  return f as F;
}
void ho;
void fn;

// ── element-wise ──
export function fill(x: Tensor, value: number): void {
  native.fill(h(x), value);
}
export function copy(src: Tensor, dst: Tensor): void {
  native.copy(h(src), h(dst));
}
export function scale(x: Tensor, alpha: number): void {
  native.scale(h(x), alpha);
}
/** y += alpha·x */
export function axpy(alpha: number, x: Tensor, y: Tensor): void {
  native.axpy(alpha, h(x), h(y));
}
export function add(a: Tensor, b: Tensor, out: Tensor): void {
  native.add(h(a), h(b), h(out));
}
export function convert(src: Tensor, dst: Tensor): void {
  native.convert(h(src), h(dst));
}

// ── matmul (gemm group) ──
export interface MatmulOptions {
  /** Use aᵀ: a is stored [K, M] (or [B, K, M]). */
  transA?: boolean;
  /** Use bᵀ: b is stored [N, K] (or [B, N, K]), as PyTorch stores linear weights. */
  transB?: boolean;
  /** Default 1. */
  alpha?: number;
  /** Default 0: c is overwritten and never read (NaN in c does not propagate). */
  beta?: number;
}
/**
 * c = alpha·op(a)·op(b) + beta·c for f32 tensors: 2-D [M, K]·[K, N] → [M, N], or batched
 * [B, M, K]·[B, K, N] → [B, M, N] (b may be 2-D, one matrix for the whole batch). Shapes are
 * as stored; the transposes say how to read them. With bf16 emulation on, a and b are
 * rounded to bf16 and c is rounded after the fp32-accumulated product, as on the GPU.
 */
export function matmul(a: Tensor, b: Tensor, c: Tensor, opts: MatmulOptions = {}): void {
  native.matmul(h(a), h(b), h(c), opts.transA ?? false, opts.transB ?? false, opts.alpha ?? 1, opts.beta ?? 0);
}

// ── layers: linear, patch embedding, attention (layers group) ──
// Parameter gradients (dw, db, dweight) are overwritten unless `accumulate` is set, in
// which case they are added to (gradient accumulation). Activation gradients (dx,
// dimages, dqkv) are always overwritten.

/** y = x·wᵀ + b. x [..., in], w [out, in] (PyTorch layout), b [out] or null, y [..., out]. */
export function linearForward(x: Tensor, w: Tensor, b: Tensor | null, y: Tensor): void {
  native.linearForward(h(x), h(w), ho(b), h(y));
}

export interface LinearGrads {
  /** [..., in]: dy·w */
  dx?: Tensor | null;
  /** [out, in]: dyᵀ·x */
  dw?: Tensor | null;
  /** [out]: Σ over rows of dy */
  db?: Tensor | null;
  /** add into dw and db instead of overwriting them */
  accumulate?: boolean;
}
export function linearBackward(x: Tensor, w: Tensor, dy: Tensor, grads: LinearGrads): void {
  native.linearBackward(h(x), h(w), h(dy), ho(grads.dx), ho(grads.dw), ho(grads.db), grads.accumulate ?? false);
}

/**
 * Patch embedding (conv with stride = kernel = P, no bias; CLIP's visual.conv1).
 * images [B, C, H, W], weight [width, C, P, P], out [B, (H/P)·(W/P), width], patches row-major.
 */
export function patchEmbedForward(images: Tensor, weight: Tensor, out: Tensor): void {
  native.patchEmbedForward(h(images), h(weight), h(out));
}

export interface PatchEmbedGrads {
  /** [width, C, P, P] */
  dweight?: Tensor | null;
  /** [B, C, H, W] (rarely needed: images are inputs) */
  dimages?: Tensor | null;
  /** add into dweight instead of overwriting it */
  accumulate?: boolean;
}
export function patchEmbedBackward(images: Tensor, weight: Tensor, dout: Tensor, grads: PatchEmbedGrads): void {
  native.patchEmbedBackward(h(images), h(weight), h(dout), ho(grads.dweight), ho(grads.dimages), grads.accumulate ?? false);
}

export interface AttentionOptions {
  heads: number;
  /** position i attends to j ≤ i */
  causal: boolean;
}
/**
 * Multi-head self-attention from packed QKV (OpenCLIP's in_proj layout): qkv [B, S, 3W] → out [B, S, W].
 * lse [B, heads, S] receives each row's softmax log-sum-exp for backward; pass null at inference.
 */
export function attentionForward(qkv: Tensor, out: Tensor, lse: Tensor | null, opts: AttentionOptions): void {
  native.attentionForward(h(qkv), h(out), ho(lse), opts.heads, opts.causal);
}
/** dqkv [B, S, 3W] (overwritten) from dout [B, S, W], using forward's out and lse. */
export function attentionBackward(qkv: Tensor, out: Tensor, dout: Tensor, lse: Tensor, dqkv: Tensor, opts: AttentionOptions): void {
  native.attentionBackward(h(qkv), h(out), h(dout), h(lse), h(dqkv), opts.heads, opts.causal);
}

// ── embeddings, layernorm, activations, pooling, normalisation, loss (pointwise group) ──

// ── optimizer: AdamW, gradient norm, clipping (pointwise group) ──
