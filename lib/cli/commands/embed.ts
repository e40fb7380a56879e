// `clipscale embed`: image and text features of a model with given weights, as .npy files —
// OpenCLIP's encode_image / encode_text (float32, not normalised).
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { UsageError, type Command } from '../command.js';
import { intOption, parse, requireOption } from '../args.js';
import { modelOrRunConfig } from '../run_model.js';
import { IMAGE_NORMALIZATION_OPTIONS, imageNormalization, imageNormalizationUsage } from '../image_normalization.js';
import type { Normalization } from '../../data/normalize.js';
import { listImageFiles as listImages } from '../../inference/images.js';
import { tokenizerForVocab } from '../../inference/tokenizer.js';
import { readNpy, writeNpy, type NpyArray } from '../../eval/npy.js';
import type { CLIP } from '../../nn/clip.js';
import { listModelConfigs } from '../../nn/config.js';
import { clipEncoder } from '../../nn/encoder.js';
import { loadCheckpoint } from '../../train/load.js';
import { writeBytesAtomicSync } from '../../util/atomic_file.js';
import { warnIfNonFinite } from '../../util/non_finite.js';
import { readRegularTextSync } from '../../util/regular_file.js';

const usage = `usage: clipscale embed [--model NAME|config.json] --weights FILE.safetensors|RUN_DIR --out DIR
                       [--pixels FILE.npy | --images PATH...] [--tokens FILE.npy | --texts FILE [--vocab V]]
                       [--batch-size N (default 64)] [--json]

Writes DIR/image_features.npy [N, embed_dim] and/or DIR/text_features.npy [M, embed_dim]: float32,
not normalised, as OpenCLIP's encode_image / encode_text.

  --model     a shipped config name (${listModelConfigs().join(', ')}) or a config JSON in
              OpenCLIP's schema; optional when --weights is a run folder of 'clipscale train' (its
              saved config names the model)
  --weights   safetensors in OpenCLIP's state-dict names (open_clip_model.safetensors, a
              checkpoint-<step>.safetensors of 'clipscale train', or a training directory: its latest
              checkpoint); F32, F16, BF16 or F64
  --pixels    N×3×H×W float32 (or float64) array, already preprocessed (H = W = the model's image size)
  --images    image files or folders (searched recursively, sorted); each is resized (shorter side),
              centre-cropped and normalised as OpenCLIP's eval transform. Give it several times for
              several paths. The order is written to DIR/image_files.txt.
  --tokens    N×context_length int32 or int64 token ids
  --texts     a UTF-8 file of captions, one a line (empty lines are skipped)
  --vocab     the BPE vocabulary for --texts: 'openai' (OpenAI's CLIP vocabulary, shipped), 'synthetic'
              (the synthetic world's, shipped) or a vocabulary file in OpenAI's format. Default: 'openai'
              for models with text_cfg.vocab_size 49408, 'synthetic' otherwise
  --json      print what was written as one JSON object
  ${imageNormalizationUsage}`;

/** Image files under the given paths: files as given, folders searched recursively in sorted order. */
export function listImageFiles(paths: readonly string[]): string[] {
  return listImages(paths, 'clipscale embed: --images');
}

/** The N×3×S×S pixel array of --pixels as Float32Array, checked against the model. */
export function pixelsFromNpy(arr: NpyArray, imageSize: number, where: string): { data: Float32Array; n: number } {
  const [n, c, h, w] = arr.shape;
  if (arr.shape.length !== 4 || c !== 3 || h !== imageSize || w !== imageSize) {
    throw new Error(`${where}: expected an N×3×${imageSize}×${imageSize} array (the model's image size), got shape (${arr.shape.join(', ')})`);
  }
  if (arr.dtype !== 'float32' && arr.dtype !== 'float64') throw new Error(`${where}: expected float32 pixels, got ${arr.dtype}`);
  const data = arr.data instanceof Float32Array ? arr.data : Float32Array.from(arr.data as Float64Array);
  warnIfNonFinite(data, where);
  return { data, n };
}

/** The N×context token ids of --tokens as Int32Array, checked against the model. */
export function tokensFromNpy(arr: NpyArray, contextLength: number, vocabSize: number, where: string): { data: Int32Array; n: number } {
  if (arr.shape.length !== 2 || arr.shape[1] !== contextLength) {
    throw new Error(`${where}: expected an N×${contextLength} array of token ids (the model's context length), got shape (${arr.shape.join(', ')})`);
  }
  if (arr.dtype !== 'int32' && arr.dtype !== 'int64') throw new Error(`${where}: token ids must be int32 or int64, got ${arr.dtype}`);
  const data = new Int32Array(arr.data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Number(arr.data[i]);
    if (!(v >= 0 && v < vocabSize)) {
      const row = Math.floor(i / contextLength);
      throw new Error(`${where}: token id ${v} at row ${row}, position ${i % contextLength} is outside the model's vocabulary [0, ${vocabSize})`);
    }
    data[i] = v;
  }
  return { data, n: arr.shape[0] };
}

async function imagePixels(files: string[], imageSize: number, normalization: Normalization): Promise<Float32Array> {
  const { transformImage } = await import('../../data/transforms.js');
  const px = 3 * imageSize * imageSize;
  const out = new Float32Array(files.length * px);
  for (let i = 0; i < files.length; i++) {
    try {
      await transformImage(files[i], { size: imageSize, train: false, normalization }, out, i * px);
    } catch (err) {
      const message = (err as Error).message;
      throw new Error(`clipscale embed: ${message.includes(files[i]) ? message : `cannot read image '${files[i]}': ${message}`}`);
    }
  }
  return out;
}

export interface EmbedResult {
  image_features?: { path: string; shape: [number, number] };
  text_features?: { path: string; shape: [number, number] };
  image_files?: string;
}

export async function runEmbed(argv: string[]): Promise<EmbedResult> {
  const cmd = 'embed';
  const { values } = parse(cmd, argv, {
    model: { type: 'string' },
    weights: { type: 'string' },
    pixels: { type: 'string' },
    images: { type: 'string', multiple: true },
    tokens: { type: 'string' },
    texts: { type: 'string' },
    vocab: { type: 'string' },
    out: { type: 'string' },
    'batch-size': { type: 'string' },
    json: { type: 'boolean' },
    ...IMAGE_NORMALIZATION_OPTIONS,
  });
  const weights = requireOption(cmd, 'weights', values.weights);
  const modelName = await modelOrRunConfig(cmd, values.model, weights);
  const out = requireOption(cmd, 'out', values.out);
  const batchSize = intOption(cmd, 'batch-size', values['batch-size'], 64, { min: 1, max: 65_536 });
  if (batchSize < 1) throw new UsageError(`clipscale embed: --batch-size must be ≥ 1, got ${batchSize}`);
  if (values.pixels && values.images) throw new UsageError('clipscale embed: give --pixels or --images, not both');
  if (values.tokens && values.texts) throw new UsageError('clipscale embed: give --tokens or --texts, not both');
  if (values.vocab && !values.texts) throw new UsageError('clipscale embed: --vocab is only used with --texts');
  if (!values.pixels && !values.images && !values.tokens && !values.texts) {
    throw new UsageError('clipscale embed: nothing to embed: give --pixels or --images, and/or --tokens or --texts');
  }

  const model: CLIP = await loadCheckpoint(modelName, weights);
  try {
    const cfg = model.config;
    const d = cfg.embed_dim;
    const encoder = clipEncoder(model, batchSize);
    const result: EmbedResult = {};
    mkdirSync(out, { recursive: true });

    if (values.pixels || values.images) {
      let pixels: Float32Array;
      let n: number;
      if (values.pixels) {
        ({ data: pixels, n } = pixelsFromNpy(readNpy(values.pixels), cfg.vision_cfg.image_size, `--pixels '${values.pixels}'`));
      } else {
        const files = listImageFiles(values.images!);
        pixels = await imagePixels(files, cfg.vision_cfg.image_size, imageNormalization(cmd, values, cfg.text_cfg.vocab_size));
        n = files.length;
        result.image_files = join(out, 'image_files.txt');
        writeBytesAtomicSync(result.image_files, files.map((f) => resolve(f)).join('\n') + '\n');
      }
      const features = await encoder.encodeImages(pixels, n);
      const path = join(out, 'image_features.npy');
      warnIfNonFinite(features, `clipscale embed: image features written to '${path}'`);
      writeNpy(path, features, [n, d]);
      result.image_features = { path, shape: [n, d] };
    }

    if (values.tokens || values.texts) {
      let tokens: Int32Array;
      let n: number;
      if (values.tokens) {
        ({ data: tokens, n } = tokensFromNpy(readNpy(values.tokens), cfg.text_cfg.context_length, cfg.text_cfg.vocab_size, `--tokens '${values.tokens}'`));
      } else {
        const tokenizer = tokenizerForVocab(values.vocab, cfg.text_cfg.vocab_size, 'clipscale embed');
        let text: string;
        try {
          text = readRegularTextSync(values.texts!, { what: '--texts' });
        } catch (err) {
          throw new Error(`clipscale embed: cannot read --texts '${values.texts}': ${(err as Error).message}`);
        }
        const captions = text.split(/\r?\n/).filter((l) => l.trim() !== '');
        if (captions.length === 0) throw new Error(`clipscale embed: --texts '${values.texts}' holds no captions`);
        tokens = tokenizer.tokenize(captions, cfg.text_cfg.context_length);
        n = captions.length;
      }
      const features = await encoder.encodeTexts(tokens, n);
      const path = join(out, 'text_features.npy');
      warnIfNonFinite(features, `clipscale embed: text features written to '${path}'`);
      writeNpy(path, features, [n, d]);
      result.text_features = { path, shape: [n, d] };
    }
    return result;
  } finally {
    model.dispose();
  }
}

export const command: Command = {
  name: 'embed',
  summary: 'image/text features (.npy) of a model with OpenCLIP-named safetensors weights',
  usage,
  async run(argv) {
    const result = await runEmbed(argv);
    if (argv.includes('--json')) {
      console.log(JSON.stringify(result));
    } else {
      if (result.image_features) console.log(`wrote ${result.image_features.path} (${result.image_features.shape.join('×')})`);
      if (result.text_features) console.log(`wrote ${result.text_features.path} (${result.text_features.shape.join('×')})`);
    }
    return 0;
  },
};
