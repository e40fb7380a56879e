// Training with OpenCLIP's --siglip: the sigmoid loss with a learned logit bias, single process
// and data-parallel (in-process ranks), where the mean of the ranks' losses is exactly the
// global-batch SigLIP loss, so 2 ranks must train as one process with twice the batch.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { UsageError } from '../lib/cli/command.js';
import { runTrain } from '../lib/cli/commands/train.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { createInProcessGroup } from '../lib/distributed/in_process_communicator.js';
import { parseModelConfig } from '../lib/nn/config.js';
import { SyntheticData } from '../lib/train/sources.js';
import { SIGLIP_INIT_LOGIT_BIAS, SIGLIP_INIT_LOGIT_SCALE, Trainer, type TrainerOptions } from '../lib/train/trainer.js';
import { relErr } from './_helpers/numeric.js';

const tokenizer = defaultSyntheticTokenizer();
const micro = parseModelConfig({
  embed_dim: 16,
  vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
  text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 1 },
});

function common(globalBatch: number, world: number): Omit<TrainerOptions, 'data'> {
  return { model: micro, batchSize: globalBatch / world, samples: 3 * globalBatch, lr: 1e-3, warmup: 1, seed: 7, logEvery: 1, gradClipNorm: 1, siglip: true };
}
const data = () => new SyntheticData({ size: 200, imageSize: 16, contextLength: 16, seed: 9 });

test('siglip: logit bias -10 and scale ln 10 at init, a falling loss, the loss and rule recorded in the checkpoint', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clipscale-siglip-'));
  try {
    using trainer = new Trainer({ ...common(16, 1), samples: 16 * 8, lr: 5e-3, data: data(), out: dir });
    t.is(trainer.model.logitBias!.values()[0], SIGLIP_INIT_LOGIT_BIAS);
    t.is(trainer.model.logitScale.values()[0], Math.fround(SIGLIP_INIT_LOGIT_SCALE));
    const records = [];
    for await (const r of trainer.run()) records.push(r);
    t.true(records.every((r) => Number.isFinite(r.loss) && typeof r.logit_bias === 'number'));
    t.true(records.at(-1)!.loss < records[0].loss, `loss ${records[0].loss} → ${records.at(-1)!.loss}`);
    t.not(records.at(-1)!.logit_bias, SIGLIP_INIT_LOGIT_BIAS, 'the bias is learned');
    const state = readdirSync(dir).find((f) => f.startsWith('state-') && f.endsWith('.json'));
    t.truthy(state, readdirSync(dir).join(', '));
    const text = readFileSync(join(dir, state!), 'utf8');
    t.regex(text, /"loss":\s*"siglip"/);
    t.regex(text, /"weightDecayRule":\s*"openclip-3"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('siglip: 2 in-process ranks train as one process with twice the batch', async (t) => {
  const one = new Trainer({ ...common(16, 1), data: data() });
  const single: number[] = [];
  for await (const r of one.run()) single.push(r.loss);
  const comms = createInProcessGroup(2);
  const ranks = comms.map((comm) => new Trainer({ ...common(16, 2), data: data(), comm }));
  const losses = await Promise.all(ranks.map(async (tr) => {
    const l: number[] = [];
    for await (const r of tr.run()) l.push(r.loss);
    return l;
  }));
  await Promise.all(comms.map((c) => c.close()));
  t.log(`losses: one process ${single.map((l) => l.toFixed(6)).join(', ')}; 2 ranks ${losses[0].map((l) => l.toFixed(6)).join(', ')}`);
  for (let i = 0; i < single.length; i++) t.true(Math.abs(losses[0][i] - single[i]) <= 1e-5 * single[i], `step ${i}`);
  const a = one.model.parameters().flatMap((p) => Array.from(p.values()));
  const b = ranks[0].model.parameters().flatMap((p) => Array.from(p.values()));
  const rel = relErr(b, a);
  t.log(`weights after 3 steps differ by ${rel.toExponential(2)} (relative)`);
  t.true(rel <= 1e-5);
  one.dispose();
  for (const r of ranks) r.dispose();
});

test('clipscale train --siglip --wd-rule openclip-main: a SigLIP run with the main-branch decay rule, recorded', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clipscale-siglip-cli-'));
  try {
    const cfg = join(dir, 'micro.json');
    writeFileSync(cfg, JSON.stringify({
      embed_dim: 16,
      vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
      text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 1 },
    }));
    const common = ['--model', cfg, '--data', 'synthetic:size=100,seed=2', '--batch-size', '8', '--samples', '16'];
    const r = await runTrain([...common, '--siglip', '--wd-rule', 'openclip-main', '--out', join(dir, 'run')]);
    t.is(r.steps, 2);
    t.true(r.loss !== null && Number.isFinite(r.loss));
    const state = readFileSync(join(dir, 'run', 'state-2.json'), 'utf8');
    t.regex(state, /"loss":\s*"siglip"/);
    t.regex(state, /"weightDecayRule":\s*"openclip-main"/);
    const log = readFileSync(join(dir, 'run', 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    t.is(typeof log.at(-1)!.logit_bias, 'number');
    await t.throwsAsync(runTrain([...common, '--wd-rule', 'legacy']), { instanceOf: UsageError, message: /--wd-rule must be openclip-3 or openclip-main, got 'legacy'/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
