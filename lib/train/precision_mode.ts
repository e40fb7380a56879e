// The process-wide numeric switches a run's precision sets, and their restoration: the CPU's
// bf16 rounding emulation (on in bf16), and on CUDA the backend's precision switch, which
// picks the GEMMs' operand type and how stored activations are rounded (fp32: fp32 operands
// and nothing rounded; bf16; fp16).
import { native } from '../native.js';
import type { Module } from '../nn/module.js';
import type { Precision } from './device_placement.js';
import { LossScaler, type LossScalerOptions } from './loss_scaler.js';

/**
 * Sets the switches for `precision` (CUDA's too when `gpu`) and, given the model of a bf16/fp16
 * run on a GPU, makes its linear weights' 16-bit copies (keepHalfCopies); returns what puts the
 * switches back and drops the copies. A failure part way undoes what was done.
 */
export function enterPrecision(precision: Precision, gpu: boolean, model?: Module): () => void {
  const previousEmulation = native.bf16Emulation();
  native.setBf16Emulation(precision === 'bf16');
  let previousCuda: Precision | null = null;
  const restore = () => {
    native.setBf16Emulation(previousEmulation);
    if (previousCuda !== null) native.cudaSetPrecision(previousCuda);
  };
  try {
    if (gpu) previousCuda = native.cudaSetPrecision(precision);
    const dropCopies = model ? keepHalfCopies(model, precision, gpu) : () => {};
    return () => {
      dropCopies();
      restore();
    };
  } catch (e) {
    restore();
    throw e;
  }
}

/**
 * The run's loss scaler: as asked ('dynamic' or the scaler's options; 'none' for none), and
 * by default dynamic in fp16 (OpenCLIP's amp: fp16 autocast with GradScaler), none otherwise.
 */
export function lossScalerFor(option: 'dynamic' | 'none' | LossScalerOptions | undefined, precision: Precision): LossScaler | null {
  if (option === 'none') return null;
  if (option === undefined) return precision === 'fp16' ? new LossScaler({}) : null;
  return new LossScaler(option === 'dynamic' ? {} : option);
}

/**
 * In a bf16 or fp16 run on a GPU, 16-bit copies (bf16 / f16) of the model's linear weights, made
 * from the values now (after any restore) and rewritten by AdamW in the kernel that updates the
 * fp32 masters, so the GEMMs read them instead of converting each weight per call. Returns what
 * drops them (at the run's end: later writes to the values would leave them stale).
 */
export function keepHalfCopies(model: Module, precision: Precision, gpu: boolean): () => void {
  if (!gpu || precision === 'fp32') return () => {};
  const weights = model.linearWeights();
  for (const p of weights) p.makeHalfCopy(precision === 'fp16' ? 'f16' : 'bf16');
  return () => {
    for (const p of weights) p.dropHalfCopy();
  };
}
