// Sweep grids: the JSON file that names a scaling sweep's axes (models × data sizes × samples seen ×
// caption distributions) and the settings every point shares, parsed and checked up front so a
// typo fails in a second with the field's name, not an hour into a sweep.
//
// Example (lib/configs/sweeps/smoke.json):
//   {"name": "smoke", "models": ["micro", "tiny"], "data_sizes": [256], "samples_seen": [256, 512],
//    "distributions": ["precise"], "batch_size": 32, "lr": 0.002, "warmup_fraction": 0.1,
//    "eval": {"zero_shot_images": 64, "retrieval_images": 32}}
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { CAPTION_STYLES, ZERO_SHOT_TASKS, type CaptionStyle, type ZeroShotTaskName } from '../data/synthetic.js';
import { loadModelConfig, resolveModelConfigPath } from '../nn/config.js';
import { LR_SCHEDULE_NAMES, type LrScheduleName } from '../optim/schedules.js';
import { recordKey } from './record.js';
import { readRegularTextSync } from '../util/regular_file.js';

export const CAPTION_DISTRIBUTIONS: readonly CaptionStyle[] = CAPTION_STYLES;

export interface SweepEvalSettings {
  /** Zero-shot tasks of the synthetic suite (default: all). */
  tasks: ZeroShotTaskName[];
  /** Images per zero-shot task. */
  zero_shot_images: number;
  /** Images of the retrieval set (5 captions each). */
  retrieval_images: number;
  /** Which held-out draw: the same for every point so scores compare. */
  seed: number;
}

export interface SweepGrid {
  name: string;
  description: string;
  /** Model config names (lib/configs/models/) or paths to config files. */
  models: string[];
  /** Distinct training samples (the data-size axis). */
  data_sizes: number[];
  /** Samples each run trains on (with repeats); each a multiple of batch_size. */
  samples_seen: number[];
  /** Caption distributions: the two "pre-training datasets" of the synthetic world. */
  distributions: CaptionStyle[];
  batch_size: number;
  /** Peak learning rate. */
  lr: number;
  /** Warmup as a share of each run's steps (the schedule is adapted to each point's samples). */
  warmup_fraction: number;
  /** Schedule over each run's own steps; 'cosine' decays to zero at that run's last step, as the paper did. */
  schedule: LrScheduleName;
  weight_decay: number | null;
  grad_clip_norm: number | null;
  /** The first repetition seed (seeds[0]); kept so grids written before `seeds` existed still read. */
  seed: number;
  /**
   * Repetition seeds: every point trains once per seed. Each is written to its record (recordKey) and
   * mixed into the point's init seed, so seed 0 of a multi-seed grid is the same run as a one-seed grid.
   * Default: [seed].
   */
  seeds: number[];
  /** Seed of the synthetic world: training samples and held-out tasks (the same for all points). */
  world_seed: number;
  /** Checkpoint every N steps so an interrupted point resumes; 0 for only at the end. */
  checkpoint_every: number;
  /** Where points train: 'cpu' (default) or 'cuda' (the Trainer says clearly when it cannot). */
  device: string;
  eval: SweepEvalSettings;
  /**
   * Points of the product left out, each named by some of its coordinates (e.g. {"model": "small",
   * "data_size": 500}: the biggest model on the small data set), so a grid spends its budget where the
   * laws are measured.
   */
  exclude: GridExclusion[];
}

/** Coordinates naming the points of a grid to leave out: a point matching every given field is skipped. */
export interface GridExclusion {
  model?: string;
  data_size?: number;
  samples_seen?: number;
  distribution?: CaptionStyle;
}

/** One trained point of a grid. */
export interface SweepPoint {
  model: string;
  data_size: number;
  samples_seen: number;
  distribution: CaptionStyle;
  seed: number;
  /** recordKey of the point: how results.jsonl knows it is done. */
  key: string;
  /** Directory name of its run under DIR/runs/. */
  dirName: string;
  /** Seed of the model's initialisation: a hash of the grid seed and the point, so it does not depend on order. */
  initSeed: number;
  steps: number;
  warmupSteps: number;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the shipped sweep grids live. */
export const sweepGridsDir = join(packageRoot, 'lib', 'configs', 'sweeps');

export function listSweepGrids(): string[] {
  if (!existsSync(sweepGridsDir)) return [];
  return readdirSync(sweepGridsDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** A shipped grid's name or a path to a grid file → the file. */
export function resolveGridPath(nameOrPath: string): string {
  if (typeof nameOrPath !== 'string' || nameOrPath === '') throw new Error('sweep grid: expected a grid name or a path to a .json file, got an empty value');
  if (nameOrPath.endsWith('.json') || nameOrPath.includes('/') || nameOrPath.includes('\\') || isAbsolute(nameOrPath)) {
    const path = resolve(nameOrPath);
    if (!existsSync(path)) throw new Error(`sweep grid: file not found: ${path}`);
    return path;
  }
  const path = join(sweepGridsDir, `${nameOrPath}.json`);
  if (!existsSync(path)) throw new Error(`sweep grid: unknown grid '${nameOrPath}'. Shipped grids: ${listSweepGrids().join(', ') || 'none'} (or give a path to a .json file)`);
  return path;
}

/** Reads and checks a grid file (by shipped name or path). */
export function loadSweepGrid(nameOrPath: string): SweepGrid {
  const path = resolveGridPath(nameOrPath);
  let raw: unknown;
  try {
    raw = JSON.parse(readRegularTextSync(path, { what: 'sweep grid', maxBytes: 1 << 24 }));
  } catch (err) {
    throw new Error(`sweep grid ${path}: not valid JSON: ${(err as Error).message}`);
  }
  return parseSweepGrid(raw, path, basename(path, '.json'));
}

const topKeys = [
  'name', 'description', 'models', 'data_sizes', 'samples_seen', 'distributions', 'batch_size', 'lr', 'warmup_fraction',
  'schedule', 'weight_decay', 'grad_clip_norm', 'seed', 'seeds', 'world_seed', 'checkpoint_every', 'eval', 'exclude', 'device',
] as const;
const excludeKeys = ['model', 'data_size', 'samples_seen', 'distribution'] as const;
const evalKeys = ['tasks', 'zero_shot_images', 'retrieval_images', 'seed'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates a parsed grid and fills defaults; `source` names the file in errors. */
export function parseSweepGrid(raw: unknown, source = '<object>', fallbackName = 'sweep'): SweepGrid {
  const where = `sweep grid ${source}`;
  if (!isObject(raw)) throw new Error(`${where}: expected a JSON object at the top level`);
  for (const key of Object.keys(raw)) {
    if (!(topKeys as readonly string[]).includes(key)) throw new Error(`${where}: unknown field '${key}' (fields: ${topKeys.join(', ')})`);
  }

  const int = (obj: Record<string, unknown>, key: string, label: string, min: number, fallback?: number): number => {
    const v = obj[key] ?? fallback;
    if (v === undefined) throw new Error(`${where}: '${label}' is missing`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new Error(`${where}: '${label}' must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const positive = (obj: Record<string, unknown>, key: string, fallback?: number): number => {
    const v = obj[key] ?? fallback;
    if (v === undefined) throw new Error(`${where}: '${key}' is missing`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`${where}: '${key}' must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const optionalNonNegative = (key: string): number | null => {
    const v = raw[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${where}: '${key}' must be a number ≥ 0, got ${JSON.stringify(v)}`);
    return v;
  };
  const axis = <T>(key: string, check: (v: unknown, label: string) => T): T[] => {
    const v = raw[key];
    if (v === undefined) throw new Error(`${where}: axis '${key}' is missing`);
    if (!Array.isArray(v)) throw new Error(`${where}: axis '${key}' must be a list, got ${JSON.stringify(v)}`);
    if (v.length === 0) throw new Error(`${where}: axis '${key}' is empty: a grid needs at least one value on every axis`);
    const values = v.map((x, i) => check(x, `${key}[${i}]`));
    const seen = new Set<string>();
    values.forEach((x, i) => {
      const k = JSON.stringify(x);
      if (seen.has(k)) throw new Error(`${where}: '${key}[${i}]' repeats the value ${k}`);
      seen.add(k);
    });
    return values;
  };
  const positiveInt = (v: unknown, label: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`${where}: '${label}' must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };

  const name = raw.name ?? fallbackName;
  if (typeof name !== 'string' || name === '') throw new Error(`${where}: 'name' must be a non-empty string`);
  const description = raw.description ?? '';
  if (typeof description !== 'string') throw new Error(`${where}: 'description' must be a string`);

  const models = axis('models', (v, label) => {
    if (typeof v !== 'string' || v === '') throw new Error(`${where}: '${label}' must be a model name or config path, got ${JSON.stringify(v)}`);
    try {
      resolveModelConfigPath(v);
    } catch (err) {
      throw new Error(`${where}: '${label}': ${(err as Error).message}`);
    }
    return v;
  });
  const data_sizes = axis('data_sizes', positiveInt);
  const samples_seen = axis('samples_seen', positiveInt);
  const distributions = axis('distributions', (v, label) => {
    if (!(CAPTION_DISTRIBUTIONS as readonly unknown[]).includes(v)) {
      throw new Error(`${where}: '${label}' must be one of ${CAPTION_DISTRIBUTIONS.join(', ')}, got ${JSON.stringify(v)}`);
    }
    return v as CaptionStyle;
  });

  const batch_size = int(raw, 'batch_size', 'batch_size', 2);
  const lr = positive(raw, 'lr');
  const warmup_fraction = raw.warmup_fraction ?? 0;
  if (typeof warmup_fraction !== 'number' || !Number.isFinite(warmup_fraction) || warmup_fraction < 0 || warmup_fraction >= 1) {
    throw new Error(`${where}: 'warmup_fraction' must be a number in [0, 1) (the share of each run's steps spent warming up), got ${JSON.stringify(warmup_fraction)}`);
  }
  const schedule = raw.schedule ?? 'cosine';
  if (!(LR_SCHEDULE_NAMES as readonly unknown[]).includes(schedule)) {
    throw new Error(`${where}: 'schedule' must be one of ${LR_SCHEDULE_NAMES.join(', ')}, got ${JSON.stringify(schedule)}`);
  }
  const seeds = raw.seeds === undefined ? [int(raw, 'seed', 'seed', 0, 0)] : parseSeeds(raw.seeds, where);
  if (raw.seeds !== undefined && raw.seed !== undefined && raw.seed !== seeds[0]) {
    throw new Error(`${where}: 'seed' (${JSON.stringify(raw.seed)}) must be the first of 'seeds' (${JSON.stringify(seeds)}) when both are given; give only 'seeds'`);
  }
  const seed = seeds[0];
  const world_seed = int(raw, 'world_seed', 'world_seed', 0, 0);
  const checkpoint_every = int(raw, 'checkpoint_every', 'checkpoint_every', 0, 50);
  const device = raw.device ?? 'cpu';
  if (typeof device !== 'string' || !/^(cpu|cuda(:\d+)?)$/.test(device)) throw new Error(`${where}: 'device' must be 'cpu' or 'cuda' (or 'cuda:N'), got ${JSON.stringify(device)}`);

  const rawEval = raw.eval ?? {};
  if (!isObject(rawEval)) throw new Error(`${where}: 'eval' must be an object`);
  for (const key of Object.keys(rawEval)) {
    if (!(evalKeys as readonly string[]).includes(key)) throw new Error(`${where}: unknown field 'eval.${key}' (fields: ${evalKeys.map((k) => `eval.${k}`).join(', ')})`);
  }
  let tasks: ZeroShotTaskName[] = [...ZERO_SHOT_TASKS];
  if (rawEval.tasks !== undefined) {
    if (!Array.isArray(rawEval.tasks) || rawEval.tasks.length === 0) throw new Error(`${where}: 'eval.tasks' must be a non-empty list of ${ZERO_SHOT_TASKS.join(', ')}`);
    tasks = rawEval.tasks.map((t, i) => {
      if (!(ZERO_SHOT_TASKS as readonly unknown[]).includes(t)) throw new Error(`${where}: 'eval.tasks[${i}]' must be one of ${ZERO_SHOT_TASKS.join(', ')}, got ${JSON.stringify(t)}`);
      return t as ZeroShotTaskName;
    });
  }
  const evalSettings: SweepEvalSettings = {
    tasks,
    zero_shot_images: int(rawEval, 'zero_shot_images', 'eval.zero_shot_images', 1, 256),
    retrieval_images: int(rawEval, 'retrieval_images', 'eval.retrieval_images', 2, 200),
    seed: int(rawEval, 'seed', 'eval.seed', 0, 0),
  };

  samples_seen.forEach((s, i) => {
    if (s < batch_size || s % batch_size !== 0) {
      throw new Error(`${where}: 'samples_seen[${i}]' (${s}) must be a multiple of batch_size (${batch_size}) so every run trains exactly the samples it records`);
    }
  });
  data_sizes.forEach((d, i) => {
    if (d < batch_size) throw new Error(`${where}: 'data_sizes[${i}]' (${d}) is smaller than batch_size (${batch_size}): a batch would hold repeats of one sample`);
  });

  // every model must take the same images and captions: one synthetic world feeds them all
  const shapes = models.map((m) => {
    const cfg = loadModelConfig(m);
    return { model: m, image: cfg.vision_cfg.image_size, context: cfg.text_cfg.context_length };
  });
  for (const s of shapes) {
    if (s.image !== shapes[0].image || s.context !== shapes[0].context) {
      throw new Error(
        `${where}: every model must share image size and context length (the sweep's data feeds them all): ` +
          `'${shapes[0].model}' takes ${shapes[0].image}-pixel images and ${shapes[0].context} tokens, '${s.model}' ${s.image} and ${s.context}`,
      );
    }
  }

  const rawExclude = raw.exclude ?? [];
  if (!Array.isArray(rawExclude)) throw new Error(`${where}: 'exclude' must be a list of objects naming points to leave out`);
  const exclude: GridExclusion[] = rawExclude.map((e, i) => {
    const label = `exclude[${i}]`;
    if (!isObject(e) || Object.keys(e).length === 0) throw new Error(`${where}: '${label}' must be an object with some of ${excludeKeys.join(', ')}`);
    for (const key of Object.keys(e)) {
      if (!(excludeKeys as readonly string[]).includes(key)) throw new Error(`${where}: unknown field '${label}.${key}' (fields: ${excludeKeys.join(', ')})`);
    }
    const out: GridExclusion = {};
    if (e.model !== undefined) {
      if (!models.some((m) => m === e.model || modelLabel(m) === e.model)) throw new Error(`${where}: '${label}.model' (${JSON.stringify(e.model)}) is none of the grid's models`);
      out.model = modelLabel(e.model as string);
    }
    if (e.data_size !== undefined) {
      if (!data_sizes.includes(e.data_size as number)) throw new Error(`${where}: '${label}.data_size' (${JSON.stringify(e.data_size)}) is none of the grid's data sizes`);
      out.data_size = e.data_size as number;
    }
    if (e.samples_seen !== undefined) {
      if (!samples_seen.includes(e.samples_seen as number)) throw new Error(`${where}: '${label}.samples_seen' (${JSON.stringify(e.samples_seen)}) is none of the grid's budgets`);
      out.samples_seen = e.samples_seen as number;
    }
    if (e.distribution !== undefined) {
      if (!distributions.includes(e.distribution as CaptionStyle)) throw new Error(`${where}: '${label}.distribution' (${JSON.stringify(e.distribution)}) is none of the grid's distributions`);
      out.distribution = e.distribution as CaptionStyle;
    }
    return out;
  });

  return {
    name,
    description,
    models,
    data_sizes,
    samples_seen,
    distributions,
    batch_size,
    lr,
    warmup_fraction,
    schedule: schedule as LrScheduleName,
    weight_decay: optionalNonNegative('weight_decay'),
    grad_clip_norm: optionalNonNegative('grad_clip_norm'),
    seed,
    seeds,
    world_seed,
    checkpoint_every,
    device,
    eval: evalSettings,
    exclude,
  };
}

/** A list of repetition seeds: distinct integers ≥ 0, at least one. */
export function parseSeeds(value: unknown, where: string, label = 'seeds'): number[] {
  if (!Array.isArray(value) || value.length === 0) throw new Error(`${where}: '${label}' must be a non-empty list of integers ≥ 0 (repetition seeds), got ${JSON.stringify(value)}`);
  const seen = new Set<number>();
  return value.map((v, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) throw new Error(`${where}: '${label}[${i}]' must be an integer ≥ 0, got ${JSON.stringify(v)}`);
    if (seen.has(v)) throw new Error(`${where}: '${label}[${i}]' repeats the seed ${v}`);
    seen.add(v);
    return v;
  });
}

/** The grid with other repetition seeds (e.g. from `--seeds 0,1`); the seeds are checked. */
export function withSeeds(grid: SweepGrid, seeds: number[], where = 'seeds'): SweepGrid {
  const checked = parseSeeds(seeds, where);
  return { ...grid, seed: checked[0], seeds: checked };
}

/** `--seeds 0,1` → [0, 1], with an error naming the option. */
export function parseSeedList(text: string, where: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  const values = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  const bad = parts.findIndex((p, i) => p === '' || !Number.isSafeInteger(values[i]));
  if (bad >= 0) throw new Error(`${where}: expected a comma-separated list of integers ≥ 0 (e.g. 0,1), got '${text}' ('${parts[bad]}' is not one)`);
  return parseSeeds(values, where, '--seeds');
}

function excluded(grid: SweepGrid, p: { model: string; data_size: number; samples_seen: number; distribution: CaptionStyle }): boolean {
  return grid.exclude.some(
    (e) =>
      (e.model === undefined || e.model === modelLabel(p.model)) &&
      (e.data_size === undefined || e.data_size === p.data_size) &&
      (e.samples_seen === undefined || e.samples_seen === p.samples_seen) &&
      (e.distribution === undefined || e.distribution === p.distribution),
  );
}

/** 32-bit FNV-1a of a string: a point's init seed from its key, independent of the order points run in. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The label a model has in records: the config's file name without .json. */
export function modelLabel(model: string): string {
  return basename(model, '.json');
}

/**
 * Every point of the grid, in the grid's order: seeds outermost (a stopped sweep holds whole seeds),
 * then models, data sizes, budgets, distributions innermost.
 */
export function gridPoints(grid: SweepGrid): SweepPoint[] {
  const out: SweepPoint[] = [];
  for (const seed of grid.seeds ?? [grid.seed]) {
  for (const model of grid.models) {
    const label = modelLabel(model);
    for (const data_size of grid.data_sizes) {
      for (const samples_seen of grid.samples_seen) {
        for (const distribution of grid.distributions) {
          if (excluded(grid, { model, data_size, samples_seen, distribution })) continue;
          const key = recordKey({ model: label, data_size, samples_seen, distribution, seed });
          const steps = samples_seen / grid.batch_size;
          out.push({
            model,
            data_size,
            samples_seen,
            distribution,
            seed,
            key,
            dirName: `${label}_d${data_size}_s${samples_seen}_${distribution}_seed${seed}`.replace(/[^A-Za-z0-9._-]+/g, '_'),
            initSeed: hash32(key) % 1_000_000_007,
            steps,
            warmupSteps: Math.floor(grid.warmup_fraction * steps),
          });
        }
      }
    }
  }
  }
  const labels = new Map<string, string>();
  for (const model of grid.models) {
    const label = modelLabel(model);
    const other = labels.get(label);
    if (other !== undefined) throw new Error(`sweep grid '${grid.name}': models '${other}' and '${model}' have the same name '${label}' in records`);
    labels.set(label, model);
  }
  return out;
}

/** The settings of a grid that every finished point was trained with (what a resumed sweep must not change). */
export function sharedSettings(grid: SweepGrid): Record<string, unknown> {
  // the seeds are an axis (each record keys its seed), so a sweep may add seeds to a finished one
  const { name: _n, description: _d, models: _m, data_sizes: _ds, samples_seen: _s, distributions: _dist, checkpoint_every: _c, exclude: _x, seed: _seed, seeds: _seeds, ...rest } = grid;
  return rest;
}
