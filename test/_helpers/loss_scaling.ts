// The loss-scaling skip-and-recover check, shared by the CPU and CUDA training tests.
import type { ExecutionContext } from 'ava';

import { defaultSyntheticTokenizer } from '../../lib/data/synthetic.js';
import { parseModelConfig } from '../../lib/nn/config.js';
import { SyntheticData } from '../../lib/train/sources.js';
import { Trainer, type TrainerOptions } from '../../lib/train/trainer.js';

/** The loss-scaling tests' run: a 1-layer 16-wide CLIP, 6 steps of 8 samples, every step logged. */
export function scalingRun(device: string): TrainerOptions {
  const tokenizer = defaultSyntheticTokenizer();
  return {
    model: parseModelConfig({
      embed_dim: 16,
      vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
      text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 1 },
    }),
    data: new SyntheticData({ seed: 3, size: 64, imageSize: 16, contextLength: 16 }),
    batchSize: 8,
    samples: 48,
    lr: 1e-3,
    seed: 2,
    logEvery: 1,
    device,
  };
}

/**
 * Trains 6 steps from a scale of 2^127 (the largest an f32 kernel takes): gradients overflow,
 * each such step is skipped with the parameters untouched and halves the scale, and once they
 * are finite the run goes on, growing the scale ×2 after every 2 good steps.
 */
export async function overflowAndRecover(t: ExecutionContext, device: string): Promise<void> {
  using trainer = new Trainer({
    ...scalingRun(device),
    lossScaling: { initScale: 2 ** 127, maxScale: 2 ** 127, growthInterval: 2 },
    // Each record is compared with the parameters right after its step: read every step at once
    // (deferred records arrive after the next step ran; that path is checked bit for bit against
    // this one in test/cuda-graphs-fp16.test.ts).
    deferOutcomes: false,
  });
  let previous = trainer.model.stateDict();
  let scale = 2 ** 127;
  let skipped = 0;
  let good = 0;
  let run = 0;
  const trace: string[] = [];
  for await (const r of trainer.run()) {
    const now = trainer.model.stateDict();
    const wasSkipped = (r.skipped_steps as number) > skipped;
    const unchanged = [...now].every(([name, p]) => p.data.every((v, i) => Object.is(v, previous.get(name)!.data[i])));
    t.is(unchanged, wasSkipped, `step ${r.step}: parameters ${unchanged ? 'unchanged' : 'changed'} but skipped=${wasSkipped}`);
    if (wasSkipped) {
      skipped++;
      run = 0;
      scale /= 2;
    } else {
      good++;
      if (++run === 2) {
        run = 0;
        scale = Math.min(scale * 2, 2 ** 127);
      }
    }
    t.is(r.skipped_steps, skipped);
    t.is(r.loss_scale, scale, `step ${r.step}`);
    t.true(Number.isFinite(r.loss));
    trace.push(`step ${r.step}: ${wasSkipped ? 'skipped' : 'applied'}, scale now 2^${Math.log2(r.loss_scale as number)}`);
    previous = now;
  }
  t.log(trace.join('; '));
  t.true(skipped >= 1, 'the first scale overflowed at least once');
  t.true(good >= 1, 'the run recovered');
  t.is(trainer.skippedSteps, skipped);
}
