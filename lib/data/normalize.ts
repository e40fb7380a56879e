// OpenAI CLIP's pixel normalisation, and the HWC bytes → CHW floats step every image path
// (synthetic, shards, folders) ends with.

export const OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const OPENAI_STD = [0.26862954, 0.26130258, 0.27577711] as const;

// Per channel: value = byte · scale + shift, i.e. (byte/255 − mean)/std, in a lookup table.
const LUT = (() => {
  const t = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let b = 0; b < 256; b++) t[c * 256 + b] = (b / 255 - OPENAI_MEAN[c]) / OPENAI_STD[c];
  }
  return t;
})();

/**
 * Writes `hwc` (height·width·channels bytes, RGB first; extra channels such as alpha are
 * skipped) as normalised CHW floats into `out` from `offset`.
 */
export function normalizeHwcToChw(hwc: Uint8Array, height: number, width: number, channels: number, out: Float32Array, offset = 0): void {
  const plane = height * width;
  if (hwc.length < plane * channels) throw new Error(`normalizeHwcToChw: expected ${plane * channels} bytes for ${height}×${width}×${channels}, got ${hwc.length}`);
  if (out.length < offset + 3 * plane) throw new Error(`normalizeHwcToChw: output holds ${out.length} floats, needs ${offset + 3 * plane}`);
  if (channels === 1) {
    for (let p = 0; p < plane; p++) {
      const b = hwc[p];
      out[offset + p] = LUT[b];
      out[offset + plane + p] = LUT[256 + b];
      out[offset + 2 * plane + p] = LUT[512 + b];
    }
    return;
  }
  for (let p = 0, s = 0; p < plane; p++, s += channels) {
    out[offset + p] = LUT[hwc[s]];
    out[offset + plane + p] = LUT[256 + hwc[s + 1]];
    out[offset + 2 * plane + p] = LUT[512 + hwc[s + 2]];
  }
}
