// The safetensors format (huggingface/safetensors), read and written exactly:
//
//   [8 bytes: N, little-endian u64] [N bytes: JSON header, UTF-8] [data region]
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into
// the data region) and may hold "__metadata__": {string: string}. Tensors are row-major, little-endian,
// and tile the data region exactly: sorted by offset, each begins where the previous ended, and the
// last ends at the end of the file. The reference writer sorts tensors by dtype (widest first) and
// then by name, writes the header as compact JSON with "__metadata__" first, and pads it with spaces
// to a multiple of 8 bytes; this writer does the same, so its files are byte-identical to the Rust
// implementation's (metadata keys are sorted, where Rust's order is a hash map's).
//
// Reading validates the whole header against the file's size before touching any tensor data, so a
// torn, truncated or foreign file is refused with an error naming the file and the fault, and no read
// ever goes past what the header proves is there. Large files are read tensor by tensor through a
// file handle, never whole.
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';

import { openRegularFile } from '../util/regular_file.js';
import { writeFileAtomic, writeFully } from '../util/atomic_file.js';

/** The dtypes clipscale reads into typed arrays and writes. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64';
export const SUPPORTED_DTYPES: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16', 'F64', 'I32', 'I64'];

/**
 * Element data: F32 → Float32Array, F16/BF16 → Uint16Array (raw bits), F64 → Float64Array,
 * I32 → Int32Array, I64 → BigInt64Array.
 */
export type TensorData = Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array;

export interface TensorRecord {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

export type TensorMap = Map<string, TensorRecord>;
export type SafetensorsMetadata = Record<string, string>;

/** A tensor as the header describes it; offsets are relative to the data region. */
export interface TensorEntry {
  name: string;
  /** Any dtype the format defines (reading the data needs one of SUPPORTED_DTYPES). */
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** N, the header's byte length (padding included). */
  headerLength: number;
  /** File offset of the data region: 8 + N. */
  dataStart: number;
  fileSize: number;
  metadata: SafetensorsMetadata | null;
  /** In data-offset order. */
  tensors: TensorEntry[];
  byName: Map<string, TensorEntry>;
}

export interface ReadOptions {
  /** Convert F16, BF16 and F64 tensors to F32 (integers are returned as they are). */
  asF32?: boolean;
  /** Read only the tensors whose names pass. */
  filter?: (name: string) => boolean;
}

export interface SafetensorsContents {
  tensors: TensorMap;
  metadata: SafetensorsMetadata | null;
}

/** The reference implementation's limit on the header size. */
export const MAX_HEADER_LENGTH = 100_000_000;

/** Bits per element of every dtype the format defines, in the reference's enum order (its sort key). */
const DTYPE_BITS: ReadonlyMap<string, number> = new Map([
  ['BOOL', 8], ['F4', 4], ['F6_E2M3', 6], ['F6_E3M2', 6], ['U8', 8], ['I8', 8], ['F8_E5M2', 8], ['F8_E4M3', 8],
  ['F8_E8M0', 8], ['F8_E4M3FNUZ', 8], ['F8_E5M2FNUZ', 8], ['I16', 16], ['U16', 16], ['F16', 16], ['BF16', 16],
  ['I32', 32], ['U32', 32], ['F32', 32], ['C64', 64], ['F64', 64], ['I64', 64], ['U64', 64],
]);
const DTYPE_RANK: ReadonlyMap<string, number> = new Map([...DTYPE_BITS.keys()].map((d, i) => [d, i]));

function bytesPerElement(dtype: SafetensorsDtype): number {
  return DTYPE_BITS.get(dtype)! / 8;
}

function fail(label: string, what: string): never {
  throw new Error(`safetensors: ${label}: ${what}`);
}

function checkLittleEndianHost(label: string): void {
  if (endianness() !== 'LE') fail(label, 'this reader/writer needs a little-endian host');
}

// ---------------------------------------------------------------------------------------------
// bf16 / f16 conversions

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f32 → bf16 bits, rounding to nearest even; NaN becomes the quiet NaN 0x7FC0 (as PyTorch does). */
export function bf16BitsFromF32(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32FromBf16Bits(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0];
}

/** f32 → IEEE half bits, rounding to nearest even (overflow gives ±inf, NaN stays a quiet NaN). */
export function f16BitsFromF32(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal (or zero): value = s · 2^-24 with s = (1.mant) · 2^(e + 9), i.e. m >> (14 - e).
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    const m = mant | 0x800000;
    const shift = 14 - e;
    let s = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (s & 1) === 1)) s++;
    return sign | s;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry may reach the exponent: correct
  return sign | h;
}

export function f32FromF16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Converts a floating-point record's data to a Float32Array (F32 data is returned as is). */
export function toFloat32(record: TensorRecord): Float32Array {
  const { dtype, data } = record;
  if (dtype === 'F32') return data as Float32Array;
  const out = new Float32Array(data.length);
  if (dtype === 'BF16') {
    // bf16 bits are the high half of the f32 bits.
    const bits = new Uint32Array(out.buffer);
    const src = data as Uint16Array;
    for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  } else if (dtype === 'F16') {
    const src = data as Uint16Array;
    for (let i = 0; i < src.length; i++) out[i] = f32FromF16Bits(src[i]);
  } else if (dtype === 'F64') {
    out.set(data as Float64Array);
  } else {
    throw new Error(`safetensors: toFloat32: ${dtype} is not a floating-point dtype`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Header parsing and validation

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Reads the 8-byte little-endian header length (refusing values no valid file has). */
export function decodeHeaderLength(prefix: Uint8Array, fileSize: number, label: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    fail(label, `file is ${fileSize} bytes, shorter than the 8-byte header length (empty or truncated file)`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (hi !== 0 || n > MAX_HEADER_LENGTH) {
    fail(label, `header length ${hi !== 0 ? `${hi}·2^32 + ${lo}` : n} exceeds the format's limit of ${MAX_HEADER_LENGTH} bytes (not a safetensors file?)`);
  }
  if (8 + n > fileSize) {
    fail(label, `header length ${n} runs past the end of the file (${fileSize} bytes; truncated or not a safetensors file)`);
  }
  return n;
}

/**
 * Parses and validates the header bytes (the N bytes after the length) of a file of `fileSize`
 * bytes. Every check a reader needs before touching data happens here.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, label: string): SafetensorsHeader {
  const headerLength = headerBytes.byteLength;
  const dataStart = 8 + headerLength;
  if (dataStart > fileSize) fail(label, `header length ${headerLength} runs past the end of the file (${fileSize} bytes)`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    fail(label, 'header is not valid UTF-8 (not a safetensors file?)');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail(label, `header is not valid JSON (${(err as Error).message}; not a safetensors file?)`);
  }
  if (!isPlainObject(json)) fail(label, 'header is not a JSON object');

  let metadata: SafetensorsMetadata | null = null;
  const tensors: TensorEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(value)) fail(label, '__metadata__ is not an object of strings');
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') fail(label, `__metadata__ value for '${k}' is ${typeof v}, not a string`);
      }
      metadata = { ...(value as SafetensorsMetadata) };
      continue;
    }
    if (!isPlainObject(value)) fail(label, `entry for tensor '${name}' is not an object`);
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string') fail(label, `tensor '${name}' has no dtype string`);
    const bits = DTYPE_BITS.get(dtype);
    if (bits === undefined) fail(label, `tensor '${name}' has unknown dtype '${dtype}'`);
    if (!Array.isArray(shape) || !shape.every(isIndex)) {
      fail(label, `tensor '${name}' has an invalid shape ${JSON.stringify(shape)} (expected non-negative integers)`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
      fail(label, `tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)} (expected [begin, end])`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(label, `tensor '${name}' has data_offsets [${begin}, ${end}] with end before begin`);
    let numel = 1;
    for (const d of shape as number[]) {
      numel *= d;
      if (numel > Number.MAX_SAFE_INTEGER / 8) fail(label, `tensor '${name}' has a shape too large to address: ${JSON.stringify(shape)}`);
    }
    const nbits = numel * bits;
    if (nbits % 8 !== 0) fail(label, `tensor '${name}' (${dtype}${JSON.stringify(shape)}) does not fill whole bytes`);
    if (end - begin !== nbits / 8) {
      fail(label, `tensor '${name}' is ${dtype}${JSON.stringify(shape)} = ${nbits / 8} bytes, but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    tensors.push({ name, dtype, shape: [...(shape as number[])], begin, end });
  }

  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataLength = fileSize - dataStart;
  let cursor = 0;
  let previous = '';
  for (const t of tensors) {
    if (t.begin < cursor) fail(label, `tensor '${t.name}' [${t.begin}, ${t.end}] overlaps tensor '${previous}' (which ends at ${cursor})`);
    if (t.begin > cursor) fail(label, `gap in the data region: bytes [${cursor}, ${t.begin}) belong to no tensor (before '${t.name}')`);
    if (t.end > dataLength) {
      fail(label, `tensor '${t.name}' [${t.begin}, ${t.end}] runs past the end of the data region (${dataLength} bytes; truncated file)`);
    }
    cursor = t.end;
    previous = t.name;
  }
  if (cursor !== dataLength) {
    fail(label, `the tensors cover ${cursor} bytes but the data region holds ${dataLength} (${dataLength - cursor} unexplained trailing bytes)`);
  }
  return { headerLength, dataStart, fileSize, metadata, tensors, byName: new Map(tensors.map((t) => [t.name, t])) };
}

// ---------------------------------------------------------------------------------------------
// Decoding tensor bytes

function recordFromBytes(entry: TensorEntry, bytes: Uint8Array, label: string, asF32: boolean): TensorRecord {
  if (!(SUPPORTED_DTYPES as readonly string[]).includes(entry.dtype)) {
    fail(label, `tensor '${entry.name}' has dtype ${entry.dtype}, which clipscale does not read (supported: ${SUPPORTED_DTYPES.join(', ')})`);
  }
  const dtype = entry.dtype as SafetensorsDtype;
  // Typed arrays need aligned memory: copy unless `bytes` already starts on an aligned offset of its own buffer.
  const size = bytesPerElement(dtype);
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const n = aligned.byteLength / size;
  const buf = aligned.buffer;
  const off = aligned.byteOffset;
  let data: TensorData;
  switch (dtype) {
    case 'F32': data = new Float32Array(buf, off, n); break;
    case 'F16':
    case 'BF16': data = new Uint16Array(buf, off, n); break;
    case 'F64': data = new Float64Array(buf, off, n); break;
    case 'I32': data = new Int32Array(buf, off, n); break;
    case 'I64': data = new BigInt64Array(buf, off, n); break;
  }
  const record: TensorRecord = { dtype, shape: [...entry.shape], data };
  if (asF32 && (dtype === 'F16' || dtype === 'BF16' || dtype === 'F64')) {
    return { dtype: 'F32', shape: record.shape, data: toFloat32(record) };
  }
  return record;
}

/** Parses a whole safetensors file held in memory (small files, tests). */
export function parseSafetensors(bytes: Uint8Array, options: ReadOptions & { label?: string } = {}): SafetensorsContents {
  const label = options.label ?? '<buffer>';
  checkLittleEndianHost(label);
  const n = decodeHeaderLength(bytes, bytes.byteLength, label);
  const header = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.byteLength, label);
  const tensors: TensorMap = new Map();
  for (const t of header.tensors) {
    if (options.filter && !options.filter(t.name)) continue;
    const view = bytes.subarray(header.dataStart + t.begin, header.dataStart + t.end);
    // Copy so the result never aliases the caller's buffer.
    tensors.set(t.name, recordFromBytes(t, view.slice(), label, options.asF32 ?? false));
  }
  return { tensors, metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------------
// Streaming reader

async function readFully(fh: FileHandle, into: Uint8Array, position: number, label: string): Promise<void> {
  const CHUNK = 1 << 30;
  let done = 0;
  while (done < into.byteLength) {
    const length = Math.min(CHUNK, into.byteLength - done);
    const { bytesRead } = await fh.read(into, done, length, position + done);
    if (bytesRead === 0) fail(label, `file ended at byte ${position + done} while reading (was it truncated after opening?)`);
    done += bytesRead;
  }
}

/**
 * A safetensors file opened for reading tensor by tensor. The header is validated on open; each
 * `read` fetches one tensor's bytes with positioned reads into fresh aligned memory.
 */
export class SafetensorsReader {
  private closed = false;

  private constructor(
    readonly path: string,
    readonly header: SafetensorsHeader,
    private readonly fh: FileHandle,
  ) {}

  static async open(path: string): Promise<SafetensorsReader> {
    checkLittleEndianHost(path);
    const { fh, size } = await openRegularFile(path, { what: 'safetensors', maxBytes: Number.MAX_SAFE_INTEGER });
    try {
      const prefix = new Uint8Array(Math.min(8, size));
      await readFully(fh, prefix, 0, path);
      const n = decodeHeaderLength(prefix, size, path);
      const headerBytes = new Uint8Array(n);
      await readFully(fh, headerBytes, 8, path);
      const header = parseSafetensorsHeader(headerBytes, size, path);
      return new SafetensorsReader(path, header, fh);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  get metadata(): SafetensorsMetadata | null {
    return this.header.metadata;
  }

  /** Tensor names in data-offset order. */
  names(): string[] {
    return this.header.tensors.map((t) => t.name);
  }

  has(name: string): boolean {
    return this.header.byName.has(name);
  }

  entry(name: string): TensorEntry {
    const e = this.header.byName.get(name);
    if (!e) fail(this.path, `no tensor named '${name}'`);
    return e;
  }

  async read(name: string, options: { asF32?: boolean } = {}): Promise<TensorRecord> {
    if (this.closed) fail(this.path, `read('${name}') after close()`);
    const e = this.entry(name);
    const bytes = new Uint8Array(e.end - e.begin);
    await readFully(this.fh, bytes, this.header.dataStart + e.begin, this.path);
    return recordFromBytes(e, bytes, this.path, options.asF32 ?? false);
  }

  /**
   * Reads a tensor straight into memory the caller owns (e.g. a native tensor's view), with no
   * intermediate copy when the types match. A Float32Array target also takes F16, BF16 and F64
   * tensors, converted.
   */
  async readInto(name: string, target: TensorData): Promise<void> {
    if (this.closed) fail(this.path, `readInto('${name}') after close()`);
    const e = this.entry(name);
    const numel = e.shape.reduce((a, b) => a * b, 1);
    if (target.length !== numel) {
      fail(this.path, `tensor '${name}' has ${numel} elements (${e.dtype}${JSON.stringify(e.shape)}) but the target holds ${target.length}`);
    }
    const direct: Record<string, new (...args: never[]) => TensorData> = {
      F32: Float32Array, F16: Uint16Array, BF16: Uint16Array, F64: Float64Array, I32: Int32Array, I64: BigInt64Array,
    };
    if (direct[e.dtype] !== undefined && target instanceof direct[e.dtype]) {
      await readFully(this.fh, new Uint8Array(target.buffer, target.byteOffset, target.byteLength), this.header.dataStart + e.begin, this.path);
      return;
    }
    if (target instanceof Float32Array && (e.dtype === 'F16' || e.dtype === 'BF16' || e.dtype === 'F64')) {
      target.set((await this.read(name, { asF32: true })).data as Float32Array);
      return;
    }
    fail(this.path, `tensor '${name}' is ${e.dtype} and cannot be read into a ${target.constructor.name}`);
  }

  async readAll(options: ReadOptions = {}): Promise<TensorMap> {
    const out: TensorMap = new Map();
    for (const t of this.header.tensors) {
      if (options.filter && !options.filter(t.name)) continue;
      out.set(t.name, await this.read(t.name, options));
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Validates and returns a file's header without reading tensor data. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const reader = await SafetensorsReader.open(path);
  await reader.close();
  return reader.header;
}

/** Reads a file's tensors (all, or those `filter` passes) and metadata. */
export async function readSafetensors(path: string, options: ReadOptions = {}): Promise<SafetensorsContents> {
  const reader = await SafetensorsReader.open(path);
  try {
    return { tensors: await reader.readAll(options), metadata: reader.metadata };
  } finally {
    await reader.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

export type TensorsInput = TensorMap | Record<string, TensorRecord>;

interface PreparedTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  byteLength: number;
  /** Little-endian bytes; conversions (f32 → bf16/f16/f64) run only when the tensor is written. */
  encode: () => Uint8Array;
}

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function convertBits(data: Float32Array, convert: (x: number) => number): Uint8Array {
  const bits = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) bits[i] = convert(data[i]);
  return bytesOf(bits);
}

/** Checks one record (all of it, before anything is written) and says how to produce its bytes. */
function prepareTensor(name: string, record: TensorRecord, label: string): PreparedTensor {
  if (name === '__metadata__') fail(label, "'__metadata__' is reserved and cannot name a tensor");
  if (record === null || typeof record !== 'object') fail(label, `tensor '${name}' is not a {dtype, shape, data} record`);
  const { dtype, shape, data } = record;
  if (!(SUPPORTED_DTYPES as readonly string[]).includes(dtype)) {
    fail(label, `tensor '${name}' has dtype ${String(dtype)}; writable dtypes are ${SUPPORTED_DTYPES.join(', ')}`);
  }
  if (!Array.isArray(shape) || !shape.every(isIndex)) fail(label, `tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
  const numel = shape.reduce((a, b) => a * b, 1);
  if (!ArrayBuffer.isView(data) || (data as { length?: number }).length !== numel) {
    const got = ArrayBuffer.isView(data) ? `${data.constructor.name} of length ${(data as TensorData).length}` : typeof data;
    fail(label, `tensor '${name}' has shape ${JSON.stringify(shape)} (${numel} elements) but its data is ${got}`);
  }
  const mismatch = (expected: string): never =>
    fail(label, `tensor '${name}' is ${dtype} but its data is a ${data.constructor.name} (expected ${expected})`);
  let encode: () => Uint8Array;
  switch (dtype) {
    case 'F32':
      if (!(data instanceof Float32Array)) mismatch('Float32Array');
      encode = () => bytesOf(data);
      break;
    case 'F64':
      if (data instanceof Float64Array) encode = () => bytesOf(data);
      else if (data instanceof Float32Array) encode = () => bytesOf(Float64Array.from(data));
      else mismatch('Float64Array or Float32Array');
      break;
    case 'BF16':
    case 'F16':
      if (data instanceof Uint16Array) encode = () => bytesOf(data);
      else if (data instanceof Float32Array) encode = () => convertBits(data, dtype === 'BF16' ? bf16BitsFromF32 : f16BitsFromF32);
      else mismatch('Uint16Array of raw bits, or Float32Array to convert');
      break;
    case 'I32':
      if (!(data instanceof Int32Array)) mismatch('Int32Array');
      encode = () => bytesOf(data);
      break;
    case 'I64':
      if (!(data instanceof BigInt64Array)) mismatch('BigInt64Array');
      encode = () => bytesOf(data);
      break;
  }
  return { name, dtype, shape: [...shape], byteLength: numel * bytesPerElement(dtype), encode: encode! };
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Orders tensors as the reference writer does (dtype rank descending, then name by bytes) and builds
 * the padded header. Returns the header bytes (without the 8-byte length) and the ordered tensors.
 */
function prepareFile(tensors: TensorsInput, metadata: SafetensorsMetadata | null | undefined, label: string) {
  checkLittleEndianHost(label);
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const prepared = entries.map(([name, record]) => prepareTensor(name, record, label));
  prepared.sort((a, b) => DTYPE_RANK.get(b.dtype)! - DTYPE_RANK.get(a.dtype)! || compareUtf8(a.name, b.name));
  for (let i = 1; i < prepared.length; i++) {
    if (prepared[i].name === prepared[i - 1].name) fail(label, `tensor '${prepared[i].name}' is given twice`);
  }

  // Build the JSON by hand: JS objects reorder integer-like keys, and the order here must be exact.
  const parts: string[] = [];
  if (metadata) {
    if (!isPlainObject(metadata)) fail(label, 'metadata must be an object of strings');
    const keys = Object.keys(metadata).sort(compareUtf8);
    const fields = keys.map((k) => {
      const v = metadata[k];
      if (typeof v !== 'string') fail(label, `metadata value for '${k}' is ${typeof v}, not a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${fields.join(',')}}`);
  }
  let offset = 0;
  for (const t of prepared) {
    const end = offset + t.byteLength;
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded > MAX_HEADER_LENGTH) fail(label, `header would be ${padded} bytes, over the format's limit of ${MAX_HEADER_LENGTH}`);
  const header = new Uint8Array(padded).fill(0x20); // spaces, as the reference pads
  header.set(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded), true);
  return { prefix, header, tensors: prepared, dataLength: offset };
}

/** The complete file as bytes, in memory (small files, tests). */
export function serializeSafetensors(tensors: TensorsInput, metadata?: SafetensorsMetadata | null): Uint8Array {
  const { prefix, header, tensors: ordered, dataLength } = prepareFile(tensors, metadata, '<buffer>');
  const out = new Uint8Array(8 + header.byteLength + dataLength);
  out.set(prefix, 0);
  out.set(header, 8);
  let pos = 8 + header.byteLength;
  for (const t of ordered) {
    out.set(t.encode(), pos);
    pos += t.byteLength;
  }
  return out;
}

/**
 * Writes a safetensors file atomically (temporary file in the same directory, fsync, rename, fsync of
 * the directory), streaming each tensor's bytes to the file handle.
 */
export async function writeSafetensors(path: string, tensors: TensorsInput, metadata?: SafetensorsMetadata | null): Promise<void> {
  const { prefix, header, tensors: ordered } = prepareFile(tensors, metadata, path);
  await writeFileAtomic(path, async (fh) => {
    await writeFully(fh, prefix, 0);
    await writeFully(fh, header, 8);
    let pos = 8 + header.byteLength;
    for (const t of ordered) {
      await writeFully(fh, t.encode(), pos);
      pos += t.byteLength;
    }
  });
}
