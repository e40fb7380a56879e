// Tensors as users see them: typed-array in and out, explicit disposal, and
// finalizers as a safety net.
import { native, type DType, type NativeTensor } from './native.js';

export type { DType } from './native.js';
export type TypedArrayFor<D extends DType> = D extends 'f32'
  ? Float32Array
  : D extends 'bf16' | 'f16'
    ? Uint16Array
    : D extends 'i32'
      ? Int32Array
      : BigInt64Array;

function checkShape(shape: readonly number[], where: string): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${where}: shape must be an array of dimensions`);
  for (const [i, d] of shape.entries()) {
    if (!Number.isInteger(d) || d < 0) throw new TypeError(`${where}: shape[${i}] must be a non-negative integer, got ${d}`);
  }
  return [...shape];
}

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * A tensor; `D` is its dtype where the code that made it knows it (`Tensor.from(new Float32Array(…))`
 * is a `Tensor<'f32'>`, `Tensor.empty(shape, 'i32')` a `Tensor<'i32'>`), so that `view()` has the
 * matching typed array: `Array.from(t.view())` type-checks. A plain `Tensor` is any dtype.
 */
export class Tensor<D extends DType = DType> implements Disposable {
  readonly handle: NativeTensor;

  constructor(handle: NativeTensor) {
    this.handle = handle;
  }

  /** Uninitialised memory. */
  static empty<E extends DType = 'f32'>(shape: readonly number[], dtype: E = 'f32' as E, device = 'cpu'): Tensor<E> {
    return new Tensor<E>(native.tensorEmpty(checkShape(shape, 'Tensor.empty'), dtype, device));
  }

  static zeros<E extends DType = 'f32'>(shape: readonly number[], dtype: E = 'f32' as E, device = 'cpu'): Tensor<E> {
    const t = Tensor.empty(shape, dtype, device);
    native.fill(t.handle, 0);
    return t;
  }

  static full<E extends DType = 'f32'>(shape: readonly number[], value: number, dtype: E = 'f32' as E, device = 'cpu'): Tensor<E> {
    const t = Tensor.empty(shape, dtype, device);
    native.fill(t.handle, value);
    return t;
  }

  /**
   * A CPU tensor holding a copy of `data`. The dtype follows the array: Float32Array → f32,
   * Int32Array → i32, BigInt64Array → i64, Uint16Array → bf16 bits; plain arrays give f32.
   */
  static from(data: Int32Array, shape?: readonly number[]): Tensor<'i32'>;
  static from(data: BigInt64Array, shape?: readonly number[]): Tensor<'i64'>;
  static from(data: Uint16Array, shape?: readonly number[]): Tensor<'bf16'>;
  static from(data: Float32Array | ArrayLike<number>, shape?: readonly number[]): Tensor<'f32'>;
  static from<E extends DType>(data: Float32Array | Int32Array | BigInt64Array | Uint16Array | ArrayLike<number>, shape: readonly number[] | undefined, dtype: E): Tensor<E>;
  static from(data: Float32Array | Int32Array | BigInt64Array | Uint16Array | ArrayLike<number>, shape?: readonly number[], dtype?: DType): Tensor {
    let arr: Float32Array | Int32Array | BigInt64Array | Uint16Array;
    let inferred: DType;
    if (data instanceof Float32Array) [arr, inferred] = [data, 'f32'];
    else if (data instanceof Int32Array) [arr, inferred] = [data, 'i32'];
    else if (data instanceof BigInt64Array) [arr, inferred] = [data, 'i64'];
    else if (data instanceof Uint16Array) [arr, inferred] = [data, 'bf16'];
    else [arr, inferred] = [Float32Array.from(data as ArrayLike<number>), 'f32'];
    const d = dtype ?? inferred;
    if (d !== inferred) {
      // Convert through an f32 tensor so bf16 rounding is the native one.
      if (inferred !== 'f32') throw new TypeError(`Tensor.from: a ${arr.constructor.name} cannot be read as ${d}; pass a Float32Array`);
      const tmp = Tensor.from(arr as Float32Array, shape);
      const out = Tensor.empty(tmp.shape, d);
      native.convert(tmp.handle, out.handle);
      tmp.dispose();
      return out;
    }
    const s = checkShape(shape ?? [arr.length], 'Tensor.from');
    return new Tensor(native.tensorFromBuffer(s, d, arr));
  }

  private live(where: string): NativeTensor {
    if (this.handle.disposed) throw new Error(`${where}: tensor was disposed`);
    return this.handle;
  }

  get shape(): number[] {
    return this.live('Tensor.shape').shape as number[];
  }
  get dtype(): D {
    return this.handle.dtype as D;
  }
  get device(): string {
    return this.live('Tensor.device').device as string;
  }
  get numel(): number {
    return numelOf(this.shape);
  }
  get nbytes(): number {
    return this.handle.nbytes;
  }
  get disposed(): boolean {
    return this.handle.disposed;
  }

  /**
   * A zero-copy typed array over this tensor's CPU memory (bf16 shows its raw bits): Float32Array
   * for f32, Int32Array for i32, BigInt64Array for i64, Uint16Array for bf16 and f16 (raw bits).
   */
  view(): TypedArrayFor<D> {
    const buf = this.live('Tensor.view').view();
    const dtype: DType = this.dtype;
    switch (dtype) {
      case 'f32': return new Float32Array(buf) as TypedArrayFor<D>;
      case 'bf16':
      case 'f16':
        return new Uint16Array(buf) as TypedArrayFor<D>;
      case 'i32': return new Int32Array(buf) as TypedArrayFor<D>;
      case 'i64': return new BigInt64Array(buf) as TypedArrayFor<D>;
    }
  }

  /** view() of an f32 tensor as a Float32Array; throws naming the dtype otherwise. */
  viewF32(): Float32Array {
    if (this.dtype !== 'f32') throw new TypeError(`Tensor.viewF32: the tensor is ${this.dtype}, not f32`);
    return this.view() as Float32Array;
  }

  /** view() of an i32 tensor as an Int32Array; throws naming the dtype otherwise. */
  viewI32(): Int32Array {
    if (this.dtype !== 'i32') throw new TypeError(`Tensor.viewI32: the tensor is ${this.dtype}, not i32`);
    return this.view() as Int32Array;
  }

  /** Values as a fresh Float32Array (bf16 widened exactly; integers converted). */
  toFloat32Array(): Float32Array {
    if (this.dtype === 'f32') return new Float32Array(this.view() as Float32Array);
    const tmp = Tensor.empty(this.shape, 'f32');
    native.convert(this.handle, tmp.handle);
    const out = new Float32Array(tmp.view() as Float32Array);
    tmp.dispose();
    return out;
  }

  toArray(): number[] {
    return Array.from(this.toFloat32Array());
  }

  /** A tensor sharing this one's memory with another shape of the same size. */
  reshape(shape: readonly number[]): Tensor<D> {
    return new Tensor<D>(this.live('Tensor.reshape').reshape(checkShape(shape, 'Tensor.reshape')));
  }

  /** A tensor sharing numel(shape) elements of this one's memory, from element `offset` on. */
  slice(offset: number, shape: readonly number[]): Tensor<D> {
    return new Tensor<D>(this.live('Tensor.slice').slice(offset, checkShape(shape, 'Tensor.slice')));
  }

  /**
   * Rows start .. start + count along the first dimension, as a tensor sharing this one's memory
   * (on any device): write into it or read from it in place. Dispose it like any tensor.
   */
  rows(start: number, count: number): Tensor<D> {
    const rows = native.tensorRows as (t: NativeTensor, start: number, count: number) => NativeTensor;
    return new Tensor<D>(rows(this.live('Tensor.rows'), start, count));
  }

  /**
   * A copy of this tensor on `device` ('cpu', 'cuda', 'cuda:1'): host ↔ GPU copies through
   * the CUDA backend, which must be built and find a GPU (the error says why not). Always a
   * new tensor, also for the device it is already on. A copy to the CPU waits for the GPU
   * and reports errors its kernels recorded (e.g. an embedding id out of range).
   */
  to(device: string): Tensor<D> {
    const move = native.tensorTo as (t: NativeTensor, device: string) => NativeTensor;
    return new Tensor<D>(move(this.live('Tensor.to'), device));
  }

  /**
   * Copies `src` (same dtype and shape, any device) into this tensor: host → GPU uploads into
   * tensors a model already holds. Uploads are queued on the device's stream; a download waits.
   */
  copyFrom(src: Tensor): this {
    native.copyAcross(src.live('Tensor.copyFrom'), this.live('Tensor.copyFrom'));
    return this;
  }

  /** The values as a new Float32Array, from any device (a GPU tensor is downloaded; waits for the GPU). */
  hostFloat32(): Float32Array {
    if (this.device === 'cpu') return this.toFloat32Array();
    const tmp = this.to('cpu');
    try {
      return tmp.toFloat32Array();
    } finally {
      tmp.dispose();
    }
  }

  /** A copy, optionally in another dtype. */
  clone<E extends DType = D>(dtype: E = this.dtype as unknown as E): Tensor<E> {
    const out = Tensor.empty<E>(this.shape, dtype, this.device);
    if ((dtype as DType) === this.dtype) native.copy(this.handle, out.handle);
    else native.convert(this.handle, out.handle);
    return out;
  }

  /** Frees the native memory now (views already taken keep their own reference). */
  dispose(): void {
    this.handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return this.disposed ? 'Tensor(disposed)' : `Tensor(${this.dtype}[${this.shape.join(', ')}] on ${this.device})`;
  }
}
