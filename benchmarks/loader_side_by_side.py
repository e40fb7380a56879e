"""The PIL + torchvision side of benchmarks/loader_side_by_side.ts: the same JPEG files, read into
memory first (as clipscale's loader gets them from shards), through torch's DataLoader with
`--workers` worker processes, batches of `--batch`, each image opened by PIL, optionally drafted
(Image.draft('RGB', request), shrink-on-load in libjpeg's IDCT), transformed as OpenCLIP does
(training: RandomResizedCrop(size, scale=(0.9, 1.0), bicubic); eval: Resize(size, bicubic) +
CenterCrop(size)), then ToTensor + Normalize (OpenAI's mean/std). Prints one JSON line per pass.

    python3 benchmarks/loader_side_by_side.py --files LIST.json --workers 2 --draft 1 --mode train --passes 3
"""
import argparse
import io
import json
import math
import os
import time

import torch
import torch.library as _tl
# A CUDA torchvision wheel beside a CPU torch fails to register its C ops' fake kernels; the
# transforms used here are pure PIL, so that registration is skipped.
_register_fake = _tl.register_fake
_tl.register_fake = lambda *a, **k: (lambda fn=None: fn)
import torchvision  # noqa: E402
_tl.register_fake = _register_fake
from PIL import Image, features  # noqa: E402
from torchvision import transforms as T  # noqa: E402
from torchvision.transforms import InterpolationMode  # noqa: E402

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def train_scale(w, h, size, scale=(0.9, 1.0), ratio=(3 / 4, 4 / 3)):
    """The draft scale at which every RandomResizedCrop box stays >= size (as lib/data/jpeg_draft.ts)."""
    for s in (8, 4, 2):
        dw, dh = -(-w // s), -(-h // s)
        area = dw * dh
        if min(dw, dh) >= size and math.sqrt(area * scale[0] * ratio[0]) >= size and math.sqrt(area * scale[0] / ratio[1]) >= size:
            return s
    return 1


TICK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pids):
    """User + system CPU seconds of these live processes (Linux /proc), this one included."""
    total = 0.0
    for pid in pids:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


class Images(torch.utils.data.Dataset):
    def __init__(self, blobs, size, mode, draft):
        self.blobs, self.size, self.mode, self.draft = blobs, size, mode, draft
        resize = [T.RandomResizedCrop(size, scale=(0.9, 1.0), interpolation=InterpolationMode.BICUBIC)] if mode == 'train' else \
            [T.Resize(size, interpolation=InterpolationMode.BICUBIC), T.CenterCrop(size)]
        self.transform = T.Compose(resize + [lambda im: im.convert('RGB'), T.ToTensor(), T.Normalize(MEAN, STD)])

    def __len__(self):
        return len(self.blobs)

    def __getitem__(self, i):
        im = Image.open(io.BytesIO(self.blobs[i]))
        if self.draft:
            w, h = im.size
            if self.mode == 'train':
                s = train_scale(w, h, self.size)
                im.draft('RGB', (w // s, h // s))
            else:
                im.draft('RGB', (self.size, self.size))
        return self.transform(im)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--files', required=True, help='a JSON list of JPEG paths')
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--draft', type=int, default=0)
    p.add_argument('--mode', choices=['train', 'eval'], default='train')
    p.add_argument('--passes', type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(1)
    with open(a.files) as f:
        paths = json.load(f)
    blobs = []
    for path in paths:
        with open(path, 'rb') as f:
            blobs.append(f.read())
    ds = Images(blobs, a.size, a.mode, bool(a.draft))
    for p_ in range(a.passes):
        loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, num_workers=a.workers, shuffle=False, drop_last=False)
        n = 0
        it = iter(loader)
        next(it)
        # After the first batch: worker start-up is not throughput (as on the clipscale side).
        pids = [os.getpid()] + [w.pid for w in getattr(it, '_workers', [])]
        t0, c0 = time.perf_counter(), cpu_seconds(pids)
        t1, c1 = t0, c0
        for x in it:
            n += x.shape[0]
            t1, c1 = time.perf_counter(), cpu_seconds(pids)
        dt, cpu = t1 - t0, c1 - c0
        print(json.dumps({'pass': p_, 'images': n, 'seconds': dt, 'images_per_s': n / dt, 'images_per_cpu_s': n / cpu, 'loadavg': list(os.getloadavg()),
                          'torch': torch.__version__, 'torchvision': torchvision.__version__, 'pillow': Image.__version__,
                          'libjpeg_turbo': features.version_feature('libjpeg_turbo'), 'torch_threads': torch.get_num_threads()}), flush=True)


if __name__ == '__main__':
    main()
