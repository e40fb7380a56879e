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

// ── layers: linear, patch embedding, attention (layers group) ──

// ── embeddings, layernorm, activations, pooling, normalisation, loss (pointwise group) ──

// ── optimizer: AdamW, gradient norm, clipping (pointwise group) ──
