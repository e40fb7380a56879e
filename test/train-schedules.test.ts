import test from 'ava';

import { constCooldownLr, cosineLr, learningRate, makeLrSchedule, warmupLr } from '../lib/optim/schedules.js';

const close = (a: number, b: number, rel = 1e-12) => Math.abs(a - b) <= rel * Math.max(Math.abs(b), 1e-300);

test('cosine: linear warmup from base/warmup, then half a cosine down to 0 (hand-computed values)', (t) => {
  const lr = makeLrSchedule({ name: 'cosine', baseLr: 1e-3, warmupSteps: 10, totalSteps: 110 });
  t.is(lr(0), 1e-4, 'step 0 already trains: base · 1/10');
  t.true(close(lr(4), 5e-4));
  t.is(lr(9), 1e-3, 'last warmup step reaches the base lr');
  t.is(lr(10), 1e-3, 'cosine starts at its top');
  t.true(close(lr(35), 0.5 * (1 + Math.SQRT1_2) * 1e-3), 'a quarter in: cos(π/4)');
  t.true(close(lr(60), 5e-4), 'halfway');
  t.true(close(lr(85), 0.5 * (1 - Math.SQRT1_2) * 1e-3), 'three quarters: cos(3π/4)');
  t.is(lr(110), 0, 'reaches 0 at the last step');
  let prev = Infinity;
  for (let s = 10; s <= 110; s++) {
    t.true(lr(s) <= prev, `non-increasing after warmup (step ${s})`);
    prev = lr(s);
  }
  t.is(cosineLr(1e-3, 0, 100, 0), 1e-3, 'no warmup: starts at base');
});

test('const: warmup then the base lr', (t) => {
  t.is(learningRate({ name: 'const', baseLr: 2e-3, warmupSteps: 4, totalSteps: 50 }, 0), 5e-4);
  t.is(learningRate({ name: 'const', baseLr: 2e-3, warmupSteps: 4, totalSteps: 50 }, 3), 2e-3);
  t.is(learningRate({ name: 'const', baseLr: 2e-3, warmupSteps: 4, totalSteps: 50 }, 50), 2e-3);
  t.is(learningRate({ name: 'const', baseLr: 2e-3, warmupSteps: 0, totalSteps: 50 }, 0), 2e-3);
  t.is(warmupLr(1, 8, 3), 0.5);
});

test('const-cooldown: base until total − cooldown, then (1 − e/es)^power towards the end lr', (t) => {
  const cfg = { name: 'const-cooldown' as const, baseLr: 1e-3, warmupSteps: 5, totalSteps: 100, cooldownSteps: 20, cooldownEndLr: 1e-5 };
  const lin = makeLrSchedule(cfg);
  t.is(lin(0), 2e-4);
  t.is(lin(79), 1e-3);
  t.is(lin(80), 1e-3, 'cooldown begins at its top (e = 0)');
  t.true(close(lin(90), 0.5 * (1e-3 - 1e-5) + 1e-5), 'linear: halfway');
  t.true(close(lin(95), 0.25 * (1e-3 - 1e-5) + 1e-5));
  t.is(lin(100), 1e-5, 'ends at the end lr');
  const sq = makeLrSchedule({ ...cfg, cooldownPower: 2 });
  t.true(close(sq(90), 0.25 * (1e-3 - 1e-5) + 1e-5), 'power 2: (1/2)^2');
  const zeroEnd = makeLrSchedule({ ...cfg, cooldownEndLr: undefined });
  t.is(zeroEnd(100), 0, 'OpenCLIP default end lr is 0');
  // Warmup wins where it overlaps the cooldown, as in OpenCLIP.
  t.true(close(constCooldownLr(1e-3, 90, 100, 20, 1, 0, 85), (1e-3 * 86) / 90));
});

test('bad schedules and steps are refused with a clear error', (t) => {
  t.throws(() => makeLrSchedule({ name: 'linear' as 'cosine', baseLr: 1, warmupSteps: 0, totalSteps: 10 }), {
    message: /unknown schedule 'linear' \(available: cosine, const, const-cooldown\)/,
  });
  t.throws(() => makeLrSchedule({ name: 'cosine', baseLr: 1, warmupSteps: 10, totalSteps: 10 }), { message: /cosine needs warmupSteps \(10\) < totalSteps \(10\)/ });
  t.throws(() => makeLrSchedule({ name: 'const-cooldown', baseLr: 1, warmupSteps: 0, totalSteps: 10 }), { message: /const-cooldown needs cooldownSteps/ });
  t.throws(() => makeLrSchedule({ name: 'const-cooldown', baseLr: 1, warmupSteps: 0, totalSteps: 10, cooldownSteps: 11 }), { message: /cooldownSteps \(11\) exceeds totalSteps \(10\)/ });
  t.throws(() => makeLrSchedule({ name: 'const', baseLr: NaN, warmupSteps: 0, totalSteps: 10 }), { message: /baseLr must be a finite number/ });
  t.throws(() => makeLrSchedule({ name: 'const', baseLr: 1, warmupSteps: 1.5, totalSteps: 10 }), { message: /warmupSteps must be an integer >= 0, got 1.5/ });
  const lr = makeLrSchedule({ name: 'const', baseLr: 1, warmupSteps: 0, totalSteps: 10 });
  t.throws(() => lr(11), { message: /step must be an integer in \[0, 10\], got 11/ });
  t.throws(() => lr(-1), { message: /got -1/ });
});
