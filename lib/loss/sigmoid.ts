// The SigLIP loss (Zhai et al. 2023; OpenCLIP's SigLipLoss): every image–text pair is a binary
// classification, positive on the diagonal, with logits s·⟨I_i, T_j⟩ + b (s = exp(logit_scale),
// b the learned logit_bias) over L2-normalised features:
//   loss = −Σ_ij log σ(y_ij · z_ij) / N,   y_ij = +1 if i = j else −1.
// The N×N similarities come from the native matmul; the element-wise part (loss, its gradient
// w.r.t. each logit, the scale's and bias's gradients) is a host loop in double; the feature
// gradients are two more matmuls. Distributed: see distributedSigLipLoss.
import type { Communicator } from '../distributed/communicator.js';
import * as ops from '../ops.js';
import { Tensor } from '../tensor.js';

/** −log σ(x) = softplus(−x), without overflow. */
function negLogSigmoid(x: number): number {
  return Math.max(-x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** σ(x) without overflow. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

export interface SigLipBlock {
  /** This block's contribution to the loss. */
  loss: number;
  /** d loss / d logit_scale (the log of the scale). */
  dLogitScale: number;
  /** d loss / d logit_bias. */
  dLogitBias: number;
}

/**
 * The element-wise part over one block of logits: dots [R·C] (row-major ⟨I_i, T_j⟩) are turned
 * into the loss of the block and, in place, into G_ij = s · d loss / d z_ij (ready for the feature
 * gradients dI = G·T, dT = Gᵀ·I). Positives are the pairs with j = i + diagonalOffset (none when
 * `negativeOnly`). Every term is divided by `n` (OpenCLIP divides by the local batch size).
 */
export function sigLipBlock(dots: Float32Array, rows: number, cols: number, logitScale: number, logitBias: number, n: number, diagonalOffset: number, negativeOnly: boolean, gradScale = 1): SigLipBlock {
  const s = Math.exp(logitScale);
  let loss = 0;
  let dt = 0;
  let db = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const k = i * cols + j;
      const z = s * dots[k] + logitBias;
      const y = !negativeOnly && j === i + diagonalOffset ? 1 : -1;
      loss += negLogSigmoid(y * z);
      // d/dz −log σ(y z) = −y σ(−y z)
      const g = (-y * sigmoid(-y * z)) / n;
      dt += g * (z - logitBias); // dz/dt = s·dot
      db += g;
      dots[k] = g * s * gradScale;
    }
  }
  return { loss: loss / n, dLogitScale: dt, dLogitBias: db };
}

export interface SigLipLossResult {
  loss: number;
  /** d loss / d image features (unnormalised), [N, D]; valid until the next call. */
  dImage: Tensor;
  /** d loss / d text features (unnormalised), [N, D]. */
  dText: Tensor;
  dLogitScale: number;
  dLogitBias: number;
}

/** The local SigLIP loss on unnormalised features (normalises them, as OpenCLIP's model does). */
export class SigLipLoss implements Disposable {
  private bufs = new Map<string, Tensor>();

  private buf(key: string, shape: number[]): Tensor {
    const t = this.bufs.get(key);
    if (t && t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i])) return t;
    t?.dispose();
    const n = Tensor.empty(shape);
    this.bufs.set(key, n);
    return n;
  }

  private check(image: Tensor, text: Tensor): [number, number] {
    const [n, d] = image.shape;
    if (image.shape.length !== 2 || text.shape.length !== 2 || text.shape[0] !== n || text.shape[1] !== d) {
      throw new Error(`SigLipLoss: image features [${image.shape.join(', ')}] and text features [${text.shape.join(', ')}] must both be [N, D]`);
    }
    return [n, d];
  }

  /**
   * Loss and gradients for features [N, D], the log of the scale and the bias. `lossScale`
   * multiplies every gradient (not the returned loss).
   */
  forwardBackward(image: Tensor, text: Tensor, logitScale: number, logitBias: number, lossScale = 1): SigLipLossResult {
    const [n, d] = this.check(image, text);
    const imgN = this.buf('imgN', [n, d]);
    const txtN = this.buf('txtN', [n, d]);
    const imgNorm = this.buf('imgNorm', [n]);
    const txtNorm = this.buf('txtNorm', [n]);
    ops.l2normalizeForward(image, imgN, imgNorm);
    ops.l2normalizeForward(text, txtN, txtNorm);
    const logits = this.buf('logits', [n, n]);
    ops.matmul(imgN, txtN, logits, { transB: true });
    const r = sigLipBlock(logits.view() as Float32Array, n, n, logitScale, logitBias, n, 0, false, lossScale);
    const dImgN = this.buf('dImgN', [n, d]);
    const dTxtN = this.buf('dTxtN', [n, d]);
    ops.matmul(logits, txtN, dImgN);
    ops.matmul(logits, imgN, dTxtN, { transA: true });
    const dImage = this.buf('dImage', [n, d]);
    const dText = this.buf('dText', [n, d]);
    ops.l2normalizeBackward(dImgN, imgN, imgNorm, dImage);
    ops.l2normalizeBackward(dTxtN, txtN, txtNorm, dText);
    return { loss: r.loss, dImage, dText, dLogitScale: r.dLogitScale * lossScale, dLogitBias: r.dLogitBias * lossScale };
  }

  /** The loss alone. */
  forward(image: Tensor, text: Tensor, logitScale: number, logitBias: number): number {
    const [n, d] = this.check(image, text);
    const imgN = this.buf('imgN', [n, d]);
    const txtN = this.buf('txtN', [n, d]);
    ops.l2normalizeForward(image, imgN, this.buf('imgNorm', [n]));
    ops.l2normalizeForward(text, txtN, this.buf('txtNorm', [n]));
    const logits = this.buf('logits', [n, n]);
    ops.matmul(imgN, txtN, logits, { transB: true });
    return sigLipBlock(logits.view() as Float32Array, n, n, logitScale, logitBias, n, 0, false).loss;
  }

  dispose(): void {
    for (const t of this.bufs.values()) t.dispose();
    this.bufs.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * The float64 reference of the local loss on NORMALISED features [n·d]: loss and gradients
 * w.r.t. the normalised features, the log scale and the bias (for tests).
 */
export function referenceSigLipLoss(image: ArrayLike<number>, text: ArrayLike<number>, n: number, d: number, logitScale: number, logitBias: number) {
  const s = Math.exp(logitScale);
  const dImage = new Float64Array(n * d);
  const dText = new Float64Array(n * d);
  let loss = 0;
  let dt = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += image[i * d + k] * text[j * d + k];
      const y = i === j ? 1 : -1;
      const z = s * dot + logitBias;
      loss += negLogSigmoid(y * z) / n;
      const g = (-y * sigmoid(-y * z)) / n;
      dt += g * s * dot;
      db += g;
      for (let k = 0; k < d; k++) {
        dImage[i * d + k] += g * s * text[j * d + k];
        dText[j * d + k] += g * s * image[i * d + k];
      }
    }
  }
  return { loss, dImage, dText, dLogitScale: dt, dLogitBias: db };
}

export interface DistributedSigLipLoss {
  /** This rank's loss, as OpenCLIP's SigLipLoss returns it on that rank (local positives and negatives, plus negatives against every other rank's texts). */
  loss: number;
  /** The mean of the ranks' losses (what averaging the ranks' gradients optimises), when asked for. */
  meanLoss?: number;
  /** d (Σ_ranks loss_r) / d this rank's NORMALISED image features — only its own loss reaches them. */
  dImage: Float32Array;
  /** d (Σ_ranks loss_r) / d this rank's NORMALISED text features: its own loss and the other ranks' negatives. */
  dText: Float32Array;
  /** d loss_r / d logit_scale, d loss_r / d logit_bias: this rank's, to be averaged with the parameter gradients. */
  dLogitScale: number;
  dLogitBias: number;
}

/**
 * One rank's step of OpenCLIP's distributed SigLipLoss. OpenCLIP passes text features around the
 * ring of ranks (neighbour_exchange_*_with_grad); its rank r computes
 *   loss_r = (block of its own texts, with positives) + Σ_{r' ≠ r} (block of r' texts, negatives only)
 * and autograd sends each block's text gradient back to the rank that owns the texts. Our
 * Communicator has collectives, not point-to-point sends, so the same exchange is one all-gather
 * of the text features and one reduce-scatter of their gradients: the same numbers (loss_r, and
 * for each rank the gradient of Σ loss with respect to its features, which the trainer's average of
 * parameter gradients turns into the gradient of the mean rank loss, as DDP does for OpenCLIP).
 * image, text: this rank's normalised features [B·D]; every rank calls it with the same B and D.
 */
export async function distributedSigLipLoss(
  comm: Communicator,
  image: Float32Array,
  text: Float32Array,
  dim: number,
  logitScale: number,
  logitBias: number,
  opts: { meanLoss?: boolean } = {},
): Promise<DistributedSigLipLoss> {
  const where = 'distributedSigLipLoss';
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`${where}: dim must be a positive integer, got ${dim}`);
  if (image.length !== text.length) throw new RangeError(`${where}: image (${image.length} floats) and text (${text.length} floats) must have the same size`);
  if (image.length % dim !== 0 || image.length === 0) throw new RangeError(`${where}: image holds ${image.length} floats, not a positive whole number of rows of ${dim}`);
  if (!Number.isFinite(logitScale) || !Number.isFinite(logitBias)) throw new RangeError(`${where}: logitScale and logitBias must be finite, got ${logitScale}, ${logitBias}`);
  const { rank, size: W } = comm;
  const B = image.length / dim;
  const N = W * B;
  const allText = new Float32Array(N * dim);
  await comm.allGather(text, allText);

  using img = Tensor.from(image, [B, dim]);
  using txt = Tensor.from(allText, [N, dim]);
  using logits = Tensor.empty([B, N]);
  ops.matmul(img, txt, logits, { transB: true });
  const g = logits.view() as Float32Array;
  // Columns of rank r' are texts r'·B .. r'·B + B; positives only in this rank's own block.
  const r = sigLipBlock(g, B, N, logitScale, logitBias, B, rank * B, false);
  // sigLipBlock marks j = i + rank·B positive; every other column (other ranks' texts) negative,
  // which is OpenCLIP's negative_only=True for the blocks received from neighbours.
  using dImg = Tensor.empty([B, dim]);
  using dAllText = Tensor.empty([N, dim]);
  ops.matmul(logits, txt, dImg);
  ops.matmul(logits, img, dAllText, { transA: true });
  const dText = new Float32Array(B * dim);
  await comm.reduceScatter(dAllText.view() as Float32Array, dText, 'sum');

  let meanLoss: number | undefined;
  if (opts.meanLoss) {
    const l = new Float32Array([r.loss]);
    await comm.allReduce(l, 'sum');
    meanLoss = l[0] / W;
  }
  return {
    loss: r.loss,
    meanLoss,
    dImage: new Float32Array(dImg.view() as Float32Array),
    dText,
    dLogitScale: r.dLogitScale,
    dLogitBias: r.dLogitBias,
  };
}
