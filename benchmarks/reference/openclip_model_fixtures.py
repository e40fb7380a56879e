#!/usr/bin/env python3
"""Peer fixtures from OpenCLIP itself (open_clip_torch, CPU torch) for test/openclip-models.test.ts.

For each small random-init model below this writes test/_fixtures/openclip/models/<name>.json (the
OpenCLIP-schema config, the loss and the training settings) and <name>.safetensors with:
  w.<param>            the weights as OpenCLIP initialised them (1-D parameters perturbed, so
                       LayerNorm gains/biases and LayerScale gammas are not all-equal)
  in.images, in.ids    the inputs (images [B, 3, H, W] f32, ids [B, ctx] i32)
  out.image_features   encode_image (not normalised)
  out.text_features    encode_text  (not normalised)
  out.loss             the loss of the batch (ClipLoss, or SigLipLoss for SigLIP models), [1]
  grad.<param>         d loss / d param
  step3.<rule>.<param> the weights after 3 AdamW steps on the same batch, for rule openclip-3
                       (open_clip_train 3.x's groups) and openclip-main (make_wd_exclude on main),
                       with the logit scale clamped to [0, ln 100] after each step as
                       open_clip_train does (only for models with "steps": true)

It also copies OpenCLIP's shipped model configs into test/_fixtures/openclip/model_configs.json
(data from mlfoundations/open_clip, MIT licence), so a test can say which of them load here.

Run:  python3 benchmarks/reference/openclip_model_fixtures.py   (takes a few seconds)
Needs torch, open_clip_torch and safetensors (see COMMON.md / README for the pip line).
"""
import json
import math
import os
import sys
import types

# The development machines have a CUDA torchvision beside a CPU torch; its detection-op meta
# registrations fail to import. OpenCLIP only needs torchvision's transforms, so skip them.
sys.modules.setdefault('torchvision._meta_registrations', types.ModuleType('torchvision._meta_registrations'))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import open_clip  # noqa: E402
from open_clip.loss import ClipLoss, SigLipLoss  # noqa: E402
from open_clip.model import CLIP, CustomTextCLIP  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', '_fixtures', 'openclip', 'models')

# ViT-B-32's structure at reduced size: patch 8 on 32-pixel images (16 patches + class token).
BASE_VISION = dict(image_size=32, layers=2, width=32, patch_size=8, head_width=16, mlp_ratio=2)
BASE_TEXT = dict(context_length=12, vocab_size=64, width=32, heads=2, layers=2, mlp_ratio=2)
EMBED = 24
BATCH = 4
SOT, EOT = 62, 63

MODELS = [
    # name, config, loss, train 3 steps
    ('vit-b-32-small', dict(embed_dim=EMBED, vision_cfg=BASE_VISION, text_cfg=BASE_TEXT), 'clip', True),
    ('vit-b-32-small-quickgelu', dict(embed_dim=EMBED, quick_gelu=True, vision_cfg=BASE_VISION, text_cfg=BASE_TEXT), 'clip', False),
    # CLIPA-style towers: no ln_pre, average pooling with ln_post after it, text pooled at the last
    # token with bidirectional attention; LayerScale and a LayerNorm eps of 1e-6.
    ('fields-clipa', dict(
        embed_dim=EMBED,
        vision_cfg=dict(BASE_VISION, no_ln_pre=True, pool_type='avg', final_ln_after_pool=True, ls_init_value=0.1, norm_kwargs=dict(eps=1e-6)),
        text_cfg=dict(BASE_TEXT, pool_type='last', no_causal_mask=True, ls_init_value=0.1, norm_kwargs=dict(eps=1e-6)),
    ), 'clip', False),
    # Average pooling over ln_post'ed tokens (final_ln_after_pool false), class-token pooling with
    # ln_post after it; text pooled at the first token, with a biased linear projection.
    ('fields-avg-first', dict(
        embed_dim=EMBED,
        vision_cfg=dict(BASE_VISION, pool_type='avg'),
        text_cfg=dict(BASE_TEXT, pool_type='first', proj_bias=True),
    ), 'clip', False),
    # Text pooled at a tokenizer-specific eos id (the 'worldwide' configs), no text projection
    # (text width = embed_dim), class token with final_ln_after_pool.
    ('fields-eos-noproj', dict(
        embed_dim=32,
        vision_cfg=dict(BASE_VISION, final_ln_after_pool=True),
        text_cfg=dict(BASE_TEXT, pool_type='eos', eos_id=7, proj_type='none'),
    ), 'clip', False),
    # GELU's tanh form (act_kwargs, as the SigLIP 2 configs' text towers), LayerScale in the image
    # tower only, class token with final_ln_after_pool.
    ('fields-gelu-tanh', dict(
        embed_dim=EMBED,
        vision_cfg=dict(BASE_VISION, act_kwargs=dict(approximate='tanh'), ls_init_value=0.5, final_ln_after_pool=True),
        text_cfg=dict(BASE_TEXT, act_kwargs=dict(approximate='tanh')),
    ), 'clip', False),
    # The attentional pooler (CoCa's): 5 queries over the tokens, query 0 pooled; kdim != embed_dim
    # (separate q/k/v projection weights) ...
    ('fields-attn-pool', dict(
        embed_dim=EMBED,
        vision_cfg=dict(BASE_VISION, attentional_pool=True, attn_pooler_queries=5, attn_pooler_heads=2),
        text_cfg=BASE_TEXT,
    ), 'clip', False),
    # ... and kdim == embed_dim (packed in_proj_weight), average of queries 1.. pooled.
    ('fields-attn-pool-packed', dict(
        embed_dim=32,
        vision_cfg=dict(BASE_VISION, attentional_pool=True, attn_pooler_queries=4, attn_pooler_heads=4, pool_type='avg'),
        text_cfg=BASE_TEXT,
    ), 'clip', False),
    # A SigLIP-style model on OpenCLIP's own towers (its shipped SigLIP configs use a timm image
    # tower): CustomTextCLIP names, learned logit bias, the text tower of the SigLIP configs
    # (no causal mask, last-token pooling, biased projection, LayerNorm eps 1e-6), sigmoid loss.
    ('siglip-small', dict(
        embed_dim=EMBED, custom_text=True, init_logit_bias=-10,
        vision_cfg=dict(BASE_VISION, norm_kwargs=dict(eps=1e-6)),
        text_cfg=dict(BASE_TEXT, no_causal_mask=True, proj_bias=True, pool_type='last', norm_kwargs=dict(eps=1e-6)),
    ), 'siglip', True),
]

LR, BETAS, EPS, WD = 1e-3, (0.9, 0.98), 1e-6, 0.2


def build(cfg, loss):
    kwargs = dict(cfg)
    custom = kwargs.pop('custom_text', False)
    if loss == 'siglip':
        # open_clip_train main.py with --siglip
        kwargs['init_logit_scale'] = math.log(10)
        kwargs['init_logit_bias'] = -10
    cls = CustomTextCLIP if custom else CLIP
    return cls(**kwargs)


def inputs(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    v, t = cfg['vision_cfg'], cfg['text_cfg']
    images = torch.randn(BATCH, 3, v['image_size'], v['image_size'], generator=g)
    ctx = t['context_length']
    ids = torch.zeros(BATCH, ctx, dtype=torch.int32)
    for b in range(BATCH):
        n = [3, 10, 6, 1][b]  # a short one, one that fills the context, ...
        body = torch.randint(1, 60, (n,), generator=g, dtype=torch.int32)
        row = torch.cat([torch.tensor([SOT], dtype=torch.int32), body, torch.tensor([EOT], dtype=torch.int32)])
        ids[b, :len(row)] = row[:ctx]
    if t.get('pool_type') == 'eos':
        eos = t['eos_id']
        ids[ids == eos] = 8
        ids[0, 2] = eos       # before the eot
        ids[1, 5] = eos
        ids[1, 9] = eos       # two: the first counts
        ids[2, 7] = eos       # after the eot, in the padding
        # row 3 has none: OpenCLIP takes position 0
    return images, ids


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim <= 1 and 'logit' not in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))


def loss_of(model, loss, images, ids):
    fi = model.encode_image(images)
    ft = model.encode_text(ids)
    ni, nt = F.normalize(fi, dim=-1), F.normalize(ft, dim=-1)
    bias = getattr(model, 'logit_bias', None)
    if loss == 'siglip':
        value = SigLipLoss()(ni, nt, model.logit_scale.exp(), bias)
    else:
        value = ClipLoss()(ni, nt, model.logit_scale.exp(), bias)
    return fi, ft, value


def param_groups(model, rule):
    named = list(model.named_parameters())
    if rule == 'openclip-3':
        # open_clip_train 3.x main.py
        exclude = lambda n, p: p.ndim < 2 or 'bn' in n or 'ln' in n or 'bias' in n or 'logit_scale' in n  # noqa: E731
    else:
        # open_clip_train/optim.py on main (make_wd_exclude): ndim <= 1 or model.no_weight_decay()
        no_wd = model.no_weight_decay() if hasattr(model, 'no_weight_decay') else set()
        exclude = lambda n, p: p.ndim <= 1 or n in no_wd  # noqa: E731
    gain_or_bias = [p for n, p in named if exclude(n, p)]
    rest = [p for n, p in named if not exclude(n, p)]
    return [{'params': gain_or_bias, 'weight_decay': 0.}, {'params': rest, 'weight_decay': WD}]


def three_steps(cfg, loss, state, images, ids, rule):
    model = build(cfg, loss)
    model.load_state_dict(state)
    opt = torch.optim.AdamW(param_groups(model, rule), lr=LR, betas=BETAS, eps=EPS)
    for _ in range(3):
        opt.zero_grad()
        loss_of(model, loss, images, ids)[2].backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def copy_model_configs():
    src = os.path.join(os.path.dirname(open_clip.__file__), 'model_configs')
    configs = {}
    for f in sorted(os.listdir(src)):
        if f.endswith('.json'):
            with open(os.path.join(src, f)) as fh:
                configs[f[:-5]] = json.load(fh)
    out = {
        '_source': f'open_clip/model_configs/*.json of open_clip_torch {open_clip.__version__} (github.com/mlfoundations/open_clip)',
        '_license': 'MIT, Copyright (c) 2012-2021 Gabriel Ilharco, Mitchell Wortsman, Nicholas Carlini, Rohan Taori, Achal Dave, Vaishaal Shankar, John Miller, Hongseok Namkoong, Hannaneh Hajishirzi, Ali Farhadi, Ludwig Schmidt',
        'configs': configs,
    }
    with open(os.path.join(OUT, '..', 'model_configs.json'), 'w') as fh:
        json.dump(out, fh, indent=None, separators=(',', ':'), sort_keys=False)
        fh.write('\n')
    print(json.dumps(dict(model_configs=len(configs))))


def main():
    os.makedirs(OUT, exist_ok=True)
    copy_model_configs()
    torch.set_num_threads(1)
    total = 0
    for i, (name, cfg, loss, steps) in enumerate(MODELS):
        torch.manual_seed(1000 + i)
        model = build(cfg, loss)
        perturb(model, 2000 + i)
        images, ids = inputs(cfg, 3000 + i)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.zero_grad()
        fi, ft, value = loss_of(model, loss, images, ids)
        value.backward()
        tensors = {
            'in.images': images.contiguous(),
            'in.ids': ids.contiguous(),
            'out.image_features': fi.detach().contiguous(),
            'out.text_features': ft.detach().contiguous(),
            'out.loss': value.detach().reshape(1),
        }
        for n, p in model.named_parameters():
            tensors['w.' + n] = p.detach().clone().contiguous()
            tensors['grad.' + n] = p.grad.detach().clone().contiguous()
        if steps:
            for rule in ('openclip-3', 'openclip-main'):
                for n, p in three_steps(cfg, loss, state, images, ids, rule).items():
                    tensors[f'step3.{rule}.{n}'] = p.contiguous()
        path = os.path.join(OUT, f'{name}.safetensors')
        save_file(tensors, path, metadata={'open_clip': open_clip.__version__, 'torch': torch.__version__})
        meta = dict(
            config=cfg, loss=loss, steps=steps, batch=BATCH,
            adamw=dict(lr=LR, beta1=BETAS[0], beta2=BETAS[1], eps=EPS, weight_decay=WD),
            init_logit_scale=math.log(10) if loss == 'siglip' else math.log(1 / 0.07),
            open_clip=open_clip.__version__, torch=torch.__version__,
        )
        with open(os.path.join(OUT, f'{name}.json'), 'w') as f:
            json.dump(meta, f, indent=1)
            f.write('\n')
        size = os.path.getsize(path)
        total += size
        print(json.dumps(dict(model=name, loss=float(value), params=sum(p.numel() for p in model.parameters()), bytes=size)))
    print(json.dumps(dict(total_bytes=total)))


if __name__ == '__main__':
    main()
