// Sizes with no up-front bound: model configs whose memory cannot fit are refused with the estimate
// before anything is allocated; brace patterns that expand to too many names are refused.
import test from 'ava';

import { expandBraces } from '../lib/data/braces.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { createModel } from '../lib/nn/clip.js';
import { checkFits, trainingBytes } from '../lib/nn/memory_estimate.js';
import { loadModelConfig } from '../lib/nn/config.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';

const base = {
  embed_dim: 16,
  vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
  text_cfg: { context_length: 16, vocab_size: 1000, width: 16, heads: 2, layers: 1 },
};

test('configs too large for memory are refused with the estimate, before allocating', (t) => {
  const huge = [
    { ...base, text_cfg: { ...base.text_cfg, width: 32768, heads: 64, layers: 1024 } },
    { ...base, vision_cfg: { ...base.vision_cfg, width: 768, layers: 1_000_000 } },
    { ...base, text_cfg: { ...base.text_cfg, context_length: 10_000_000, width: 512, heads: 8 } },
  ];
  for (const cfg of huge) t.throws(() => createModel(cfg), { message: /needs an estimated [\d.e+]+ GiB, more than this machine's .* of memory/ });
  t.notThrows(() => createModel(base).dispose());
});

test('training memory includes the batch: a batch that cannot fit is refused with the estimate', (t) => {
  const tiny = loadModelConfig('tiny');
  t.throws(() => checkFits(trainingBytes(tiny, 1 << 20), 'training', 8 * 2 ** 30), { message: /training needs an estimated .* GiB, more than this machine's 8\.00 GiB/ });
  const data = new SyntheticData({ size: 64, imageSize: 16, contextLength: 10_000_000, tokenizer: defaultSyntheticTokenizer() });
  t.throws(() => new Trainer({ model: { ...base, text_cfg: { ...base.text_cfg, context_length: 10_000_000, vocab_size: 1000 } }, data, batchSize: 8, samples: 16 }), {
    message: /Trainer: training at batch size 8 needs an estimated/,
  });
});

test('brace patterns expanding to more than a million names are refused before expanding', (t) => {
  t.throws(() => expandBraces('s/{0..999}{0..999}{0..999}.tar'), { message: /1000000000 names/ });
  t.is(expandBraces('s/{0..9}{0..9}.tar').length, 100);
});
