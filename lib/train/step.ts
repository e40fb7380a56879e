// One CLIP training step's forward and backward, with exact gradient accumulation
// (OpenCLIP's --accum-freq): features of every micro-batch are computed first, the
// loss of the whole batch gives each row's feature gradient, then each micro-batch
// is recomputed and backpropagated with its rows of that gradient.
import type { Communicator } from '../distributed/communicator.js';
import { ClipLoss } from '../loss/contrastive.js';
import { distributedClipLoss, nativeLocalClipLoss } from '../loss/distributed.js';
import { distributedSigLipLoss, SigLipLoss } from '../loss/sigmoid.js';
import * as ops from '../ops.js';
import type { CLIP } from '../nn/clip.js';
import { Tensor } from '../tensor.js';
import { backwardMicroBatches, encodeMicroBatches } from './micro_batches.js';

export interface Batch {
  /** [B, 3, H, W] normalised pixels. */
  images: Tensor;
  /** [B, context] i32 token ids. */
  ids: Tensor;
}

/** Which loss trains the model: OpenCLIP's ClipLoss, or SigLipLoss (its --siglip). */
export type LossName = 'clip' | 'siglip';

/** What either loss gives back for a batch of unnormalised features (gradients on their device). */
interface FeatureLoss {
  loss: number;
  dImage: Tensor;
  dText: Tensor;
  /** d loss / d logit_scale, a 1-element tensor on the features' device: nothing is read back. */
  dLogitScaleTensor: Tensor;
  /** d loss / d logit_bias (the SigLIP loss; the CLIP loss does not depend on the bias). */
  dLogitBiasTensor?: Tensor;
}

/** The gradients a loss gives back, which backward and the scale/bias gradients start from. */
function lossGradients(r: FeatureLoss): Tensor[] {
  return [r.dImage, r.dText, r.dLogitScaleTensor, ...(r.dLogitBiasTensor ? [r.dLogitBiasTensor] : [])];
}

export class StepRunner implements Disposable {
  private readonly loss = new ClipLoss();
  private readonly sigLip = new SigLipLoss();
  private allImage: Tensor | null = null;
  private allText: Tensor | null = null;
  private micro = new Map<string, Tensor>();

  constructor(readonly model: CLIP, readonly lossName: LossName = 'clip') {
    if (lossName !== 'clip' && lossName !== 'siglip') throw new Error(`StepRunner: loss must be 'clip' or 'siglip', got ${JSON.stringify(lossName)}`);
    if (lossName === 'siglip' && !model.logitBias) {
      throw new Error("StepRunner: the SigLIP loss needs a model with a logit bias (config 'init_logit_bias'; the Trainer's siglip option adds it)");
    }
  }

  /** The batch loss and feature gradients under the chosen loss. */
  private lossAndGrads(fi: Tensor, ft: Tensor, lossScale: number, deferLossTo?: Tensor): FeatureLoss {
    const { model } = this;
    if (this.lossName === 'siglip') {
      const r = this.sigLip.forwardBackward(fi, ft, model.logitScale.data, model.logitBias!.data, lossScale, deferLossTo);
      return { loss: r.loss, dImage: r.dImage, dText: r.dText, dLogitScaleTensor: r.dLogitScaleTensor, dLogitBiasTensor: r.dLogitBiasTensor };
    }
    // ClipLoss: a logit bias, if the model has one, shifts every logit of a softmax row equally
    // (OpenCLIP adds it), so it changes neither the loss nor any gradient: its gradient is 0.
    // (No spread of the result: its dLogitScale getter would read the device back.)
    const r = this.loss.forwardBackward(fi, ft, model.logitScale.data, lossScale, deferLossTo);
    return { loss: r.loss, dImage: r.dImage, dText: r.dText, dLogitScaleTensor: r.dLogitScaleTensor };
  }

  private addScaleBiasGrads(r: FeatureLoss): void {
    // On the parameters' device: a GPU step reads nothing back here.
    ops.axpy(1, r.dLogitScaleTensor, this.model.logitScale.grad);
    if (this.model.logitBias && r.dLogitBiasTensor) ops.axpy(1, r.dLogitBiasTensor, this.model.logitBias.grad);
  }

  private microBuf(key: string, shape: number[]): Tensor {
    const t = this.micro.get(key);
    if (t && t.shape.every((d, i) => d === shape[i]) && t.shape.length === shape.length) return t;
    t?.dispose();
    const n = Tensor.empty(shape);
    this.micro.set(key, n);
    return n;
  }

  /**
   * Accumulates the gradient of the batch loss (the batch is the concatenation of
   * `microBatches`) into the model's parameter gradients and returns the loss.
   * The caller zeroes gradients before and applies the optimizer after. `deferLossTo`: the loss goes to that 1-element device tensor and NaN is returned,
   * so a GPU step reads nothing back. `scaleLossGrads`: called with the loss's gradients (of the
   * features, the logit scale and bias) before backward uses them (a loss scale held on the device).
   */
  forwardBackward(microBatches: Batch[], lossScale = 1, deferLossTo?: Tensor, scaleLossGrads?: (lossGrads: Tensor[]) => void): number {
    const { model } = this;
    if (microBatches.length === 1) {
      const { images, ids } = microBatches[0];
      const fi = model.encodeImage(images);
      const ft = model.encodeText(ids);
      const r = this.lossAndGrads(fi, ft, lossScale, deferLossTo);
      scaleLossGrads?.(lossGradients(r));
      this.addScaleBiasGrads(r);
      model.visual.backward(r.dImage);
      model.text.backward(r.dText);
      return r.loss;
    }
    // On any device: features are written into rows of one batch-sized tensor, and each
    // micro-batch's rows of the feature gradients are read in place (row views, no copies).
    const sizes = microBatches.map((b) => b.images.shape[0]);
    const total = sizes.reduce((a, b) => a + b, 0);
    const dim = model.config.embed_dim;
    if (!this.allImage || this.allImage.shape[0] !== total || this.allImage.device !== model.device) {
      this.allImage?.dispose();
      this.allText?.dispose();
      this.allImage = Tensor.empty([total, dim], 'f32', model.device);
      this.allText = Tensor.empty([total, dim], 'f32', model.device);
    }
    const allImage = this.allImage;
    const allText = this.allText as Tensor;
    encodeMicroBatches(model, microBatches, allImage, allText);
    const r = this.lossAndGrads(allImage, allText, lossScale, deferLossTo);
    scaleLossGrads?.(lossGradients(r));
    this.addScaleBiasGrads(r);
    backwardMicroBatches(model, microBatches, r.dImage, r.dText);
    return r.loss;
  }

  /**
   * Data-parallel step on this rank's part of the global batch: features are gathered
   * from every rank, this rank's rows of the global loss are computed against all
   * columns, and the gradients that come back (reduce-scatter) are those of the global
   * loss times the world size, so averaging parameter gradients across ranks (as the
   * trainer does next) gives exactly the global-batch gradient (OpenCLIP's
   * --local-loss --gather-with-grad). Returns the global-batch loss.
   * Several micro-batches (accumFreq): their features are computed first, the gathered loss runs
   * once, then each micro-batch is recomputed and backpropagated with its rows (as forwardBackward).
   */
  async forwardBackwardDistributed(microBatches: Batch | Batch[], comm: Communicator): Promise<number> {
    const { model } = this;
    if (model.device !== 'cpu') throw new Error(`StepRunner: forwardBackwardDistributed is the CPU path (communicators of host buffers); the model is on ${model.device}: use DeviceDataParallel (lib/train/device_data_parallel.ts), as the Trainer does`);
    const parts = Array.isArray(microBatches) ? microBatches : [microBatches];
    const n = parts.reduce((a, b) => a + b.images.shape[0], 0);
    const dim = model.config.embed_dim;
    let fi: Tensor;
    let ft: Tensor;
    if (parts.length === 1) {
      fi = model.encodeImage(parts[0].images);
      ft = model.encodeText(parts[0].ids);
    } else {
      fi = this.microBuf('ddpFi', [n, dim]);
      ft = this.microBuf('ddpFt', [n, dim]);
      encodeMicroBatches(model, parts, fi, ft);
    }
    const imgN = this.microBuf('ddpImgN', [n, dim]);
    const txtN = this.microBuf('ddpTxtN', [n, dim]);
    const imgNorm = this.microBuf('ddpImgNorm', [n]);
    const txtNorm = this.microBuf('ddpTxtNorm', [n]);
    ops.l2normalizeForward(fi, imgN, imgNorm);
    ops.l2normalizeForward(ft, txtN, txtNorm);
    const scale = (model.logitScale.data.view() as Float32Array)[0];
    let r: { dImage: Float32Array; dText: Float32Array; dLogitScale: number; dLogitBias: number; loss: number };
    if (this.lossName === 'siglip') {
      const bias = (model.logitBias!.data.view() as Float32Array)[0];
      const s = await distributedSigLipLoss(comm, imgN.view() as Float32Array, txtN.view() as Float32Array, dim, scale, bias, { meanLoss: true });
      r = { ...s, loss: s.meanLoss ?? NaN };
    } else {
      const c = await distributedClipLoss(comm, imgN.view() as Float32Array, txtN.view() as Float32Array, dim, scale, {
        reduction: 'mean',
        kernel: nativeLocalClipLoss,
        globalLoss: true,
      });
      r = { ...c, loss: c.globalLoss ?? NaN, dLogitBias: 0 };
    }
    (model.logitScale.grad.view() as Float32Array)[0] += r.dLogitScale;
    if (model.logitBias) (model.logitBias.grad.view() as Float32Array)[0] += r.dLogitBias;
    const dImgN = this.microBuf('ddpDImgN', [n, dim]);
    const dTxtN = this.microBuf('ddpDTxtN', [n, dim]);
    (dImgN.view() as Float32Array).set(r.dImage);
    (dTxtN.view() as Float32Array).set(r.dText);
    const dfi = this.microBuf('ddpDfi', [n, dim]);
    const dft = this.microBuf('ddpDft', [n, dim]);
    ops.l2normalizeBackward(dImgN, imgN, imgNorm, dfi);
    ops.l2normalizeBackward(dTxtN, txtN, txtNorm, dft);
    if (parts.length === 1) {
      // The towers' activations are still those of this batch: backward needs no recompute.
      model.visual.backward(dfi);
      model.text.backward(dft);
      return r.loss;
    }
    backwardMicroBatches(model, parts, dfi, dft);
    return r.loss;
  }

  /** The batch loss without gradients. */
  lossOf(batch: Batch): number {
    const fi = this.model.encodeImage(batch.images);
    const ft = this.model.encodeText(batch.ids);
    if (this.lossName === 'siglip') return this.sigLip.forward(fi, ft, this.model.logitScale.data, this.model.logitBias!.data);
    return this.loss.forward(fi, ft, this.model.logitScale.data);
  }

  dispose(): void {
    this.loss.dispose();
    this.sigLip.dispose();
    this.allImage?.dispose();
    this.allText?.dispose();
    for (const t of this.micro.values()) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
