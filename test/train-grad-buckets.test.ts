// Gradient buckets for data-parallel training (lib/train/grad_buckets.ts), on the CPU: the flat
// gradient buffer is laid out in the order backward finishes the gradients (logit scale, each
// tower's head with its last block, the blocks from the last, the embeddings), buckets close as soon
// as they reach the cap (PyTorch DDP's bucket_cap_mb), and each is launched at the event that
// finishes its last gradient. A real backward with the buckets attached gives the same gradients bit
// for bit as one without, and every bucket's values when its all-reduce is launched are already final.
import test from 'ava';

import type { Communicator } from '../lib/distributed/communicator.js';
import { createModel } from '../lib/nn/clip.js';
import { Tensor } from '../lib/tensor.js';
import { DEFAULT_BUCKET_MB, GradientBuckets, gradientReadyOrder } from '../lib/train/grad_buckets.js';
import { SyntheticData } from '../lib/train/sources.js';
import { StepRunner } from '../lib/train/step.js';

/** A communicator whose all-reduce records what it was given (a copy of the values) and does nothing else. */
function recordingComm(): { comm: Communicator; reduced: Float32Array[] } {
  const reduced: Float32Array[] = [];
  const comm = {
    backend: 'single', rank: 0, size: 1,
    allReduce: async (x: Tensor) => void reduced.push(x.hostFloat32()),
  } as unknown as Communicator;
  return { comm, reduced };
}

test('the gradients are laid out in the order backward finishes them: logit scale, then per tower its head with the last block, the blocks from the last, the embeddings', (t) => {
  using model = createModel('tiny', { seed: 1 });
  const groups = gradientReadyOrder(model);
  const layers = model.visual.transformer.blocks.length;
  t.log(groups.map((g) => `${g.event}: ${g.params.length}`).join(', '));
  t.deepEqual(groups.map((g) => g.event), [
    'loss',
    ...Array.from({ length: layers }, (_, i) => `visual.block${layers - 1 - i}`),
    'visual',
    ...Array.from({ length: model.text.transformer.blocks.length }, (_, i) => `text.block${model.text.transformer.blocks.length - 1 - i}`),
    'text',
  ]);
  const names = (i: number) => groups[i].params.map((p) => p.name);
  t.deepEqual(names(0), ['logit_scale']);
  // The head (projection, ln_post) before the last block's own parameters, in the same group.
  t.deepEqual(names(1).slice(0, 3), ['visual.proj', 'visual.ln_post.weight', 'visual.ln_post.bias']);
  t.true(names(1).slice(3).every((n) => n.startsWith(`visual.transformer.resblocks.${layers - 1}.`)));
  t.deepEqual(names(layers + 1).sort(), ['visual.class_embedding', 'visual.conv1.weight', 'visual.ln_pre.bias', 'visual.ln_pre.weight', 'visual.positional_embedding']);
  const textFirst = groups.find((g) => g.event.startsWith('text.block'))!;
  t.deepEqual(textFirst.params.slice(0, 3).map((p) => p.name), ['text_projection', 'ln_final.weight', 'ln_final.bias']);
  t.deepEqual(groups.at(-1)!.params.map((p) => p.name).sort(), ['positional_embedding', 'token_embedding.weight']);
  // Every parameter once.
  const all = groups.flatMap((g) => g.params.map((p) => p.name));
  t.is(new Set(all).size, model.parameters().length);
  t.is(all.length, model.parameters().length);
});

test('buckets close as soon as they reach the cap, tile the buffer in order, and the default cap is 25 MB', (t) => {
  using model = createModel('tiny', { seed: 1 });
  const { comm } = recordingComm();
  const cap = 64 * 1024;
  using buckets = new GradientBuckets(model, comm, cap);
  const order = gradientReadyOrder(model).flatMap((g) => g.params);
  const size = new Map(order.map((p) => [p.name, p.numel * 4]));
  t.deepEqual(buckets.buckets.flatMap((b) => b.names), order.map((p) => p.name), 'buckets hold every gradient once, in backward order');
  buckets.buckets.forEach((b, i) => {
    t.is(b.bytes, b.names.reduce((s, n) => s + size.get(n)!, 0));
    if (i < buckets.buckets.length - 1) t.true(b.bytes >= cap, `bucket ${i}: ${b.bytes} bytes`);
    t.true(b.bytes - size.get(b.names.at(-1)!)! < cap, `bucket ${i} closed at the first gradient that reached the cap`);
  });
  t.log(`tiny, cap 64 KiB: ${buckets.buckets.length} buckets of ${buckets.buckets.map((b) => b.bytes).join(', ')} bytes`);
  t.is(DEFAULT_BUCKET_MB, 25);
  using one = new GradientBuckets(createModel('micro', { seed: 1 }), comm);
  t.is(one.buckets.length, 1, 'micro (well under 25 MB) is one bucket at the default cap');
});

test('during a real backward each bucket is launched at the event that finishes it, with its final values; gradients equal those without buckets bit for bit', async (t) => {
  const data = new SyntheticData({ seed: 2, size: 16, imageSize: 32, contextLength: 32 });
  const host = await data.batch(0, 4);
  using images = Tensor.from(host.images, [4, 3, 32, 32]);
  using ids = Tensor.from(host.tokens, [4, 32]);
  const grads = async (withBuckets: boolean) => {
    using model = createModel('tiny', { seed: 5 });
    using runner = new StepRunner(model, 'clip');
    const { comm, reduced } = recordingComm();
    const buckets = withBuckets ? new GradientBuckets(model, comm, 48 * 1024) : null;
    model.zeroGrad();
    buckets?.begin();
    // The loss's gradients (the logit scale's) come first: what DeviceDataParallel signals.
    const loss = runner.forwardBackward([{ images, ids }]);
    const launchesDuringBackward = buckets?.launches.map((l) => l.event) ?? [];
    await buckets?.wait();
    const out = {
      loss,
      values: new Map(model.parameters().map((p) => [p.name, p.grad.hostFloat32()])),
      launches: buckets?.launches ?? [],
      launchesDuringBackward,
      reduced,
      layout: buckets?.buckets.map((b) => b.names) ?? [],
    };
    buckets?.dispose();
    return out;
  };
  const plain = await grads(false);
  const bucketed = await grads(true);
  t.is(bucketed.loss, plain.loss);
  for (const [name, g] of plain.values) t.deepEqual(bucketed.values.get(name), g, name);
  t.log(`${bucketed.layout.length} buckets launched at ${bucketed.launches.map((l) => l.event).join(', ')}`);
  // Each bucket once, in order; all but the last tower's embeddings' launched by the block hooks during backward.
  t.deepEqual(bucketed.launches.map((l) => l.bucket), bucketed.layout.map((_, i) => i));
  t.true(bucketed.launchesDuringBackward.length >= bucketed.layout.length - 2, `${bucketed.launchesDuringBackward.length} of ${bucketed.layout.length} during backward`);
  t.true(bucketed.launchesDuringBackward.some((e) => e.startsWith('visual.block')) && bucketed.launchesDuringBackward.some((e) => e.startsWith('text.block')));
  // What each launch all-reduced was already the bucket's final values.
  bucketed.layout.forEach((names, i) => {
    const final = Float32Array.from(names.flatMap((n) => Array.from(bucketed.values.get(n)!)));
    t.deepEqual(bucketed.reduced[i], final, `bucket ${i} (${names[0]} …) changed after its launch`);
  });
});
