// NumPy .npy files (format versions 1.0, 2.0 and 3.0), so features made by any model — ours or
// PyTorch's — can be evaluated here, and our results checked with numpy.
// Supported: little-endian float32, float64, int32, int64 in C order. Everything else (Fortran
// order, big-endian, other dtypes, object arrays, truncated files) is refused with a clear error.
import { writeBytesAtomicSync } from '../util/atomic_file.js';
import { readRegularFileSync } from '../util/regular_file.js';

export type NpyDtype = 'float32' | 'float64' | 'int32' | 'int64';

export type NpyData = Float32Array | Float64Array | Int32Array | BigInt64Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DESCR_TO_DTYPE: Record<string, NpyDtype> = { '<f4': 'float32', '<f8': 'float64', '<i4': 'int32', '<i8': 'int64' };
const DTYPE_TO_DESCR: Record<NpyDtype, string> = { float32: '<f4', float64: '<f8', int32: '<i4', int64: '<i8' };
const ITEM_SIZE: Record<NpyDtype, number> = { float32: 4, float64: 8, int32: 4, int64: 8 };

function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  throw new Error(`npy: cannot store a ${(data as object).constructor?.name ?? typeof data}; use Float32Array, Float64Array, Int32Array or BigInt64Array`);
}

/** Parses the header dict, e.g. `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`. */
function parseHeader(header: string, where: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header);
  if (!descr) {
    if (/['"]descr['"]\s*:\s*\[/.test(header)) throw new Error(`${where}: structured dtypes (record arrays) are not supported; save a plain numeric array`);
    throw new Error(`${where}: the header has no 'descr' entry: ${JSON.stringify(header.trim())}`);
  }
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  if (!fortran) throw new Error(`${where}: the header has no 'fortran_order' entry: ${JSON.stringify(header.trim())}`);
  const shapeMatch = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (!shapeMatch) throw new Error(`${where}: the header has no 'shape' tuple: ${JSON.stringify(header.trim())}`);
  const parts = shapeMatch[1].split(',').map((s) => s.trim()).filter((s) => s !== '');
  const shape = parts.map((p) => {
    // numpy may write `3L` (Python 2 longs) in old files.
    const n = Number(p.replace(/L$/, ''));
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${where}: bad dimension '${p}' in shape (${shapeMatch[1]})`);
    return n;
  });
  return { descr: descr[1], fortranOrder: fortran[1] === 'True', shape };
}

function describeUnsupported(descr: string): string {
  const order = descr[0];
  const kind = descr.slice(1);
  const known: Record<string, string> = { f4: 'float32', f8: 'float64', i4: 'int32', i8: 'int64', f2: 'float16', u1: 'uint8', i1: 'int8', b1: 'bool', u2: 'uint16', i2: 'int16', u4: 'uint32', u8: 'uint64', c8: 'complex64', c16: 'complex128' };
  if (order === '>' && kind in DESCR_TO_DTYPE_BY_KIND) return `big-endian ${known[kind]} ('${descr}') is not supported; convert with arr.astype('<${kind}')`;
  const name = known[kind] ?? descr;
  return `dtype '${descr}' (${name}) is not supported; use float32, float64, int32 or int64 (e.g. arr.astype(np.float32))`;
}
const DESCR_TO_DTYPE_BY_KIND: Record<string, true> = { f4: true, f8: true, i4: true, i8: true };

/** Decodes the bytes of a .npy file. `name` appears in error messages (a path, usually). */
export function decodeNpy(bytes: Uint8Array, name = '.npy data'): NpyArray {
  const where = `npy ${name}`;
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error(`${where}: not a .npy file (it does not start with \\x93NUMPY)`);
  }
  const major = bytes[6];
  const minor = bytes[7];
  let headerLen: number;
  let headerStart: number;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new Error(`${where}: truncated header (file is ${bytes.length} bytes)`);
    headerLen = dv.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new Error(`${where}: format version ${major}.${minor} is not supported (1.0, 2.0 and 3.0 are)`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) throw new Error(`${where}: truncated header (needs ${dataStart} bytes, file is ${bytes.length})`);
  // Versions 1 and 2 store the header as latin1, version 3 as utf8.
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const { descr, fortranOrder, shape } = parseHeader(header, where);
  const dtype = DESCR_TO_DTYPE[descr];
  if (!dtype) throw new Error(`${where}: ${describeUnsupported(descr)}`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (fortranOrder && shape.filter((d) => d > 1).length > 1) {
    throw new Error(`${where}: Fortran-order arrays are not supported; save np.ascontiguousarray(arr) instead`);
  }
  const need = count * ITEM_SIZE[dtype];
  const have = bytes.length - dataStart;
  if (have < need) throw new Error(`${where}: truncated data: shape (${shape.join(', ')}) of ${dtype} needs ${need} bytes, the file has ${have}`);
  if (have > need) throw new Error(`${where}: ${have - need} unexpected bytes after the data of shape (${shape.join(', ')}) ${dtype}`);
  // Copy, so the typed array is aligned whatever the header length was. (Not bytes.slice: on a
  // Node Buffer that is a view into a shared pool.)
  const raw = new ArrayBuffer(need);
  new Uint8Array(raw).set(bytes.subarray(dataStart, dataStart + need));
  const data: NpyData =
    dtype === 'float32' ? new Float32Array(raw) : dtype === 'float64' ? new Float64Array(raw) : dtype === 'int32' ? new Int32Array(raw) : new BigInt64Array(raw);
  return { dtype, shape, data };
}

/** Encodes an array as .npy bytes: version 1.0 where the header fits, 2.0 otherwise. */
export function encodeNpy(data: NpyData, shape: readonly number[]): Uint8Array {
  const dtype = dtypeOf(data);
  for (const d of shape) if (!Number.isSafeInteger(d) || d < 0) throw new Error(`npy: bad dimension ${d} in shape [${shape.join(', ')}]`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`npy: shape [${shape.join(', ')}] holds ${count} values but the array has ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${DTYPE_TO_DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // The magic, version, length field and header together are padded to a multiple of 64 bytes with a final \n.
  let major = 1;
  let prefix = 10;
  let total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) {
    major = 2;
    prefix = 12;
    total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  }
  const headerLen = total - prefix;
  const header = dict + ' '.repeat(headerLen - dict.length - 1) + '\n';
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, headerLen, true);
  else dv.setUint32(8, headerLen, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

export function readNpy(path: string): NpyArray {
  let bytes: Buffer;
  try {
    bytes = readRegularFileSync(path, { what: '.npy' });
  } catch (err) {
    throw new Error(`npy: cannot read '${path}': ${(err as Error).message}`);
  }
  return decodeNpy(bytes, `'${path}'`);
}

/** Writes atomically: a reader (or a full disk) never leaves a torn or empty .npy under the name. */
export function writeNpy(path: string, data: NpyData, shape: readonly number[]): void {
  writeBytesAtomicSync(path, encodeNpy(data, shape));
}
