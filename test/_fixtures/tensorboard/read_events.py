"""Reads a TensorBoard log directory with the tensorboard package's EventAccumulator and prints
{tag: [[step, value], ...]} as JSON: the independent reader test/train-tensorboard.test.ts checks
clipscale's event files with, where Python and tensorboard are installed.

    python3 test/_fixtures/tensorboard/read_events.py LOGDIR
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
print(json.dumps({tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}))
