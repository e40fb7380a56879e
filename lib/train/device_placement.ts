// Where a training run lives: the device string checked once, the precision a device
// offers, and the batch tensors a step reads (on the GPU, refilled by uploads from host
// staging tensors made once, so a step allocates nothing).
import { Tensor } from '../tensor.js';
import type { HostBatch } from './sources.js';
import type { Batch } from './step.js';

export type Precision = 'fp32' | 'bf16' | 'fp16';

/** 'cpu', 'cuda' or 'cuda:N' → whether it is a GPU; anything else is an error that says what is accepted. */
export function isGpuDevice(device: string): boolean {
  if (device === 'cpu') return false;
  if (device === 'cuda' || /^cuda:\d+$/.test(device)) return true;
  throw new Error(`Trainer: device must be 'cpu', 'cuda' or 'cuda:N', got '${device}'`);
}

/**
 * The precision a run uses on a device, or an error saying why not. fp32 master weights and
 * optimizer state in every mode. The CPU computes in fp32 and can round at the GPU's points
 * (bf16, emulated); it has no fp16 emulation. CUDA: fp32 (fp32 GEMM operands, nothing
 * rounded), bf16 (the default there: bf16 GEMM operands and stored activations, fp32
 * accumulation) and fp16 (the same in fp16; dynamic loss scaling is on by default with it).
 */
export function resolvePrecision(requested: Precision | undefined, gpu: boolean): Precision {
  const precision = requested ?? (gpu ? 'bf16' : 'fp32');
  if (!['fp32', 'bf16', 'fp16'].includes(precision)) throw new Error(`Trainer: precision must be fp32, bf16 or fp16, got '${precision}'`);
  if (precision === 'fp16' && !gpu) {
    throw new Error(
      "Trainer: precision 'fp16' is not available on the CPU: it computes in fp32 and emulates bf16 only (no fp16 rounding " +
        "emulation); use 'fp32' or 'bf16' there, or train fp16 on 'cuda'",
    );
  }
  return precision;
}

/**
 * The step's input tensors on the run's device, refilled from each host batch. On a GPU there
 * are two sets, used in turn (double buffering): step N + 1's batch is uploaded into the set
 * step N is not reading. Here uploads are queued on the device's compute stream from ordinary
 * (pageable) host staging; the Trainer's GPU runs use PinnedDeviceBatches instead
 * (pinned_batches.ts: pinned staging, uploads on a copy stream while the previous step
 * computes). This class stays the CPU's, and the reference the pinned path is tested against.
 */
export class DeviceBatches implements Disposable {
  private sets: { device: Batch[]; staging: Batch[] }[] = [];
  private turn = 0;

  constructor(
    readonly deviceName: string,
    readonly imageSize: number,
    readonly contextLength: number,
  ) {}

  /** The host batch split into `parts` equal micro-batches, in tensors on the device. */
  fill(host: HostBatch, parts: number): Batch[] {
    const per = host.n / parts;
    const px = 3 * this.imageSize * this.imageSize;
    const ctx = this.contextLength;
    const gpu = this.deviceName !== 'cpu';
    const first = this.sets[0]?.device;
    if (!first || first.length !== parts || first[0].images.shape[0] !== per) {
      this.dispose();
      const make = (dev: string): Batch => ({
        images: Tensor.empty([per, 3, this.imageSize, this.imageSize], 'f32', dev),
        ids: Tensor.empty([per, ctx], 'i32', dev),
      });
      const set = () => {
        const device = Array.from({ length: parts }, () => make(this.deviceName));
        return { device, staging: gpu ? Array.from({ length: parts }, () => make('cpu')) : device };
      };
      this.sets = gpu ? [set(), set()] : [set()];
      this.turn = 0;
    }
    const { device, staging } = this.sets[this.turn];
    this.turn = (this.turn + 1) % this.sets.length;
    staging.forEach((b, j) => {
      (b.images.view() as Float32Array).set(host.images.subarray(j * per * px, (j + 1) * per * px));
      (b.ids.view() as Int32Array).set(host.tokens.subarray(j * per * ctx, (j + 1) * per * ctx));
    });
    // Uploads are queued on the device's stream, ordered before the step's kernels.
    if (gpu) {
      device.forEach((b, j) => {
        b.images.copyFrom(staging[j].images);
        b.ids.copyFrom(staging[j].ids);
      });
    }
    return device;
  }

  dispose(): void {
    const all = new Set(this.sets.flatMap((s) => [...s.device, ...s.staging]));
    for (const b of all) {
      b.images.dispose();
      b.ids.dispose();
    }
    this.sets = [];
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
