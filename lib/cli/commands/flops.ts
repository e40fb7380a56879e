import { loadModelConfig } from '../../nn/config.js';
import { computeCost } from '../../scaling/flops.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { intOption, parse, requireOption } from '../args.js';

export const command: Command = {
  name: 'flops',
  summary: 'GMACs per sample (image, text, total) and parameters of a model config',
  usage: [
    'usage: clipscale flops --model NAME|config.json [--vocab-size N]',
    '',
    'Prints JSON {image_gmacs, text_gmacs, gmacs, params}: multiply-accumulates per sample in units of 1e9,',
    'counted as the scaling-laws paper counts them (matmuls incl. attention S² terms and layer norms),',
    'and trainable parameters. NAME is a shipped config (clipscale flops --list shows them).',
  ].join('\n'),
  async run(argv) {
    const { values } = parse('flops', argv, { model: { type: 'string' }, 'vocab-size': { type: 'string' }, list: { type: 'boolean' } });
    if (values.list) {
      const { listModelConfigs } = await import('../../nn/config.js');
      console.log(JSON.stringify(listModelConfigs()));
      return 0;
    }
    const model = requireOption('flops', 'model', values.model);
    let vocab: number | undefined;
    if (values['vocab-size'] !== undefined) {
      vocab = intOption('flops', 'vocab-size', values['vocab-size'], undefined, { min: 1 });
    }
    const cfg = loadModelConfig(model, vocab ? { text_cfg: { vocab_size: vocab } } : {});
    const c = computeCost(cfg);
    console.log(JSON.stringify({ image_gmacs: c.image_gmacs, text_gmacs: c.text_gmacs, gmacs: c.gmacs, params: c.params }));
    return 0;
  },
};
