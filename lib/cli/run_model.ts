// `--model` made optional where `--weights` is a run folder: the run's saved config names the model.
import { existsSync } from 'node:fs';

import type { ClipConfig } from '../nn/config.js';
import { isDirectory, readRunModel } from '../inference/run_config.js';
import { UsageError } from './command.js';

/** The model to build: --model when given, else the config saved in the run folder `weights`. */
export async function modelOrRunConfig(cmd: string, model: string | undefined, weights: string): Promise<string | ClipConfig> {
  if (model !== undefined && model !== '') return model;
  if (!existsSync(weights)) throw new UsageError(`clipscale ${cmd}: --weights '${weights}' does not exist`);
  if (!(await isDirectory(weights))) {
    throw new UsageError(`clipscale ${cmd}: --model is required when --weights is a file (a run folder of 'clipscale train' names its model)`);
  }
  try {
    return (await readRunModel(weights)).config;
  } catch (err) {
    throw new UsageError(`clipscale ${cmd}: --weights ${(err as Error).message}`);
  }
}
