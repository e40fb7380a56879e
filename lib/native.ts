// The one typed interface of the native binding. Everything that calls native code
// goes through `native` from this module.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type DType = 'f32' | 'bf16' | 'i32' | 'i64' | 'f16';
export type DeviceName = 'cpu' | `cuda:${number}` | 'cuda';

/** The native tensor handle. Use `Tensor` from `tensor.ts` instead. */
export interface NativeTensor {
  readonly shape: number[] | null;
  readonly dtype: DType;
  readonly device: string | null;
  readonly nbytes: number;
  readonly disposed: boolean;
  view(): ArrayBuffer;
  dispose(): void;
  reshape(shape: readonly number[]): NativeTensor;
  slice(offset: number, shape: readonly number[]): NativeTensor;
}

/** native.cudaMemoryStats(): what the CUDA caching allocator holds and has asked the driver for. */
export interface CudaMemoryStats {
  /** Bytes in live blocks (tensors, scratch in use). */
  allocatedBytes: number;
  /** Bytes in freed blocks kept for reuse. */
  cachedBytes: number;
  /** The most bytes allocated at once since the device's init or the last cudaResetPeakMemory. */
  peakAllocatedBytes: number;
  /** cudaMalloc / cudaFree calls the allocator made since init. */
  driverAllocs: number;
  driverFrees: number;
  /** Allocations asked of the allocator (served from its cache or the driver) since init. */
  allocs: number;
  /** Freed blocks kept for captured CUDA graphs (their replays write them); not in cachedBytes. */
  graphReservedBytes: number;
}

/** An opaque CUDA event handle (native.cudaEventCreate). */
export type CudaEvent = { readonly __cudaEvent: unique symbol };
export type CudaStreamName = 'compute' | 'copy';
/** An opaque captured CUDA graph (native.cudaGraphEndCapture). */
export type CudaGraph = { readonly __cudaGraph: unique symbol };

type T = NativeTensor;
type OptT = NativeTensor | null;

export interface NativeBinding {
  NativeTensor: unknown;

  // ── runtime ──
  numThreads(): number;
  setNumThreads(n: number): void;
  bf16Emulation(): boolean;
  setBf16Emulation(on: boolean): void;
  buildInfo(): { compiler?: string; napiVersion: number; cpuBackend: boolean; gemmKernel?: string; cpuFeatures?: string };

  // ── tensors ──
  tensorEmpty(shape: readonly number[], dtype: DType, device: string): T;
  tensorFromBuffer(shape: readonly number[], dtype: DType, data: ArrayBufferView): T;

  // ── element-wise ──
  fill(x: T, value: number): void;
  copy(src: T, dst: T): void;
  scale(x: T, alpha: number): void;
  clamp(x: T, lo: number, hi: number): void;
  /** src into the existing dst, which may be on another device (same dtype and shape). */
  copyAcross(src: T, dst: T): void;
  axpy(alpha: number, x: T, y: T): void;
  add(a: T, b: T, out: T): void;
  convert(src: T, dst: T): void;

  // ── matmul (gemm group) ──
  /** c = alpha·op(a)·op(b) + beta·c; 2-D, or 3-D batched (b may be 2-D, shared by the batch). */
  matmul(a: T, b: T, c: T, transA: boolean, transB: boolean, alpha: number, beta: number): void;
  /** The CPU GEMM micro-kernel in use: 'avx512' | 'avx2' | 'portable'. */
  gemmKernel(): string;
  /** Switch the CPU GEMM micro-kernel ('best' picks the fastest this CPU runs); returns the one in use. */
  setGemmKernel(name: 'avx512' | 'avx2' | 'portable' | 'best'): string;
  /**
   * bf16 matrix instructions this CPU has (run-time detection), and whether the bf16 mode's matrix
   * products run on the AVX-512 BF16 kernel (speedMode) or are emulated (operands rounded around
   * the fp32 GEMM: CPUs without the instruction, or CLIPSCALE_CPU_BF16=emulate).
   */
  cpuBf16Support(): { avx512bf16: boolean; amxBf16: boolean; speedMode: boolean; note: string };
  /** The bf16 mode's products on the AVX-512 BF16 kernel (true; throws where the CPU lacks it) or emulated (false); returns speedMode. */
  setCpuBf16Native(on: boolean): boolean;
  /**
   * The bf16 GEMM (2-D f32 tensors, as matmul): c = alpha·bf16(op(a))·bf16(op(b)) + beta·c + bias, rounded to
   * bf16 where roundC. kernel 'portable' is the same arithmetic in scalar code, on any CPU.
   */
  matmulBf16(a: T, b: T, c: T, transA: boolean, transB: boolean, alpha: number, beta: number, bias: OptT, roundC: boolean, kernel: 'best' | 'avx512bf16' | 'portable'): void;

  // ── layers: linear, patch embedding, attention (layers group) ──
  linearForward(x: T, w: T, b: OptT, y: T, w16?: OptT, packed?: OptT): void;
  packLinearWeight(w: T): T;
  linearBackward(x: T, w: T, dy: T, dx: OptT, dw: OptT, db: OptT, accumulate: boolean, w16?: OptT): void;
  linearGeluForward(x: T, w: T, b: OptT, pre: T, y: T, form: 'erf' | 'tanh', w16?: OptT): void;
  linearActivationForward(x: T, w: T, b: OptT, h: T, a: T, activation: 'gelu' | 'quick_gelu', packed?: OptT): void;
  activationBackwardBias(h: T, da: T, dh: T, db: OptT, accumulate: boolean, activation: 'gelu' | 'quick_gelu'): void;
  patchEmbedForward(images: T, weight: T, out: T, packed?: OptT): void;
  patchEmbedBackward(images: T, weight: T, dout: T, dweight: OptT, dimages: OptT, accumulate: boolean): void;
  attentionForward(qkv: T, out: T, lse: OptT, heads: number, causal: boolean, rows?: OptT): void;
  attentionForwardPacked(qkv: T, out: T, lengths: T, heads: number, causal: boolean, lse?: OptT, rows?: OptT): void;
  attentionBackward(qkv: T, out: T, dout: T, lse: T, dqkv: T, heads: number, causal: boolean): void;
  attentionBackwardPacked(qkv: T, out: T, dout: T, lse: T, dqkv: T, lengths: T, heads: number, causal: boolean): void;

  // ── embeddings, layernorm, activations, pooling, normalisation, loss (pointwise group) ──
  layernormForward(x: T, gamma: T, beta: T, out: T, mean: T, rstd: T, eps: number): void;
  residualLayernormForward(x: T, residual: T, sumOut: T, gamma: T, beta: T, out: T, mean: T, rstd: T, eps: number): void;
  layernormBackward(dout: T, x: T, gamma: T, mean: T, rstd: T, dx: T, dgamma: OptT, dbeta: OptT, dadd?: OptT, accumulate?: boolean): void;
  geluForward(x: T, out: T): void;
  geluBackward(x: T, dout: T, dx: T): void;
  /** GELU's tanh form, on CUDA (the CPU's is lib/nn/gelu_tanh.ts). */
  geluTanhForward(x: T, out: T): void;
  geluTanhBackward(x: T, dout: T, dx: T): void;
  quickGeluForward(x: T, out: T): void;
  quickGeluBackward(x: T, dout: T, dx: T): void;
  embeddingForward(ids: T, table: T, out: T): void;
  embeddingBackward(ids: T, dout: T, dtable: T): void;
  posEmbedForward(x: T, pos: T, out: T): void;
  posEmbedBackward(dout: T, dpos: T): void;
  classTokenConcat(x: T, cls: T, out: T): void;
  classTokenConcatBackward(dout: T, dx: T, dcls: T): void;
  gatherRows(x: T, index: T, out: T): void;
  gatherRowsBackward(dout: T, index: T, dx: T): void;
  argmaxIds(ids: T, out: T): void;
  l2normalizeForward(x: T, out: T, norms: T): void;
  l2normalizeBackward(dout: T, out: T, norms: T, dx: T): void;
  contrastiveLoss(
    image: T, text: T, logitScale: T, dImage: OptT, dText: OptT, dLogitScale: OptT,
    lossOut: OptT, workspace: OptT, rowOffset: number, rowCount: number, lossScale: number, deferLoss?: boolean,
  ): number;

  // ── optimizer: AdamW, gradient norm, clipping (pointwise group) ──
  adamwStep(
    param: T, grad: T, m: T, v: T, paramBf16: OptT,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, gradScale: number,
    gateLoss?: OptT, gateNorm?: OptT, gateApplied?: OptT, zeroGrad?: boolean,
  ): void;
  adamwCommit(gateLoss: T, gateNorm: T, gateApplied: T): void;
  gradNorm(grads: readonly T[], normOut?: OptT): number;
  clipGradNorm(grads: readonly T[], maxNorm: number, normOut?: OptT): number;
  lossScaleApply(tensors: readonly T[], state: T, invert: boolean): void;
  lossScaleUpdate(state: T, loss: T, norm: T, growthFactor: number, backoffFactor: number, growthInterval: number, minScale: number, maxScale: number): void;

  // ── image preprocessing (CPU, synchronous) ──
  /** Pillow's resampling (resize_pil.cpp): interleaved 8-bit pixels, or one 16-bit channel. */
  resizePil<A extends Uint8Array | Uint16Array>(
    src: A, width: number, height: number, channels: number, outWidth: number, outHeight: number,
    filter: 'bicubic' | 'bilinear' | 'nearest', box: readonly [number, number, number, number] | null, premultiplyAlpha: boolean,
    window?: readonly [number, number, number, number] | null,
  ): A;

  /**
   * JPEG decoding with libjpeg-turbo (jpeg_decode.cpp) at 1/scale (DCT scaling, as Pillow's draft):
   * L (1), RGB (3) or CMYK (4, inverted as Pillow reads it) samples. Throws on corrupt data or an
   * image whose stored width·height is over maxPixels.
   */
  decodeJpeg(bytes: Uint8Array, scale: 1 | 2 | 4 | 8, maxPixels: number): { width: number; height: number; channels: number; data: Uint8Array };
  /** Whether the addon was built with libjpeg-turbo. */
  jpegSupported(): boolean;

  // ── CUDA GEMM engine (when the CUDA backend is loaded) ──
  cudaGemmBackend(): string;
  cudaGemmBackendInfo(): string;
  setCudaGemmBackend(name: 'own' | 'cublaslt' | 'auto'): string;
  /** The CUDA backend's precision: GEMM operand type and stored-activation rounding (process-wide). */
  cudaPrecision(): 'fp32' | 'bf16' | 'fp16';
  /** Operand conversion passes into 16-bit scratch and GEMMs run since the CUDA library loaded. */
  cudaGemmCounters(): { conversions: number; gemms: number };
  /** Sets it; returns the previous one. */
  cudaSetPrecision(precision: 'fp32' | 'bf16' | 'fp16'): 'fp32' | 'bf16' | 'fp16';

  // ── CUDA runtime: the caching allocator's accounting (bytes in its size classes) ──
  cudaMemoryStats(device?: string): CudaMemoryStats;
  /** The peak starts again from the bytes allocated now. */
  cudaResetPeakMemory(device?: string): void;
  /** Host waits since init: for the whole compute stream (syncs, d2h copies) and for single events. */
  cudaWaitStats(device?: string): { streamSyncs: number; eventWaits: number };
  // CUDA graphs of the compute stream (lib/train/cuda_graph_step.ts).
  cudaGraphBeginCapture(device?: string): void;
  /** The recorded graph; throws with the reason when it cannot be replayed. */
  cudaGraphEndCapture(device?: string): CudaGraph;
  cudaGraphLaunch(graph: CudaGraph): void;
  cudaGraphDestroy(graph: CudaGraph): void;
  /** Queues the schedule record (a CUDA i64 [4] tensor) a scheduled AdamW step reads. */
  adamwSchedule(schedule: T, lr: number, beta1: number, beta2: number, step: number): void;
  adamwStepScheduled(
    param: T, grad: T, m: T, v: T, paramBf16: OptT, beta1: number, beta2: number, eps: number, weightDecay: number,
    gradScale: number, gateLoss: T, gateNorm: T, gateApplied: T, schedule: T,
  ): void;
  /** Emulated device only: makes the compute stream lazy (true) or eager (false; null keeps it); returns its queued works. */
  cudaEmuComputeStream(lazy: boolean | null, device?: string): number;
  // Streams ('compute': every op; 'copy': uploads), events and page-locked host memory.
  /** An ArrayBuffer in page-locked host memory; a copy from it reads it when the copy runs. */
  cudaPinnedBuffer(bytes: number, device?: string): ArrayBuffer;
  /** An event; with `timed` it keeps its time for cudaEventElapsedMs. */
  cudaEventCreate(device?: string, timed?: boolean): CudaEvent;
  /** Milliseconds between two timed events (waits for the end one). */
  cudaEventElapsedMs(start: CudaEvent, end: CudaEvent): number;
  cudaEventRecord(event: CudaEvent, stream: CudaStreamName): void;
  /** Whether the work before the event has completed; never waits. */
  cudaEventQuery(event: CudaEvent): boolean;
  cudaEventSynchronize(event: CudaEvent): void;
  cudaStreamWaitEvent(stream: CudaStreamName, event: CudaEvent): void;
  cudaUploadAsync(dst: T, src: ArrayBufferView | ArrayBuffer, stream: CudaStreamName): void;
  /** The tensor's bytes once the event's work has completed (no stream is waited for). */
  cudaReadAfter(event: CudaEvent, tensor: T): ArrayBuffer;

  // Ops are also reachable by name (for ops.ts's lookups).
  [name: string]: unknown;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

function loadBinding(): NativeBinding {
  const require = createRequire(import.meta.url);
  const load = require('node-gyp-build') as (dir: string) => unknown;
  try {
    return load(packageRoot) as NativeBinding;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(
      `clipscale: could not load the native addon (clipscale.node) from ${packageRoot}.\n` +
        `  ${why}\n` +
        `  No prebuild matched ${process.platform}-${process.arch} (Node-API 8), and no local build was found.\n` +
        `  Build it with 'npm rebuild clipscale' (needs python3, make and a C++17 compiler).`,
    );
  }
}

export const native: NativeBinding = loadBinding();
