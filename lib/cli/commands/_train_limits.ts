// Limits of `clipscale train`'s options, and the Trainer's option checks turned into usage errors
// (exit 2): a value the recipe cannot take is the caller's mistake, not a failure of the run.
import { UsageError } from '../command.js';
import { Trainer, type TrainerOptions } from '../../train/trainer.js';

/** Per-rank batch size: OpenCLIP's largest runs use 88K over all ranks. */
export const MAX_BATCH_SIZE = 2 ** 20;
/** Decode worker threads: more than this only costs memory. */
export const MAX_DECODE_WORKERS = 256;
/** Samples held in the shard shuffle buffer (each holds an encoded image). */
export const MAX_SHUFFLE_BUFFER = 1_000_000;

/** Messages of the checks that concern the options rather than the machine or the data. */
const OPTION_ERROR = /^(lr schedule|AdamW|weight decay):|^Trainer: (accumFreq|precision must|device must|batchSize|samples)\b/;

export function newTrainerForCli(options: TrainerOptions): Trainer {
  try {
    return new Trainer(options);
  } catch (err) {
    const message = (err as Error).message;
    if (OPTION_ERROR.test(message)) throw new UsageError(`clipscale train: ${message}`);
    throw err;
  }
}
