// AdamW's update and the gradients' zeroing over a model's parameters: per parameter (one native
// call each) against flat buffers (one call per weight-decay group, one fill), turn about in one
// process so both see the same load. One JSON line per (config, threads): best and median ms.
//
//   node --import=tsx benchmarks/adamw_flat.ts [--configs tiny,small] [--threads 1,2] [--repeat 60]
import os from 'node:os';
import { parseArgs } from 'node:util';

import { native } from '../lib/native.js';
import { createModel } from '../lib/nn/clip.js';
import { AdamW } from '../lib/optim/adamw.js';

const { values } = parseArgs({ options: { configs: { type: 'string' }, threads: { type: 'string' }, repeat: { type: 'string' } } });
const repeat = Number(values.repeat ?? 60);
const r3 = (x: number) => Number(x.toFixed(3));
const stat = (ts: number[]) => {
  ts.sort((a, b) => a - b);
  return { best_ms: r3(ts[0]), median_ms: r3(ts[Math.floor(ts.length / 2)]) };
};

for (const config of (values.configs ?? 'tiny,small').split(',')) {
  using perParam = createModel(config);
  using flatModel = createModel(config);
  const a = new AdamW(perParam.parameters(), {}, { flat: false });
  const b = new AdamW(flatModel.parameters());
  const params = perParam.parameters().reduce((n, p) => n + p.numel, 0);
  for (const threads of (values.threads ?? '1,2').split(',').map(Number)) {
    native.setNumThreads(threads);
    const ta: number[] = [], tb: number[] = [];
    for (let i = 0; i < repeat + 3; i++) {
      let t0 = performance.now();
      perParam.zeroGrad();
      a.update(1e-4);
      if (i >= 3) ta.push(performance.now() - t0);
      t0 = performance.now();
      b.zeroGrad();
      b.update(1e-4);
      if (i >= 3) tb.push(performance.now() - t0);
    }
    const per = stat(ta), flat = stat(tb);
    console.log(JSON.stringify({
      bench: 'adamw-flat', config, parameters: perParam.parameters().length, values: params, threads,
      per_parameter: per, flat, speedup_best: r3(per.best_ms / flat.best_ms), speedup_median: r3(per.median_ms / flat.median_ms),
      loadavg: os.loadavg().map((l) => Number(l.toFixed(2))), cpu: os.cpus()[0]?.model ?? 'unknown',
    }));
  }
  a.dispose();
  b.dispose();
}
