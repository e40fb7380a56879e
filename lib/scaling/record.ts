// The record of one trained point of a scaling sweep: one JSON object a line in DIR/results.jsonl.
// The sweep runner appends them (appendResult); the report and `clipscale fit` read them.
//
// Example line:
//   {"model":"tiny","gmacs":0.0054,"image_gmacs":0.0020,"text_gmacs":0.0035,"params":290000,
//    "samples_seen":200000,"data_size":20000,"distribution":"precise",
//    "metrics":{"zeroshot_shape":0.81,"retrieval_image_r5":0.42},"wall_s":31.5,"seed":0}
import { readRegularTextSync } from '../util/regular_file.js';
import { appendFileSync, closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';

export interface ScalingRecord {
  /** Model config name (lib/configs/models/<model>.json) or a label for a custom config. */
  model: string;
  /** MACs per sample ×10⁻⁹ of the whole model (computeCost(config).gmacs), and of each tower. */
  gmacs: number;
  image_gmacs: number;
  text_gmacs: number;
  /** Trainable parameters. */
  params: number;
  /** Training samples processed (with repeats): the compute C of a point is gmacs × samples_seen. */
  samples_seen: number;
  /** Distinct samples in the training set (the data-size axis). */
  data_size: number;
  /** Name of the caption distribution (the "pre-training dataset") the point was trained on. */
  distribution: string;
  /**
   * Downstream results, task name → score in [0, 1] where HIGHER IS BETTER (accuracy, recall@k).
   * The error fitted is E = 1 − score.
   */
  metrics: Record<string, number>;
  /** Wall-clock seconds of training and evaluation of this point. */
  wall_s: number;
  /** Optional: anything else the runner knows (seed, batch size, lr, device, config, finish time…). */
  seed?: number;
  batch_size?: number;
  lr?: number;
  device?: string;
  finished_at?: string;
  [extra: string]: unknown;
}

/** Compute of a point: GMACs per sample × samples seen (the paper's x axis, in GMACs). */
export function recordCompute(r: ScalingRecord): number {
  return r.gmacs * r.samples_seen;
}

/** The grid point a record belongs to; a sweep skips points whose key is already in results.jsonl. */
export function recordKey(r: Pick<ScalingRecord, 'model' | 'data_size' | 'samples_seen' | 'distribution'> & { seed?: number }): string {
  return `${r.model}|data=${r.data_size}|samples=${r.samples_seen}|dist=${r.distribution}|seed=${r.seed ?? 0}`;
}

/** The grid point a record belongs to whatever its repetition seed: runs of one point with several seeds share it. */
export function pointKey(r: Pick<ScalingRecord, 'model' | 'data_size' | 'samples_seen' | 'distribution'>): string {
  return `${r.model}|data=${r.data_size}|samples=${r.samples_seen}|dist=${r.distribution}`;
}

/** Checks a parsed record; `where` names the file and line in errors. */
export function validateRecord(value: unknown, where = 'record'): ScalingRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: expected a JSON object`);
  const r = value as Record<string, unknown>;
  if (typeof r.model !== 'string' || r.model === '') throw new Error(`${where}: 'model' must be a non-empty string`);
  if (typeof r.distribution !== 'string' || r.distribution === '') throw new Error(`${where}: 'distribution' must be a non-empty string`);
  for (const key of ['gmacs', 'samples_seen', 'data_size'] as const) {
    const v = r[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`${where}: '${key}' must be a positive number, got ${JSON.stringify(v)}`);
  }
  for (const key of ['image_gmacs', 'text_gmacs', 'params', 'wall_s'] as const) {
    const v = r[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${where}: '${key}' must be a number ≥ 0, got ${JSON.stringify(v)}`);
  }
  const m = r.metrics;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new Error(`${where}: 'metrics' must be an object of task → score`);
  for (const [task, v] of Object.entries(m)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw new Error(`${where}: metrics.${task} must be a score in [0, 1], got ${JSON.stringify(v)}`);
  }
  return r as ScalingRecord;
}

export interface ResultsFile {
  records: ScalingRecord[];
  /** Lines left unfinished by a run killed mid-write (not ending in '}'); skipped, their points are redone. */
  tornLines: number[];
}

/** Reads DIR/results.jsonl. Torn lines (a write cut short) are skipped and listed; other bad lines are errors. */
export function readResults(path: string): ResultsFile {
  if (!existsSync(path)) throw new Error(`results file not found: ${path}`);
  const lines = readRegularTextSync(path, { what: 'results file' }).split('\n');
  const records: ScalingRecord[] = [];
  const tornLines: number[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      if (!line.trimEnd().endsWith('}')) {
        tornLines.push(i + 1);
        return;
      }
      throw new Error(`${path}: line ${i + 1} is not valid JSON: ${(err as Error).message}`);
    }
    records.push(validateRecord(value, `${path}: line ${i + 1}`));
  });
  return { records, tornLines };
}

/**
 * Appends one record as a single line (one write call, so a line is whole or torn at the end).
 * A torn line left by a killed run is closed first, so it cannot swallow the new record.
 */
export function appendResult(path: string, record: ScalingRecord): void {
  validateRecord(record, `appendResult(${path})`);
  const prefix = existsSync(path) && !endsWithNewline(path) ? '\n' : '';
  appendFileSync(path, prefix + JSON.stringify(record) + '\n');
}

function endsWithNewline(path: string): boolean {
  const size = statSync(path).size;
  if (size === 0) return true;
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, size - 1);
    return b[0] === 0x0a;
  } finally {
    closeSync(fd);
  }
}
