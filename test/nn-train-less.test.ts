// Training on less than OpenCLIP computes, with its results: the text tower on its captions packed
// end to end (lib/nn/text.ts: under the causal mask a caption's pooled token never sees the
// positions after it, and their gradients are exactly zero), and each tower's last block on the
// pooled rows only (row_pick.ts: nothing reads the others after it). Checked against every position
// and row (CLIPSCALE_PACK_TEXT=0, CLIPSCALE_PICK_ROWS=0): features bit for bit, every parameter's
// gradient to fp32 rounding (the weight gradients sum fewer rows, grouped differently), on rows of
// every length, with activation recomputation, across batches of different token counts (buffers
// grow and are reused as views), and both left off where they do not apply (no causal mask, average
// or attentional pooling).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test, { type ExecutionContext } from 'ava';

import { CLIP } from '../lib/nn/clip.js';
import { parseModelConfig } from '../lib/nn/config.js';
import { Tensor } from '../lib/tensor.js';
import { Rng } from '../lib/util/rng.js';
import { relErr } from './_helpers/numeric.js';
import { captions } from './_helpers/captions.js';
import { withEnv } from './_helpers/env.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '_fixtures', 'openclip', 'models');

function model(name: string, opts: { recompute?: boolean; causal?: boolean } = {}): CLIP {
  const raw = JSON.parse(readFileSync(join(fixtures, `${name}.json`), 'utf8')).config as Record<string, Record<string, unknown>>;
  const text = { ...raw.text_cfg, layers: 3, ...(opts.causal === false ? { no_causal_mask: true } : {}) };
  return new CLIP(parseModelConfig({ ...raw, text_cfg: text }, name), { recompute: opts.recompute ?? false }).init(5);
}

/**
 * A training forward and backward of the text tower alone: its features and every text parameter's
 * gradient. `pack`: the captions packed; `pick`: the last block on the pooled rows only.
 */
function forwardBackward(m: CLIP, tokens: Int32Array, n: number, pack: boolean, pick = pack): { features: Float32Array; grads: Float32Array[] } {
  return withEnv({ CLIPSCALE_PACK_TEXT: pack ? '1' : '0', CLIPSCALE_PICK_ROWS: pick ? '1' : '0' }, () => {
    for (const p of m.text.parameters()) (p.grad.view() as Float32Array).fill(0);
    using ids = Tensor.from(tokens, [n, m.config.text_cfg.context_length]);
    const features = Float32Array.from(m.encodeText(ids).hostFloat32());
    const rng = new Rng(n * 7 + 1);
    using dout = Tensor.from(Float32Array.from({ length: features.length }, () => rng.normal()), [n, features.length / n]);
    m.text.backward(dout);
    return { features, grads: m.text.parameters().map((p) => Float32Array.from(p.grad.view() as Float32Array)) };
  });
}

/** The same for the image tower. */
function imageForwardBackward(m: CLIP, pixels: Float32Array, n: number, pick: boolean): { features: Float32Array; grads: Float32Array[] } {
  return withEnv({ CLIPSCALE_PICK_ROWS: pick ? '1' : '0' }, () => {
    for (const p of m.visual.parameters()) (p.grad.view() as Float32Array).fill(0);
    const size = m.config.vision_cfg.image_size;
    using images = Tensor.from(pixels, [n, 3, size, size]);
    const features = Float32Array.from(m.encodeImage(images).hostFloat32());
    const rng = new Rng(n * 11 + 3);
    using dout = Tensor.from(Float32Array.from({ length: features.length }, () => rng.normal()), [n, features.length / n]);
    m.visual.backward(dout);
    return { features, grads: m.visual.parameters().map((p) => Float32Array.from(p.grad.view() as Float32Array)) };
  });
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function sameResults(t: ExecutionContext, a: { features: Float32Array; grads: Float32Array[] }, b: typeof a, names: string[], what: string): number {
  t.deepEqual(bits(a.features), bits(b.features), `features, ${what}`);
  let worst = 0;
  for (const [j, g] of a.grads.entries()) {
    const err = relErr(g, b.grads[j]);
    worst = Math.max(worst, err);
    t.true(err <= 1e-5, `${names[j]}: relErr ${err}, ${what}`);
  }
  return worst;
}

for (const recompute of [false, true]) {
  test(`packed text training, the last block on the pooled rows: padded features bit for bit and the same gradients${recompute ? ', with recomputation' : ''}`, (t) => {
    const m = model('vit-b-32-small', { recompute });
    const ctx = m.config.text_cfg.context_length;
    const names = m.text.parameters().map((p) => p.name);
    // Rows of every length; the next batch has more tokens than the first (its buffers grow).
    for (const [i, lengths] of [[1, ctx, 5, 2], [3, 3, 3], [ctx - 1, 1, 7, ctx, 9, 2], [ctx, ctx]].entries()) {
      const tokens = captions(m, lengths, 70 + i);
      const full = forwardBackward(m, tokens, lengths.length, false, false); // OpenCLIP's every position
      for (const [pack, pick] of [[true, true], [true, false], [false, true]]) {
        const what = `lengths ${lengths}, packed ${pack}, picked ${pick}`;
        const worst = sameResults(t, forwardBackward(m, tokens, lengths.length, pack, pick), full, names, what);
        t.log(`${what}: largest relative difference of a gradient ${worst.toExponential(2)}`);
      }
    }
    m.dispose();
  });
}

for (const name of ['vit-b-32-small', 'fields-avg-first', 'fields-attn-pool']) {
  test(`image tower training (${name}), the last block on the class tokens where it pools them: the same features bit for bit and gradients`, (t) => {
    const m = model(name);
    const names = m.visual.parameters().map((p) => p.name);
    const size = m.config.vision_cfg.image_size;
    const rng = new Rng(17);
    for (const n of [1, 3]) {
      const pixels = Float32Array.from({ length: n * 3 * size * size }, () => rng.normal());
      const worst = sameResults(t, imageForwardBackward(m, pixels, n, true), imageForwardBackward(m, pixels, n, false), names, `batch ${n}`);
      t.log(`batch ${n}: largest relative difference of a gradient ${worst.toExponential(2)}`);
    }
    m.dispose();
  });
}

test('packed text training holds activation buffers for the captions\' tokens, not every position', (t) => {
  const m = model('vit-b-32-small');
  const lengths = [4, 4, 4, 4];
  const tokens = captions(m, lengths, 90);
  const bytes = (pack: boolean, pick: boolean) => {
    m.releaseBuffers();
    forwardBackward(m, tokens, lengths.length, pack, pick);
    return m.text.transformer.bufferBytes();
  };
  const full = bytes(false, false), picked = bytes(false, true), packed = bytes(true, false);
  t.true(packed < full / 2, `transformer buffers ${packed} B packed vs ${full} B at full length`);
  t.true(picked < full, `transformer buffers ${picked} B with the last block on the pooled rows vs ${full} B`);
  m.dispose();
});

test('without a causal mask the text tower trains at full length (every position reaches the pooled one)', (t) => {
  const m = model('vit-b-32-small', { causal: false });
  const lengths = [1, 5, 2];
  const tokens = captions(m, lengths, 91);
  const a = forwardBackward(m, tokens, lengths.length, true, false);
  const b = forwardBackward(m, tokens, lengths.length, false, false);
  t.deepEqual(bits(a.features), bits(b.features));
  for (const [j, g] of a.grads.entries()) t.deepEqual(bits(g), bits(b.grads[j]));
  // Its last block still computes only the pooled rows: the attention reads every row's keys and values before.
  const names = m.text.parameters().map((p) => p.name);
  sameResults(t, forwardBackward(m, tokens, lengths.length, true, true), b, names, 'picked rows, no causal mask');
  m.dispose();
});
