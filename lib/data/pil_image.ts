// Images as Pillow holds them, for preprocessing that equals OpenCLIP's (PIL + torchvision):
// JPEGs decoded by libjpeg-turbo in the addon (native/cpu/jpeg_decode.cpp, the decoder Pillow
// uses, with Pillow's settings), other formats by sharp, to the samples PIL would read (no
// colour conversion: CMYK stays CMYK, greyscale one channel, 16-bit greyscale 16-bit), resized
// with Pillow's own resampling (native/cpu/resize_pil.cpp), padded and cropped in that mode,
// and only then converted to RGB the way PIL's convert('RGB') does, which is the order
// OpenCLIP's transforms run in.
import sharp from 'sharp';

import { native } from '../native.js';
import { MAX_IMAGE_FILE_BYTES, readRegularFile } from '../util/regular_file.js';
import { imageHeaderInfo } from './image_header.js';

/** PIL's image modes that clipscale reads. '1' (bilevel) is handled as L with nearest resizing. */
export type PilMode = 'RGB' | 'RGBA' | 'L' | 'LA' | 'P' | 'CMYK' | 'I;16' | '1';

export interface PilImage {
  mode: PilMode;
  width: number;
  height: number;
  /** Samples per pixel as stored in `data` (P is held expanded to RGB(A), as nearest resizing allows). */
  channels: number;
  /** Interleaved rows; Uint16Array for mode I;16 only. */
  data: Uint8Array | Uint16Array;
}

/** The mode Pillow opens an encoded image in, from its header (sharp's metadata as fallback). */
async function pilMode(input: Uint8Array): Promise<PilMode> {
  const h = imageHeaderInfo(input);
  if (h?.format === 'png') {
    switch (h.pngColorType) {
      case 0: return h.bitDepth === 16 ? 'I;16' : h.bitDepth === 1 ? '1' : 'L';
      case 2: return 'RGB';
      case 3: return 'P';
      case 4: return 'LA';
      case 6: return 'RGBA';
    }
  }
  if (h?.format === 'jpeg') return h.components === 1 ? 'L' : h.components === 4 ? 'CMYK' : 'RGB';
  const meta = await sharp(input).metadata();
  if (meta.isPalette) return 'P';
  if (meta.space === 'cmyk') return 'CMYK';
  if (meta.channels === 1 || meta.channels === 2) return meta.hasAlpha ? 'LA' : meta.depth === 'ushort' ? 'I;16' : 'L';
  return meta.hasAlpha ? 'RGBA' : 'RGB';
}

// Pillow refuses images over 2 × Image.MAX_IMAGE_PIXELS (DecompressionBombError); so do we,
// since the whole image is decoded to raw samples before resizing. For JPEGs the limit is on the
// stored size, also when decoding at a reduced scale: a progressive JPEG holds all its
// coefficients whatever the output size.
export const MAX_PIXELS = 2 * 89_478_485;

const jpegInAddon = native.jpegSupported();

/**
 * A JPEG decoded by libjpeg-turbo at 1/scale (1, 2, 4, 8: the IDCT's own scaling, as Pillow's
 * draft), to the samples Pillow holds: L, RGB or CMYK (inverted, as Pillow reads "CMYK;I").
 * Throws with libjpeg's message for corrupt or truncated data (its warnings included, as sharp's
 * failOn 'warning') and for more than MAX_PIXELS stored pixels.
 */
export function decodeJpegPil(bytes: Uint8Array, scale: 1 | 2 | 4 | 8 = 1): PilImage {
  const d = native.decodeJpeg(bytes, scale, MAX_PIXELS);
  const mode = d.channels === 1 ? 'L' : d.channels === 4 ? 'CMYK' : 'RGB';
  return { mode, width: d.width, height: d.height, channels: d.channels, data: d.data };
}

/** Decodes to the samples PIL would hold (16-bit colour is read as its high bytes, as PIL does). */
export async function decodePil(input: Uint8Array | string): Promise<PilImage> {
  // A path is read as a regular file of bounded size: libvips would open a FIFO and wait for a
  // writer, or read /dev/zero without end.
  const bytes = typeof input === 'string' ? await readRegularFile(input, { what: 'image', maxBytes: MAX_IMAGE_FILE_BYTES }) : input;
  // JPEGs through libjpeg-turbo directly: the same samples as sharp's decode (both are
  // libjpeg-turbo with its default IDCT and upsampling), at about a third of the CPU time.
  if (jpegInAddon && bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xd8) return decodeJpegPil(bytes, 1);
  return decodePilWithSharp(bytes);
}

/** decodePil through sharp for every format (JPEGs too: the path when the addon has no libjpeg-turbo). */
export async function decodePilWithSharp(bytes: Uint8Array): Promise<PilImage> {
  const mode = await pilMode(bytes);
  // ignoreIcc: Pillow does not apply embedded colour profiles; sharp would convert to sRGB by them.
  let pipeline = sharp(bytes, { limitInputPixels: MAX_PIXELS, ignoreIcc: true });
  if (mode === 'CMYK') pipeline = pipeline.pipelineColourspace('cmyk').toColourspace('cmyk');
  else if (mode === 'I;16') pipeline = pipeline.toColourspace('grey16');
  else if (mode === 'L' || mode === '1') pipeline = pipeline.toColourspace('b-w');
  const { data, info } = await pipeline.raw(mode === 'I;16' ? ({ depth: 'ushort' } as object) : undefined).toBuffer({ resolveWithObject: true });
  // sharp adds alpha for a tRNS chunk (PIL keeps RGB and L without it) and gives grey + alpha
  // as RGBA with the grey repeated: keep the channels PIL's mode has.
  const keep = mode === 'LA' && info.channels === 4 ? [0, 3]
    : (mode === 'RGB' && info.channels === 4) ? [0, 1, 2]
    : ((mode === 'L' || mode === '1') && info.channels === 2) ? [0]
    : undefined;
  if (keep) {
    const n = info.width * info.height;
    const out = new Uint8Array(n * keep.length);
    for (let p = 0; p < n; p++) for (let k = 0; k < keep.length; k++) out[p * keep.length + k] = data[p * info.channels + keep[k]];
    return { mode, width: info.width, height: info.height, channels: keep.length, data: out };
  }
  const channels = info.channels;
  const samples = mode === 'I;16'
    ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const expected = ({ RGB: [3], RGBA: [4], L: [1], '1': [1], LA: [2], P: [3, 4], CMYK: [4], 'I;16': [1] } as Record<PilMode, number[]>)[mode];
  if (!expected.includes(channels)) throw new Error(`decoding a ${mode} image gave ${channels} channels, expected ${expected.join(' or ')}`);
  return { mode, width: info.width, height: info.height, channels, data: samples };
}

export type Interpolation = 'bicubic' | 'bilinear';

/**
 * PIL's Image.resize(size, resample): nearest for P and bilevel images, alpha premultiplied for
 * RGBA/LA. With `crop` ({left, top, width, height} inside the result) only that part is computed,
 * each pixel as in the whole result (a resize followed by a crop, at less cost).
 */
export function resizePil(im: PilImage, width: number, height: number, interpolation: Interpolation = 'bicubic', crop?: { left: number; top: number; width: number; height: number }): PilImage {
  if (width === im.width && height === im.height) return crop ? cropPil(im, crop.left, crop.top, crop.width, crop.height) : im;
  const nearest = im.mode === 'P' || im.mode === '1';
  const premultiply = !nearest && (im.mode === 'RGBA' || im.mode === 'LA');
  const filter = nearest ? 'nearest' : interpolation;
  if (crop && im.data instanceof Uint16Array) {
    const whole = native.resizePil(im.data, im.width, im.height, im.channels, width, height, filter, null, premultiply);
    return cropPil({ ...im, width, height, data: whole }, crop.left, crop.top, crop.width, crop.height);
  }
  const window = crop ? ([crop.left, crop.top, crop.width, crop.height] as const) : null;
  const data = native.resizePil(im.data, im.width, im.height, im.channels, width, height, filter, null, premultiply, window);
  return crop ? { ...im, width: crop.width, height: crop.height, data } : { ...im, width, height, data };
}

/** A rectangle of the image; parts outside are filled with `fill` in every channel (torchvision pads with 0). */
export function cropPil(im: PilImage, left: number, top: number, width: number, height: number, fill = 0): PilImage {
  if (left === 0 && top === 0 && width === im.width && height === im.height) return im;
  const c = im.channels;
  const data = im.data instanceof Uint16Array ? new Uint16Array(width * height * c) : new Uint8Array(width * height * c);
  if (fill !== 0) data.fill(fill);
  const x0 = Math.max(0, left);
  const x1 = Math.min(im.width, left + width);
  for (let y = 0; y < height; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= im.height || x1 <= x0) continue;
    const from = (sy * im.width + x0) * c;
    data.set(im.data.subarray(from, from + (x1 - x0) * c), (y * width + (x0 - left)) * c);
  }
  return { ...im, width, height, data };
}

/** PIL's convert('RGB'): RGB bytes, 3 a pixel. */
export function toRgbPil(im: PilImage): Uint8Array {
  const n = im.width * im.height;
  const c = im.channels;
  const src = im.data;
  if (c === 3 && src instanceof Uint8Array) return src;
  const out = new Uint8Array(n * 3);
  if (im.mode === 'CMYK') {
    // Pillow's cmyk2rgb: nk = 255 − K; each of R, G, B = nk − C·nk/255 (MULDIV255).
    for (let p = 0; p < n; p++) {
      const nk = 255 - src[p * 4 + 3];
      for (let k = 0; k < 3; k++) {
        const t = src[p * 4 + k] * nk + 128;
        out[p * 3 + k] = nk - (((t >> 8) + t) >> 8);
      }
    }
    return out;
  }
  if (im.mode === 'I;16') {
    // Pillow converts I;16 to 8 bits by clamping, not scaling: values above 255 become white.
    for (let p = 0; p < n; p++) out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = Math.min(255, src[p]);
    return out;
  }
  if (c <= 2) {
    for (let p = 0; p < n; p++) out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = src[p * c];
    return out;
  }
  // RGBA (and P with transparency): alpha dropped, colour kept as stored.
  for (let p = 0; p < n; p++) {
    out[p * 3] = src[p * c];
    out[p * 3 + 1] = src[p * c + 1];
    out[p * 3 + 2] = src[p * c + 2];
  }
  return out;
}
