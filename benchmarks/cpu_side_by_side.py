"""The PyTorch side of benchmarks/cpu_side_by_side.ts: one timed run of one case, as JSON on stdout.

The same model as clipscale's (open_clip's CLIP built from our config file, lib/configs/models/*.json),
the same weights and the same batch (safetensors files the TypeScript driver wrote), the same
optimizer recipe (AdamW lr 5e-4, betas 0.9/0.98, eps 1e-6, weight decay 0.2 with OpenCLIP's decay
groups, logit scale clamped to [0, ln 100] after each step), fp32, the thread count the driver asks.

  python3 benchmarks/cpu_side_by_side.py train --config tiny.json --weights w.safetensors --batch b.safetensors \
      --warmup 2 --steps 10 --threads 2 --mode eager|compile
  python3 benchmarks/cpu_side_by_side.py infer --config ViT-B-32.json --weights w.safetensors --batch b.safetensors \
      --warmup 2 --steps 10 --threads 2

The driver runs this once per round, interleaved with clipscale's rounds; it is not meant to be run alone.
"""
import argparse
import json
import math
import os
import sys
import time


def import_open_clip():
    import torch
    import torch.library

    # open_clip imports torchvision (for image transforms we do not use here). Where the installed
    # torchvision's C++ ops do not load against this torch build (a CUDA torchvision wheel beside a
    # CPU torch), its fake-op registrations raise at import; skip just those so the import works.
    original = torch.library.register_fake

    def tolerant(op, fn=None, **kw):
        def wrap(f):
            try:
                return original(op, f, **kw)
            except RuntimeError:
                return f

        return wrap(fn) if fn is not None else wrap

    torch.library.register_fake = tolerant
    try:
        import open_clip
    finally:
        torch.library.register_fake = original
    return open_clip


def thread_settings(torch):
    info = torch.__config__.parallel_info()
    keep = [line.strip() for line in info.splitlines() if any(k in line for k in ("OpenMP", "MKL", "ATen parallel", "Intra-op", "Inter-op"))]
    return {
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "MKL_NUM_THREADS")},
        "parallel_info": keep,
    }


def build(open_clip, torch, config_path, weights_path):
    from safetensors.torch import load_file

    with open(config_path) as f:
        cfg = json.load(f)
    model = open_clip.model.CLIP(
        embed_dim=cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"], quick_gelu=cfg.get("quick_gelu", False)
    )
    state = load_file(weights_path)
    if "logit_scale" in state:
        state["logit_scale"] = state["logit_scale"].reshape(model.logit_scale.shape)
    model.load_state_dict(state, strict=True)
    return model.float()


def load_batch(torch, batch_path):
    from safetensors.torch import load_file

    b = load_file(batch_path)
    return b["images"].contiguous(), b["ids"].to(torch.long).contiguous()


def adamw_groups(model):
    # OpenCLIP's rule: no decay for ndim <= 1 and for the model's no_weight_decay() names.
    no_wd = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name in no_wd else decay).append(p)
    return [{"params": decay, "weight_decay": 0.2}, {"params": no_decay, "weight_decay": 0.0}]


def autocast(torch, precision):
    # bf16: OpenCLIP's amp_bf16 on the CPU (autocast: matmuls in bf16 with fp32 weights, the rest fp32).
    import contextlib

    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def train(args, torch, open_clip):
    model = build(open_clip, torch, args.config, args.weights)
    images, ids = load_batch(torch, args.batch)
    loss_fn = open_clip.loss.ClipLoss()
    fused = args.mode == "compile"
    opt = torch.optim.AdamW(adamw_groups(model), lr=5e-4, betas=(0.9, 0.98), eps=1e-6, **({"fused": True} if fused else {}))
    forward = torch.compile(model) if args.mode == "compile" else model
    max_scale = math.log(100)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast(torch, args.precision):
            fi, ft, scale = forward(images, ids)
            loss = loss_fn(fi, ft, scale)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, max_scale)
        return loss.item()

    t_compile = time.perf_counter()
    losses, times = [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        losses.append(step())
        t1 = time.perf_counter()
        if i >= args.warmup:
            times.append(t1 - t0)
        elif i == 0:
            first_step_s = t1 - t_compile
    return {"step_times_s": times, "losses": losses, "first_step_s": first_step_s}


def infer(args, torch, open_clip):
    model = build(open_clip, torch, args.config, args.weights).eval()
    images, ids = load_batch(torch, args.batch)
    times = []
    with torch.inference_mode(), autocast(torch, args.precision):
        # Warm-up: at least --warmup encodes and --warmup-s seconds (a fresh process's first
        # milliseconds run slow on both sides: thread start-up and placement).
        warm_until = time.perf_counter() + args.warmup_s
        warm = 0
        while warm < args.warmup or time.perf_counter() < warm_until:
            fi = model.encode_image(images)
            ft = model.encode_text(ids)
            warm += 1
        for i in range(args.steps):
            t0 = time.perf_counter()
            fi = model.encode_image(images)
            ft = model.encode_text(ids)
            t1 = time.perf_counter()
            times.append(t1 - t0)
    return {"step_times_s": times, "warmup_encodes": warm, "image_features": fi.float().flatten()[:64].tolist(), "text_features": ft.float().flatten()[:64].tolist()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["train", "infer"])
    p.add_argument("--config", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--batch", required=True)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup-s", type=float, default=0.0, help="infer: warm up for at least this many seconds too")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mode", choices=["eager", "compile"], default="eager")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    open_clip = import_open_clip()
    torch.manual_seed(0)
    out = train(args, torch, open_clip) if args.what == "train" else infer(args, torch, open_clip)
    out.update(
        {
            "torch": torch.__version__,
            "open_clip": open_clip.__version__,
            "threads": thread_settings(torch),
            "mode": args.mode if args.what == "train" else "eager, inference_mode",
            "precision": args.precision + (" (torch.autocast cpu bfloat16)" if args.precision == "bf16" else ""),
            "mkldnn_bf16_supported": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()),
            "loadavg_after": list(os.getloadavg()),
        }
    )
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
