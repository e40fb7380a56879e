// Shrink-on-load JPEG decoding, as Pillow's Image.draft does it: libjpeg scales in the IDCT by
// 1/2, 1/4 or 1/8 (native/cpu/jpeg_decode.cpp), so a 640×480 photo bound for 224 pixels is
// decoded at 320×240 (0.89 vs 1.31 ms here) and resized from there (a smaller filter): the
// loader makes 1.6–2.1× the images per CPU-second (benchmarks/results/issue17-loader/NOTES.md).
// The output differs from the full decode (the downscale is partly done by the IDCT rather than
// the bicubic filter), so it is an option (TransformSpec.draft), never the default: OpenCLIP
// does not call draft.
//
// Which scale: Pillow's rule for the size a transform asks of draft. Evaluation (resize then
// centre crop/pad) asks for what the resize produces; training (RandomResizedCrop) asks for an
// image on which every crop the random draw can give is still at least `size` on both sides.
import { longestSideSize, type TransformSpec } from './transforms.js';

export type DraftScale = 1 | 2 | 4 | 8;

/**
 * JpegImageFile.draft's scale for a requested size: s = min(W // w, H // h), then the largest
 * of 8, 4, 2, 1 not above it. The decoded image is ceil(W / s) × ceil(H / s), which is at least
 * the requested size whenever the stored image is.
 */
export function pilDraftScale(width: number, height: number, requestWidth: number, requestHeight: number): DraftScale {
  const s = Math.min(Math.floor(width / requestWidth), Math.floor(height / requestHeight));
  return s >= 8 ? 8 : s >= 4 ? 4 : s >= 2 ? 2 : 1;
}

/** libjpeg's (and so Pillow's) size of an image decoded at 1/scale: each side rounded up. */
export function draftSize(width: number, height: number, scale: DraftScale): { width: number; height: number } {
  return { width: Math.ceil(width / scale), height: Math.ceil(height / scale) };
}

/**
 * RandomResizedCrop's smallest possible crop is area·scale[0] at the extreme ratios: sides of
 * at least sqrt(area·scale[0]·ratio[0]) and sqrt(area·scale[0]/ratio[1]) (the draw rounds them,
 * which can only add), and its fallback crop has sides of at least the shorter image side. The
 * largest draft scale for which those bounds are still ≥ size on the decoded image: every crop
 * is then a downscale (or copy) to size × size, as on the full decode, never an upscale.
 */
export function trainDraftScale(width: number, height: number, size: number, scale: readonly [number, number] = [0.9, 1.0], ratio: readonly [number, number] = [3 / 4, 4 / 3]): DraftScale {
  for (const s of [8, 4, 2] as const) {
    const d = draftSize(width, height, s);
    const area = d.width * d.height;
    if (Math.min(d.width, d.height) >= size && Math.sqrt(area * scale[0] * ratio[0]) >= size && Math.sqrt((area * scale[0]) / ratio[1]) >= size) return s;
  }
  return 1;
}

/** The draft scale a transform can use on a stored width × height image (Pillow's rule for what it needs). */
export function draftScaleFor(spec: TransformSpec, width: number, height: number): DraftScale {
  const { size } = spec;
  if (spec.train) return trainDraftScale(width, height, size, spec.scale, spec.ratio);
  if ((spec.resizeMode ?? 'shortest') === 'longest') {
    const target = longestSideSize(width, height, size);
    return pilDraftScale(width, height, Math.max(1, target.width), Math.max(1, target.height));
  }
  // 'shortest' (the shorter side to size, then a size × size crop) and 'squash' both need size × size.
  return pilDraftScale(width, height, size, size);
}
