// Feature matrices as evaluation sees them: row-major [rows, cols] float32, one row per
// image or caption. Checks that name what is wrong, L2 normalisation, and A·Bᵀ.
import type { NpyArray } from './npy.js';

export interface FeatureMatrix {
  /** Row-major values, rows × cols. */
  data: Float32Array;
  rows: number;
  cols: number;
}

export function featureMatrix(data: Float32Array, rows: number, cols: number, name = 'features'): FeatureMatrix {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) throw new Error(`${name}: bad shape [${rows}, ${cols}]`);
  if (data.length !== rows * cols) throw new Error(`${name}: shape [${rows}, ${cols}] needs ${rows * cols} values, got ${data.length}`);
  return { data, rows, cols };
}

/** Throws naming the first NaN or infinite value (row and column), so bad features never pass silently. */
export function assertFinite(m: FeatureMatrix, name: string): void {
  const d = m.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) {
      throw new Error(`${name}: value ${d[i]} at row ${Math.floor(i / m.cols)}, column ${i % m.cols}; features must be finite`);
    }
  }
}

/** Checks a matrix is non-empty and finite. */
export function checkFeatures(m: FeatureMatrix, name: string): void {
  if (m.rows === 0) throw new Error(`${name}: no rows`);
  if (m.cols === 0) throw new Error(`${name}: rows have no columns`);
  assertFinite(m, name);
}

/** A copy with every row scaled to unit L2 norm; a zero row is an error (it has no direction). */
export function l2Normalize(m: FeatureMatrix, name = 'features'): FeatureMatrix {
  const out = new Float32Array(m.data.length);
  const { rows, cols, data } = m;
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) ss += data[o + c] * data[o + c];
    if (!(ss > 0)) throw new Error(`${name}: row ${r} has zero norm (or is not finite) and cannot be normalised`);
    const inv = 1 / Math.sqrt(ss);
    for (let c = 0; c < cols; c++) out[o + c] = data[o + c] * inv;
  }
  return { data: out, rows, cols };
}

/**
 * A·Bᵀ for A [n, d] and B [m, d]: the [n, m] similarity matrix, accumulated in float64.
 * Each entry is one accumulator summed over k in order, exactly as rowDot computes it, so a score
 * computed either way is bit-identical (retrieval relies on that to compare scores across passes).
 */
export function similarity(a: FeatureMatrix, b: FeatureMatrix, aName = 'A', bName = 'B'): Float64Array {
  if (a.cols !== b.cols) throw new Error(`similarity: ${aName} has ${a.cols} columns but ${bName} has ${b.cols}; features must have the same dimension`);
  const n = a.rows;
  const m = b.rows;
  const d = a.cols;
  const out = new Float64Array(n * m);
  const A = a.data;
  const B = b.data;
  for (let i = 0; i < n; i++) {
    const ao = i * d;
    let j = 0;
    // Four rows of B at a time: each value of A is loaded once per four dot products.
    for (; j + 3 < m; j += 4) {
      const b0 = j * d;
      const b1 = b0 + d;
      const b2 = b1 + d;
      const b3 = b2 + d;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < d; k++) {
        const x = A[ao + k];
        s0 += x * B[b0 + k];
        s1 += x * B[b1 + k];
        s2 += x * B[b2 + k];
        s3 += x * B[b3 + k];
      }
      const o = i * m + j;
      out[o] = s0;
      out[o + 1] = s1;
      out[o + 2] = s2;
      out[o + 3] = s3;
    }
    for (; j < m; j++) out[i * m + j] = rowDot(a, i, b, j);
  }
  return out;
}

/** Row i of A · row j of B, accumulated as similarity() does. */
export function rowDot(a: FeatureMatrix, i: number, b: FeatureMatrix, j: number): number {
  const d = a.cols;
  const A = a.data;
  const B = b.data;
  const ao = i * d;
  const bo = j * d;
  let s = 0;
  for (let k = 0; k < d; k++) s += A[ao + k] * B[bo + k];
  return s;
}

/** A 2-D float array from a .npy file as float32 features. */
export function featuresFromNpy(arr: NpyArray, name: string): FeatureMatrix {
  if (arr.shape.length !== 2) throw new Error(`${name}: expected a 2-D array [rows, dim], got shape (${arr.shape.join(', ')})`);
  if (arr.dtype !== 'float32' && arr.dtype !== 'float64') throw new Error(`${name}: expected float32 or float64 features, got ${arr.dtype}`);
  const data = arr.data instanceof Float32Array ? arr.data : Float32Array.from(arr.data as Float64Array);
  return featureMatrix(data, arr.shape[0], arr.shape[1], name);
}

/** A 1-D array of whole numbers from a .npy file (int32, int64, or floats that are whole) as Int32Array. */
export function intsFromNpy(arr: NpyArray, name: string): Int32Array {
  if (arr.shape.length !== 1 && !(arr.shape.length === 2 && arr.shape[1] === 1)) {
    throw new Error(`${name}: expected a 1-D array, got shape (${arr.shape.join(', ')})`);
  }
  const out = new Int32Array(arr.data.length);
  for (let i = 0; i < arr.data.length; i++) {
    const v = arr.data[i];
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (!Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) throw new Error(`${name}: value ${v} at index ${i} is not a 32-bit integer`);
    out[i] = n;
  }
  return out;
}
