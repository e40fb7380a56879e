// The process-wide numeric switches a run's precision sets, and their restoration: the CPU's
// bf16 rounding emulation (on in bf16), and on CUDA the backend's precision switch, which
// picks the GEMMs' operand type and how stored activations are rounded (fp32: fp32 operands
// and nothing rounded; bf16; fp16).
import { native } from '../native.js';
import type { Module } from '../nn/module.js';
import type { Precision } from './device_placement.js';
import { LossScaler, type LossScalerOptions } from './loss_scaler.js';

/** Sets the switches for `precision` (CUDA's too when `gpu`); returns what puts them back. */
export function enterPrecision(precision: Precision, gpu: boolean): () => void {
  const previousEmulation = native.bf16Emulation();
  native.setBf16Emulation(precision === 'bf16');
  const previousCuda = gpu ? native.cudaSetPrecision(precision) : null;
  return () => {
    native.setBf16Emulation(previousEmulation);
    if (previousCuda !== null) native.cudaSetPrecision(previousCuda);
  };
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
 * In a bf16 run on a GPU, bf16 copies of the model's linear weights, made from the values now
 * (after any restore) and rewritten by AdamW in the kernel that updates the fp32 masters, so the
 * GEMMs read them instead of converting each weight per call. Returns what drops them (at the
 * run's end: later writes to the values would leave them stale).
 */
export function keepBf16Copies(model: Module, precision: Precision, gpu: boolean): () => void {
  if (!gpu || precision !== 'bf16') return () => {};
  const weights = model.linearWeights();
  for (const p of weights) p.makeBf16Copy();
  return () => {
    for (const p of weights) p.dropBf16Copy();
  };
}
