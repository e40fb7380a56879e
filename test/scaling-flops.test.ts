import { join } from 'node:path';

import test from 'ava';

import { loadModelConfig } from '../lib/nn/config.js';
import { computeCost } from '../lib/scaling/flops.js';
import { readTable } from '../lib/scaling/table.js';
import { main } from '../lib/cli/main.js';

const archInfo = join(import.meta.dirname, '..', 'lib', 'scaling', 'paper', 'arch_info.csv');

for (const model of ['ViT-B-32', 'ViT-B-16', 'ViT-L-14', 'ViT-H-14', 'ViT-g-14']) {
  test(`${model}: GMACs and parameters match the paper's arch_info.csv within 1%`, (t) => {
    const row = readTable(archInfo).rows.find((r) => r.model === model);
    if (!row) return t.fail(`${model} is not in ${archInfo}`);
    const cost = computeCost(loadModelConfig(model));
    for (const [ours, theirs] of [
      [cost.gmacs, row.gmacs],
      [cost.image_gmacs, row.image_gmacs],
      [cost.text_gmacs, row.text_gmacs],
      [cost.params / 1e6, row.mparams],
      [cost.image_params / 1e6, row.image_mparams],
      [cost.text_params / 1e6, row.text_mparams],
    ] as [number, number][]) {
      t.true(Math.abs(ours / theirs - 1) < 0.01, `${ours} vs ${theirs}`);
      // the table has two decimals; the convention reproduces them exactly
      t.true(Math.abs(ours - theirs) <= 0.005 + 1e-9, `${ours} rounds to ${theirs}`);
    }
  });
}

test('the CPU configs grow in compute and the totals add up', (t) => {
  const costs = ['micro', 'tiny', 'small', 'small-plus'].map((n) => computeCost(loadModelConfig(n)));
  for (let i = 1; i < costs.length; i++) t.true(costs[i].gmacs > 2 * costs[i - 1].gmacs);
  for (const c of costs) t.is(c.gmacs, c.image_gmacs + c.text_gmacs);
});

test.serial('clipscale flops prints the JSON of a config', async (t) => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    t.is(await main(['flops', '--model', 'ViT-B-32']), 0);
  } finally {
    console.log = log;
  }
  const out = JSON.parse(lines[0]);
  t.deepEqual(Object.keys(out).sort(), ['gmacs', 'image_gmacs', 'params', 'text_gmacs']);
  t.is(Math.round(out.gmacs * 100) / 100, 7.4);
  t.is(out.params, 151277313);
});
