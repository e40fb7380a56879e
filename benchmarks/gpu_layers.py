#!/usr/bin/env python3
"""GPU layer benchmark: clipscale's CUDA GEMMs and fused attention against PyTorch on the
same GPU, one JSON object per line (stdout, and --out if given).

Calls the CUDA library's C ABI directly (ctypes; no Node needed) on buffers that PyTorch
allocates, so both sides see the same memory and device. Our ops take f32 tensors and
round to bf16 on the way in (the library's current storage); PyTorch gets bf16 tensors.

  python3 benchmarks/gpu_layers.py [--lib build-cuda/libclipscale_cuda.so] [--out FILE] [--quick]

GEMM: linear forward at CLIP ViT-B/16 and text-tower shapes (batch 64), our own kernel
and cuBLASLt (when it loads) vs torch.nn.functional.linear in bf16; TFLOP/s = 2·M·N·K/t.
Attention: forward+backward, B·H × S × D for S in {50, 77 causal, 197, 257}, D in {64, 80},
vs torch.nn.functional.scaled_dot_product_attention in bf16.
"""
import argparse
import ctypes
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

I64, F32, INT, PTR = ctypes.c_int64, ctypes.c_float, ctypes.c_int, ctypes.c_void_p


def load(path):
    lib = ctypes.CDLL(path)
    lib.cs_cuda_last_error.restype = ctypes.c_char_p
    lib.cs_cuda_gemm_backend_name.restype = ctypes.c_char_p
    lib.cs_cuda_gemm_set_backend.argtypes = [ctypes.c_char_p]
    lib.cs_cuda_linear_forward.argtypes = [PTR, PTR, PTR, PTR, I64, I64, I64, INT]
    lib.cs_cuda_attention_forward.argtypes = [PTR, PTR, PTR, I64, I64, I64, I64, INT]
    lib.cs_cuda_attention_backward.argtypes = [PTR, PTR, PTR, PTR, PTR, I64, I64, I64, I64, INT]
    return lib


def check(lib, rc, what):
    if rc != 0:
        raise RuntimeError(f"{what}: {lib.cs_cuda_last_error().decode()}")


def timed(fn, sync, iters):
    # PyTorch made the inputs on its own stream; ours is another (non-blocking) one, so the
    # inputs must be complete before our first kernel reads them.
    torch.cuda.synchronize()
    fn()
    sync()
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        sync()
        best = min(best, (time.perf_counter() - t0) / iters)
    return best


def emit(rec, out):
    line = json.dumps(rec)
    print(line, flush=True)
    if out:
        out.write(line + "\n")
        out.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default="build-cuda/libclipscale_cuda.so")
    ap.add_argument("--out")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    lib = load(args.lib)
    torch.cuda.init()
    check(lib, lib.cs_cuda_init(0), "cs_cuda_init")
    ours_sync = lambda: check(lib, lib.cs_cuda_synchronize(0), "synchronize")
    torch_sync = torch.cuda.synchronize
    device = torch.cuda.get_device_name(0)
    out = open(args.out, "a") if args.out else None
    iters = 5 if args.quick else 20

    engines = ["own"]
    if lib.cs_cuda_gemm_set_backend(b"cublaslt") == 0:
        engines.append("cublaslt")
    else:
        emit({"bench": "gemm", "device": device, "note": "cuBLASLt not loaded: " + lib.cs_cuda_last_error().decode()}, out)

    # (name, M, K, N): ViT-B/16 at batch 64 (197 tokens, width 768) and the text tower (77 tokens, width 512).
    shapes = [("vit_qkv", 64 * 197, 768, 2304), ("vit_proj", 64 * 197, 768, 768), ("vit_fc1", 64 * 197, 768, 3072),
              ("vit_fc2", 64 * 197, 3072, 768), ("text_qkv", 64 * 77, 512, 1536), ("text_fc1", 64 * 77, 512, 2048)]
    for name, M, K, N in shapes:
        x = torch.randn(M, K, device="cuda")
        w = torch.randn(N, K, device="cuda") * 0.05
        b = torch.randn(N, device="cuda")
        y = torch.empty(M, N, device="cuda")
        xb, wb, bb = x.bfloat16(), w.bfloat16(), b.bfloat16()
        flops = 2.0 * M * N * K
        t_torch = timed(lambda: F.linear(xb, wb, bb), torch_sync, iters)
        for engine in engines:
            check(lib, lib.cs_cuda_gemm_set_backend(engine.encode()), "set backend")
            run = lambda: check(lib, lib.cs_cuda_linear_forward(x.data_ptr(), w.data_ptr(), b.data_ptr(), y.data_ptr(),
                                                                M, K, N, 0), "linear")
            t = timed(run, ours_sync, iters)
            emit({"bench": "linear_forward", "device": device, "shape": name, "M": M, "K": K, "N": N,
                  "engine": engine, "ms": t * 1e3, "tflops": flops / t / 1e12, "torch_ms": t_torch * 1e3,
                  "torch_tflops": flops / t_torch / 1e12, "ratio_vs_torch": t_torch / t}, out)
    lib.cs_cuda_gemm_set_backend(b"auto")

    # Attention forward + backward: (S, causal) × D; heads 12 (D 64) / 16 (D 80), batch 64.
    for D, H in [(64, 12), (80, 16)]:
        for S, causal in [(50, False), (77, True), (197, False), (257, False)]:
            B, W = 64, H * D
            qkv = torch.randn(B, S, 3 * W, device="cuda")
            o = torch.empty(B, S, W, device="cuda")
            lse = torch.empty(B, H, S, device="cuda")
            do = torch.randn(B, S, W, device="cuda")
            dqkv = torch.empty_like(qkv)

            def ours():
                check(lib, lib.cs_cuda_attention_forward(qkv.data_ptr(), o.data_ptr(), lse.data_ptr(), B, S, W, H,
                                                         int(causal)), "attention forward")
                check(lib, lib.cs_cuda_attention_backward(qkv.data_ptr(), o.data_ptr(), do.data_ptr(), lse.data_ptr(),
                                                          dqkv.data_ptr(), B, S, W, H, int(causal)), "attention backward")

            q, k, v = (qkv.view(B, S, 3, H, D)[:, :, i].transpose(1, 2).bfloat16().contiguous().requires_grad_()
                       for i in range(3))
            dob = do.view(B, S, H, D).transpose(1, 2).bfloat16().contiguous()

            def torch_fb():
                out_t = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                out_t.backward(dob)

            t = timed(ours, ours_sync, iters)
            t_torch = timed(torch_fb, torch_sync, iters)
            # fwd 2 matmuls + bwd 5 (one recompute), causal ≈ half
            flops = 7 * 2.0 * B * H * S * S * D * (0.5 if causal else 1.0)
            emit({"bench": "attention_fwd_bwd", "device": device, "B": B, "heads": H, "S": S, "D": D,
                  "causal": causal, "ms": t * 1e3, "tflops": flops / t / 1e12, "torch_ms": t_torch * 1e3,
                  "torch_tflops": flops / t_torch / 1e12, "ratio_vs_torch": t_torch / t}, out)
    if out:
        out.close()


if __name__ == "__main__":
    sys.exit(main())
