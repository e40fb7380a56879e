// Training the text tower on its captions packed end to end (lib/nn/text.ts): under the causal mask
// a caption's pooled token never sees the positions after it, and their gradients are exactly
// zero, so each row runs only up to its pooled token. Checked against the padded path
// (CLIPSCALE_PACK_TEXT=0, OpenCLIP's every position): features bit for bit, every text parameter's
// gradient to fp32 rounding (the weight gradients sum fewer rows, grouped differently), on rows of
// every length, with activation recomputation, across batches of different token counts (buffers
// grow and are reused as views), and packing left off where a tower has no causal mask.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { CLIP } from '../lib/nn/clip.js';
import { parseModelConfig } from '../lib/nn/config.js';
import { Tensor } from '../lib/tensor.js';
import { Rng } from '../lib/util/rng.js';
import { relErr } from './_helpers/numeric.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '_fixtures', 'openclip', 'models');

function model(name: string, opts: { recompute?: boolean; causal?: boolean } = {}): CLIP {
  const raw = JSON.parse(readFileSync(join(fixtures, `${name}.json`), 'utf8')).config as Record<string, Record<string, unknown>>;
  const text = { ...raw.text_cfg, layers: 3, ...(opts.causal === false ? { no_causal_mask: true } : {}) };
  return new CLIP(parseModelConfig({ ...raw, text_cfg: text }, name), { recompute: opts.recompute ?? false }).init(5);
}

/** Token rows [random ids, end token] of these lengths (the end id, vocab − 1, is each row's maximum), then random padding. */
function captions(m: CLIP, lengths: number[], seed: number): Int32Array {
  const rng = new Rng(seed);
  const ctx = m.config.text_cfg.context_length;
  const vocab = m.config.text_cfg.vocab_size;
  const ids = new Int32Array(lengths.length * ctx);
  lengths.forEach((len, b) => {
    for (let j = 0; j < len - 1; j++) ids[b * ctx + j] = 1 + Math.floor(rng.uniform() * (vocab - 3));
    ids[b * ctx + len - 1] = vocab - 1;
    for (let j = len; j < ctx; j++) ids[b * ctx + j] = rng.uniform() < 0.5 ? 0 : Math.floor(rng.uniform() * (vocab - 1));
  });
  return ids;
}

/** A training forward and backward of the text tower alone: its features and every text parameter's gradient. */
function forwardBackward(m: CLIP, tokens: Int32Array, n: number, pack: boolean): { features: Float32Array; grads: Float32Array[] } {
  const before = process.env.CLIPSCALE_PACK_TEXT;
  process.env.CLIPSCALE_PACK_TEXT = pack ? '1' : '0';
  try {
    for (const p of m.text.parameters()) (p.grad.view() as Float32Array).fill(0);
    using ids = Tensor.from(tokens, [n, m.config.text_cfg.context_length]);
    const features = Float32Array.from(m.encodeText(ids).hostFloat32());
    const rng = new Rng(n * 7 + 1);
    using dout = Tensor.from(Float32Array.from({ length: features.length }, () => rng.normal()), [n, features.length / n]);
    m.text.backward(dout);
    return { features, grads: m.text.parameters().map((p) => Float32Array.from(p.grad.view() as Float32Array)) };
  } finally {
    if (before === undefined) delete process.env.CLIPSCALE_PACK_TEXT;
    else process.env.CLIPSCALE_PACK_TEXT = before;
  }
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

for (const recompute of [false, true]) {
  test(`packed text training: padded features bit for bit and the same gradients${recompute ? ', with recomputation' : ''}`, (t) => {
    const m = model('vit-b-32-small', { recompute });
    const ctx = m.config.text_cfg.context_length;
    const names = m.text.parameters().map((p) => p.name);
    // Rows of every length; the next batch has more tokens than the first (its buffers grow).
    for (const [i, lengths] of [[1, ctx, 5, 2], [3, 3, 3], [ctx - 1, 1, 7, ctx, 9, 2], [ctx, ctx]].entries()) {
      const tokens = captions(m, lengths, 70 + i);
      const packed = forwardBackward(m, tokens, lengths.length, true);
      const padded = forwardBackward(m, tokens, lengths.length, false);
      t.deepEqual(bits(packed.features), bits(padded.features), `features, lengths ${lengths}`);
      let worst = 0;
      for (const [j, g] of packed.grads.entries()) {
        const err = relErr(g, padded.grads[j]);
        worst = Math.max(worst, err);
        t.true(err <= 1e-5, `${names[j]}: relErr ${err}, lengths ${lengths}`);
      }
      t.log(`lengths ${lengths}: largest relative difference of a gradient ${worst.toExponential(2)}`);
    }
    m.dispose();
  });
}

test('packed text training holds activation buffers for the captions\' tokens, not every position', (t) => {
  const m = model('vit-b-32-small');
  const lengths = [4, 4, 4, 4];
  const tokens = captions(m, lengths, 90);
  forwardBackward(m, tokens, lengths.length, false);
  const padded = m.text.transformer.bufferBytes();
  m.releaseBuffers();
  forwardBackward(m, tokens, lengths.length, true);
  const packed = m.text.transformer.bufferBytes();
  t.true(packed < padded / 2, `transformer buffers ${packed} B packed vs ${padded} B padded`);
  m.dispose();
});

test('without a causal mask the text tower trains at full length (every position reaches the pooled one)', (t) => {
  const m = model('vit-b-32-small', { causal: false });
  const lengths = [1, 5, 2];
  const tokens = captions(m, lengths, 91);
  const a = forwardBackward(m, tokens, lengths.length, true);
  const b = forwardBackward(m, tokens, lengths.length, false);
  t.deepEqual(bits(a.features), bits(b.features));
  for (const [j, g] of a.grads.entries()) t.deepEqual(bits(g), bits(b.grads[j]));
  m.dispose();
});
