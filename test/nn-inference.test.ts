// Inference mode (Module.inference / noGrad): forwards that keep nothing for backward and reuse
// one set of buffers for the whole depth; on the CPU text rows run only up to their end token
// (packed), the last blocks only on the pooled rows, and the linear weights are packed once a
// scope. Checked: bit-identical features to the training forward on configs covering the OpenCLIP
// fields (avg pooling, attentional pooler, LayerScale, no causal mask, eos pooling, GELU tanh,
// proj_bias, recompute) and on rows of every length, the packed weights' lifetime, inference
// memory constant in depth, backward after an inference forward refused, training untouched by
// an evaluation in between, and the same on the emulated CUDA device.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { noGpuReason } from './_helpers/cuda.js';
import { CLIP, createModel } from '../lib/nn/clip.js';
import { parseModelConfig } from '../lib/nn/config.js';
import { clipEncoder } from '../lib/nn/encoder.js';
import { noGrad } from '../lib/nn/module.js';
import { AdamW } from '../lib/optim/adamw.js';
import { Tensor } from '../lib/tensor.js';
import { Rng } from '../lib/util/rng.js';
import { captions } from './_helpers/captions.js';
import { withEnv } from './_helpers/env.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '_fixtures', 'openclip', 'models');

/** A fixture's config (no weights: a random init) with deeper towers, so ping-pong buffers wrap around. */
function deeper(name: string, layers = 5, recompute = false): CLIP {
  const raw = JSON.parse(readFileSync(join(fixtures, `${name}.json`), 'utf8')).config as Record<string, Record<string, unknown>>;
  const cfg = { ...raw, vision_cfg: { ...raw.vision_cfg, layers }, text_cfg: { ...raw.text_cfg, layers: layers - 1 } };
  return new CLIP(parseModelConfig(cfg, name), { recompute }).init(3);
}

function inputs(model: CLIP, n: number, seed: number): { pixels: Float32Array; tokens: Int32Array } {
  const rng = new Rng(seed);
  const size = model.config.vision_cfg.image_size;
  const ctx = model.config.text_cfg.context_length;
  const vocab = model.config.text_cfg.vocab_size;
  const pixels = Float32Array.from({ length: n * 3 * size * size }, () => rng.normal());
  const tokens = Int32Array.from({ length: n * ctx }, () => Math.floor(rng.uniform() * vocab));
  return { pixels, tokens };
}

/** Features from both towers; the input tensors go to `keep` (a backward reads them) or are disposed. */
function encode(model: CLIP, pixels: Float32Array, tokens: Int32Array, n: number, keep?: Tensor[]): { image: Float32Array; text: Float32Array } {
  const size = model.config.vision_cfg.image_size;
  const images = Tensor.from(pixels, [n, 3, size, size]);
  const ids = Tensor.from(tokens, [n, model.config.text_cfg.context_length]);
  if (keep) keep.push(images, ids);
  using _ = { [Symbol.dispose]: () => { if (!keep) { images.dispose(); ids.dispose(); } } };
  const image = Float32Array.from(model.encodeImage(images).hostFloat32());
  const text = Float32Array.from(model.encodeText(ids).hostFloat32());
  return { image, text };
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

const configs = ['vit-b-32-small', 'vit-b-32-small-quickgelu', 'fields-avg-first', 'fields-attn-pool', 'fields-attn-pool-packed', 'fields-clipa', 'fields-gelu-tanh', 'fields-eos-noproj', 'siglip-small'];

for (const name of configs) {
  test(`${name} (5/4 layers): inference features are bit-identical to the training forward's`, async (t) => {
    for (const recompute of [false, true]) {
      const model = deeper(name, 5, recompute);
      for (const n of [3, 2]) {
        const { pixels, tokens } = inputs(model, n, 10 + n);
        const trained = encode(model, pixels, tokens, n);
        let inferred;
        {
          using _ = model.inference();
          t.true(model.inInference);
          inferred = encode(model, pixels, tokens, n);
        }
        t.false(model.inInference);
        t.true(bitsEqual(inferred.image, trained.image), `image features, n=${n}, recompute=${recompute}`);
        t.true(bitsEqual(inferred.text, trained.text), `text features, n=${n}, recompute=${recompute}`);
        // clipEncoder (evaluation, embed) gives the same features too.
        t.true(bitsEqual(await clipEncoder(model, 2).encodeImages(pixels, n), trained.image), `clipEncoder images, n=${n}`);
        t.true(bitsEqual(await clipEncoder(model, 2).encodeTexts(tokens, n), trained.text), `clipEncoder texts, n=${n}`);
        t.is(model.bufferBytes('inference'), 0, 'clipEncoder releases its inference buffers when a call ends');
      }
      model.dispose();
    }
  });
}

/** fn with the training forward's text tower at full length (CLIPSCALE_PACK_TEXT=0: OpenCLIP's every position). */
function atFullLength<T>(fn: () => T): T {
  return withEnv({ CLIPSCALE_PACK_TEXT: '0' }, fn);
}

test('text inference runs each row only up to its end token (packed), with the padded features bit for bit', async (t) => {
  const model = deeper('vit-b-32-small', 4);
  const ctx = model.config.text_cfg.context_length;
  const textBytes = (tokens: Int32Array, n: number) => {
    using ids = Tensor.from(tokens, [n, ctx]);
    using _ = model.inference();
    model.text.releaseInferenceBuffers();
    const features = Float32Array.from(model.encodeText(ids).hostFloat32());
    return { features, bytes: model.text.bufferBytes('inference') };
  };
  const cases = [[1, ctx, 5, 2], [ctx, ctx], [3, 3, 3], [ctx - 1, 1], [7]];
  for (const [i, lengths] of cases.entries()) {
    const tokens = captions(model, lengths, 40 + i);
    const n = lengths.length;
    using ids = Tensor.from(tokens, [n, ctx]);
    const padded = atFullLength(() => Float32Array.from(model.encodeText(ids).hostFloat32())); // every position
    t.true(bitsEqual(textBytes(tokens, n).features, padded), `lengths ${lengths}`);
    t.true(bitsEqual(await clipEncoder(model, 2).encodeTexts(tokens, n), padded), `clipEncoder, lengths ${lengths}`);
  }
  // Short captions hold buffers for their tokens only; full-length ones for every position.
  const short = textBytes(captions(model, [4, 4, 4, 4], 50), 4).bytes;
  const full = textBytes(captions(model, [ctx, ctx, ctx, ctx], 51), 4).bytes;
  t.true(short < full / 2, `inference buffers ${short} B for 4 tokens a row vs ${full} B for ${ctx}`);
  // Batches of different token counts in one call: buffers grow and are reused as views.
  const lengths = [2, ctx, 9, 1, ctx - 1, 3, ctx - 2];
  const tokens = captions(model, lengths, 60);
  using all = Tensor.from(tokens, [lengths.length, ctx]);
  const padded = atFullLength(() => Float32Array.from(model.encodeText(all).hostFloat32()));
  for (const batch of [1, 2, 3]) t.true(bitsEqual(await clipEncoder(model, batch).encodeTexts(tokens, lengths.length), padded), `clipEncoder batch ${batch}`);
  model.dispose();
});

test('an inference scope packs the linear weights once for the CPU GEMM, drops them when it ends, and repacks what changes', (t) => {
  const model = deeper('vit-b-32-small', 3);
  const n = 2;
  const { pixels, tokens } = inputs(model, n, 70);
  const linear = model.visual.transformer.blocks[0].mlp.cFc.weight;
  const inProj = model.text.transformer.blocks[1].attn.inProjWeight;
  const conv1 = model.visual.conv1; // the patch embedding's weight, packed as the matrix it multiplies as
  const trained = encode(model, pixels, tokens, n);
  t.is(linear.packedCopy, null, 'a training forward packs nothing');
  {
    using _ = model.inference();
    const first = encode(model, pixels, tokens, n);
    t.is(linear.packedCopy, null, 'not packed for a single forward');
    const second = encode(model, pixels, tokens, n);
    t.truthy(linear.packedCopy, 'packed at the second use in the scope');
    t.truthy(inProj.packedCopy);
    t.truthy(conv1.packedCopy);
    const packed = linear.packedCopy;
    const third = encode(model, pixels, tokens, n);
    t.is(linear.packedCopy, packed, 'the same packed copy serves the next forward');
    for (const r of [first, second, third]) t.true(bitsEqual(r.image, trained.image) && bitsEqual(r.text, trained.text));
    // Changed weights: setValues drops the copy, the next forward packs the new values.
    const values = Float32Array.from(linear.hostValues(), (v) => -v);
    linear.setValues(values);
    t.is(linear.packedCopy, null, 'setValues drops the packed copy');
    encode(model, pixels, tokens, n);
    const changed = encode(model, pixels, tokens, n);
    t.false(bitsEqual(changed.image, trained.image), 'the new weights are used');
    t.truthy(linear.packedCopy, 'packed again');
    // An optimizer step changes weights too: it drops their packed copies.
    new AdamW([linear], { lr: 1e-3 }).update(1e-3);
    t.is(linear.packedCopy, null, "the optimizer's update drops the packed copy");
  }
  t.is(linear.packedCopy, null, 'the scope drops its packed copies when it ends');
  t.is(inProj.packedCopy, null);
  t.is(conv1.packedCopy, null);
  // The changed weights without packing give the same features as packed.
  const unpacked = (() => {
    using _ = model.inference({ packWeights: false });
    const r = encode(model, pixels, tokens, n);
    t.is(linear.packedCopy, null, 'packWeights: false packs nothing');
    return r;
  })();
  const trainedChanged = encode(model, pixels, tokens, n);
  t.true(bitsEqual(unpacked.image, trainedChanged.image) && bitsEqual(unpacked.text, trainedChanged.text));
  model.dispose();
});

test('inference memory is constant in depth; training memory grows with it', (t) => {
  const bytes = (layers: number) => {
    const model = createModel('tiny', { overrides: { vision_cfg: { layers }, text_cfg: { layers } } });
    const { pixels, tokens } = inputs(model, 4, 1);
    {
      using _ = noGrad(model);
      encode(model, pixels, tokens, 4);
    }
    const inference = model.bufferBytes('inference');
    const untouched = model.bufferBytes('training');
    t.false(model.parameters().some((p) => p.hasGrad), 'encoding alone makes no gradient tensors');
    encode(model, pixels, tokens, 4);
    const training = model.bufferBytes('training');
    model.dispose();
    return { inference, untouched, training };
  };
  // From 3 layers on (with 2, the last block computes only the pooled rows, so one of the two
  // ping-pong output buffers is only ever asked for those and stays small).
  const three = bytes(3);
  const eight = bytes(8);
  t.is(three.untouched, 0, 'an inference forward makes no training buffers');
  t.is(eight.inference, three.inference, 'inference buffers: the same for 3 and 8 layers');
  t.true(eight.training > 2 * three.training, `training buffers grow with depth: ${three.training} → ${eight.training}`);
  t.true(eight.inference < eight.training / 2, `inference ${eight.inference} B vs training ${eight.training} B at 8 layers`);
  t.log(`tiny, batch 4: inference ${three.inference} B at 3 and 8 layers; training ${three.training} B → ${eight.training} B`);
});

test('backward after an inference forward, or in inference mode, throws a clear error', (t) => {
  const model = createModel('tiny');
  const { pixels, tokens } = inputs(model, 2, 2);
  using dout = Tensor.zeros([2, model.config.embed_dim]);
  {
    using _ = model.inference();
    encode(model, pixels, tokens, 2);
    t.throws(() => model.visual.backward(dout), { message: /VisionTransformer: backward in inference mode/ });
  }
  t.throws(() => model.visual.backward(dout), { message: /VisionTransformer: backward after an inference forward.*run a training forward/ });
  t.throws(() => model.text.backward(dout), { message: /TextTransformer: backward after an inference forward/ });
  t.throws(() => model.visual.transformer.blocks[0].mlp.backward(dout), { message: /backward after an inference forward/ });
  // A training forward makes backward possible again.
  const kept: Tensor[] = [];
  encode(model, pixels, tokens, 2, kept);
  t.notThrows(() => model.visual.backward(dout));
  t.notThrows(() => model.text.backward(dout));
  // An inference forward leaves the training buffers (here the features returned) as they were.
  const size = model.config.vision_cfg.image_size;
  using images = Tensor.from(pixels.map((v) => -v), [2, 3, size, size]);
  const trainingFeatures = model.encodeImage(images);
  const before = Float32Array.from(trainingFeatures.view() as Float32Array);
  {
    using _ = model.inference();
    const inferred = model.encodeImage(kept[0]);
    t.not(inferred, trainingFeatures);
  }
  t.true(bitsEqual(trainingFeatures.view() as Float32Array, before), 'training features untouched by an inference forward');
  for (const x of kept) x.dispose();
  model.dispose();
});

/** Weights and gradients after two training steps (forward, backward, SGD), with or without evaluations before each. */
function twoSteps(evaluate: boolean, name: string): Map<string, Float32Array> {
  const model = deeper(name, 3);
  const n = 3;
  const a = inputs(model, n, 20);
  const b = inputs(model, n, 21);
  const rng = new Rng(7);
  const d = model.config.embed_dim;
  const px = 3 * model.config.vision_cfg.image_size ** 2;
  const ctx = model.config.text_cfg.context_length;
  using dImage = Tensor.from(Float32Array.from({ length: n * d }, () => rng.normal()), [n, d]);
  using dText = Tensor.from(Float32Array.from({ length: n * d }, () => rng.normal()), [n, d]);
  for (const step of [0, 1]) {
    const x = step === 0 ? a : b;
    if (evaluate) {
      // The same batch size as training's (the buffers would collide if they were shared) and another one.
      using _ = model.inference();
      encode(model, b.pixels, b.tokens, n);
      encode(model, a.pixels.subarray(0, 2 * px), a.tokens.subarray(0, 2 * ctx), 2);
    }
    const kept: Tensor[] = [];
    encode(model, x.pixels, x.tokens, n, kept);
    model.zeroGrad();
    model.visual.backward(dImage);
    model.text.backward(dText);
    for (const k of kept) k.dispose();
    // A plain SGD step so the second step starts from changed weights.
    for (const p of model.parameters()) {
      const v = p.values();
      const g = p.grad.view() as Float32Array;
      for (let i = 0; i < v.length; i++) v[i] -= 0.01 * g[i];
    }
  }
  const state = new Map(model.parameters().map((p) => [`${p.name} (gradient)`, Float32Array.from(p.grad.view() as Float32Array)]));
  for (const p of model.parameters()) state.set(p.name, Float32Array.from(p.values()));
  model.dispose();
  return state;
}

for (const name of ['vit-b-32-small', 'fields-clipa', 'fields-attn-pool']) {
  test(`${name}: training steps with evaluations in between give bit-identical gradients and weights`, (t) => {
    const plain = twoSteps(false, name);
    const evaluated = twoSteps(true, name);
    t.is(evaluated.size, plain.size);
    for (const [k, v] of plain) t.true(bitsEqual(evaluated.get(k)!, v), k);
  });
}

(noGpuReason === null ? test : test.skip)(`CUDA (${noGpuReason ?? 'available'}): inference features are bit-identical to the training forward's, and clipEncoder reads them back`, async (t) => {
  const model = createModel('micro', { seed: 4, overrides: { vision_cfg: { layers: 3 }, text_cfg: { layers: 3 } } }).to('cuda');
  const n = 2;
  const { pixels, tokens } = inputs(model, n, 30);
  const size = model.config.vision_cfg.image_size;
  const encodeOn = () => {
    using hostImages = Tensor.from(pixels, [n, 3, size, size]);
    using hostIds = Tensor.from(tokens, [n, model.config.text_cfg.context_length]);
    using images = hostImages.to(model.device);
    using ids = hostIds.to(model.device);
    return { image: model.encodeImage(images).hostFloat32(), text: model.encodeText(ids).hostFloat32() };
  };
  const trained = encodeOn();
  let inferred;
  {
    using _ = model.inference();
    inferred = encodeOn();
  }
  t.true(bitsEqual(inferred.image, trained.image));
  t.true(bitsEqual(inferred.text, trained.text));
  const viaEncoder = await clipEncoder(model, 2).encodeImages(pixels, n);
  t.true(bitsEqual(viaEncoder, trained.image));
  model.dispose();
});
