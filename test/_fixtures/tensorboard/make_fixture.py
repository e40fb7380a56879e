"""Writes the TensorBoard fixture that test/train-tensorboard.test.ts reads with clipscale's reader.

It uses torch.utils.tensorboard.SummaryWriter, the writer OpenCLIP logs with: old-style scalars
(simple_value), new-style ones (a tensor with the scalars plugin), and a text summary the reader must
skip. The values written are saved beside it in expected.json.

    pip install torch tensorboard && python3 test/_fixtures/tensorboard/make_fixture.py
"""
import glob
import json
import math
import os
import shutil
import tempfile

from torch.utils.tensorboard import SummaryWriter

here = os.path.dirname(os.path.abspath(__file__))
tmp = tempfile.mkdtemp()
w = SummaryWriter(log_dir=tmp)
expected = []
for step in range(1, 6):
    loss = math.log(128) / step
    lr = 5e-4 * step / 5
    w.add_scalar("train/loss", loss, step)
    w.add_scalar("train/lr", lr, step, new_style=True)
    expected.append({"tag": "train/loss", "step": step, "value": loss})
    expected.append({"tag": "train/lr", "step": step, "value": lr})
w.add_scalar("val/zeroshot_colour_acc1", 0.625, 5)
expected.append({"tag": "val/zeroshot_colour_acc1", "step": 5, "value": 0.625})
w.add_text("params", "model: tiny", 0)
w.close()
files = glob.glob(os.path.join(tmp, "events.out.tfevents.*"))
assert len(files) == 1, files
shutil.copy(files[0], os.path.join(here, "events.out.tfevents.torch"))
with open(os.path.join(here, "expected.json"), "w") as f:
    json.dump({"writer": "torch.utils.tensorboard.SummaryWriter", "scalars": expected}, f, indent=1)
shutil.rmtree(tmp)
