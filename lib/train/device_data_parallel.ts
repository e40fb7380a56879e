// Data-parallel training on device buffers (GPU ranks with NCCL, or the emulated device with its
// NCCL stand-in): each rank's features are all-gathered on the device, the rank's share of the
// global loss is computed there against every rank's features (OpenCLIP's --local-loss
// --gather-with-grad for the CLIP loss; its distributed SigLipLoss for SigLIP), the gradients of
// the gathered features come back by reduce-scatter, and the parameter gradients are averaged in
// buckets launched while backward still runs (grad_buckets.ts). The same numbers as the CPU path
// (StepRunner.forwardBackwardDistributed), with nothing staged through the host.
import type { Communicator } from '../distributed/communicator.js';
import type { CLIP } from '../nn/clip.js';
import * as ops from '../ops.js';
import { Tensor } from '../tensor.js';
import { DEFAULT_BUCKET_MB, GradientBuckets } from './grad_buckets.js';
import { backwardMicroBatches, encodeMicroBatches } from './micro_batches.js';
import type { Batch, LossName } from './step.js';
import { TensorBuffers } from '../util/tensor_buffers.js';

/** A communicator whose collectives take tensors on `device` (NCCL's: `device` is its GPU). */
function checkDeviceComm(comm: Communicator, device: string): void {
  const commDevice = (comm as { device?: string }).device;
  if (comm.backend !== 'nccl' || commDevice !== device) {
    throw new Error(
      `Trainer: data-parallel training on ${device} needs a communicator for tensors on ${device} (NCCL: ` +
        `createCommunicator({ device: '${device}' })), got the ${comm.backend} communicator${commDevice ? ` of ${commDevice}` : ' (CPU buffers)'}`,
    );
  }
}

export class DeviceDataParallel implements Disposable {
  readonly buckets: GradientBuckets;
  private readonly bufs = new TensorBuffers();

  constructor(
    readonly model: CLIP,
    readonly lossName: LossName,
    readonly comm: Communicator,
    bucketMb = DEFAULT_BUCKET_MB,
  ) {
    checkDeviceComm(comm, model.device);
    if (!(bucketMb > 0)) throw new RangeError(`Trainer: bucketCapMb must be positive, got ${bucketMb}`);
    this.buckets = new GradientBuckets(model, comm, bucketMb * 1024 * 1024, 'mean');
  }

  private buf(key: string, shape: number[]): Tensor {
    return this.bufs.get(key, shape, this.model.device);
  }

  /** Rank 0's values into every rank's tensors (parameters and moments at the start), on the device. */
  async broadcast(tensors: readonly Tensor[]): Promise<void> {
    await Promise.all(tensors.map((t) => this.comm.broadcast(t, 0)));
  }

  /**
   * Forward and backward of this rank's part of the global batch (`microBatches`, whose
   * concatenation is that part: one, or accumFreq of them); the parameter gradients are the
   * global-batch loss's (averaged over ranks) when it returns. Returns the global loss (the
   * CLIP loss of the whole batch; for SigLIP the mean of the ranks' losses, as the CPU path).
   *
   * With several micro-batches (OpenCLIP's --accum-freq in its train.py): the features of every
   * micro-batch are computed first (only the last forward's activations are kept), the loss runs
   * once over the features of all of them gathered from every rank, and then each micro-batch is
   * recomputed and backpropagated with its rows of the feature gradients. OpenCLIP computes the
   * loss once per micro-batch with the cached features of the others, which gives each micro-batch
   * exactly these rows. The gradient buckets are all-reduced during the last micro-batch's
   * backward only (earlier ones only accumulate, as under DDP's no_sync).
   * `lossScale` multiplies the loss gradient (fp16 loss scaling); the returned loss is unscaled.
   */
  async forwardBackward(microBatches: Batch | Batch[], lossScale = 1): Promise<number> {
    const parts = Array.isArray(microBatches) ? microBatches : [microBatches];
    const { model, comm } = this;
    const W = comm.size;
    const sizes = parts.map((b) => b.images.shape[0]);
    const B = sizes.reduce((a, b) => a + b, 0);
    const N = W * B;
    const D = model.config.embed_dim;
    let fi: Tensor;
    let ft: Tensor;
    if (parts.length === 1) {
      fi = model.encodeImage(parts[0].images);
      ft = model.encodeText(parts[0].ids);
    } else {
      // Each micro-batch's features into its rows of one [B, D] tensor per tower.
      fi = this.buf('fi', [B, D]);
      ft = this.buf('ft', [B, D]);
      encodeMicroBatches(model, parts, fi, ft);
    }
    const imgN = this.buf('imgN', [B, D]);
    const txtN = this.buf('txtN', [B, D]);
    const imgNorm = this.buf('imgNorm', [B]);
    const txtNorm = this.buf('txtNorm', [B]);
    ops.l2normalizeForward(fi, imgN, imgNorm);
    ops.l2normalizeForward(ft, txtN, txtNorm);
    const allText = this.buf('allText', [N, D]);
    const dImgN = this.buf('dImgN', [B, D]);
    const dTxtN = this.buf('dTxtN', [B, D]);
    const dAllText = this.buf('dAllText', [N, D]);
    const dScale = this.buf('dScale', [1]);
    const lossOut = this.buf('loss', [1]);
    const workspace = this.buf('logits', [B, N]);
    this.buckets.begin();
    if (this.lossName === 'siglip') {
      await comm.allGather(txtN, allText);
      const dBias = this.buf('dBias', [1]);
      // This rank's images against every rank's texts, positives in its own block.
      ops.sigmoidLoss(imgN, allText, model.logitScale.data, model.logitBias!.data, {
        positiveOffset: comm.rank * B,
        grads: { dImage: dImgN, dText: dAllText, dLogitScale: dScale, dLogitBias: dBias },
        gradScale: lossScale,
        lossOut,
        deferLoss: true,
        workspace,
      });
      ops.axpy(1, dBias, model.logitBias!.grad);
      // The other ranks' losses reach this rank's texts: their gradients are summed here.
      await comm.reduceScatter(dAllText, dTxtN, 'sum');
      await comm.allReduce(lossOut, 'mean');
    } else {
      const allImage = this.buf('allImage', [N, D]);
      const dAllImage = this.buf('dAllImage', [N, D]);
      await Promise.all([comm.allGather(imgN, allImage), comm.allGather(txtN, allText)]);
      // This rank's rows of the global loss (its contribution C_r) against all N columns; the
      // gradients are W·∂C_r so that averaging over ranks gives the global loss's (OpenCLIP's
      // local loss is a mean over the rank's rows, W·C_r).
      ops.contrastiveLossLocal(allImage, allText, model.logitScale.data, comm.rank * B, B, {
        grads: { dImage: dAllImage, dText: dAllText, dLogitScale: dScale },
        lossScale: W * lossScale,
        lossOut,
        deferLoss: true,
        workspace,
      });
      await Promise.all([comm.reduceScatter(dAllImage, dImgN, 'sum'), comm.reduceScatter(dAllText, dTxtN, 'sum')]);
      // The global loss: Σ_r C_r.
      await comm.allReduce(lossOut, 'sum');
    }
    ops.axpy(1, dScale, model.logitScale.grad);
    const dfi = this.buf('dfi', [B, D]);
    const dft = this.buf('dft', [B, D]);
    ops.l2normalizeBackward(dImgN, imgN, imgNorm, dfi);
    ops.l2normalizeBackward(dTxtN, txtN, txtNorm, dft);
    if (parts.length === 1) {
      this.buckets.ready('loss');
      // The towers still hold this batch's activations. Each finished bucket's all-reduce starts
      // while the rest of backward runs.
      model.visual.backward(dfi);
      this.buckets.ready('visual');
      model.text.backward(dft);
      this.buckets.ready('text');
    } else {
      // Earlier micro-batches only accumulate: their block hooks launch nothing.
      this.buckets.hold(true);
      backwardMicroBatches(model, parts, dfi, dft, {
        before: (last) => {
          if (!last) return;
          this.buckets.hold(false);
          this.buckets.ready('loss');
        },
        after: (tower, last) => {
          if (last) this.buckets.ready(tower);
        },
      });
    }
    await this.buckets.wait();
    return lossOut.hostFloat32()[0];
  }

  /**
   * Whether every rank's step is finite (its loss and gradient norm), agreed on the device: each
   * rank's found-inf flag (0 or 1) is all-reduced (summed) and read back. The gradients are
   * all-reduced already, so an overflow on one rank normally reaches every rank's norm; the flag
   * makes the agreement explicit instead of resting on every rank's norm coming out the same.
   */
  async allFinite(localFinite: boolean): Promise<boolean> {
    const flag = this.buf('foundInf', [1]);
    ops.fill(flag, localFinite ? 0 : 1);
    await this.comm.allReduce(flag, 'sum');
    return flag.hostFloat32()[0] === 0;
  }

  dispose(): void {
    this.buckets.dispose();
    this.bufs.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
