// A CLIP model as the evaluation code sees it: host arrays in, host features out,
// in batches so memory stays bounded.
import type { ClipEncoder } from '../eval/encoder.js';
import { Tensor } from '../tensor.js';
import type { CLIP } from './clip.js';

export function clipEncoder(model: CLIP, batchSize = 128): ClipEncoder {
  const d = model.config.embed_dim;
  const size = model.config.vision_cfg.image_size;
  const ctx = model.config.text_cfg.context_length;
  return {
    embedDim: d,
    async encodeImages(pixels: Float32Array, n: number): Promise<Float32Array> {
      const px = 3 * size * size;
      if (pixels.length !== n * px) throw new Error(`encodeImages: expected ${n}×3×${size}×${size} = ${n * px} values, got ${pixels.length}`);
      const out = new Float32Array(n * d);
      for (let s = 0; s < n; s += batchSize) {
        const m = Math.min(batchSize, n - s);
        using images = Tensor.from(pixels.subarray(s * px, (s + m) * px), [m, 3, size, size]);
        out.set(model.encodeImage(images).view() as Float32Array, s * d);
      }
      return out;
    },
    async encodeTexts(tokens: Int32Array, n: number): Promise<Float32Array> {
      if (tokens.length !== n * ctx) throw new Error(`encodeTexts: expected ${n}×${ctx} = ${n * ctx} token ids, got ${tokens.length}`);
      const out = new Float32Array(n * d);
      for (let s = 0; s < n; s += batchSize) {
        const m = Math.min(batchSize, n - s);
        using ids = Tensor.from(tokens.subarray(s * ctx, (s + m) * ctx), [m, ctx]);
        out.set(model.encodeText(ids).view() as Float32Array, s * d);
      }
      return out;
    },
  };
}
