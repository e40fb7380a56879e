"""Fixtures for shrink-on-load JPEG decoding (test/jpeg-draft.test.ts): Pillow's Image.draft +
OpenCLIP's transforms (torchvision), recorded so that the test needs no Python.

    python3 benchmarks/reference/jpeg_draft_fixtures.py   # writes test/_fixtures/jpeg_draft/

- JPEGs made here by Pillow: 4:2:0 and 4:4:4 colour, greyscale, progressive, CMYK, sizes that are
  and are not multiples of the 8/16-pixel MCU.
- eval cases: Image.open → draft('RGB', the size the transform needs) → OpenCLIP's
  image_transform(size, is_train=False, resize_mode) without ToTensor/Normalize → convert('RGB'),
  saved as PNG; the drafted decode's own bytes are recorded by SHA-256.
- train cases: draft at the scale of clipscale's training rule (asked of Pillow as the size
  (W // s, H // s), which makes Pillow's rule give s), then torchvision's resized_crop on a box of
  the decoded image.
- scale_table: the size Pillow decodes to after draft(mode, request) for stored sizes and requests.
"""
import hashlib
import io
import json
import math
import os

import numpy as np

import torch
import torch.library as _tl
# A CUDA torchvision wheel beside a CPU torch fails to register its C ops' fake kernels; the
# transforms used here are pure PIL, so that registration is skipped (as the other fixture scripts do).
_register_fake = _tl.register_fake
_tl.register_fake = lambda *a, **k: (lambda fn=None: fn)
import torchvision  # noqa: E402
_tl.register_fake = _register_fake
import open_clip  # noqa: E402
from open_clip.transform import image_transform  # noqa: E402
from PIL import Image, features  # noqa: E402
from torchvision.transforms import InterpolationMode  # noqa: E402
from torchvision.transforms import functional as F  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
OUT = os.path.join(ROOT, 'test', '_fixtures', 'jpeg_draft')


def photo(rng, w, h, channels=3):
    """Smooth colour fields, a few discs and mild noise: compresses well, resamples visibly."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, channels))
    for c in range(channels):
        img[..., c] = 128 + 80 * np.sin(x / w * rng.uniform(2, 8) + c) * np.cos(y / h * rng.uniform(2, 6) - c)
    for _ in range(5):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(4, min(w, h) / 4)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, channels)
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def jpeg(arr, mode, **kw):
    im = Image.fromarray(arr[..., 0] if mode == 'L' else arr, 'L' if mode == 'L' else 'RGB')
    if mode == 'CMYK':
        im = im.convert('CMYK')
    b = io.BytesIO()
    im.save(b, format='JPEG', **kw)
    return b.getvalue()


def make_images(seed=17):
    rng = np.random.default_rng(seed)
    return {
        'rgb420_640x480.jpg': jpeg(photo(rng, 640, 480), 'RGB', quality=85, subsampling=2),
        'rgb444_333x517.jpg': jpeg(photo(rng, 333, 517), 'RGB', quality=85, subsampling=0),
        'rgb420_449x673.jpg': jpeg(photo(rng, 449, 673), 'RGB', quality=80, subsampling=2),
        'gray_500x375.jpg': jpeg(photo(rng, 500, 375), 'L', quality=85),
        'progressive420_720x540.jpg': jpeg(photo(rng, 720, 540), 'RGB', quality=80, subsampling=2, progressive=True),
        'cmyk_400x300.jpg': jpeg(photo(rng, 400, 300), 'CMYK', quality=85),
        'rgb422_256x320.jpg': jpeg(photo(rng, 256, 320), 'RGB', quality=90, subsampling=1),
    }


# (image, resize_mode, size): scales 1, 2, 4 and 8 all occur.
EVAL_CASES = [
    ('rgb420_640x480.jpg', 'shortest', 224),   # 2
    ('rgb420_640x480.jpg', 'shortest', 96),    # 4
    ('rgb420_640x480.jpg', 'shortest', 56),    # 8
    ('rgb420_640x480.jpg', 'longest', 96),     # 4 (asks 96x72)
    ('rgb420_640x480.jpg', 'squash', 112),     # 4
    ('rgb444_333x517.jpg', 'shortest', 160),   # 2
    ('rgb444_333x517.jpg', 'shortest', 64),    # 4
    ('rgb420_449x673.jpg', 'shortest', 224),   # 2
    ('rgb420_449x673.jpg', 'shortest', 80),    # 4
    ('gray_500x375.jpg', 'shortest', 96),      # 2
    ('gray_500x375.jpg', 'shortest', 40),      # 8
    ('progressive420_720x540.jpg', 'shortest', 224),  # 2
    ('progressive420_720x540.jpg', 'shortest', 64),   # 8
    ('cmyk_400x300.jpg', 'shortest', 64),      # 4
    ('rgb422_256x320.jpg', 'shortest', 224),   # 1: the plain decode
    ('rgb422_256x320.jpg', 'shortest', 96),    # 2
]


def longest_target(w, h, size):
    # OpenCLIP's ResizeKeepRatio(size, longest=1): the longer side to size, each side rounded.
    ratio = max(h / size, w / size)
    return round(w / ratio), round(h / ratio)


def eval_request(w, h, mode, size):
    if mode == 'longest':
        tw, th = longest_target(w, h, size)
        return max(1, tw), max(1, th)
    return size, size


def train_scale(w, h, size, scale=(0.9, 1.0), ratio=(3 / 4, 4 / 3)):
    """clipscale's rule (lib/data/jpeg_draft.ts trainDraftScale), written again here."""
    for s in (8, 4, 2):
        dw, dh = -(-w // s), -(-h // s)
        area = dw * dh
        if min(dw, dh) >= size and math.sqrt(area * scale[0] * ratio[0]) >= size and math.sqrt(area * scale[0] / ratio[1]) >= size:
            return s
    return 1


# (image, size, box in the decoded image as fractions (left, top, width, height)).
TRAIN_CASES = [
    ('rgb420_640x480.jpg', 224, (0.02, 0.03, 0.95, 0.96)),
    ('rgb420_640x480.jpg', 64, (0.05, 0.0, 0.9, 1.0)),
    ('progressive420_720x540.jpg', 112, (0.0, 0.04, 1.0, 0.93)),
    ('gray_500x375.jpg', 64, (0.03, 0.02, 0.96, 0.94)),
    ('rgb420_449x673.jpg', 96, (0.01, 0.05, 0.97, 0.9)),
]

SCALE_TABLE = [
    (640, 480, 224, 224), (640, 480, 96, 72), (447, 447, 224, 224), (448, 448, 224, 224), (896, 900, 224, 224),
    (1792, 1792, 224, 224), (1791, 1792, 224, 224), (4000, 3000, 224, 224), (4000, 300, 224, 224), (200, 150, 224, 224),
    (3583, 2000, 224, 224), (999, 1001, 125, 125), (64, 64, 8, 8), (65, 17, 8, 2), (9, 9, 1, 1),
]


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def main():
    os.makedirs(OUT, exist_ok=True)
    imgs = make_images()
    for name, data in imgs.items():
        with open(os.path.join(OUT, name), 'wb') as f:
            f.write(data)
    cases = []
    for i, (name, mode, size) in enumerate(EVAL_CASES):
        im = Image.open(io.BytesIO(imgs[name]))
        stored = im.size
        request = eval_request(*stored, mode, size)
        im.draft('RGB', request)
        im.load()
        decoded = im.size
        t = image_transform(size, is_train=False, resize_mode=mode)
        pil = im
        for step in t.transforms[:-2]:  # without ToTensor + Normalize
            pil = step(pil)
        png = f'eval_{i:02d}_{os.path.splitext(name)[0]}_{mode}_{size}.png'
        pil.convert('RGB').save(os.path.join(OUT, png), optimize=True)
        cases.append({'image': name, 'pil_mode': im.mode, 'resize_mode': mode, 'size': size, 'request': list(request),
                      'stored': list(stored), 'decoded': list(decoded), 'decoded_sha256': sha256(im.tobytes()), 'expected_png': png})
        print(f'{name:28s} {mode:8s} {size:4d} draft {request} -> {decoded} -> {png}')
    train = []
    for i, (name, size, (fl, ft, fw, fh)) in enumerate(TRAIN_CASES):
        im = Image.open(io.BytesIO(imgs[name]))
        w, h = im.size
        s = train_scale(w, h, size)
        im.draft('RGB', (w // s, h // s))
        im.load()
        dw, dh = im.size
        assert (dw, dh) == (-(-w // s), -(-h // s)), (name, s, im.size)
        left, top, width, height = round(fl * dw), round(ft * dh), round(fw * dw), round(fh * dh)
        pil = F.resized_crop(im, top, left, height, width, [size, size], InterpolationMode.BICUBIC).convert('RGB')
        png = f'train_{i:02d}_{os.path.splitext(name)[0]}_{size}.png'
        pil.save(os.path.join(OUT, png), optimize=True)
        train.append({'image': name, 'size': size, 'scale': s, 'decoded': [dw, dh], 'decoded_sha256': sha256(im.tobytes()),
                      'left': left, 'top': top, 'width': width, 'height': height, 'expected_png': png})
        print(f'{name:28s} train {size:4d} scale {s} -> {dw}x{dh} box {(left, top, width, height)} -> {png}')
    table = []
    for w, h, rw, rh in SCALE_TABLE:
        b = io.BytesIO()
        Image.new('L', (w, h), 128).save(b, format='JPEG', quality=50)
        im = Image.open(b)
        im.draft('L', (rw, rh))
        table.append({'stored': [w, h], 'request': [rw, rh], 'decoded': list(im.size)})
    meta = {'open_clip': open_clip.__version__, 'pillow': Image.__version__, 'torchvision': torchvision.__version__,
            'libjpeg_turbo': features.version_feature('libjpeg_turbo'), 'eval_cases': cases, 'train_cases': train,
            'scale_table': table}
    with open(os.path.join(OUT, 'cases.json'), 'w') as f:
        json.dump(meta, f, indent=1)


if __name__ == '__main__':
    main()
