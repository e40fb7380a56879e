// A CLIP model as the evaluation code sees it: host arrays in, host features out,
// in batches so memory stays bounded. Encoding runs in inference mode (Module.inference), one
// scope a call: no activations kept for backward, one set of buffers for the whole depth, the
// weights packed for the CPU GEMM once a call, and the training buffers left as they were (an
// evaluation between training steps changes nothing).
// The inference buffers are released at the end of each call, so an evaluation during training
// does not leave its (evaluation batch-sized) buffers held beside training's. On a GPU the
// batches are uploaded, the features of every batch gather in one device tensor, and that is
// copied back once per call (one wait for the device, not one per batch).
import type { ClipEncoder } from '../eval/encoder.js';
import * as ops from '../ops.js';
import { Tensor } from '../tensor.js';
import type { CLIP } from './clip.js';

export function clipEncoder(model: CLIP, batchSize = 128): ClipEncoder {
  const d = model.config.embed_dim;
  const size = model.config.vision_cfg.image_size;
  const ctx = model.config.text_cfg.context_length;
  // Inputs go to the model's device; features come back to the host from any device.
  const onDevice = (host: Tensor): Tensor => {
    if (model.device === 'cpu') return host;
    const t = host.to(model.device);
    host.dispose();
    return t;
  };
  const releasingInferenceBuffers = (): Disposable => ({ [Symbol.dispose]: () => model.releaseInferenceBuffers() });
  /** Where a call's features gather: the host array itself on the CPU, else a device tensor read back once. */
  const gather = (n: number) => {
    const out = new Float32Array(n * d);
    const onGpu = model.device === 'cpu' ? null : Tensor.empty([n, d], 'f32', model.device);
    return {
      put(features: Tensor, row: number): void {
        if (!onGpu) {
          out.set(features.view() as Float32Array, row * d);
          return;
        }
        using rows = onGpu.rows(row, features.shape[0]);
        ops.copy(features, rows);
      },
      done(): Float32Array {
        if (onGpu) out.set(onGpu.hostFloat32());
        return out;
      },
      [Symbol.dispose](): void {
        onGpu?.dispose();
      },
    };
  };
  return {
    embedDim: d,
    async encodeImages(pixels: Float32Array, n: number): Promise<Float32Array> {
      const px = 3 * size * size;
      if (pixels.length !== n * px) throw new Error(`encodeImages: expected ${n}×3×${size}×${size} = ${n * px} values, got ${pixels.length}`);
      using out = gather(n);
      using _release = releasingInferenceBuffers();
      // One inference scope for every batch: the weights are packed for the CPU GEMM once.
      using _ = model.inference();
      for (let s = 0; s < n; s += batchSize) {
        const m = Math.min(batchSize, n - s);
        using images = onDevice(Tensor.from(pixels.subarray(s * px, (s + m) * px), [m, 3, size, size]));
        out.put(model.encodeImage(images), s);
      }
      return out.done();
    },
    async encodeTexts(tokens: Int32Array, n: number): Promise<Float32Array> {
      if (tokens.length !== n * ctx) throw new Error(`encodeTexts: expected ${n}×${ctx} = ${n * ctx} token ids, got ${tokens.length}`);
      using out = gather(n);
      using _release = releasingInferenceBuffers();
      using _ = model.inference();
      for (let s = 0; s < n; s += batchSize) {
        const m = Math.min(batchSize, n - s);
        using ids = onDevice(Tensor.from(tokens.subarray(s * ctx, (s + m) * ctx), [m, ctx]));
        out.put(model.encodeText(ids), s);
      }
      return out.done();
    },
  };
}
