#!/usr/bin/env python3
"""Pointwise-group GPU benchmark: clipscale's CUDA layernorm, contrastive loss and AdamW
against PyTorch on the same GPU, one JSON object per line (stdout, and --out if given).

Calls the CUDA library's C ABI (ctypes; no Node) on buffers PyTorch allocates. Our ops
run on the library's own stream, so both sides are timed the same way: host clock around
`reps` calls, synchronising before and after (median of 5 such runs, after warm-up).
Both sides get f32 tensors (our storage is f32 for now; bf16 storage is a later step).

  python3 benchmarks/gpu_pointwise.py [--lib build-cuda/libclipscale_cuda.so] [--out FILE]
"""
import argparse
import ctypes
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F

I64, F32, D64, INT, PTR = ctypes.c_int64, ctypes.c_float, ctypes.c_double, ctypes.c_int, ctypes.c_void_p


def load(path):
    lib = ctypes.CDLL(path)
    sig = {
        'cs_cuda_init': [INT],
        'cs_cuda_synchronize': [INT],
        'cs_cuda_layernorm_forward': [PTR] * 6 + [I64, I64, F32],
        'cs_cuda_layernorm_backward': [PTR] * 8 + [I64, I64],
        'cs_cuda_contrastive_loss': [PTR] * 3 + [I64] * 4 + [PTR] * 5 + [F32, PTR],
        'cs_cuda_adamw_step': [PTR] * 5 + [I64] + [D64] * 5 + [I64, D64],
    }
    for name, args in sig.items():
        getattr(lib, name).argtypes = args
        getattr(lib, name).restype = INT
    lib.cs_cuda_last_error.restype = ctypes.c_char_p
    return lib


def p(t):
    return ctypes.c_void_p(t.data_ptr()) if t is not None else None


def timed(fn, sync, reps):
    # PyTorch made the inputs on its own stream; ours is another (non-blocking) one, so the
    # inputs must be complete before our first kernel reads them.
    torch.cuda.synchronize()
    for _ in range(3):
        fn()
    sync()
    runs = []
    for _ in range(5):
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        sync()
        runs.append((time.perf_counter() - t0) / reps)
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--lib', default='build-cuda/libclipscale_cuda.so')
    ap.add_argument('--out')
    a = ap.parse_args()
    lib = load(a.lib)
    dev = torch.device('cuda')
    torch.backends.cuda.matmul.allow_tf32 = False  # the loss is fp32 on both sides

    def ok(rc):
        if rc != 0:
            raise RuntimeError(lib.cs_cuda_last_error().decode())

    ok(lib.cs_cuda_init(0))
    ours_sync = lambda: ok(lib.cs_cuda_synchronize(0))
    torch_sync = torch.cuda.synchronize
    rows_out = []
    name = torch.cuda.get_device_name(0)

    def emit(op, shape, t_ours, t_torch, nbytes=None, flops=None):
        r = {'op': op, 'shape': shape, 'device': name, 'ours_ms': t_ours * 1e3, 'torch_ms': t_torch * 1e3,
             'speedup_vs_torch': t_torch / t_ours}
        if nbytes:
            r['ours_GBps'] = nbytes / t_ours / 1e9
        if flops:
            r['ours_TFLOPs'] = flops / t_ours / 1e12
        rows_out.append(r)
        print(json.dumps(r), flush=True)

    # LayerNorm at ViT-B/16 training shapes: batch 256 × 197 tokens × 768.
    R, W = 256 * 197, 768
    x = torch.randn(R, W, device=dev)
    g, b = torch.randn(W, device=dev), torch.randn(W, device=dev)
    out, mean, rstd = torch.empty_like(x), torch.empty(R, device=dev), torch.empty(R, device=dev)
    fwd = lambda: ok(lib.cs_cuda_layernorm_forward(p(x), p(g), p(b), p(out), p(mean), p(rstd), R, W, 1e-5))
    tf = timed(fwd, ours_sync, 50)
    tt = timed(lambda: F.layer_norm(x, (W,), g, b, 1e-5), torch_sync, 50)
    emit('layernormForward', [R, W], tf, tt, nbytes=2 * R * W * 4)
    dout, dx, dg, db = torch.randn_like(x), torch.empty_like(x), torch.empty_like(g), torch.empty_like(b)
    bwd = lambda: ok(lib.cs_cuda_layernorm_backward(p(dout), p(x), p(g), p(mean), p(rstd), p(dx), p(dg), p(db), R, W))
    tb = timed(bwd, ours_sync, 50)
    xr, gr, br = x.clone().requires_grad_(), g.clone().requires_grad_(), b.clone().requires_grad_()
    y = F.layer_norm(xr, (W,), gr, br, 1e-5)
    ttb = timed(lambda: torch.autograd.grad(y, (xr, gr, br), dout, retain_graph=True), torch_sync, 50)
    emit('layernormBackward (dx, dgamma, dbeta)', [R, W], tb, ttb, nbytes=3 * R * W * 4)

    # Contrastive loss forward+backward, global batch N × D = 8192 × 512 (fp32 logits).
    N, D = 8192, 512
    img = F.normalize(torch.randn(N, D, device=dev), dim=-1)
    txt = F.normalize(torch.randn(N, D, device=dev), dim=-1)
    ls = torch.tensor([math.log(1 / 0.07)], device=dev)
    di, dtt, ds, lo = torch.empty_like(img), torch.empty_like(txt), torch.empty(1, device=dev), torch.empty(1, device=dev)
    ws = torch.empty(N * N, device=dev)
    loss_fn = lambda: ok(lib.cs_cuda_contrastive_loss(p(img), p(txt), p(ls), N, D, 0, N, p(di), p(dtt), p(ds), p(lo), p(ws), 1.0, None))
    tl = timed(loss_fn, ours_sync, 10)
    ir, tr, sr = img.clone().requires_grad_(), txt.clone().requires_grad_(), ls.clone().requires_grad_()
    labels = torch.arange(N, device=dev)

    def torch_loss():
        logits = sr.exp() * ir @ tr.t()
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
        torch.autograd.grad(loss, (ir, tr, sr))

    ttl = timed(torch_loss, torch_sync, 10)
    emit('contrastiveLoss fwd+bwd (fp32)', [N, D], tl, ttl, flops=3 * 2 * N * N * D)
    del ws

    # AdamW over 150M fp32 parameters (about ViT-B/16 + its text tower), with the bf16 copy.
    P = 150_000_000
    prm, grd = torch.randn(P, device=dev), torch.randn(P, device=dev)
    m1, v1 = torch.zeros(P, device=dev), torch.zeros(P, device=dev)
    pb = torch.empty(P, dtype=torch.bfloat16, device=dev)
    step = [0]

    def ours_adamw():
        step[0] += 1
        ok(lib.cs_cuda_adamw_step(p(prm), p(grd), p(m1), p(v1), p(pb), P, 5e-4, 0.9, 0.98, 1e-6, 0.2, step[0], 1.0))

    ta = timed(ours_adamw, ours_sync, 10)
    tp = torch.nn.Parameter(prm.clone())
    tp.grad = grd.clone()
    opt = torch.optim.AdamW([tp], lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2, fused=True)
    tta = timed(opt.step, torch_sync, 10)
    emit('adamwStep (+bf16 copy; torch fused, no copy)', [P], ta, tta, nbytes=P * (4 * 7 + 2))

    if a.out:
        with open(a.out, 'w') as f:
            for r in rows_out:
                f.write(json.dumps(r) + '\n')


if __name__ == '__main__':
    main()
