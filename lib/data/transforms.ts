// Image transforms, as OpenCLIP's image_transform (PIL + torchvision) computes them, to the
// byte: evaluation resizes by resize_mode ('shortest': the shorter side to `size` with
// torchvision's size arithmetic, then centre crop; 'longest': the longer side to `size`, then
// centre pad with the fill colour; 'squash': both sides to `size`), training takes
// RandomResizedCrop (scale 0.9–1.0), both with Pillow's bicubic resampling in the image's own
// mode, then convert('RGB') and the model's mean/std (spec.normalization). See pil_image.ts for decoding and colour.
import { cropPil, decodeJpegPil, decodePil, resizePil, toRgbPil, type Interpolation, type PilImage } from './pil_image.js';
import { imageHeaderInfo, imageHeaderSize } from './image_header.js';
import { draftScaleFor } from './jpeg_draft.js';
import { MAX_IMAGE_FILE_BYTES, readRegularFile } from '../util/regular_file.js';
import { normalizeHwcToChw, type Normalization } from './normalize.js';
import { Rng } from './rng.js';

export interface CropBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** OpenCLIP's resize_mode for evaluation. */
export type ResizeMode = 'shortest' | 'longest' | 'squash';

export interface TransformSpec {
  /** Output side in pixels. */
  size: number;
  /** true: random resized crop (needs `seed`); false: the resize_mode's resize + centre crop/pad. */
  train: boolean;
  /** Seed of this sample's crop (e.g. a hash of run seed and sample position). */
  seed?: number;
  scale?: readonly [number, number];
  ratio?: readonly [number, number];
  /** Evaluation resize mode (OpenCLIP's resize_mode); default 'shortest'. */
  resizeMode?: ResizeMode;
  /** Padding value of 'longest' in the image's own mode (OpenCLIP's fill_color); default 0. */
  fill?: number;
  /** Default 'bicubic' (OpenCLIP's default interpolation). */
  interpolation?: Interpolation;
  /** Mean/std of the normalisation (OpenCLIP's image_mean/image_std; default OpenAI's). */
  normalization?: Normalization;
  /**
   * Shrink-on-load for JPEGs, as Pillow's Image.draft('RGB', …) before the transform: decoded
   * at 1/2, 1/4 or 1/8 where the transform still gets at least its size (jpeg_draft.ts). Faster,
   * not equal to OpenCLIP's preprocessing (which does not use draft); default false.
   */
  draft?: boolean;
}

/** Python's round(): halves to even. torchvision's crop offsets and timm's ResizeKeepRatio use it. */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
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

/** torchvision's Resize(size) for an int size: the shorter side to `size`, the longer truncated. */
export function shortestSideSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/** OpenCLIP's ResizeKeepRatio(size, longest=1): the longer side to `size`, each side rounded. */
export function longestSideSize(width: number, height: number, size: number): { width: number; height: number } {
  const ratio = Math.max(height / size, width / size);
  return { width: pyRound(width / ratio), height: pyRound(height / ratio) };
}

/** torchvision's centre crop (padding first where the image is smaller, as F.center_crop does). */
function centerCropOrPad(im: PilImage, size: number, fill: number): PilImage {
  let left = 0;
  let top = 0;
  let { width, height } = im;
  if (size > width || size > height) {
    // F.pad's left/top halves (the extra pixel goes right/bottom); then the crop offset is 0.
    if (size > width) {
      left = -Math.floor((size - width) / 2);
      width = size;
    }
    if (size > height) {
      top = -Math.floor((size - height) / 2);
      height = size;
    }
  }
  left += pyRound((width - size) / 2);
  top += pyRound((height - size) / 2);
  return cropPil(im, left, top, size, size, fill);
}

/** torchvision's F.resized_crop on a PIL image: crop the box (PIL pads outside with 0), then resize. */
export function resizedCropPil(im: PilImage, box: CropBox, size: number, interpolation: Interpolation = 'bicubic'): PilImage {
  return resizePil(cropPil(im, box.left, box.top, box.width, box.height), size, size, interpolation);
}

/** The PIL-equivalent image after OpenCLIP's resize/crop steps, in the image's own mode. */
export function transformPil(im: PilImage, spec: TransformSpec): PilImage {
  const { size } = spec;
  const interpolation = spec.interpolation ?? 'bicubic';
  if (!Number.isInteger(size) || size < 1) throw new Error(`transform: size must be a positive integer, got ${size}`);
  if (spec.train) {
    const box = randomResizedCropBox(im.width, im.height, new Rng(spec.seed ?? 0), spec.scale, spec.ratio);
    return resizedCropPil(im, box, size, interpolation);
  }
  const mode = spec.resizeMode ?? 'shortest';
  if (mode === 'squash') return resizePil(im, size, size, interpolation);
  if (mode === 'longest') {
    const s = longestSideSize(im.width, im.height, size);
    return centerCropOrPad(resizePil(im, s.width, s.height, interpolation), size, spec.fill ?? 0);
  }
  if (mode !== 'shortest') throw new Error(`transform: resizeMode must be 'shortest', 'longest' or 'squash', got '${mode}'`);
  const s = shortestSideSize(im.width, im.height, size);
  // The resized image is at least size × size: only the centre crop is computed.
  const crop = { left: pyRound((s.width - size) / 2), top: pyRound((s.height - size) / 2), width: size, height: size };
  return resizePil(im, s.width, s.height, interpolation, crop);
}

/** A JPEG decoded at the draft scale the transform allows; other formats as decodePil does. */
async function decodeDraft(input: Uint8Array | string, spec: TransformSpec): Promise<PilImage> {
  const bytes = typeof input === 'string' ? await readRegularFile(input, { what: 'image', maxBytes: MAX_IMAGE_FILE_BYTES }) : input;
  const header = imageHeaderInfo(bytes);
  if (header?.format !== 'jpeg') return decodePil(bytes);
  if (!header.width || !header.height) throw new Error(`JPEG header gives a size of ${header.width}×${header.height}`);
  return decodeJpegPil(bytes, draftScaleFor(spec, header.width, header.height));
}

/** Decodes an image and applies the transform; returns RGB bytes HWC (channels is 3). */
export async function transformToBytes(input: Uint8Array | string, spec: TransformSpec): Promise<{ data: Uint8Array; channels: number }> {
  if (spec.train && typeof input !== 'string') {
    // A cheap check before the decode: a header that names no size is a corrupt image either way.
    const size = imageHeaderSize(input);
    if (size && (!size.width || !size.height)) throw new Error('image has no size');
  }
  const im = spec.draft ? await decodeDraft(input, spec) : await decodePil(input);
  const out = transformPil(im, spec);
  if (out.width !== spec.size || out.height !== spec.size) throw new Error(`transform gave ${out.width}×${out.height}, expected ${spec.size}×${spec.size}`);
  return { data: toRgbPil(out), channels: 3 };
}

/** Decode + transform + normalise: CHW floats of 3 × size × size. */
export async function transformImage(input: Uint8Array | string, spec: TransformSpec, out?: Float32Array, offset = 0): Promise<Float32Array> {
  const { data, channels } = await transformToBytes(input, spec);
  const target = out ?? new Float32Array(3 * spec.size * spec.size);
  normalizeHwcToChw(data, spec.size, spec.size, channels, target, offset, spec.normalization);
  return target;
}
