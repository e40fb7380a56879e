// The SigLIP loss (Zhai et al. 2023; OpenCLIP's SigLipLoss): every image–text pair is a binary
// classification, positive on the diagonal, with logits s·⟨I_i, T_j⟩ + b (s = exp(logit_scale),
// b the learned logit_bias) over L2-normalised features:
//   loss = −Σ_ij log σ(y_ij · z_ij) / N,   y_ij = +1 if i = j else −1.
// The fused native op (ops.sigmoidLoss: fp32 logits, stable log-sigmoid, double sums; a CPU op
// and a CUDA kernel) gives the loss and the gradients of the normalised features, the scale and
// the bias; the normalisation's backward brings them to the features. Distributed: see
// distributedSigLipLoss.
import type { Communicator } from '../distributed/communicator.js';
import * as ops from '../ops.js';
import { Tensor } from '../tensor.js';
import { TensorBuffers } from '../util/tensor_buffers.js';

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

export interface SigLipLossResult {
  /** NaN when the loss was left on the device (deferLossTo). */
  loss: number;
  /** d loss / d image features (unnormalised), [N, D]; valid until the next call. */
  dImage: Tensor;
  /** d loss / d text features (unnormalised), [N, D]. */
  dText: Tensor;
  /** d loss / d logit_scale and d loss / d logit_bias (read from the device on first use). */
  readonly dLogitScale: number;
  readonly dLogitBias: number;
  /** The same as 1-element tensors on the features' device; valid until the next call. */
  dLogitScaleTensor: Tensor;
  dLogitBiasTensor: Tensor;
}

/** The local SigLIP loss on unnormalised features (normalises them, as OpenCLIP's model does), on their device. */
export class SigLipLoss implements Disposable {
  private readonly bufs = new TensorBuffers();
  private device = 'cpu';

  private buf(key: string, shape: number[]): Tensor {
    return this.bufs.get(key, shape, this.device);
  }

  private check(image: Tensor, text: Tensor): [number, number] {
    const [n, d] = image.shape;
    if (image.shape.length !== 2 || text.shape.length !== 2 || text.shape[0] !== n || text.shape[1] !== d) {
      throw new Error(`SigLipLoss: image features [${image.shape.join(', ')}] and text features [${text.shape.join(', ')}] must both be [N, D]`);
    }
    this.device = image.device;
    return [n, d];
  }

  /**
   * A number as a 1-element tensor on the features' device (a tensor is used as it is). On a GPU
   * the number is written by a fill kernel (its argument): no host tensor, no copy to wait for.
   */
  private scalar(key: string, v: number | Tensor): Tensor {
    if (v instanceof Tensor) return v;
    const t = this.buf(key, [1]);
    if (t.device === 'cpu') (t.view() as Float32Array)[0] = v;
    else ops.fill(t, v);
    return t;
  }

  private normalised(image: Tensor, text: Tensor, n: number, d: number): [Tensor, Tensor] {
    const imgN = this.buf('imgN', [n, d]);
    const txtN = this.buf('txtN', [n, d]);
    ops.l2normalizeForward(image, imgN, this.buf('imgNorm', [n]));
    ops.l2normalizeForward(text, txtN, this.buf('txtNorm', [n]));
    return [imgN, txtN];
  }

  /**
   * Loss and gradients for features [N, D], the log of the scale and the bias (numbers, or
   * 1-element tensors on the features' device: a GPU step then reads nothing back). `lossScale`
   * multiplies every gradient (not the returned loss). `deferLossTo` (a 1-element f32 tensor on
   * the features' device): the loss goes there and, on a GPU, is not read back (loss is NaN).
   */
  forwardBackward(image: Tensor, text: Tensor, logitScale: number | Tensor, logitBias: number | Tensor, lossScale = 1, deferLossTo?: Tensor): SigLipLossResult {
    const [n, d] = this.check(image, text);
    const [imgN, txtN] = this.normalised(image, text, n, d);
    const dImgN = this.buf('dImgN', [n, d]);
    const dTxtN = this.buf('dTxtN', [n, d]);
    const dScale = this.buf('dScale', [1]);
    const dBias = this.buf('dBias', [1]);
    const { loss } = ops.sigmoidLoss(imgN, txtN, this.scalar('scale', logitScale), this.scalar('bias', logitBias), {
      grads: { dImage: dImgN, dText: dTxtN, dLogitScale: dScale, dLogitBias: dBias },
      gradScale: lossScale,
      workspace: this.buf('logits', [n, n]),
      ...(deferLossTo ? { lossOut: deferLossTo, deferLoss: true } : {}),
    });
    const dImage = this.buf('dImage', [n, d]);
    const dText = this.buf('dText', [n, d]);
    ops.l2normalizeBackward(dImgN, imgN, this.buf('imgNorm', [n]), dImage);
    ops.l2normalizeBackward(dTxtN, txtN, this.buf('txtNorm', [n]), dText);
    return {
      loss,
      dImage,
      dText,
      dLogitScaleTensor: dScale,
      dLogitBiasTensor: dBias,
      get dLogitScale(): number {
        return dScale.hostFloat32()[0];
      },
      get dLogitBias(): number {
        return dBias.hostFloat32()[0];
      },
    };
  }

  /** The loss alone. */
  forward(image: Tensor, text: Tensor, logitScale: number | Tensor, logitBias: number | Tensor): number {
    const [n, d] = this.check(image, text);
    const [imgN, txtN] = this.normalised(image, text, n, d);
    return ops.sigmoidLoss(imgN, txtN, this.scalar('scale', logitScale), this.scalar('bias', logitBias), { workspace: this.buf('logits', [n, n]) }).loss;
  }

  dispose(): void {
    this.bufs.dispose();
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
  using scale = Tensor.from(new Float32Array([logitScale]));
  using bias = Tensor.from(new Float32Array([logitBias]));
  using dImg = Tensor.empty([B, dim]);
  using dAllText = Tensor.empty([N, dim]);
  using dScale = Tensor.empty([1]);
  using dBias = Tensor.empty([1]);
  // This rank's images against every rank's texts: positives only in its own block (columns
  // rank·B ..), every other column negative (OpenCLIP's negative_only=True for the blocks
  // received from neighbours).
  const { loss } = ops.sigmoidLoss(img, txt, scale, bias, { positiveOffset: rank * B, grads: { dImage: dImg, dText: dAllText, dLogitScale: dScale, dLogitBias: dBias } });
  const r = { loss, dLogitScale: (dScale.view() as Float32Array)[0], dLogitBias: (dBias.view() as Float32Array)[0] };
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
