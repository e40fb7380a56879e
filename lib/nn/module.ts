// The building blocks of models: named parameters with their gradients, and
// modules that keep their activation buffers between steps (one set per input
// shape), so a training step allocates nothing once the shapes are known.
import { Tensor } from '../tensor.js';
import * as ops from '../ops.js';

export class Parameter {
  /** OpenCLIP state-dict name, e.g. `visual.transformer.resblocks.0.attn.in_proj_weight`. */
  readonly name: string;
  readonly data: Tensor;
  /** Gradients accumulate into this until `zeroGrad()`. */
  readonly grad: Tensor;

  constructor(name: string, shape: readonly number[]) {
    this.name = name;
    this.data = Tensor.zeros(shape);
    this.grad = Tensor.zeros(shape);
  }

  get shape(): number[] {
    return this.data.shape;
  }

  get numel(): number {
    return this.data.numel;
  }

  /** The values as a Float32Array view (zero-copy). */
  values(): Float32Array {
    return this.data.view() as Float32Array;
  }

  dispose(): void {
    this.data.dispose();
    this.grad.dispose();
  }
}

export abstract class Module implements Disposable {
  private buffers = new Map<string, Tensor>();

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
    const t = Tensor.empty(shape, dtype);
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
