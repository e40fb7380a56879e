// The CLIP loss across ranks (OpenCLIP's --local-loss --gather-with-grad), in JS
// over Float32Arrays: the reference for the native fused op, and the orchestration
// of the collectives around whichever kernel computes the local part.
//
// Setting. W ranks, each with B rows of (normalised) image and text features, D wide;
// N = W·B rows in all. Rank r owns global rows rB .. rB+B−1. The global loss is
//   L = 1/(2N) Σ_i [CE(s·I_i·Tᵀ, i) + CE(s·T_i·Iᵀ, i)],   s = exp(t), t = logit_scale.
// Each rank computes only its own rows' terms against all N columns, its contribution
//   C_r = 1/(2N) Σ_{i∈rows(r)} [ … ],   so  L = Σ_r C_r.
//
// Gradient. C_r depends on every rank's features (its own rows, and all columns), so
// with I, T the gathered [N, D] matrices,
//   ∂L/∂I_r = Σ_s ∂C_s/∂I[rows(r)]      (likewise for T),
// i.e. each rank differentiates its contribution w.r.t. the whole gathered matrices
// and a reduce-scatter (sum) gives every rank the rows it owns. That is exactly what
// autograd does through OpenCLIP's all_gather with grad (its backward is a reduce-
// scatter), and what makes this "gather with grad": without it, the column terms
// from the other ranks would be lost. ∂L/∂t = Σ_r ∂C_r/∂t needs no collective here:
// t is a parameter, reduced with the other parameter gradients.
//
// Normalisation. OpenCLIP's local loss is a mean over the B local rows, i.e. W·C_r,
// and DDP then averages parameter gradients over the W ranks, giving ∂L again. So:
//   reduction 'mean' (DDP, the default): loss = W·C_r (OpenCLIP's value), gradients
//     = W·∂L/∂(own features), and the trainer all-reduces parameter gradients with 'mean';
//   reduction 'sum': loss = C_r (the ranks' losses sum to L), gradients = ∂L/∂(own
//     features) exactly, and the trainer all-reduces parameter gradients with 'sum'.
// Either way the parameters see the gradient of the global-batch loss.
import type { Communicator } from '../distributed/communicator.js';
import * as ops from '../ops.js';
import { Tensor } from '../tensor.js';

/** One rank's contribution C_r and its gradients w.r.t. the gathered features and t. */
export interface LocalClipLoss {
  loss: number;
  /** ∂C_r/∂I, [N·D] (every gathered row). */
  dImage: Float32Array;
  /** ∂C_r/∂T, [N·D]. */
  dText: Float32Array;
  /** ∂C_r/∂t, t the log of the scale. */
  dLogitScale: number;
}

/**
 * Computes C_r for rows rowOffset .. rowOffset+rowCount of the gathered features
 * image, text ([n·d] each, row-major), with logitScale the LOG of the scale.
 */
export type LocalClipLossKernel = (image: Float32Array, text: Float32Array, n: number, d: number, rowOffset: number, rowCount: number, logitScale: number) => LocalClipLoss;

function checkLocalArgs(where: string, image: Float32Array, text: Float32Array, n: number, d: number, rowOffset: number, rowCount: number, logitScale: number): void {
  for (const [name, v] of [['n', n], ['d', d], ['rowOffset', rowOffset], ['rowCount', rowCount]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${where}: ${name} must be a non-negative integer, got ${v}`);
  }
  if (n === 0 || d === 0) throw new RangeError(`${where}: needs at least one row and one feature, got n=${n}, d=${d}`);
  if (image.length !== n * d) throw new RangeError(`${where}: image must hold n·d = ${n * d} floats, got ${image.length}`);
  if (text.length !== n * d) throw new RangeError(`${where}: text must hold n·d = ${n * d} floats, got ${text.length}`);
  if (rowOffset + rowCount > n) throw new RangeError(`${where}: rows ${rowOffset} .. ${rowOffset + rowCount} are outside the ${n} gathered rows`);
  if (!Number.isFinite(logitScale)) throw new RangeError(`${where}: logitScale must be finite, got ${logitScale}`);
}

/**
 * The reference kernel: float64 arithmetic throughout, O(rowCount·n·d) time and
 * O(n) extra memory (no n×n matrix), rounded to f32 once at the end.
 */
export const referenceLocalClipLoss: LocalClipLossKernel = (image, text, n, d, rowOffset, rowCount, logitScale) => {
  checkLocalArgs('referenceLocalClipLoss', image, text, n, d, rowOffset, rowCount, logitScale);
  const s = Math.exp(logitScale);
  const inv2N = 1 / (2 * n);
  const dI = new Float64Array(n * d);
  const dT = new Float64Array(n * d);
  const logits = new Float64Array(n);
  let loss = 0;
  let dt = 0;
  // Both directions: (a = image, b = text, da, db) then (a = text, b = image, …).
  const directions: [Float32Array, Float32Array, Float64Array, Float64Array][] = [
    [image, text, dI, dT],
    [text, image, dT, dI],
  ];
  for (const [a, b, da, db] of directions) {
    for (let i = rowOffset; i < rowOffset + rowCount; i++) {
      const ai = i * d;
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        let dot = 0;
        const bj = j * d;
        for (let k = 0; k < d; k++) dot += a[ai + k] * b[bj + k];
        logits[j] = s * dot;
        if (logits[j] > max) max = logits[j];
      }
      let sum = 0;
      for (let j = 0; j < n; j++) sum += Math.exp(logits[j] - max);
      const lse = max + Math.log(sum);
      loss += (lse - logits[i]) * inv2N;
      // g_j = ∂C/∂logit_j = (softmax_j − [j = i]) / 2N; logit_j = s·a_i·b_j.
      for (let j = 0; j < n; j++) {
        const g = (Math.exp(logits[j] - lse) - (j === i ? 1 : 0)) * inv2N;
        if (g === 0) continue;
        dt += g * logits[j];
        const sg = s * g;
        const bj = j * d;
        for (let k = 0; k < d; k++) {
          da[ai + k] += sg * b[bj + k];
          db[bj + k] += sg * a[ai + k];
        }
      }
    }
  }
  return { loss, dImage: Float32Array.from(dI), dText: Float32Array.from(dT), dLogitScale: dt };
};

/** The same through the native fused op (ops.contrastiveLossLocal), f32 throughout. */
export const nativeLocalClipLoss: LocalClipLossKernel = (image, text, n, d, rowOffset, rowCount, logitScale) => {
  checkLocalArgs('nativeLocalClipLoss', image, text, n, d, rowOffset, rowCount, logitScale);
  using img = Tensor.from(image, [n, d]);
  using txt = Tensor.from(text, [n, d]);
  using t = Tensor.from(new Float32Array([logitScale]), [1]);
  using dImage = Tensor.empty([n, d]);
  using dText = Tensor.empty([n, d]);
  using dScale = Tensor.empty([1]);
  using workspace = Tensor.empty([Math.max(rowCount, 1), n]);
  const { loss } = ops.contrastiveLossLocal(img, txt, t, rowOffset, rowCount, { grads: { dImage, dText, dLogitScale: dScale }, workspace });
  return {
    loss,
    dImage: new Float32Array(dImage.view() as Float32Array),
    dText: new Float32Array(dText.view() as Float32Array),
    dLogitScale: (dScale.view() as Float32Array)[0],
  };
};

export type GradientReduction = 'mean' | 'sum';

export interface DistributedClipLossOptions {
  /**
   * How the trainer reduces parameter gradients across ranks: 'mean' (DDP, default;
   * the loss and gradients are OpenCLIP's local-loss values, W times the contribution)
   * or 'sum' (the contribution itself: the ranks' losses sum to the global loss).
   */
  reduction?: GradientReduction;
  /** Computes the local part (default: the float64 reference). */
  kernel?: LocalClipLossKernel;
  /** Also all-reduce the loss so every rank knows the global-batch loss (one more small collective). */
  globalLoss?: boolean;
}

export interface DistributedClipLoss {
  /** This rank's loss under `reduction` (see DistributedClipLossOptions). */
  loss: number;
  /** The global-batch loss L, when asked for with `globalLoss`. */
  globalLoss?: number;
  /** Gradient w.r.t. this rank's image features [B·D] (∂L/∂I_r, times W for 'mean'). */
  dImage: Float32Array;
  /** Gradient w.r.t. this rank's text features [B·D]. */
  dText: Float32Array;
  /** Gradient w.r.t. t = log(scale): this rank's share, to be reduced with the parameter gradients. */
  dLogitScale: number;
}

/**
 * One rank's step of the distributed CLIP loss: all-gathers the features (one
 * collective for both towers), computes this rank's rows against all columns, and
 * reduce-scatters the gradients (one collective) so each rank gets the gradient of
 * the global-batch loss w.r.t. its own features. Every rank must call it, with the
 * same B and D. image, text: this rank's normalised features [B·D], row-major.
 */
export async function distributedClipLoss(
  comm: Communicator,
  image: Float32Array,
  text: Float32Array,
  dim: number,
  logitScale: number,
  opts: DistributedClipLossOptions = {},
): Promise<DistributedClipLoss> {
  const where = 'distributedClipLoss';
  const reduction = opts.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum') throw new TypeError(`${where}: reduction must be 'mean' or 'sum', got ${JSON.stringify(reduction)}`);
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`${where}: dim must be a positive integer, got ${dim}`);
  if (image.length !== text.length) throw new RangeError(`${where}: image (${image.length} floats) and text (${text.length} floats) must have the same size`);
  if (image.length % dim !== 0) throw new RangeError(`${where}: image holds ${image.length} floats, not a whole number of rows of ${dim}`);
  const { rank, size: W } = comm;
  const B = image.length / dim;
  const rowFloats = B * dim;
  const N = W * B;

  // Gather [I_r | T_r] from every rank in one collective, then unpack.
  const packed = new Float32Array(2 * rowFloats);
  packed.set(image, 0);
  packed.set(text, rowFloats);
  const gathered = new Float32Array(W * 2 * rowFloats);
  await comm.allGather(packed, gathered);
  const allImage = new Float32Array(N * dim);
  const allText = new Float32Array(N * dim);
  for (let r = 0; r < W; r++) {
    allImage.set(gathered.subarray(r * 2 * rowFloats, r * 2 * rowFloats + rowFloats), r * rowFloats);
    allText.set(gathered.subarray(r * 2 * rowFloats + rowFloats, (r + 1) * 2 * rowFloats), r * rowFloats);
  }

  const local = (opts.kernel ?? referenceLocalClipLoss)(allImage, allText, N, dim, rank * B, B, logitScale);

  // Reduce-scatter [∂C/∂I_s | ∂C/∂T_s] for every s; rank r receives Σ over ranks of its own rows.
  const scale = reduction === 'mean' ? W : 1;
  const grads = new Float32Array(W * 2 * rowFloats);
  for (let r = 0; r < W; r++) {
    grads.set(local.dImage.subarray(r * rowFloats, (r + 1) * rowFloats), r * 2 * rowFloats);
    grads.set(local.dText.subarray(r * rowFloats, (r + 1) * rowFloats), r * 2 * rowFloats + rowFloats);
  }
  const mine = new Float32Array(2 * rowFloats);
  await comm.reduceScatter(grads, mine, 'sum');
  if (scale !== 1) for (let i = 0; i < mine.length; i++) mine[i] *= scale;

  let globalLoss: number | undefined;
  if (opts.globalLoss) {
    const l = new Float32Array([local.loss]);
    await comm.allReduce(l, 'sum');
    globalLoss = l[0];
  }
  return {
    loss: local.loss * scale,
    globalLoss,
    dImage: mine.subarray(0, rowFloats),
    dText: mine.subarray(rowFloats),
    dLogitScale: local.dLogitScale * scale,
  };
}
