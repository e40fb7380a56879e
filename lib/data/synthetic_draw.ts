// Rasterises the synthetic world's scenes: flat shapes on a noisy background, 2×2
// supersampled, into 8-bit RGB. Only + − × ÷ and comparisons are used (no sin/cos), so
// every machine draws the same bytes.
import { Rng } from './rng.js';

export const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'hexagon', 'cross', 'ring', 'star'] as const;
export type Shape = (typeof SHAPES)[number];

export const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'cyan', 'white'] as const;
export type Colour = (typeof COLOURS)[number];

const COLOUR_RGB: Record<Colour, [number, number, number]> = {
  red: [0.9, 0.12, 0.1],
  green: [0.12, 0.75, 0.2],
  blue: [0.15, 0.3, 0.95],
  yellow: [0.95, 0.9, 0.12],
  purple: [0.6, 0.2, 0.8],
  orange: [1.0, 0.55, 0.05],
  cyan: [0.1, 0.85, 0.9],
  white: [0.95, 0.95, 0.95],
};

/** One drawn object: centre and radius in pixels. */
export interface DrawnObject {
  shape: Shape;
  colour: Colour;
  cx: number;
  cy: number;
  r: number;
}

// A five-pointed star: outer points (radius 1) at −90°, −18°, 54°, 126°, 198°, inner (0.42) between.
const STAR: [number, number][] = [
  [0, -1], [0.587785 * 0.42, -0.809017 * 0.42], [0.951057, -0.309017], [0.951057 * 0.42, 0.309017 * 0.42],
  [0.587785, 0.809017], [0, 0.42], [-0.587785, 0.809017], [-0.951057 * 0.42, 0.309017 * 0.42],
  [-0.951057, -0.309017], [-0.587785 * 0.42, -0.809017 * 0.42],
];

// The star's corners as flat coordinate arrays: destructuring [x, y] pairs in the loop below made
// it a fifth of the time spent drawing a batch.
const STAR_X = Float64Array.from(STAR, (p) => p[0]);
const STAR_Y = Float64Array.from(STAR, (p) => p[1]);

function insidePolygon(u: number, v: number, xs: Float64Array, ys: Float64Array): boolean {
  let inside = false;
  for (let i = 0, j = xs.length - 1; i < xs.length; j = i++) {
    const xi = xs[i], yi = ys[i], xj = xs[j], yj = ys[j];
    if (yi > v !== yj > v && u < ((xj - xi) * (v - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Whether the point (u, v), in units of the radius from the centre (v down), is in the shape. */
export function insideShape(shape: Shape, u: number, v: number): boolean {
  const au = Math.abs(u);
  const av = Math.abs(v);
  switch (shape) {
    case 'circle':
      return u * u + v * v <= 1;
    case 'square':
      return au <= 0.8 && av <= 0.8;
    case 'triangle': // equilateral, pointing up, centroid at the centre
      return v <= 0.5 && v >= -1 + 1.7320508 * au;
    case 'diamond':
      return au / 0.8 + av <= 1;
    case 'hexagon': // flat top and bottom
      return av <= 0.866 && 0.866 * au + 0.5 * av <= 0.866;
    case 'cross':
      return (au <= 0.3 && av <= 0.95) || (av <= 0.3 && au <= 0.95);
    case 'ring': {
      const d = u * u + v * v;
      return d <= 1 && d >= 0.3;
    }
    case 'star':
      return insidePolygon(u, v, STAR_X, STAR_Y);
  }
}

// drawScene's float canvas, kept between calls (every value is written before it is read).
let canvasScratch = new Float32Array(0);

/**
 * Draws a scene into a new HWC RGB byte image of `size`×`size`. The background is a dark
 * tinted grey with per-pixel noise; `rng` supplies the background and colour jitter.
 */
export function drawScene(objects: readonly DrawnObject[], size: number, rng: Rng): Uint8Array {
  if (canvasScratch.length !== size * size * 3) canvasScratch = new Float32Array(size * size * 3);
  const canvas = canvasScratch;
  const grey = rng.uniform(0.02, 0.35);
  const tint = [rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05)];
  for (let p = 0; p < size * size; p++) {
    const n = (rng.next() - 0.5) * 0.08;
    for (let c = 0; c < 3; c++) canvas[p * 3 + c] = grey + tint[c] + n;
  }
  for (const o of objects) {
    const base = COLOUR_RGB[o.colour];
    const rgb = base.map((v) => Math.min(1, Math.max(0, v + rng.uniform(-0.06, 0.06))));
    const x0 = Math.max(0, Math.floor(o.cx - o.r - 1));
    const x1 = Math.min(size - 1, Math.ceil(o.cx + o.r + 1));
    const y0 = Math.max(0, Math.floor(o.cy - o.r - 1));
    const y1 = Math.min(size - 1, Math.ceil(o.cy + o.r + 1));
    const inv = 1 / o.r;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        let hits = 0;
        for (let sy = 0.25; sy < 1; sy += 0.5) {
          for (let sx = 0.25; sx < 1; sx += 0.5) {
            if (insideShape(o.shape, (x + sx - o.cx) * inv, (y + sy - o.cy) * inv)) hits++;
          }
        }
        if (hits === 0) continue;
        const a = hits / 4;
        const p = (y * size + x) * 3;
        for (let c = 0; c < 3; c++) canvas[p + c] = canvas[p + c] * (1 - a) + rgb[c] * a;
      }
    }
  }
  const out = new Uint8Array(size * size * 3);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(Math.min(1, Math.max(0, canvas[i])) * 255);
  return out;
}
