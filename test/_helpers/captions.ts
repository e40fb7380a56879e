// Token ids of captions of given lengths for a model's text tower, shared by the tests of what the
// CPU skips after a caption's end token (inference and training).
import type { CLIP } from '../../lib/nn/clip.js';
import { Rng } from '../../lib/util/rng.js';

/** Token rows [random ids, end] of these lengths (the end-of-text id, vocab − 1, is each row's maximum), then padding. */
export function captions(model: CLIP, lengths: number[], seed: number): Int32Array {
  const rng = new Rng(seed);
  const ctx = model.config.text_cfg.context_length;
  const vocab = model.config.text_cfg.vocab_size;
  const ids = new Int32Array(lengths.length * ctx);
  lengths.forEach((len, b) => {
    if (len < 1 || len > ctx) throw new Error(`captions: a length must be 1..${ctx}, got ${len}`);
    for (let j = 0; j < len - 1; j++) ids[b * ctx + j] = 1 + Math.floor(rng.uniform() * (vocab - 3));
    ids[b * ctx + len - 1] = vocab - 1;
    // What follows the end token must not matter: random ids below it, not only zeros.
    for (let j = len; j < ctx; j++) ids[b * ctx + j] = rng.uniform() < 0.5 ? 0 : Math.floor(rng.uniform() * (vocab - 1));
  });
  return ids;
}
