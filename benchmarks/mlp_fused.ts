// The MLP's c_fc + GELU, fused (ops.linearActivationForward, ops.activationBackwardBias) against
// the separate ops (linearForward + geluForward; geluBackward + linearBackward's bias gradient),
// at a model's c_fc shapes, turn about in one process (so both see the same load). One JSON line
// per (config, tower, threads, direction): best and median ms of each, and the fused speedup.
//
//   node --import=tsx benchmarks/mlp_fused.ts [--configs tiny,small] [--batch-size 128] [--threads 1,2] [--repeat 40]
import os from 'node:os';
import { parseArgs } from 'node:util';

import { native } from '../lib/native.js';
import { loadModelConfig } from '../lib/nn/config.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';

const { values } = parseArgs({
  options: { configs: { type: 'string' }, 'batch-size': { type: 'string' }, threads: { type: 'string' }, repeat: { type: 'string' } },
});
const batch = Number(values['batch-size'] ?? 128);
const repeat = Number(values.repeat ?? 40);
const r3 = (x: number) => Number(x.toFixed(3));
const cpu = os.cpus()[0]?.model ?? 'unknown';

function rand(shape: number[], seed: number): Tensor {
  let s = seed >>> 0;
  const d = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < d.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    d[i] = s / 2 ** 32 - 0.5;
  }
  return Tensor.from(d, shape);
}

// Times a and b turn about; best and median of each.
function abTimes(a: () => void, b: () => void) {
  const ta: number[] = [], tb: number[] = [];
  for (let i = 0; i < repeat + 3; i++) {
    for (const [fn, ts] of [[a, ta], [b, tb]] as const) {
      const t0 = performance.now();
      fn();
      if (i >= 3) ts.push(performance.now() - t0);
    }
  }
  const stat = (ts: number[]) => {
    ts.sort((x, y) => x - y);
    return { best_ms: r3(ts[0]), median_ms: r3(ts[Math.floor(ts.length / 2)]) };
  };
  return { separate: stat(ta), fused: stat(tb) };
}

for (const config of (values.configs ?? 'tiny,small').split(',')) {
  const cfg = loadModelConfig(config);
  const v = cfg.vision_cfg, t = cfg.text_cfg;
  const towers = [
    ['vision', batch * ((v.image_size / v.patch_size) ** 2 + 1), v.width, Math.round(v.width * (v.mlp_ratio ?? 4))],
    ['text', batch * t.context_length, t.width, Math.round(t.width * (t.mlp_ratio ?? 4))],
  ] as const;
  for (const threads of (values.threads ?? '1,2').split(',').map(Number)) {
    native.setNumThreads(threads);
    for (const [tower, m, k, n] of towers) {
      const x = rand([m, k], 1), w = rand([n, k], 2), b = rand([n], 3), da = rand([m, n], 4);
      const h = Tensor.empty([m, n]), a = Tensor.empty([m, n]), dh = Tensor.empty([m, n]), db = Tensor.zeros([n]);
      const fwd = abTimes(
        () => { ops.linearForward(x, w, b, h); ops.geluForward(h, a); },
        () => ops.linearActivationForward(x, w, b, h, a, 'gelu'),
      );
      const bwd = abTimes(
        () => { ops.geluBackward(h, da, dh); ops.linearBackward(x, w, dh, { db, accumulate: true }); },
        () => ops.activationBackwardBias(h, da, dh, db, 'gelu', true),
      );
      for (const [direction, r] of [['forward', fwd], ['backward (activation + bias gradient)', bwd]] as const)
        console.log(JSON.stringify({
          bench: 'mlp-fused', config, tower, m, k, n, threads, direction, ...r,
          speedup_best: r3(r.separate.best_ms / r.fused.best_ms), speedup_median: r3(r.separate.median_ms / r.fused.median_ms),
          loadavg: os.loadavg().map((l) => Number(l.toFixed(2))), cpu,
        }));
      for (const tt of [x, w, b, da, h, a, dh, db]) tt.dispose();
    }
  }
}
