// Invalid option values are usage errors (exit 2) found before anything is allocated: integers must
// be safe integers within their limits, numbers finite and in range. Each case here used to exit 1
// from deep in a run, print nonsense, or (--batch-size 2^53+1) end in a V8 fatal error.
import test from 'ava';

import { UsageError } from '../lib/cli/command.js';
import { main } from '../lib/cli/main.js';

const TRAIN = ['train', '--model', 'tiny', '--data', 'synthetic:size=64', '--samples', '64'];

const cases: [string, string[]][] = [
  ['batch size beyond MAX_SAFE_INTEGER', [...TRAIN, '--batch-size', '9007199254740993']],
  ['batch size 1e9', [...TRAIN, '--batch-size', '1000000000']],
  ['batch size as a float', [...TRAIN, '--batch-size', '8.5']],
  ['batch size in hex', [...TRAIN, '--batch-size', '0x10']],
  ['negative lr', [...TRAIN, '--batch-size', '8', '--lr', '-1']],
  ['lr NaN', [...TRAIN, '--batch-size', '8', '--lr', 'NaN']],
  ['negative wd', [...TRAIN, '--batch-size', '8', '--wd', '-0.1']],
  ['beta1 = 1', [...TRAIN, '--batch-size', '8', '--beta1', '1']],
  ['beta2 > 1', [...TRAIN, '--batch-size', '8', '--beta2', '2']],
  ['eps 0', [...TRAIN, '--batch-size', '8', '--eps', '0']],
  ['grad clip 0', [...TRAIN, '--batch-size', '8', '--grad-clip-norm', '0']],
  ['accum-freq not dividing', [...TRAIN, '--batch-size', '8', '--accum-freq', '3']],
  ['accum-freq 0', [...TRAIN, '--batch-size', '8', '--accum-freq', '0']],
  ['cooldown longer than the run', [...TRAIN, '--batch-size', '8', '--schedule', 'const-cooldown', '--cooldown-steps', '100']],
  ['negative cooldown end', [...TRAIN, '--batch-size', '8', '--schedule', 'const-cooldown', '--cooldown-steps', '2', '--lr-cooldown-end', '-1']],
  ['warmup as long as the run', [...TRAIN, '--batch-size', '8', '--warmup', '8']],
  ['workers 5000', ['train', '--model', 'tiny', '--data', 'x.tar', '--vocab', 'synthetic', '--batch-size', '8', '--samples', '64', '--workers', '5000']],
  ['device tpu', [...TRAIN, '--batch-size', '8', '--device', 'tpu']],
  ['eval retrieval --k 0', ['eval', 'retrieval', '--image-features', 'a.npy', '--text-features', 'b.npy', '--k', '0']],
  ['linear probe --val-fraction 1', ['eval', 'linear-probe', '--train-features', 'a', '--train-labels', 'b', '--test-features', 'c', '--test-labels', 'd', '--val-fraction', '1']],
  ['tokenizer --vocab-size 10', ['tokenizer', 'train', '--captions', 'synthetic', '--vocab-size', '10', '--out', 'x']],
  ['tokenize --context-length 0', ['tokenize', '--context-length', '0']],
  ['bench gemm --m 1e12', ['bench', 'gemm', '--m', '1000000000000', '--n', '8', '--k', '8']],
  ['make-shards --shard-size -1', ['data', 'make-shards', '--from', 'synthetic', '--out', 'x', '--shard-size', '-1']],
  ['fit --level 1', ['fit', '--results', 'r.jsonl', '--level', '1']],
  ['flops --vocab-size 2^53+1', ['flops', '--model', 'tiny', '--vocab-size', '9007199254740993']],
];

for (const [name, argv] of cases) {
  test.serial(`usage error (exit 2): ${name}`, async (t) => {
    const err = await t.throwsAsync(() => main(argv));
    t.true(err instanceof UsageError, `${err?.constructor.name}: ${err?.message}`);
    t.regex(err!.message, /^clipscale /);
  });
}

test('help embed prints its usage, not a template literal', async (t) => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    t.is(await main(['help', 'embed']), 0);
  } finally {
    console.log = log;
  }
  t.false(lines.join('\n').includes('${'), lines.join('\n'));
});

test('bench gemm refuses sizes that cannot fit before allocating; launch --grace is bounded', async (t) => {
  const err = await t.throwsAsync(() => main(['bench', 'gemm', '--m', '65536', '--n', '65536', '--k', '65536', '--repeat', '1']));
  t.true(err instanceof UsageError);
  t.regex(err!.message, /GiB, more than this machine's memory/);
  const g = await t.throwsAsync(() => main(['launch', '--nproc', '1', '--grace', '1e308', 'flops', '--model', 'tiny']));
  t.true(g instanceof UsageError);
});

test('launch refuses more local ranks than 8 a core, and non-decimal counts', async (t) => {
  for (const n of ['100000', '1e3', '0x10']) {
    const err = await t.throwsAsync(() => main(['launch', '--nproc', n, 'flops', '--model', 'tiny']));
    t.true(err instanceof UsageError, `${n}: ${err?.message}`);
  }
});
