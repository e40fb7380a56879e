// GELU's tanh form (nn.GELU(approximate='tanh'), selected by act_kwargs in SigLIP 2 configs):
//   y = x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))
// On the host over the tensors' memory (CPU backend), in double, rounded once to f32 — and to
// bf16 under bf16 emulation, as the native GELU rounds its stored output. On CUDA a kernel
// (native geluTanhForward/Backward) in f32, rounded to the run's precision.
import { native } from '../native.js';
import type { Tensor } from '../tensor.js';
import { bf16BitsFromF32, f32FromBf16Bits } from '../train/safetensors.js';

const K = Math.sqrt(2 / Math.PI);
const C = 0.044715;

export function geluTanhForward(x: Tensor, out: Tensor): void {
  if (x.device !== 'cpu' || out.device !== 'cpu') {
    native.geluTanhForward(x.handle, out.handle);
    return;
  }
  const xs = x.view() as Float32Array;
  const ys = out.view() as Float32Array;
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i];
    ys[i] = 0.5 * v * (1 + Math.tanh(K * (v + C * v * v * v)));
  }
  if (native.bf16Emulation()) for (let i = 0; i < ys.length; i++) ys[i] = f32FromBf16Bits(bf16BitsFromF32(ys[i]));
}

/** dx = dout · GELU_tanh'(x); dx may be dout. */
export function geluTanhBackward(x: Tensor, dout: Tensor, dx: Tensor): void {
  if (x.device !== 'cpu' || dout.device !== 'cpu' || dx.device !== 'cpu') {
    native.geluTanhBackward(x.handle, dout.handle, dx.handle);
    return;
  }
  const xs = x.view() as Float32Array;
  const ds = dout.view() as Float32Array;
  const dxs = dx.view() as Float32Array;
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i];
    const t = Math.tanh(K * (v + C * v * v * v));
    const d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * K * (1 + 3 * C * v * v);
    dxs[i] = ds[i] * d;
  }
}
