// Parameters, gradients and AdamW moments as views of four flat buffers (CPU), so that one
// update pass runs over each weight-decay group at once (one native call and one parallel
// pass, not one per parameter) and zeroing the gradients is one fill. Each parameter keeps its
// name, shape and values: checkpoints read them through the views, byte for byte as before.
import type { Parameter } from '../nn/module.js';
import * as ops from '../ops.js';
import { Tensor } from '../tensor.js';

export interface FlatGroup {
  /** Whether this group's parameters get weight decay. */
  decay: boolean;
  params: Tensor;
  grads: Tensor;
  m: Tensor;
  v: Tensor;
}

export class FlatParameters implements Disposable {
  /** Per parameter (in the order given): views of the moments. */
  readonly m: Tensor[];
  readonly v: Tensor[];
  /** The decayed group, then the rest (groups with no elements left out). */
  readonly groups: FlatGroup[];
  private readonly whole: Tensor[];

  /** Whether `params` can be flattened: all on the CPU, f32, none listed twice. */
  static possible(params: readonly Parameter[]): boolean {
    return params.length > 0 && new Set(params).size === params.length && params.every((p) => p.device === 'cpu' && p.data.dtype === 'f32');
  }

  /** Rebinds every parameter (values and gradient copied) to views of the new flat buffers. */
  constructor(params: readonly Parameter[], decays: readonly boolean[]) {
    if (!FlatParameters.possible(params)) throw new Error('FlatParameters: parameters must be distinct f32 CPU parameters');
    // Decayed parameters first, so each group is one contiguous range.
    const order = [...params.keys()].sort((a, b) => Number(decays[b]) - Number(decays[a]) || a - b);
    const total = params.reduce((n, p) => n + p.numel, 0);
    const [data, grad, m, v] = [Tensor.empty([total]), Tensor.empty([total]), Tensor.zeros([total]), Tensor.zeros([total])];
    this.whole = [data, grad, m, v];
    this.m = new Array<Tensor>(params.length);
    this.v = new Array<Tensor>(params.length);
    let offset = 0;
    let decayed = 0;
    for (const i of order) {
      const p = params[i];
      const shape = p.shape;
      p.rebind(data.slice(offset, shape), grad.slice(offset, shape));
      this.m[i] = m.slice(offset, shape);
      this.v[i] = v.slice(offset, shape);
      offset += p.numel;
      if (decays[i]) decayed = offset;
    }
    const group = (decay: boolean, start: number, n: number): FlatGroup => ({
      decay, params: data.slice(start, [n]), grads: grad.slice(start, [n]), m: m.slice(start, [n]), v: v.slice(start, [n]),
    });
    this.groups = [];
    if (decayed > 0) this.groups.push(group(true, 0, decayed));
    if (total > decayed) this.groups.push(group(false, decayed, total - decayed));
    this.grad = grad;
  }

  /** Every gradient in one buffer. */
  readonly grad: Tensor;

  zeroGrad(): void {
    ops.fill(this.grad, 0);
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v, ...this.groups.flatMap((g) => [g.params, g.grads, g.m, g.v]), ...this.whole]) if (!t.disposed) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
