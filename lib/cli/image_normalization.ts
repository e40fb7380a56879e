// --image-mean / --image-std (OpenCLIP's names): the pixel normalisation of images read from files.
import type { Normalization } from '../data/normalize.js';
import { normalizationFor } from '../inference/tokenizer.js';
import { UsageError } from './command.js';

export const IMAGE_NORMALIZATION_OPTIONS = {
  'image-mean': { type: 'string' },
  'image-std': { type: 'string' },
} as const;

export const imageNormalizationUsage = `--image-mean R,G,B --image-std R,G,B: the pixel normalisation of image files ('openai' or
                'synthetic' for both also work). Default: OpenAI's for models with text_cfg.vocab_size 49408,
                the synthetic world's otherwise (the CPU sizes are trained on it)`;

function triple(cmd: string, name: string, value: string): number[] {
  const v = value.split(',').map((s) => Number(s.trim()));
  if (v.length !== 3 || !v.every(Number.isFinite)) throw new UsageError(`clipscale ${cmd}: --${name} must be three numbers R,G,B, got '${value}'`);
  return v;
}

/** The normalisation the options name, or the default for the model's vocab size. */
export function imageNormalization(cmd: string, values: { 'image-mean'?: string; 'image-std'?: string }, vocabSize: number): Normalization {
  const mean = values['image-mean'];
  const std = values['image-std'];
  if (mean === undefined && std === undefined) return normalizationFor(undefined, vocabSize);
  if (mean === undefined || std === undefined) throw new UsageError(`clipscale ${cmd}: give --image-mean and --image-std together`);
  for (const named of ['openai', 'synthetic'] as const) {
    if (mean === named || std === named) {
      if (mean !== std) throw new UsageError(`clipscale ${cmd}: --image-mean ${mean} and --image-std ${std} disagree`);
      return normalizationFor(named, vocabSize);
    }
  }
  try {
    return normalizationFor({ mean: triple(cmd, 'image-mean', mean), std: triple(cmd, 'image-std', std) }, vocabSize);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`clipscale ${cmd}: ${(err as Error).message}`);
  }
}
