// The building blocks of models: named parameters with their gradients, and
// modules that keep their activation buffers between steps (one set per input
// shape), so a training step allocates nothing once the shapes are known.
import { Tensor } from '../tensor.js';
import * as ops from '../ops.js';

export class Parameter {
  /** OpenCLIP state-dict name, e.g. `visual.transformer.resblocks.0.attn.in_proj_weight`. */
  readonly name: string;
  // Replaced only by moveTo (a model moved to a GPU); otherwise fixed for the parameter's life.
  private _data: Tensor;
  private _grad: Tensor;

  constructor(name: string, shape: readonly number[]) {
    this.name = name;
    this._data = Tensor.zeros(shape);
    this._grad = Tensor.zeros(shape);
  }

  get data(): Tensor {
    return this._data;
  }

  /** Gradients accumulate into this until `zeroGrad()`. */
  get grad(): Tensor {
    return this._grad;
  }

  /** 'cpu' or 'cuda:N'. */
  get device(): string {
    return this._data.device;
  }

  /** Moves the values to `device` (a copy there; the old memory is freed) and gives a zero gradient there. */
  moveTo(device: string): void {
    if (device === this.device) return;
    const data = this._data.to(device);
    const grad = Tensor.zeros(this.shape, 'f32', data.device);
    this._data.dispose();
    this._grad.dispose();
    this._data = data;
    this._grad = grad;
  }

  /** A copy of the values on the host, from any device. */
  hostValues(): Float32Array {
    return this._data.hostFloat32();
  }

  /** Sets the values from the host, on any device. */
  setValues(values: ArrayLike<number>): void {
    if (values.length !== this.numel) throw new Error(`${this.name}: ${values.length} values given, the parameter holds ${this.numel}`);
    if (this.device === 'cpu') {
      this.values().set(values);
      return;
    }
    const host = Tensor.from(values instanceof Float32Array ? values : Float32Array.from(values), this.shape);
    try {
      this._data.copyFrom(host);
    } finally {
      host.dispose();
    }
  }

  get shape(): number[] {
    return this.data.shape;
  }

  get numel(): number {
    return this.data.numel;
  }

  /** The values as a Float32Array view (zero-copy); CPU parameters only (see hostValues / setValues). */
  values(): Float32Array {
    if (this.device !== 'cpu') throw new Error(`${this.name}: the values live on ${this.device}; use hostValues() / setValues()`);
    return this.data.view() as Float32Array;
  }

  dispose(): void {
    this._data.dispose();
    this._grad.dispose();
  }
}

export abstract class Module implements Disposable {
  private buffers = new Map<string, Tensor>();
  /** Where this module's parameters and activation buffers live ('cpu' or 'cuda:N'); see `to`. */
  private _device = 'cpu';

  get device(): string {
    return this._device;
  }

  /**
   * Moves every parameter (with a zeroed gradient) to `device` and makes activation buffers
   * there from now on, in this module and its children. Optimizer state made before is not moved.
   */
  to(device: string): this {
    for (const p of this.parameters()) p.moveTo(device);
    const placed = this.parameters()[0]?.device ?? device;
    const setDevice = (m: Module): void => {
      m.releaseBuffers();
      m._device = placed;
      for (const c of m.children()) setDevice(c);
    };
    setDevice(this);
    return this;
  }

  /** Every parameter of this module and its children, in a fixed order. */
  abstract parameters(): Parameter[];

  /**
   * A buffer kept between calls. It is made on first use and again only when the
   * shape asked for changes (a new batch size); its contents are not cleared.
   */
  protected buffer(key: string, shape: readonly number[], dtype: 'f32' | 'i32' = 'f32'): Tensor {
    const have = this.buffers.get(key);
    if (have && have.dtype === dtype && sameShape(have.shape, shape)) return have;
    have?.dispose();
    const t = Tensor.empty(shape, dtype, this._device);
    this.buffers.set(key, t);
    return t;
  }

  /** Drops activation buffers (they are made again on the next forward). */
  releaseBuffers(): void {
    for (const t of this.buffers.values()) if (!t.disposed) t.dispose();
    this.buffers.clear();
    for (const c of this.children()) c.releaseBuffers();
  }

  protected children(): Module[] {
    return [];
  }

  /**
   * Makes this module and its children (recursively) use `other`'s buffers, so two
   * modules of the same structure share one set of activations. Used by activation
   * recomputation: blocks share their internals and recompute them before backward.
   */
  shareBuffersWith(other: Module): void {
    const mine = this.children();
    const theirs = other.children();
    if (mine.length !== theirs.length) throw new Error('shareBuffersWith: modules differ in structure');
    for (const t of this.buffers.values()) t.dispose();
    this.buffers = other.buffers;
    mine.forEach((c, i) => c.shareBuffersWith(theirs[i]));
  }

  /** Bytes held in activation buffers by this module and its children (shared ones counted once). */
  bufferBytes(seen = new Set<Map<string, Tensor>>()): number {
    let n = 0;
    if (!seen.has(this.buffers)) {
      seen.add(this.buffers);
      for (const t of this.buffers.values()) if (!t.disposed) n += t.nbytes;
    }
    for (const c of this.children()) n += c.bufferBytes(seen);
    return n;
  }

  zeroGrad(): void {
    for (const p of this.parameters()) ops.fill(p.grad, 0);
  }

  dispose(): void {
    this.releaseBuffers();
    for (const p of this.parameters()) p.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
