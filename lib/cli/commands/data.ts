import { SkipCounter } from '../../data/skip_counter.js';
import { csvInputs, folderInputs, inspectShards, syntheticInputs, writeShards } from '../../data/make_shards.js';
import { UsageError, type Command } from '../command.js';
import { intOption, parse, requireOption } from '../args.js';

const usage = `usage: clipscale data make-shards --from CSV|FOLDER|synthetic --out DIR --shard-size N [options]
       clipscale data inspect SHARDS [--no-decode]

make-shards writes webdataset shards DIR/00000.tar, DIR/00001.tar, … (key.jpg|png|webp,
key.txt with the caption, key.json with where it came from) and prints JSON
{shards, samples, skipped, pattern}.
  --from FILE.csv       a CSV with a header: image path column and caption column
      --separator C     field separator (default ',')
      --image-key K     image path column (default filepath)
      --caption-key K   caption column (default title)
  --from DIR            an image folder, one sub-folder per class; the caption is the class name
  --from synthetic      the synthetic world:
      --samples N       how many (default 10000)   --image-size N (default 64)
      --captions precise|noisy (default precise)   --seed N (default 0)
      --format png|jpg  (default png)
  --shard-size N        samples per shard

inspect reads every sample of SHARDS (a path or brace pattern such as
'shards/{00000..00099}.tar', quoted) and prints JSON {shards, samples, skipped: {reason: count}}.
Images are fully decoded to find corrupt ones, unless --no-decode.`;

export const command: Command = {
  name: 'data',
  summary: 'make webdataset shards (data make-shards), inspect them (data inspect)',
  usage,
  async run(argv) {
    const [verb, ...rest] = argv;
    if (verb === 'make-shards') {
      const { values } = parse('data make-shards', rest, {
        from: { type: 'string' }, out: { type: 'string' }, 'shard-size': { type: 'string' },
        separator: { type: 'string' }, 'image-key': { type: 'string' }, 'caption-key': { type: 'string' },
        samples: { type: 'string' }, 'image-size': { type: 'string' }, captions: { type: 'string' },
        seed: { type: 'string' }, format: { type: 'string' },
      });
      const from = requireOption('data make-shards', 'from', values.from);
      const out = requireOption('data make-shards', 'out', values.out);
      const shardSize = intOption('data make-shards', 'shard-size', values['shard-size'], undefined, { min: 1, max: 10_000_000 });
      const skipped = new SkipCounter();
      let inputs;
      if (from === 'synthetic') {
        const captions = values.captions ?? 'precise';
        if (captions !== 'precise' && captions !== 'noisy') throw new UsageError(`clipscale data make-shards: --captions must be precise or noisy, got '${captions}'`);
        const format = values.format ?? 'png';
        if (format !== 'png' && format !== 'jpg') throw new UsageError(`clipscale data make-shards: --format must be png or jpg, got '${format}'`);
        const samples = intOption('data make-shards', 'samples', values.samples, 10000, { min: 1, max: 1_000_000_000 });
        inputs = syntheticInputs({
          seed: intOption('data make-shards', 'seed', values.seed, 0, { max: Number.MAX_SAFE_INTEGER }),
          size: samples,
          imageSize: intOption('data make-shards', 'image-size', values['image-size'], 64, { min: 8, max: 4096 }),
          captions,
        }, samples, format);
      } else if (from.toLowerCase().endsWith('.csv') || from.toLowerCase().endsWith('.tsv')) {
        inputs = csvInputs(from, { separator: values.separator ?? (from.toLowerCase().endsWith('.tsv') ? '\t' : ','), imageKey: values['image-key'], captionKey: values['caption-key'] }, skipped);
      } else {
        inputs = folderInputs(from, skipped);
      }
      const summary = await writeShards(inputs, out, shardSize, skipped);
      console.log(JSON.stringify({ ...summary, skipped: skipped.toJSON() }));
      return 0;
    }
    if (verb === 'inspect') {
      const { values, positionals } = parse('data inspect', rest, { 'no-decode': { type: 'boolean' } }, true);
      if (positionals.length === 0) throw new UsageError(`clipscale data inspect: give the shards (a path or a brace pattern)\n\n${usage}`);
      console.log(JSON.stringify(await inspectShards(positionals, !values['no-decode'])));
      return 0;
    }
    throw new UsageError(`clipscale data: expected 'make-shards' or 'inspect', got '${verb ?? ''}'\n\n${usage}`);
  },
};
