// What the training command's tests share: a config small enough that a step takes
// milliseconds, a sink that keeps what is written, and a checkpoint's weights by name.
import { writeFileSync } from 'node:fs';

import type { TextSink } from '../../lib/train/logging.js';
import { readSafetensors } from '../../lib/train/safetensors.js';

/** Writes a micro config (16-pixel images, 16-token context) for `vocabSize` tokens to `path`. */
export function writeMicroConfig(path: string, vocabSize: number): string {
  writeFileSync(path, JSON.stringify({
    embed_dim: 16,
    vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
    text_cfg: { context_length: 16, vocab_size: vocabSize, width: 16, heads: 2, layers: 1 },
  }));
  return path;
}

/** A sink that keeps what is written (not a TTY: the command prints plain lines). */
export function capture(): TextSink & { text: string } {
  const s = { text: '', write(chunk: string) { s.text += chunk; return true; } };
  return s;
}

export async function weightsOf(path: string): Promise<Map<string, Float32Array>> {
  const { tensors } = await readSafetensors(path);
  return new Map([...tensors].map(([k, r]) => [k, r.data as Float32Array]));
}
