// Image transforms, as OpenCLIP's: training RandomResizedCrop(scale 0.9–1.0, bicubic) and
// evaluation resize-shorter-side + centre crop, both to RGB bytes, then OpenAI's
// normalisation. sharp's 'cubic' kernel is Catmull–Rom, PIL's bicubic (what torchvision
// uses on PIL images).
import sharp, { type Sharp } from 'sharp';

import { imageHeaderSize } from './image_header.js';
import { type Normalization, normalizeHwcToChw } from './normalize.js';
import { Rng } from './rng.js';

export interface CropBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface TransformSpec {
  /** Output side in pixels. */
  size: number;
  /** true: random resized crop (needs `seed`); false: resize + centre crop. */
  train: boolean;
  /** Seed of this sample's crop (e.g. a hash of run seed and sample position). */
  seed?: number;
  scale?: readonly [number, number];
  ratio?: readonly [number, number];
  /** Mean/std of the normalisation (default OpenAI's). */
  normalization?: Normalization;
}

/** torchvision's RandomResizedCrop.get_params: 10 tries, then a centre crop within the ratio range. */
export function randomResizedCropBox(width: number, height: number, rng: Rng, scale: readonly [number, number] = [0.9, 1.0], ratio: readonly [number, number] = [3 / 4, 4 / 3]): CropBox {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { left: rng.int(width - w + 1), top: rng.int(height - h + 1), width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

/** Decodes an image and applies the transform; returns RGB(A) bytes HWC with the channel count. */
export async function transformToBytes(input: Uint8Array | string, spec: TransformSpec): Promise<{ data: Buffer; channels: number }> {
  const { size } = spec;
  let pipeline: Sharp;
  if (spec.train) {
    pipeline = sharp(input);
    // The size from the header bytes (microseconds); sharp's metadata() only when that fails.
    const meta = (typeof input !== 'string' && imageHeaderSize(input)) || (await pipeline.metadata());
    if (!meta.width || !meta.height) throw new Error('image has no size');
    const box = randomResizedCropBox(meta.width, meta.height, new Rng(spec.seed ?? 0), spec.scale, spec.ratio);
    pipeline = pipeline.extract(box).resize(size, size, { kernel: 'cubic', fit: 'fill' });
  } else {
    pipeline = sharp(input).resize(size, size, { kernel: 'cubic', fit: 'cover', position: 'centre' });
  }
  const { data, info } = await pipeline.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size) throw new Error(`transform gave ${info.width}×${info.height}, expected ${size}×${size}`);
  return { data, channels: info.channels };
}

/** Decode + transform + normalise: CHW floats of 3 × size × size. */
export async function transformImage(input: Uint8Array | string, spec: TransformSpec, out?: Float32Array, offset = 0): Promise<Float32Array> {
  const { data, channels } = await transformToBytes(input, spec);
  const target = out ?? new Float32Array(3 * spec.size * spec.size);
  normalizeHwcToChw(data, spec.size, spec.size, channels, target, offset, spec.normalization);
  return target;
}
