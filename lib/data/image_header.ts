// Width and height (and the sample layout) from the first bytes of a JPEG, PNG or WebP,
// without decoding: the training crop needs the size before the decode, the preprocessing
// needs the mode Pillow would open the image in, and asking sharp costs a second parse.

export interface ImageHeaderInfo {
  format: 'png' | 'jpeg' | 'webp';
  width: number;
  height: number;
  /** PNG: IHDR bit depth and colour type (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA). */
  bitDepth?: number;
  pngColorType?: number;
  /** JPEG: components in the frame (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK). */
  components?: number;
}

/** The stored (not EXIF-rotated) size and layout, or undefined when the header is not understood. */
export function imageHeaderInfo(b: Uint8Array): ImageHeaderInfo | undefined {
  if (b.length >= 26 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return { format: 'png', width: v.getUint32(16), height: v.getUint32(20), bitDepth: b[24], pngColorType: b[25] };
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) return undefined;
      const marker = b[i + 1];
      if (marker === 0xff) {
        i++;
        continue;
      }
      const len = (b[i + 2] << 8) | b[i + 3];
      // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { format: 'jpeg', height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8], components: b[i + 9] };
      }
      if (marker === 0xd9 || marker === 0xda) return undefined;
      i += 2 + len;
    }
    return undefined;
  }
  if (b.length >= 30 && String.fromCharCode(b[0], b[1], b[2], b[3]) === 'RIFF' && String.fromCharCode(b[8], b[9], b[10], b[11]) === 'WEBP') {
    const chunk = String.fromCharCode(b[12], b[13], b[14], b[15]);
    if (chunk === 'VP8 ') return { format: 'webp', width: ((b[27] << 8) | b[26]) & 0x3fff, height: ((b[29] << 8) | b[28]) & 0x3fff };
    if (chunk === 'VP8L') {
      const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
      return { format: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    if (chunk === 'VP8X') return { format: 'webp', width: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)), height: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)) };
  }
  return undefined;
}

/** The stored (not EXIF-rotated) size, or undefined when the header is not understood. */
export function imageHeaderSize(b: Uint8Array): { width: number; height: number } | undefined {
  const info = imageHeaderInfo(b);
  return info && { width: info.width, height: info.height };
}
