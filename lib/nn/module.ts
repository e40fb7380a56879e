// The building blocks of models: named parameters with their gradients, and
// modules that keep their activation buffers between steps (one set per input
// shape), so a training step allocates nothing once the shapes are known.
import { numelOf, Tensor } from '../tensor.js';
import { native } from '../native.js';
import * as ops from '../ops.js';

export class Parameter {
  /** OpenCLIP state-dict name, e.g. `visual.transformer.resblocks.0.attn.in_proj_weight`. */
  readonly name: string;
  // Replaced only by moveTo (a model moved to a GPU); otherwise fixed for the parameter's life.
  private _data: Tensor;
  // Made on first use: a model that only encodes (embed, evaluation) never holds gradients.
  private _grad: Tensor | null = null;
  // The 16-bit copy a bf16 / fp16 run on a GPU keeps (see makeHalfCopy).
  private _half: Tensor | null = null;
  // The values packed for the CPU GEMM while an inference scope lasts (see packedForInference),
  // and the kernel they were packed for.
  private _packed: Tensor | null = null;
  private _packedKernel = '';
  private _packAsked = 0;

  constructor(name: string, shape: readonly number[]) {
    this.name = name;
    this._data = Tensor.zeros(shape);
  }

  get data(): Tensor {
    return this._data;
  }

  /** Gradients accumulate into this until `zeroGrad()`. Zeros, on the parameter's device, when first asked for. */
  get grad(): Tensor {
    this._grad ??= Tensor.zeros(this._data.shape, 'f32', this._data.device);
    return this._grad;
  }

  /**
   * The values in 16 bits (bf16 or f16) on the parameter's device, or null: the copy the GEMMs of
   * a bf16 / fp16 run read instead of converting the f32 values per call. The optimizer rewrites
   * it with each update (AdamW's paramBf16, in the same kernel); setValues and moveTo drop it (it
   * would be stale).
   */
  get halfCopy(): Tensor | null {
    return this._half;
  }

  /** Makes (or refreshes) the 16-bit copy from the current values. */
  makeHalfCopy(dtype: 'bf16' | 'f16'): Tensor {
    if (this._half && this._half.dtype !== dtype) this.dropHalfCopy();
    this._half ??= Tensor.empty(this._data.shape, dtype, this._data.device);
    ops.convert(this._data, this._half);
    return this._half;
  }

  dropHalfCopy(): void {
    this._half?.dispose();
    this._half = null;
  }

  /**
   * A linear layer's (or the patch embedding's) weight packed for the CPU GEMM
   * (ops.packLinearWeight), or null: inference forwards (Module.inference) read it instead of
   * packing the weight in every GEMM. It is made when asked for the second time (a scope that
   * runs one forward would only pay for packing, allocation included, without reading it again)
   * and kept until dropPacked, which the scope calls when it ends. It copies the values when
   * packed: setValues, moveTo and rebind drop it, and a kernel switch packs again.
   */
  packedForInference(): Tensor | null {
    const kernel = native.gemmKernel();
    if (this._packed && this._packedKernel !== kernel) this.dropPacked();
    if (!this._packed) {
      if (++this._packAsked < 2) return null;
      // A convolution's weight [out, C, P, P] is packed as the matrix [out, C·P·P] it multiplies as.
      const [rows, ...rest] = this._data.shape;
      using matrix = this._data.reshape([rows, rest.reduce((a, b) => a * b, 1)]);
      this._packed = ops.packLinearWeight(matrix);
      this._packedKernel = kernel;
    }
    return this._packed;
  }

  /** The packed copy an inference scope holds now (see packedForInference), or null. */
  get packedCopy(): Tensor | null {
    return this._packed;
  }

  dropPacked(): void {
    this._packed?.dispose();
    this._packed = null;
    this._packAsked = 0;
  }

  /**
   * Keeps the gradient in `storage` from now on (an f32 tensor of the parameter's shape on its
   * device, e.g. a view into one flat buffer, so that data-parallel buckets are contiguous and
   * all-reduced in place). The values start as they are in `storage`.
   */
  useGradStorage(storage: Tensor): void {
    const same = storage.dtype === 'f32' && storage.device === this.device && storage.shape.length === this.shape.length && storage.shape.every((d, i) => d === this.shape[i]);
    if (!same) throw new Error(`${this.name}: gradient storage must be f32 [${this.shape.join(', ')}] on ${this.device}, got ${storage.toString()}`);
    this._grad?.dispose();
    this._grad = storage;
  }

  /** Whether the gradient has been made yet (it is made on first use of `grad`). */
  get hasGrad(): boolean {
    return this._grad !== null;
  }

  /** 'cpu' or 'cuda:N'. */
  get device(): string {
    return this._data.device;
  }

  /** Moves the values to `device` (a copy there; the old memory is freed) and gives a zero gradient there. */
  moveTo(device: string): void {
    if (device === this.device) return;
    this.dropHalfCopy();
    this.dropPacked();
    const data = this._data.to(device);
    this._data.dispose();
    this._grad?.dispose();
    this._data = data;
    this._grad = null; // zeros on the new device when next asked for
  }

  /** A copy of the values on the host, from any device. */
  hostValues(): Float32Array {
    return this._data.hostFloat32();
  }

  /** Sets the values from the host, on any device. */
  setValues(values: ArrayLike<number>): void {
    if (values.length !== this.numel) throw new Error(`${this.name}: ${values.length} values given, the parameter holds ${this.numel}`);
    this.dropHalfCopy();
    this.dropPacked();
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

  /**
   * Moves the values and the gradient (zeros if none yet) into `data` and `grad` (e.g. views of
   * one flat buffer, see lib/optim/flat_parameters.ts), same device and shape; the old memory is
   * freed, so a stale reference to the old tensors fails loudly rather than going unseen.
   */
  rebind(data: Tensor, grad: Tensor): void {
    if (data.device !== this.device || grad.device !== this.device || !sameShape(data.shape, this.shape) || !sameShape(grad.shape, this.shape))
      throw new Error(`${this.name}: rebind needs ${this.device} tensors of shape [${this.shape}]`);
    this.dropPacked();
    data.copyFrom(this._data);
    if (this._grad) grad.copyFrom(this._grad);
    else ops.fill(grad, 0);
    this._data.dispose();
    this._grad?.dispose();
    this._data = data;
    this._grad = grad;
  }

  dispose(): void {
    this._data.dispose();
    this._grad?.dispose();
    this.dropHalfCopy();
    this.dropPacked();
  }
}

export abstract class Module implements Disposable {
  private buffers = new Map<string, Tensor>();
  /**
   * The buffers of inference forwards (see `inference()`): a set apart from the training ones, so
   * an evaluation between training steps leaves every activation a backward needs as it was.
   * Transformer blocks share one set of internals and ping-pong their outputs between two.
   */
  private inferenceBuffers = new Map<string, Tensor>();
  private inferring = false;
  /** Whether this inference scope packs the linear layers' weights (see `inference()`). */
  private packingWeights = false;
  /** Whether this module's last forward was an inference one (its backward then refuses). */
  private lastForwardInference = false;
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
  protected buffer(key: string, shape: readonly number[], dtype: 'f32' | 'i32' | 'bf16' | 'f16' = 'f32'): Tensor {
    const map = this.inferring ? this.inferenceBuffers : this.buffers;
    const have = map.get(key);
    if (have && have.dtype === dtype && sameShape(have.shape, shape)) return have;
    // A buffer serves any smaller shape as a view of its first elements: the packed text tower asks
    // for a different number of tokens each batch, a picked last block (inference) for B rows.
    const need = numelOf(shape);
    if (have && have.dtype === dtype && have.numel >= need) return smallerView(have, shape);
    const outgrown = have && have.dtype === dtype ? have.numel : 0;
    disposeBuffer(have);
    if (!outgrown) {
      const t = Tensor.empty(shape, dtype, this._device);
      map.set(key, t);
      return t;
    }
    // Outgrown (the packed tokens of a batch with longer captions): a quarter more room than asked
    // for, so that the batches after it rarely allocate again.
    const base = Tensor.empty([Math.max(need, Math.ceil(outgrown * 1.25))], dtype, this._device);
    map.set(key, base);
    return smallerView(base, shape);
  }

  /** Drops activation buffers, training and inference ones (they are made again on the next forward). */
  releaseBuffers(): void {
    for (const t of this.buffers.values()) disposeBuffer(t);
    this.buffers.clear();
    this.releaseOwnInferenceBuffers();
    for (const c of this.children()) c.releaseBuffers();
  }

  /** Drops only the inference buffers (the training ones, and what a backward needs, stay). */
  releaseInferenceBuffers(): void {
    this.releaseOwnInferenceBuffers();
    for (const c of this.children()) c.releaseInferenceBuffers();
  }

  private releaseOwnInferenceBuffers(): void {
    for (const t of this.inferenceBuffers.values()) disposeBuffer(t);
    this.inferenceBuffers.clear();
  }

  /**
   * Inference mode for this module and its children until the handle is disposed
   * (`using _ = model.inference();`): forwards keep nothing for backward, write into the
   * inference buffer set (one set of block internals for the whole depth, block outputs in two
   * ping-pong buffers) and leave the training buffers alone; a backward after such a forward
   * throws. The results are bit-identical to the training forward's (the same ops in the same
   * order). Nested calls are fine: disposing restores the mode found.
   *
   * On the CPU the linear layers' (and the patch embedding's) weights are packed for the GEMM at
   * their second use in the scope and the packed copies kept until it ends (`packWeights: false`
   * does without): later forwards skip that packing (ViT-B-32 b8 encoding: 7% of its time), for
   * memory the size of the weights used. They are the weights as they were when packed: change weights outside an
   * inference scope (setValues, loading and the optimizer's update drop the copies).
   */
  inference(options: { packWeights?: boolean } = {}): Disposable & { dispose(): void } {
    const before = this.inferring;
    const packedBefore = this.packingWeights;
    this.setInferring(true, options.packWeights ?? true);
    let done = false;
    const dispose = (): void => {
      if (done) return;
      done = true;
      this.setInferring(before, packedBefore);
      if (!before) for (const p of this.parameters()) p.dropPacked();
    };
    return { dispose, [Symbol.dispose]: dispose };
  }

  /** In an inference scope that packs weights, on the CPU: `p` packed for the GEMM (see `inference()`); else null. */
  protected inferencePacked(p: Parameter): Tensor | null {
    return this.inferring && this.packingWeights && p.device === 'cpu' ? p.packedForInference() : null;
  }

  /**
   * The weights linear layers multiply by (x·Wᵀ, W [out, in]): the ones worth a 16-bit copy that
   * the GEMMs read directly (Parameter.makeHalfCopy). Modules with such weights add theirs.
   */
  linearWeights(): Parameter[] {
    return this.children().flatMap((c) => c.linearWeights());
  }

  /** Whether forwards run in inference mode now (see `inference()`). */
  get inInference(): boolean {
    return this.inferring;
  }

  private setInferring(on: boolean, packWeights: boolean): void {
    this.inferring = on;
    this.packingWeights = packWeights;
    for (const c of this.children()) c.setInferring(on, packWeights);
  }

  /**
   * Called by a forward: true when it must keep what its backward needs (a training forward);
   * false in inference mode, where nothing is kept and a later backward throws.
   */
  protected retainForBackward(): boolean {
    this.lastForwardInference = this.inferring;
    return !this.inferring;
  }

  /** Called by a backward first: refuses when the last forward of this module was an inference one. */
  protected assertBackwardAllowed(name: string): void {
    if (this.inferring) throw new Error(`${name}: backward in inference mode (model.inference() / noGrad): inference forwards keep no activations; leave inference mode and run a training forward first`);
    if (this.lastForwardInference) throw new Error(`${name}: backward after an inference forward (model.inference() / noGrad): it kept no activations; run a training forward before backward`);
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
    for (const t of this.buffers.values()) disposeBuffer(t);
    this.buffers = other.buffers;
    mine.forEach((c, i) => c.shareBuffersWith(theirs[i]));
  }

  /**
   * Makes this module and its children (recursively) use `other`'s inference buffers (see
   * `inference()`); the training buffers are untouched.
   */
  shareInferenceBuffersWith(other: Module): void {
    const mine = this.children();
    const theirs = other.children();
    if (mine.length !== theirs.length) throw new Error('shareInferenceBuffersWith: modules differ in structure');
    this.shareOwnInferenceBuffersWith(other);
    mine.forEach((c, i) => c.shareInferenceBuffersWith(theirs[i]));
  }

  /** Only this module's own inference buffers (not its children's) become `other`'s. */
  protected shareOwnInferenceBuffersWith(other: Module): void {
    if (this.inferenceBuffers === other.inferenceBuffers) return;
    this.releaseOwnInferenceBuffers();
    this.inferenceBuffers = other.inferenceBuffers;
  }

  /**
   * Bytes held in activation buffers by this module and its children (shared ones counted once):
   * 'training', 'inference' or 'all' (default) of them.
   */
  bufferBytes(which: 'training' | 'inference' | 'all' = 'all', seen = new Set<Map<string, Tensor>>()): number {
    let n = 0;
    const maps = which === 'training' ? [this.buffers] : which === 'inference' ? [this.inferenceBuffers] : [this.buffers, this.inferenceBuffers];
    for (const m of maps) {
      if (seen.has(m)) continue;
      seen.add(m);
      for (const t of m.values()) if (!t.disposed) n += t.nbytes;
    }
    for (const c of this.children()) n += c.bufferBytes(which, seen);
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

/** The view each inference buffer last handed out for a smaller shape (see Module.buffer). */
const smallerViews = new WeakMap<Tensor, Tensor>();

function smallerView(base: Tensor, shape: readonly number[]): Tensor {
  const have = smallerViews.get(base);
  if (have && !have.disposed && sameShape(have.shape, shape)) return have;
  have?.dispose();
  const view = base.slice(0, shape);
  smallerViews.set(base, view);
  return view;
}

function disposeBuffer(t: Tensor | undefined): void {
  if (!t) return;
  const view = smallerViews.get(t);
  if (view && !view.disposed) view.dispose();
  if (!t.disposed) t.dispose();
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * `using _ = noGrad(model);` — the model's forwards run in inference mode until the end of the
 * scope (see Module.inference).
 */
export function noGrad(module: Module): Disposable & { dispose(): void } {
  return module.inference();
}
