// Micro-batches of one step (OpenCLIP's accum_freq): their features are encoded into rows of one
// tensor per tower, the loss runs once on those, and then each micro-batch is recomputed and
// backpropagated with its rows of the feature gradients. Shared by the single-process step, the
// CPU data-parallel step and the device data-parallel step.
import type { CLIP } from '../nn/clip.js';
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';
import type { Batch } from './step.js';

type Part = Pick<Batch, 'images' | 'ids'>;

/** Encodes each micro-batch into its rows of `image` and `text` ([total rows, embed_dim] each). */
export function encodeMicroBatches(model: CLIP, parts: readonly Part[], image: Tensor, text: Tensor): void {
  let row = 0;
  for (const { images, ids } of parts) {
    const n = images.shape[0];
    using imgRows = image.rows(row, n);
    using txtRows = text.rows(row, n);
    ops.copy(model.encodeImage(images), imgRows);
    ops.copy(model.encodeText(ids), txtRows);
    row += n;
  }
}

/** Called around each micro-batch's backward (e.g. to launch gradient all-reduces after the last). */
export interface MicroBatchHooks {
  before?(last: boolean): void;
  after?(tower: 'visual' | 'text', last: boolean): void;
}

/**
 * Backpropagates each micro-batch with its rows of `dImage` and `dText`. The towers keep only
 * the activations of their last forward, so each micro-batch's forward is recomputed first.
 */
export function backwardMicroBatches(model: CLIP, parts: readonly Part[], dImage: Tensor, dText: Tensor, hooks: MicroBatchHooks = {}): void {
  let row = 0;
  parts.forEach(({ images, ids }, j) => {
    const n = images.shape[0];
    const last = j === parts.length - 1;
    hooks.before?.(last);
    using dImg = dImage.rows(row, n);
    using dTxt = dText.rows(row, n);
    model.encodeImage(images);
    model.visual.backward(dImg);
    hooks.after?.('visual', last);
    model.encodeText(ids);
    model.text.backward(dTxt);
    hooks.after?.('text', last);
    row += n;
  });
}
