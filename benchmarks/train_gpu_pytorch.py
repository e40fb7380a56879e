#!/usr/bin/env python3
"""PyTorch's side of the GPU training benchmark (clipscale's side: benchmarks/train_gpu.ts).

PREPARED, NOT YET RUN ON A GPU: only its dry run (--dry-run) has run, on a development machine's
CPU. Run in the GPU check (benchmarks/gpu_check.sh) after
`node --import=tsx benchmarks/train_gpu.ts --dump DIR`:

    python3 benchmarks/train_gpu_pytorch.py --parity DIR [--configs ViT-B-32:256,ViT-B-16:128,ViT-L-14:64]
        [--steps 10] [--warmup 3] [--peak-tflops 989] [--no-compile] [--modes eager,compile] [--out FILE] [--dry-run]

open_clip_torch is not in the GPU machine's image: gpu_check.sh carries its wheel (and ftfy's,
wcwidth's) in .device/whl and puts them on PYTHONPATH.
--dry-run: micro at batch 4, 2 steps, on the CPU when PyTorch sees no GPU (bf16 autocast on the
CPU, torch.compile with the 'eager' backend there: the script's paths run, nothing is measured).
Where torchvision cannot load (this development machine: its torchvision build lacks
torchvision::nms for the installed torch), the dry run puts an inert torchvision stand-in in
sys.modules: OpenCLIP's model and loss do not use torchvision, only its package imports do.

The model is OpenCLIP's own CLIP class built from our config files (lib/configs/models/*.json,
OpenCLIP's schema), trained as OpenCLIP trains: bf16 autocast, attention through
nn.MultiheadAttention (need_weights=False, which runs scaled_dot_product_attention), ClipLoss,
AdamW (lr 5e-4, betas 0.9/0.98, eps 1e-6, wd 0.2 except gains, biases and logit_scale; fused),
the global gradient norm, logit scale clamped to ln 100, loss.item() each step (as clipscale reads
its loss a step late: the timed steps are queued back to back and the window ends when the last
loss is on the host, as clipscale's side is timed). Eager, then torch.compile of the model. One
JSON line per (config, mode): samples/s, step ms (window / steps), peak memory
(torch.cuda.max_memory_allocated), MFU with the same formula as clipscale's (6 · MACs/sample ·
batch / step time / peak bf16 dense FLOP/s; MACs from DIR/meta.json, written by our flops module).

Parity (--parity DIR): our initial weights and batch, loaded into OpenCLIP's model, must give our
loss within 1e-2 relative and each gradient within the bf16 bound (max |Δ| / max |g| ≤ 8e-2, the
bound test/cuda-train.test.ts holds our CUDA gradients to against the CPU in fp32). PyTorch's fp32
gradients are compared too, to show how far its own bf16 autocast is from fp32.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def torchvision_stand_in():
    """Inert torchvision modules for the dry run where torchvision cannot load (see the top)."""
    import types

    class Meta(type):
        def __getattr__(cls, n):
            if n.startswith('__'):
                raise AttributeError(n)
            return cls.__name__ + '.' + n

    class Stub(types.ModuleType):
        def __getattr__(self, n):
            if n.startswith('__'):
                raise AttributeError(n)
            return sys.modules.get(self.__name__ + '.' + n) or Meta(n, (object,), {})

    names = ['torchvision', 'torchvision.ops', 'torchvision.ops.misc', 'torchvision.transforms',
             'torchvision.transforms.functional', 'torchvision.transforms.v2', 'torchvision.transforms.v2.functional',
             'torchvision.datasets', 'torchvision.models', 'torchvision.io']
    for n in names:
        m = Stub(n)
        m.__path__ = []
        sys.modules[n] = m
    for n in names:
        if '.' in n:
            parent, child = n.rsplit('.', 1)
            setattr(sys.modules[parent], child, sys.modules[n])


def import_open_clip(dry_run):
    try:
        import open_clip  # noqa: F401
    except RuntimeError as e:
        if not dry_run or 'torchvision' not in str(e):
            raise
        for k in [k for k in sys.modules if k == 'torchvision' or k.startswith('torchvision.') or k.startswith('open_clip')]:
            del sys.modules[k]
        torchvision_stand_in()
        import open_clip  # noqa: F401
        print(json.dumps({'note': 'dry run: torchvision does not load here; an inert stand-in is used'}), flush=True)


def load_config(name):
    with open(os.path.join(ROOT, 'lib', 'configs', 'models', f'{name}.json')) as f:
        return json.load(f)


def build_model(cfg):
    from open_clip.model import CLIP
    return CLIP(embed_dim=cfg['embed_dim'], vision_cfg=cfg['vision_cfg'], text_cfg=cfg['text_cfg'],
                quick_gelu=cfg.get('quick_gelu', False))


def forward_loss(model, images, ids):
    from open_clip.loss import ClipLoss
    out = model(images, ids)
    if isinstance(out, dict):
        img, txt, scale = out['image_features'], out['text_features'], out['logit_scale']
    else:
        img, txt, scale = out[0], out[1], out[2]
    return ClipLoss()(img, txt, scale)


def param_groups(model, wd):
    # OpenCLIP's rule: no weight decay on gains, biases, embeddings of rank < 2 and logit_scale.
    exclude = lambda n, p: p.ndim < 2 or 'bn' in n or 'ln' in n or 'bias' in n or 'logit_scale' in n
    decay = [p for n, p in model.named_parameters() if not exclude(n, p) and p.requires_grad]
    no_decay = [p for n, p in model.named_parameters() if exclude(n, p) and p.requires_grad]
    return [{'params': no_decay, 'weight_decay': 0.0}, {'params': decay, 'weight_decay': wd}]


def random_batch(cfg, batch, device, seed=1):
    g = torch.Generator(device='cpu').manual_seed(seed)
    size, ctx, vocab = cfg['vision_cfg']['image_size'], cfg['text_cfg']['context_length'], cfg['text_cfg']['vocab_size']
    images = torch.randn(batch, 3, size, size, generator=g)
    ids = torch.zeros(batch, ctx, dtype=torch.long)
    for b in range(batch):
        n = int(torch.randint(2, ctx, (1,), generator=g))
        ids[b, 0] = vocab - 2
        ids[b, 1:n - 1] = torch.randint(1, vocab - 2, (n - 2,), generator=g)
        ids[b, n - 1] = vocab - 1  # end of text: the argmax
    return images.to(device), ids.to(device)


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def parity(name, dump_dir, device):
    from safetensors.torch import load_file
    d = os.path.join(dump_dir, name)
    meta = json.load(open(os.path.join(d, 'meta.json')))
    weights = load_file(os.path.join(d, 'weights.safetensors'))
    ours = load_file(os.path.join(d, 'grads.safetensors'))
    batch = load_file(os.path.join(d, 'batch.safetensors'))
    images, ids = batch['images'].to(device), batch['ids'].long().to(device)
    result = {'bench': 'parity', 'config': name, 'batch': meta['batch'], 'loss_clipscale': meta['loss']}
    grads = {}
    for mode in ('bf16', 'fp32'):
        model = build_model(load_config(name)).to(device)
        model.load_state_dict({k: v.reshape(model.state_dict()[k].shape) for k, v in weights.items()}, strict=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=mode == 'bf16'):
            loss = forward_loss(model, images, ids)
        loss.backward()
        result[f'loss_torch_{mode}'] = float(loss.detach())
        grads[mode] = {n: p.grad.float() for n, p in model.named_parameters()}
    worst = {m: max(((rel_err(ours[n].to(device).reshape(g.shape), g), n) for n, g in grads[m].items()), key=lambda x: x[0]) for m in grads}
    result['grad_rel_err_vs_torch_bf16'], result['worst_tensor_vs_torch_bf16'] = worst['bf16']
    result['grad_rel_err_vs_torch_fp32'], result['worst_tensor_vs_torch_fp32'] = worst['fp32']
    result['torch_bf16_vs_fp32'] = max(rel_err(grads['bf16'][n], g) for n, g in grads['fp32'].items())
    loss_rel = abs(meta['loss'] - result['loss_torch_bf16']) / abs(result['loss_torch_bf16'])
    result['loss_rel_err'] = loss_rel
    result['pass'] = bool(loss_rel <= 1e-2 and result['grad_rel_err_vs_torch_fp32'] <= 8e-2)
    return result


def bench(name, batch, steps, warmup, peak, macs, compile_model, device):
    cfg = load_config(name)
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    opt = torch.optim.AdamW(param_groups(model, 0.2), lr=5e-4, betas=(0.9, 0.98), eps=1e-6, fused=device == 'cuda')
    # torch.compile's default backend (inductor) on a GPU; 'eager' (dynamo only) on the CPU's dry run.
    run = torch.compile(model, backend='inductor' if device == 'cuda' else 'eager') if compile_model else model
    images, ids = random_batch(cfg, batch, device)
    params = [p for p in model.parameters()]

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = forward_loss(run, images, ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, float('inf'))  # the global norm, as clipscale computes it
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        return loss

    for _ in range(warmup):
        value = step().item()
    sync(device)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    value = loss.item()  # the window ends when the last loss is on the host
    step_s = (time.perf_counter() - t0) / steps
    return {
        'bench': 'train_step', 'impl': 'pytorch-compile' if compile_model else 'pytorch-eager',
        'device': torch.cuda.get_device_name() if device == 'cuda' else 'cpu',
        'config': name, 'batch': batch, 'precision': 'bf16-autocast', 'step_ms': round(step_s * 1e3, 2),
        'samples_per_s': round(batch / step_s, 1),
        'peak_memory_bytes': torch.cuda.max_memory_allocated() if device == 'cuda' else None,
        'mfu': round(6 * macs * batch / step_s / peak, 4) if macs else None, 'macs_per_sample': macs,
        'torch': torch.__version__, 'loss_last': value,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--configs')
    ap.add_argument('--steps', type=int)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--peak-tflops', type=float, default=989.0)
    ap.add_argument('--parity', help="the --dump DIR of benchmarks/train_gpu.ts")
    ap.add_argument('--meta', help="the --meta (or --dump) DIR of benchmarks/train_gpu.ts: MACs per sample for the MFU")
    ap.add_argument('--no-compile', action='store_true')
    ap.add_argument('--modes', default='eager,compile', help='eager, compile or both (comma-separated)')
    ap.add_argument('--dry-run', action='store_true')
    ap.add_argument('--out')
    a = ap.parse_args()
    configs = a.configs or ('micro:4' if a.dry_run else 'ViT-B-32:256,ViT-B-16:128,ViT-L-14:64')
    steps = a.steps or (2 if a.dry_run else 10)
    if torch.cuda.is_available():
        device = 'cuda'
    elif a.dry_run:
        device = 'cpu'
    else:
        print(json.dumps({'bench': 'train_step', 'skipped': 'no CUDA device visible to PyTorch'}))
        return 1
    import_open_clip(a.dry_run)
    modes = [m for m in a.modes.split(',') if m]
    if a.no_compile:
        modes = [m for m in modes if m != 'compile']
    lines = []
    failed = False
    for spec in configs.split(','):
        name, batch = spec.split(':')
        macs = None
        meta_dir = a.meta or a.parity
        if meta_dir and os.path.exists(os.path.join(meta_dir, name, 'meta.json')):
            macs = json.load(open(os.path.join(meta_dir, name, 'meta.json')))['macs_per_sample']
        if a.parity:
            meta_path = os.path.join(a.parity, name, 'meta.json')
            if os.path.exists(meta_path):
                macs = json.load(open(meta_path))['macs_per_sample']
                lines.append(parity(name, a.parity, device))
                failed |= not lines[-1]['pass']
                print(json.dumps(lines[-1]), flush=True)
        for mode in modes:
            compiled = mode == 'compile'
            lines.append(bench(name, int(batch), steps, a.warmup + (3 if compiled else 0), a.peak_tflops * 1e12, macs, compiled, device))
            lines[-1]['dry_run'] = a.dry_run
            print(json.dumps(lines[-1]), flush=True)
            if device == 'cuda':
                torch.cuda.empty_cache()
    if a.out:
        with open(a.out, 'w') as f:
            f.write(''.join(json.dumps(l) + '\n' for l in lines))
    return 1 if failed and not a.dry_run else 0


if __name__ == '__main__':
    sys.exit(main())
