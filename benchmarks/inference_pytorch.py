"""PyTorch peer for benchmarks/inference.ts: a CLIP of the same shapes (OpenCLIP's ViT image
tower and causal text tower, built here from torch.nn since open_clip may not import), random
weights, encoding one image batch and one text batch with autograd on (activations kept, as a
training forward) and under torch.inference_mode. Each mode runs in a fresh process so its peak
RSS is its own. Prints one JSON line per mode."""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, width, heads, mlp, causal_len=None):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp), nn.GELU(), nn.Linear(mlp, width))
        self.mask = None if causal_len is None else torch.full((causal_len, causal_len), float('-inf')).triu(1)

    def forward(self, x):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=self.mask)[0]
        return x + self.mlp(self.ln_2(x))


class Clip(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        v, t, d = cfg['vision_cfg'], cfg['text_cfg'], cfg['embed_dim']
        vw, p, s = v['width'], v['patch_size'], v['image_size']
        vh = vw // v.get('head_width', 64)
        self.conv1 = nn.Conv2d(3, vw, p, p, bias=False)
        self.cls = nn.Parameter(torch.randn(vw))
        self.vpos = nn.Parameter(torch.randn((s // p) ** 2 + 1, vw))
        self.ln_pre = nn.LayerNorm(vw)
        self.vblocks = nn.Sequential(*[Block(vw, vh, int(vw * v.get('mlp_ratio', 4))) for _ in range(v['layers'])])
        self.ln_post = nn.LayerNorm(vw)
        self.vproj = nn.Parameter(torch.randn(vw, d) * vw ** -0.5)
        tw, ctx = t['width'], t['context_length']
        self.tok = nn.Embedding(t['vocab_size'], tw)
        self.tpos = nn.Parameter(torch.randn(ctx, tw) * 0.01)
        self.tblocks = nn.Sequential(*[Block(tw, t['heads'], int(tw * t.get('mlp_ratio', 4)), ctx) for _ in range(t['layers'])])
        self.ln_final = nn.LayerNorm(tw)
        self.tproj = nn.Parameter(torch.randn(tw, d) * tw ** -0.5)

    def encode_image(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1) + self.vpos
        x = self.vblocks(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.vproj

    def encode_text(self, ids):
        x = self.tblocks(self.tok(ids) + self.tpos)
        x = self.ln_final(x[torch.arange(x.shape[0]), ids.argmax(-1)])
        return x @ self.tproj


def run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = json.load(open(args.config))
    model = Clip(cfg)
    model.eval()  # no dropout either way; autograd still records in 'autograd' mode
    b, s, ctx = args.batch_size, cfg['vision_cfg']['image_size'], cfg['text_cfg']['context_length']
    images = torch.randn(b, 3, s, s)
    ids = torch.randint(0, cfg['text_cfg']['vocab_size'], (b, ctx))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def encode():
        t0 = time.perf_counter()
        if args.mode == 'inference_mode':
            with torch.inference_mode():
                fi, ft = model.encode_image(images), model.encode_text(ids)
        else:
            fi, ft = model.encode_image(images), model.encode_text(ids)
        dt = time.perf_counter() - t0
        return dt, (fi, ft)

    kept = encode()[1]  # warm-up; its outputs (and, with autograd, their graph) stay alive like ours
    times = []
    for _ in range(args.reps):
        dt, kept = encode()
        times.append(dt)
    print(json.dumps({
        'bench': 'inference', 'impl': 'pytorch', 'torch': torch.__version__,
        'config': os.path.basename(args.config)[:-5], 'mode': args.mode, 'batch': b,
        'time_s': round(statistics.median(times), 3), 'best_s': round(min(times), 3), 'times_s': [round(x, 3) for x in times],
        'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        'rss_before_encoding_bytes': rss_before,
        'parameters': sum(p.numel() for p in model.parameters()), 'threads': args.threads,
        'loadavg': [round(x, 2) for x in os.getloadavg()],
    }), flush=True)
    del kept


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', required=True)
    ap.add_argument('--batch-size', type=int, default=8)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--mode')
    args = ap.parse_args()
    if args.mode:
        run(args)
        return
    for mode in ('autograd', 'inference_mode'):
        out = subprocess.run([sys.executable, __file__, *sys.argv[1:], '--mode', mode], check=True, capture_output=True, text=True)
        sys.stdout.write(out.stdout)


if __name__ == '__main__':
    main()
