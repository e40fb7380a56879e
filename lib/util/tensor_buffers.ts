// Named f32 work buffers kept between calls (losses, the data-parallel step): a buffer is made
// again only when its shape or device changes, so a training step allocates nothing once warm.
import { Tensor } from '../tensor.js';

export class TensorBuffers implements Disposable {
  private readonly bufs = new Map<string, Tensor>();

  /** The buffer `key` with this shape on this device (contents left from the last use). */
  get(key: string, shape: readonly number[], device: string): Tensor {
    const t = this.bufs.get(key);
    if (t && t.device === device && t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i])) return t;
    t?.dispose();
    const n = Tensor.empty(shape, 'f32', device);
    this.bufs.set(key, n);
    return n;
  }

  dispose(): void {
    for (const t of this.bufs.values()) t.dispose();
    this.bufs.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
