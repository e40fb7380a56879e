// The CLIP loss on unnormalised features: L2-normalise both, then the symmetric
// cross-entropy of the scaled similarities (native fused op), and the way back to
// the unnormalised features and the logit scale.
import * as ops from '../ops.js';
import { Tensor } from '../tensor.js';
import { TensorBuffers } from '../util/tensor_buffers.js';

export interface ClipLossResult {
  loss: number;
  /** d loss / d image features (unnormalised), [N, D]; valid until the next call. */
  dImage: Tensor;
  /** d loss / d text features (unnormalised), [N, D]. */
  dText: Tensor;
  /** d loss / d logit_scale (read from the device on first use). */
  readonly dLogitScale: number;
  /** d loss / d logit_scale as a 1-element tensor on the features' device; valid until the next call. */
  dLogitScaleTensor: Tensor;
}

export class ClipLoss implements Disposable {
  private readonly bufs = new TensorBuffers();

  /** Buffers live on the device of the features last given. */
  private device = 'cpu';

  private buf(key: string, shape: number[]): Tensor {
    return this.bufs.get(key, shape, this.device);
  }

  /** Loss and gradients for features [N, D] and logitScale (1 element, the log of the scale). */
  /**
   * `deferLossTo` (a 1-element f32 tensor on the features' device): the loss is written there
   * and, on a GPU, not read back (result.loss is NaN; nothing waits for the device).
   */
  forwardBackward(image: Tensor, text: Tensor, logitScale: Tensor, lossScale = 1, deferLossTo?: Tensor): ClipLossResult {
    const [n, d] = image.shape;
    if (text.shape[0] !== n || text.shape[1] !== d) {
      throw new Error(`ClipLoss: image features [${image.shape.join(', ')}] and text features [${text.shape.join(', ')}] differ in shape`);
    }
    this.device = image.device;
    const imgN = this.buf('imgN', [n, d]);
    const txtN = this.buf('txtN', [n, d]);
    const imgNorm = this.buf('imgNorm', [n]);
    const txtNorm = this.buf('txtNorm', [n]);
    ops.l2normalizeForward(image, imgN, imgNorm);
    ops.l2normalizeForward(text, txtN, txtNorm);
    const dImgN = this.buf('dImgN', [n, d]);
    const dTxtN = this.buf('dTxtN', [n, d]);
    const dScale = this.buf('dScale', [1]);
    const { loss } = ops.contrastiveLoss(imgN, txtN, logitScale, {
      grads: { dImage: dImgN, dText: dTxtN, dLogitScale: dScale },
      lossScale,
      workspace: this.buf('logits', [n, n]),
      ...(deferLossTo ? { lossOut: deferLossTo, deferLoss: true } : {}),
    });
    const dImage = this.buf('dImage', [n, d]);
    const dText = this.buf('dText', [n, d]);
    ops.l2normalizeBackward(dImgN, imgN, imgNorm, dImage);
    ops.l2normalizeBackward(dTxtN, txtN, txtNorm, dText);
    return {
      loss,
      dImage,
      dText,
      dLogitScaleTensor: dScale,
      get dLogitScale(): number {
        return dScale.hostFloat32()[0];
      },
    };
  }

  /** The loss alone (no gradients). */
  forward(image: Tensor, text: Tensor, logitScale: Tensor): number {
    const [n, d] = image.shape;
    this.device = image.device;
    const imgN = this.buf('imgN', [n, d]);
    const txtN = this.buf('txtN', [n, d]);
    ops.l2normalizeForward(image, imgN, this.buf('imgNorm', [n]));
    ops.l2normalizeForward(text, txtN, this.buf('txtNorm', [n]));
    return ops.contrastiveLoss(imgN, txtN, logitScale, { workspace: this.buf('logits', [n, n]) }).loss;
  }

  dispose(): void {
    this.bufs.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
