// Typed op functions over the native binding. Each takes Tensors, checks nothing
// itself (native code checks and throws errors naming the op), and writes into
// the output tensors it is given, so a model can preallocate everything.
import { native } from './native.js';
import { Tensor } from './tensor.js';

type N = import('./native.js').NativeTensor;
const h = (t: Tensor): N => t.handle;
const ho = (t: Tensor | null | undefined): N | null => (t ? t.handle : null);
// Ops registered by later groups are looked up by name; a missing one is a build mismatch.
function fn<F>(name: string): F {
  const f = native[name];
  if (typeof f !== 'function') throw new Error(`clipscale: the native addon has no op '${name}'; rebuild it (npm rebuild clipscale)`);
  return f as F;
}
void ho;
void fn;

// ── element-wise ──
export function fill(x: Tensor, value: number): void {
  native.fill(h(x), value);
}
export function copy(src: Tensor, dst: Tensor): void {
  native.copy(h(src), h(dst));
}
export function scale(x: Tensor, alpha: number): void {
  native.scale(h(x), alpha);
}
/** x = min(max(x, lo), hi) in place; NaN stays NaN. */
export function clamp(x: Tensor, lo: number, hi: number): void {
  native.clamp(h(x), lo, hi);
}
/** y += alpha·x */
export function axpy(alpha: number, x: Tensor, y: Tensor): void {
  native.axpy(alpha, h(x), h(y));
}
export function add(a: Tensor, b: Tensor, out: Tensor): void {
  native.add(h(a), h(b), h(out));
}
export function convert(src: Tensor, dst: Tensor): void {
  native.convert(h(src), h(dst));
}

// ── matmul (gemm group) ──
export interface MatmulOptions {
  /** Use aᵀ: a is stored [K, M] (or [B, K, M]). */
  transA?: boolean;
  /** Use bᵀ: b is stored [N, K] (or [B, N, K]), as PyTorch stores linear weights. */
  transB?: boolean;
  /** Default 1. */
  alpha?: number;
  /** Default 0: c is overwritten and never read (NaN in c does not propagate). */
  beta?: number;
}
/**
 * c = alpha·op(a)·op(b) + beta·c for f32 tensors: 2-D [M, K]·[K, N] → [M, N], or batched
 * [B, M, K]·[B, K, N] → [B, M, N] (b may be 2-D, one matrix for the whole batch). Shapes are
 * as stored; the transposes say how to read them. With bf16 emulation on, a and b are
 * rounded to bf16 and c is rounded after the fp32-accumulated product, as on the GPU.
 */
export function matmul(a: Tensor, b: Tensor, c: Tensor, opts: MatmulOptions = {}): void {
  native.matmul(h(a), h(b), h(c), opts.transA ?? false, opts.transB ?? false, opts.alpha ?? 1, opts.beta ?? 0);
}

export interface MatmulBf16Options extends MatmulOptions {
  /** [N], added to every row of c. */
  bias?: Tensor | null;
  /** Round c to bf16 as it is stored (an activation as a bf16 GPU stores it). */
  roundC?: boolean;
  /** 'best' (default): AVX-512 BF16 where the CPU has it, else 'portable' (the same arithmetic, scalar). */
  kernel?: 'best' | 'avx512bf16' | 'portable';
}

/**
 * The CPU's bf16 GEMM, 2-D: c = alpha·bf16(op(a))·bf16(op(b)) + beta·c (+ bias), fp32 accumulation,
 * operands rounded to bf16 (nearest even) as they are read — what the bf16 mode's layers run on a
 * CPU with AVX-512 BF16 (native.cpuBf16Support().speedMode), whatever the mode is now.
 */
export function matmulBf16(a: Tensor, b: Tensor, c: Tensor, opts: MatmulBf16Options = {}): void {
  native.matmulBf16(h(a), h(b), h(c), opts.transA ?? false, opts.transB ?? false, opts.alpha ?? 1, opts.beta ?? 0,
    ho(opts.bias), opts.roundC ?? false, opts.kernel ?? 'best');
}

// ── layers: linear, patch embedding, attention (layers group) ──
// Parameter gradients (dw, db, dweight) are overwritten unless `accumulate` is set, in
// which case they are added to (gradient accumulation). Activation gradients (dx,
// dimages, dqkv) are always overwritten.

/**
 * y = x·wᵀ + b. x [..., in], w [out, in] (PyTorch layout), b [out] or null, y [..., out].
 * w16 (optional): w in the CUDA precision's 16-bit type (bf16, or f16 in fp16), kept by the optimizer;
 * a bf16/fp16 run on CUDA reads it instead of converting w.
 */
export function linearForward(x: Tensor, w: Tensor, b: Tensor | null, y: Tensor, w16?: Tensor | null, packed?: Tensor | null): void {
  native.linearForward(h(x), h(w), ho(b), h(y), ho(w16 ?? null), ho(packed ?? null));
}
/**
 * w [N, K] packed for the CPU GEMM's active kernel: linearForward / linearActivationForward read it
 * (their `packed`) instead of packing w in every call, with the same results bit for bit. A copy:
 * it does not follow later changes to w; one packed for another kernel (setGemmKernel) is refused.
 */
export function packLinearWeight(w: Tensor): Tensor {
  return new Tensor(native.packLinearWeight(h(w)));
}

/**
 * pre = x·wᵀ + b and y = GELU(pre): 'erf' (nn.GELU()) or 'tanh' (approximate='tanh', CUDA only).
 * On CUDA one GEMM with the GELU in its epilogue; the values are the linear's then the GELU's.
 */
export function linearGeluForward(x: Tensor, w: Tensor, b: Tensor | null, pre: Tensor, y: Tensor, form: 'erf' | 'tanh', w16?: Tensor | null): void {
  native.linearGeluForward(h(x), h(w), ho(b), h(pre), h(y), form, ho(w16 ?? null));
}

export interface LinearGrads {
  /** [..., in]: dy·w */
  dx?: Tensor | null;
  /** [out, in]: dyᵀ·x */
  dw?: Tensor | null;
  /** [out]: Σ over rows of dy */
  db?: Tensor | null;
  /** add into dw and db instead of overwriting them */
  accumulate?: boolean;
  /** w's 16-bit copy (as linearForward's): a bf16/fp16 run on CUDA reads it for dx instead of converting wᵀ */
  w16?: Tensor | null;
}
/**
 * A linear layer's gradients: dx = dy·w, dw (+)= dyᵀ·x, db (+)= Σ_rows dy. On the CPU (fp32), the
 * rows of dy that are all zero are skipped when they are an eighth or more of them (a text tower's
 * positions after each caption's end, a last block's rows but the pooled one): dx is zero there
 * and dw, db get nothing from them, even where x is not finite (a dense product would add
 * 0·NaN = NaN). CLIPSCALE_SKIP_ZERO_ROWS=0 multiplies every row.
 */
export function linearBackward(x: Tensor, w: Tensor, dy: Tensor, grads: LinearGrads): void {
  native.linearBackward(h(x), h(w), h(dy), ho(grads.dx), ho(grads.dw), ho(grads.db), grads.accumulate ?? false, ho(grads.w16 ?? null));
}

/**
 * A linear layer and its activation in one pass (CPU only): h = x·wᵀ + b, a = f(h), f GELU (erf
 * form) or QuickGELU applied to each block of h as the GEMM finishes it. Equal to linearForward
 * then geluForward / quickGeluForward, bit for bit.
 */
export function linearActivationForward(x: Tensor, w: Tensor, b: Tensor | null, h: Tensor, a: Tensor, activation: 'gelu' | 'quick_gelu', packed?: Tensor | null): void {
  native.linearActivationForward(x.handle, w.handle, ho(b), h.handle, a.handle, activation, ho(packed ?? null));
}
/**
 * The activation's backward and the bias gradient of the linear layer before it, in one pass
 * (CPU only): dh = da·f'(h) (dh may be da), db (+)= Σ rows dh. Equal to geluBackward /
 * quickGeluBackward then linearBackward's db, bit for bit.
 */
export function activationBackwardBias(h: Tensor, da: Tensor, dh: Tensor, db: Tensor | null, activation: 'gelu' | 'quick_gelu', accumulate = false): void {
  native.activationBackwardBias(h.handle, da.handle, dh.handle, ho(db), accumulate, activation);
}

/**
 * Patch embedding (conv with stride = kernel = P, no bias; CLIP's visual.conv1).
 * images [B, C, H, W], weight [width, C, P, P], out [B, (H/P)·(W/P), width], patches row-major.
 * `packed` (CPU): weight viewed as [width, C·P·P] and packed by packLinearWeight, read instead of
 * packing the weight in every call, with the same results bit for bit.
 */
export function patchEmbedForward(images: Tensor, weight: Tensor, out: Tensor, packed?: Tensor | null): void {
  native.patchEmbedForward(h(images), h(weight), h(out), ho(packed ?? null));
}

export interface PatchEmbedGrads {
  /** [width, C, P, P] */
  dweight?: Tensor | null;
  /** [B, C, H, W] (rarely needed: images are inputs) */
  dimages?: Tensor | null;
  /** add into dweight instead of overwriting it */
  accumulate?: boolean;
}
export function patchEmbedBackward(images: Tensor, weight: Tensor, dout: Tensor, grads: PatchEmbedGrads): void {
  native.patchEmbedBackward(h(images), h(weight), h(dout), ho(grads.dweight), ho(grads.dimages), grads.accumulate ?? false);
}

export interface AttentionOptions {
  heads: number;
  /** position i attends to j ≤ i */
  causal: boolean;
}
/**
 * Multi-head self-attention from packed QKV (OpenCLIP's in_proj layout): qkv [B, S, 3W] → out [B, S, W].
 * lse [B, heads, S] receives each row's softmax log-sum-exp for backward; pass null at inference.
 * `rows` (CPU; i32, strictly ascending indices into the B·S token rows): the only queries needed (a
 * tower's last block). In fp32 only they are computed, the same bits as when every row is; the
 * other rows of out and lse are left as they were (under bf16 emulation or
 * CLIPSCALE_SKIP_ZERO_ROWS=0 every row is computed).
 */
export function attentionForward(qkv: Tensor, out: Tensor, lse: Tensor | null, opts: AttentionOptions, rows: Tensor | null = null): void {
  native.attentionForward(h(qkv), h(out), ho(lse), opts.heads, opts.causal, ho(rows));
}
/**
 * Attention over sequences packed end to end (CPU): qkv [1, T, 3W], out [1, T, W], lengths i32 [n]
 * summing to T; each sequence attends only within itself, with the result attentionForward gives
 * it alone, bit for bit. lse (null at inference) f32 [heads·T] for attentionBackwardPacked:
 * sequence i's heads × lengths[i] values from heads·(its first token) — [B, heads, S] when every
 * sequence has S tokens.
 */
export function attentionForwardPacked(qkv: Tensor, out: Tensor, lengths: Tensor, opts: AttentionOptions, lse: Tensor | null = null, rows: Tensor | null = null): void {
  native.attentionForwardPacked(h(qkv), h(out), h(lengths), opts.heads, opts.causal, ho(lse), ho(rows));
}
/**
 * dqkv [B, S, 3W] (overwritten) from dout [B, S, W], using forward's out and lse. On the CPU (fp32),
 * where at most half of a sequence's query rows of dout (per head) are non-zero, only those rows are
 * multiplied: dQ is zero on the others, and dK, dV get nothing from them even where their queries
 * are not finite. CLIPSCALE_SKIP_ZERO_ROWS=0 multiplies every row.
 */
export function attentionBackward(qkv: Tensor, out: Tensor, dout: Tensor, lse: Tensor, dqkv: Tensor, opts: AttentionOptions): void {
  native.attentionBackward(h(qkv), h(out), h(dout), h(lse), h(dqkv), opts.heads, opts.causal);
}
/**
 * The backward of attentionForwardPacked (CPU): dqkv [1, T, 3W] (overwritten) from dout [1, T, W],
 * using its out and lse; each sequence's gradients are attentionBackward's on it alone, bit for bit.
 */
export function attentionBackwardPacked(qkv: Tensor, out: Tensor, dout: Tensor, lse: Tensor, dqkv: Tensor, lengths: Tensor, opts: AttentionOptions): void {
  native.attentionBackwardPacked(h(qkv), h(out), h(dout), h(lse), h(dqkv), h(lengths), opts.heads, opts.causal);
}

// ── embeddings, layernorm, activations, pooling, normalisation, loss (pointwise group) ──
// Parameter gradients of these ops are OVERWRITTEN, never accumulated. With bf16
// emulation on, stored activations (layernorm, GELU, embedding outputs) are rounded
// to bf16; statistics, normalised features, the loss and gradients stay fp32.

/**
 * LayerNorm over the last dim: out = (x − mean)·rstd·gamma + beta. x [..., W], gamma/beta [W],
 * out like x (may be x), mean/rstd one f32 per row (saved for backward).
 */
export function layernormForward(x: Tensor, gamma: Tensor, beta: Tensor, out: Tensor, mean: Tensor, rstd: Tensor, eps = 1e-5): void {
  native.layernormForward(h(x), h(gamma), h(beta), h(out), h(mean), h(rstd), eps);
}
/**
 * sumOut = x + residual (may be x or residual itself), then out = layernorm(sumOut).
 * Backward: layernormBackward with sumOut as x gives dx; the gradient of both x and
 * residual is that dx plus the gradient reaching sumOut from its other uses (the caller adds it).
 */
export function residualLayernormForward(
  x: Tensor, residual: Tensor, sumOut: Tensor, gamma: Tensor, beta: Tensor, out: Tensor, mean: Tensor, rstd: Tensor, eps = 1e-5,
): void {
  native.residualLayernormForward(h(x), h(residual), h(sumOut), h(gamma), h(beta), h(out), h(mean), h(rstd), eps);
}
/**
 * dx (may be dout), and dgamma/dbeta [W] when given: all overwritten, unless (CPU only)
 * `dadd` is given, added to dx in the same pass (a residual stream's other gradient; may be dx
 * or dout), or `accumulate` is set: dgamma/dbeta are then added to (a parameter's gradient).
 */
export function layernormBackward(
  dout: Tensor, x: Tensor, gamma: Tensor, mean: Tensor, rstd: Tensor, dx: Tensor, dgamma: Tensor | null, dbeta: Tensor | null,
  opts: { dadd?: Tensor | null; accumulate?: boolean } = {},
): void {
  if (opts.dadd || opts.accumulate)
    native.layernormBackward(h(dout), h(x), h(gamma), h(mean), h(rstd), h(dx), ho(dgamma), ho(dbeta), ho(opts.dadd), opts.accumulate ?? false);
  else native.layernormBackward(h(dout), h(x), h(gamma), h(mean), h(rstd), h(dx), ho(dgamma), ho(dbeta));
}

/** GELU, erf form: out = x·Φ(x). out may be x. */
export function geluForward(x: Tensor, out: Tensor): void {
  native.geluForward(h(x), h(out));
}
/** dx = dout·GELU'(x) (dx may be dout). */
export function geluBackward(x: Tensor, dout: Tensor, dx: Tensor): void {
  native.geluBackward(h(x), h(dout), h(dx));
}
/** QuickGELU (OpenAI CLIP): out = x·σ(1.702x). */
export function quickGeluForward(x: Tensor, out: Tensor): void {
  native.quickGeluForward(h(x), h(out));
}
export function quickGeluBackward(x: Tensor, dout: Tensor, dx: Tensor): void {
  native.quickGeluBackward(h(x), h(dout), h(dx));
}

/** out[..., :] = table[ids[...]]; ids i32 of any shape, table [V, W], out ids.shape + [W]. Bad ids throw before anything is written. */
export function embeddingForward(ids: Tensor, table: Tensor, out: Tensor): void {
  native.embeddingForward(h(ids), h(table), h(out));
}
/** dtable [V, W] = scatter-add of dout rows at ids (overwritten, zero for unused rows). */
export function embeddingBackward(ids: Tensor, dout: Tensor, dtable: Tensor): void {
  native.embeddingBackward(h(ids), h(dout), h(dtable));
}
/** out = x + pos; x [B, S, W], pos [S, W]; out may be x. */
export function posEmbedForward(x: Tensor, pos: Tensor, out: Tensor): void {
  native.posEmbedForward(h(x), h(pos), h(out));
}
/** dpos = Σ over the batch of dout (overwritten). The gradient of x is dout itself. */
export function posEmbedBackward(dout: Tensor, dpos: Tensor): void {
  native.posEmbedBackward(h(dout), h(dpos));
}
/** out [B, S+1, W] = the class token cls [W] followed by x [B, S, W]. */
export function classTokenConcat(x: Tensor, cls: Tensor, out: Tensor): void {
  native.classTokenConcat(h(x), h(cls), h(out));
}
/** dx [B, S, W] = dout[:, 1:], dcls [W] = Σ_b dout[b, 0] (both overwritten). */
export function classTokenConcatBackward(dout: Tensor, dx: Tensor, dcls: Tensor): void {
  native.classTokenConcatBackward(h(dout), h(dx), h(dcls));
}

/** out[b] = x[b, index[b]]; x [B, S, W], index i32 [B], out [B, W]. */
export function gatherRows(x: Tensor, index: Tensor, out: Tensor): void {
  native.gatherRows(h(x), h(index), h(out));
}
/** dx [B, S, W] = 0 except dx[b, index[b]] = dout[b] (fully overwritten). */
export function gatherRowsBackward(dout: Tensor, index: Tensor, dx: Tensor): void {
  native.gatherRowsBackward(h(dout), h(index), h(dx));
}
/** out[b] = first position of the largest id in ids[b] (torch.argmax): CLIP's end-of-text token. ids i32 [B, S], out i32 [B]. */
export function argmaxIds(ids: Tensor, out: Tensor): void {
  native.argmaxIds(h(ids), h(out));
}

/** out = x / max(‖x‖, 1e-12) along the last dim (as F.normalize); norms: one f32 per row. out stays fp32. */
export function l2normalizeForward(x: Tensor, out: Tensor, norms: Tensor): void {
  native.l2normalizeForward(h(x), h(out), h(norms));
}
/** dx from dout and the forward's out and norms (dx may be dout). */
export function l2normalizeBackward(dout: Tensor, out: Tensor, norms: Tensor, dx: Tensor): void {
  native.l2normalizeBackward(h(dout), h(out), h(norms), h(dx));
}

export interface ContrastiveLossGrads {
  /** Each is overwritten; leave one out to skip it (e.g. a frozen tower or a fixed scale). */
  dImage?: Tensor;
  dText?: Tensor;
  /** d loss / d logitScale (1 element). */
  dLogitScale?: Tensor;
}
export interface ContrastiveLossOptions {
  /** Compute these gradients in the same pass. */
  grads?: ContrastiveLossGrads;
  /** Multiplies every gradient (gradient accumulation, fp16 loss scaling); the returned loss is unscaled. Default 1. */
  lossScale?: number;
  /** A 1-element f32 tensor that receives the loss. */
  lossOut?: Tensor;
  /** On a GPU with lossOut: leave the loss there and wait for nothing (the returned loss is NaN). */
  deferLoss?: boolean;
  /** f32 scratch of ≥ rowCount·N values for the logits; allocated per call when absent. */
  workspace?: Tensor;
}
/**
 * The CLIP loss: logits = exp(logitScale)·image·textᵀ, loss = (CE(logits) + CE(logitsᵀ))/2 with
 * targets on the diagonal, each a mean over N rows. image and text [N, D] are normalised
 * features; logitScale is a 1-element f32 tensor holding the LOG of the scale.
 */
export function contrastiveLoss(image: Tensor, text: Tensor, logitScale: Tensor, opts: ContrastiveLossOptions = {}): { loss: number } {
  const n = image.shape[0] ?? 0;
  return contrastiveLossLocal(image, text, logitScale, 0, n, opts);
}
/**
 * One rank's share of the global CLIP loss (OpenCLIP's --local-loss --gather-with-grad):
 * image and text are the features gathered from every rank [N, D]; this rank owns rows
 * rowOffset .. rowOffset + rowCount. The loss returned is this rank's contribution (the
 * contributions of all ranks sum to the global loss), and the gradients are those of that
 * contribution with respect to ALL N rows and the scale, so summing them across ranks
 * (reduce-scatter for features, all-reduce for the scale) gives the global gradient.
 */
export function contrastiveLossLocal(
  image: Tensor, text: Tensor, logitScale: Tensor, rowOffset: number, rowCount: number, opts: ContrastiveLossOptions = {},
): { loss: number } {
  const g = opts.grads ?? {};
  const loss = native.contrastiveLoss(
    h(image), h(text), h(logitScale), ho(g.dImage), ho(g.dText), ho(g.dLogitScale),
    ho(opts.lossOut), ho(opts.workspace), rowOffset, rowCount, opts.lossScale ?? 1, opts.deferLoss ?? false,
  );
  return { loss };
}

// ── the SigLIP loss ──
export interface SigmoidLossGrads {
  /** Each is overwritten (times gradScale); leave one out to skip it. */
  dImage?: Tensor;
  dText?: Tensor;
  /** d loss / d logitScale, d loss / d logitBias (1 element each). */
  dLogitScale?: Tensor;
  dLogitBias?: Tensor;
}
export interface SigmoidLossOptions {
  grads?: SigmoidLossGrads;
  /** Positives at text row i + positiveOffset for image row i; -1: none (a block of other ranks' texts). Default 0. */
  positiveOffset?: number;
  /** Multiplies every gradient (gradient accumulation, loss scaling); the loss is unscaled. Default 1. */
  gradScale?: number;
  /** A 1-element f32 tensor that receives the loss. */
  lossOut?: Tensor;
  /** On a GPU with lossOut: leave the loss there and wait for nothing (the returned loss is NaN). */
  deferLoss?: boolean;
  /** f32 scratch of ≥ R·C values for the logits; allocated per call when absent. */
  workspace?: Tensor;
}
/**
 * The SigLIP loss (OpenCLIP's SigLipLoss) of normalised image [R, D] and text [C, D] features:
 * z_ij = exp(logitScale)·⟨I_i, T_j⟩ + logitBias, loss = Σ_ij −log σ(y_ij z_ij) / R with y = +1 on
 * the positives, −1 elsewhere. fp32 logits, stable log-sigmoid, double sums (CPU and CUDA).
 */
export function sigmoidLoss(image: Tensor, text: Tensor, logitScale: Tensor, logitBias: Tensor, opts: SigmoidLossOptions = {}): { loss: number } {
  const g = opts.grads ?? {};
  const loss = fn<(...a: unknown[]) => number>('sigmoidLoss')(
    h(image), h(text), h(logitScale), h(logitBias), opts.positiveOffset ?? 0, ho(g.dImage), ho(g.dText), ho(g.dLogitScale), ho(g.dLogitBias),
    ho(opts.lossOut), ho(opts.workspace), opts.gradScale ?? 1, opts.deferLoss ?? false,
  );
  return { loss };
}

// ── optimizer: AdamW, gradient norm, clipping (pointwise group) ──
export interface AdamWStepOptions {
  lr: number;
  /** 1-based step number, for the bias corrections. */
  step: number;
  /** Defaults are PyTorch's: 0.9, 0.999, 1e-8, 0.01. */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled: p ← p − lr·weightDecay·p before the Adam update. */
  weightDecay?: number;
  /** Multiplies grad first (e.g. 1 / loss scale). Default 1. */
  gradScale?: number;
  /** A bf16 or f16 tensor with param's element count that receives the updated parameter rounded to its type (on CUDA: the precision's 16-bit type). */
  paramBf16?: Tensor;
  /** Decide on the device whether the step is applied (see AdamWGate). */
  gate?: AdamWGate;
  /** CPU, without a gate: leave grad zero, cleared in the same pass as it is read. */
  zeroGrad?: boolean;
}
/**
 * A step decided on the param's device, so nothing is read back: the update is applied only
 * when `loss` (f32 [1]) and `norm` (i64 [1] holding an f64, as gradNorm's normOut) are finite,
 * at step number applied + 1 (`applied`: i64 [1], the updates applied so far; the step given
 * must be that or one less, i.e. the host's count, a step late). adamwCommit counts the step.
 */
export interface AdamWGate {
  loss: Tensor;
  norm: Tensor;
  applied: Tensor;
}
/** After every gated adamwStep of a step: applied += 1 when the gate's loss and norm are finite. */
export function adamwCommit(gate: AdamWGate): void {
  native.adamwCommit(h(gate.loss), h(gate.norm), h(gate.applied));
}
/** A norm stored by gradNorm/clipGradNorm's normOut (i64 [1] holding an f64), read on the host (waits for a GPU). */
export function readNormOut(normOut: Tensor): number {
  const host = normOut.device === 'cpu' ? normOut : normOut.to('cpu');
  const bits = host.view() as BigInt64Array;
  const value = new Float64Array(bits.buffer, bits.byteOffset, 1)[0];
  if (host !== normOut) host.dispose();
  return value;
}
/** One AdamW step (torch.optim.AdamW) in place on fp32 param, m and v. */
export function adamwStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, opts: AdamWStepOptions): void {
  native.adamwStep(
    h(param), h(grad), h(m), h(v), ho(opts.paramBf16),
    opts.lr, opts.beta1 ?? 0.9, opts.beta2 ?? 0.999, opts.eps ?? 1e-8, opts.weightDecay ?? 0.01, opts.step, opts.gradScale ?? 1,
    ho(opts.gate?.loss), ho(opts.gate?.norm), ho(opts.gate?.applied), opts.zeroGrad ?? false,
  );
}
/** The global L2 norm of a list of f32 tensors, summed in double. */
export function gradNorm(grads: readonly Tensor[], normOut?: Tensor): number {
  return native.gradNorm(grads.map(h), ho(normOut));
}
/**
 * Scales every gradient by min(1, maxNorm / (norm + 1e-6)) and returns the norm before clipping
 * (torch.nn.utils.clip_grad_norm_). A non-finite norm leaves the gradients untouched; skip the step.
 */
export function clipGradNorm(grads: readonly Tensor[], maxNorm: number, normOut?: Tensor): number {
  return native.clipGradNorm(grads.map(h), maxNorm, ho(normOut));
}

// ── dynamic loss scaling on the device (CUDA; the CPU's is the host's LossScaler) ──
/**
 * Multiplies every f32 tensor by the loss scale held on the device in `state` (an i64 [2] tensor
 * holding two f64s: the scale and the finite steps since the last growth or skip), or by its
 * reciprocal rounded to f32 when `invert` (unscaling gradients, as GradScaler does). Nothing is read back.
 */
export function lossScaleApply(tensors: readonly Tensor[], state: Tensor, invert: boolean): void {
  native.lossScaleApply(tensors.map(h), h(state), invert);
}
export interface LossScaleRule {
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  minScale: number;
  maxScale: number;
}
/**
 * The LossScaler's update after a step, on the device from the step's loss (f32 [1]) and gradient
 * norm (gradNorm's normOut): a non-finite loss changes nothing, a non-finite norm backs the scale
 * off, finite ones count towards growth.
 */
export function lossScaleUpdate(state: Tensor, loss: Tensor, norm: Tensor, rule: LossScaleRule): void {
  native.lossScaleUpdate(h(state), h(loss), h(norm), rule.growthFactor, rule.backoffFactor, rule.growthInterval, rule.minScale, rule.maxScale);
}
