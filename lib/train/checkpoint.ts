// Training checkpoints: model weights, optimizer moments and the rest of the training state, saved so
// that a crash at any moment leaves the previous checkpoint usable.
//
// Layout of a checkpoint directory (one writer: rank 0):
//   checkpoint-<step>.safetensors   model weights under OpenCLIP's state-dict names (loadable alone)
//   state-<step>.safetensors        AdamW moments: `m.<param>` and `v.<param>` for each trained parameter
//   state-<step>.json               step, samples seen, schedule, data position, RNG, config, precision
//   latest.json                     {"step": <step>, "state": "state-<step>.json"}: the commit point
//
// Every file is written atomically (temporary file, fsync, rename) in that order, and latest.json
// last, so until it moves the previous checkpoint stays the one found. A random id written into the
// JSON and into both safetensors files' metadata ties the three together: a mix of files from two
// saves of the same step (a crash while overwriting) is detected and skipped.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import * as path from 'node:path';

import { isAtomicTempName, writeBytesAtomic } from '../util/atomic_file.js';
import { readRegularFile } from '../util/regular_file.js';
import {
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type SafetensorsMetadata,
  type TensorMap,
  type TensorRecord,
  type TensorsInput,
} from './safetensors.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Everything besides tensors that an exact resume needs. All of it must be plain JSON. */
export interface TrainingState {
  /** Optimizer steps completed. */
  step: number;
  /** Samples consumed by those steps (global, all ranks). */
  samplesSeen: number;
  /** The learning-rate schedule (its config: schedules are pure functions of the step). */
  schedule: JsonValue;
  /** Where the data stream stands (the loader's own resumable description). */
  dataPosition: JsonValue;
  /** Generator states (e.g. `Rng.getState()`, or one per consumer). */
  rng: JsonValue;
  /** The model config and training arguments the run was started with. */
  config: JsonValue;
  /** 'fp32', 'bf16' or 'fp16'. */
  precision: string;
  /** Anything else the trainer keeps (loss scale, skipped-step counters, ...). */
  extra?: JsonValue;
}

export interface OptimizerMoments {
  /** First moments, keyed by parameter name (not prefixed). */
  m: TensorsInput;
  /** Second moments, keyed by parameter name. */
  v: TensorsInput;
}

export interface CheckpointPaths {
  step: number;
  weights: string;
  optimizer: string;
  state: string;
}

export interface LoadedCheckpoint {
  paths: CheckpointPaths;
  weights: TensorMap;
  optimizer: { m: TensorMap; v: TensorMap };
  state: TrainingState;
}

const FORMAT = 'clipscale-training-state';
const VERSION = 1;
const LATEST = 'latest.json';
const META_ID = 'clipscale.checkpoint_id';
const META_STEP = 'clipscale.step';
const META_ROLE = 'clipscale.role';

export function checkpointPaths(dir: string, step: number): CheckpointPaths {
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`checkpoint: step must be a non-negative integer, got ${String(step)}`);
  return {
    step,
    weights: path.join(dir, `checkpoint-${step}.safetensors`),
    optimizer: path.join(dir, `state-${step}.safetensors`),
    state: path.join(dir, `state-${step}.json`),
  };
}

/** Refuses what JSON would silently change (NaN → null, undefined dropped) or cannot hold (bigint). */
function assertPlainJson(value: unknown, where: string): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`checkpoint: ${where} is ${value}, which JSON cannot hold`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => assertPlainJson(v, `${where}[${i}]`));
    return;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) assertPlainJson(v, `${where}.${k}`);
    return;
  }
  throw new Error(`checkpoint: ${where} is a ${typeof value === 'object' ? value.constructor?.name ?? 'object' : typeof value}, not plain JSON`);
}

function entriesOf(input: TensorsInput): Array<[string, TensorRecord]> {
  return input instanceof Map ? [...input.entries()] : Object.entries(input);
}

/** The optimizer file's tensors, `m.<param>` / `v.<param>`, checked against the weights. */
function momentTensors(weights: Map<string, TensorRecord>, optimizer: OptimizerMoments): Map<string, TensorRecord> {
  const m = new Map(entriesOf(optimizer.m));
  const v = new Map(entriesOf(optimizer.v));
  const out = new Map<string, TensorRecord>();
  for (const [kind, moments, other] of [['m', m, v], ['v', v, m]] as const) {
    for (const [name, record] of moments) {
      const w = weights.get(name);
      if (!w) throw new Error(`checkpoint: optimizer moment ${kind}.${name} has no parameter '${name}' among the weights`);
      if (!other.has(name)) throw new Error(`checkpoint: parameter '${name}' has a ${kind} moment but no ${kind === 'm' ? 'v' : 'm'} moment`);
      if (record.shape.length !== w.shape.length || record.shape.some((d, i) => d !== w.shape[i])) {
        throw new Error(`checkpoint: ${kind}.${name} has shape ${JSON.stringify(record.shape)} but the parameter has ${JSON.stringify(w.shape)}`);
      }
      out.set(`${kind}.${name}`, record);
    }
  }
  return out;
}

function checkState(state: TrainingState): void {
  if (state === null || typeof state !== 'object') throw new Error('checkpoint: state must be an object');
  if (!Number.isSafeInteger(state.step) || state.step < 0) throw new Error(`checkpoint: state.step must be a non-negative integer, got ${String(state.step)}`);
  if (!Number.isSafeInteger(state.samplesSeen) || state.samplesSeen < 0) {
    throw new Error(`checkpoint: state.samplesSeen must be a non-negative integer, got ${String(state.samplesSeen)}`);
  }
  if (typeof state.precision !== 'string') throw new Error('checkpoint: state.precision must be a string');
  assertPlainJson(state, 'state');
}

export interface SaveOptions {
  /** After saving, delete all but this many newest checkpoints (the one just saved included). */
  keepLast?: number;
}

/**
 * Saves weights, optimizer moments and state for `state.step` into `dir` (created if missing) and
 * then moves latest.json to it. Returns the paths written.
 */
export async function saveTrainingCheckpoint(
  dir: string,
  input: { weights: TensorsInput; optimizer: OptimizerMoments; state: TrainingState },
  options: SaveOptions = {},
): Promise<CheckpointPaths> {
  const { state } = input;
  checkState(state);
  if (options.keepLast !== undefined && (!Number.isSafeInteger(options.keepLast) || options.keepLast < 1)) {
    throw new Error(`checkpoint: keepLast must be an integer >= 1, got ${String(options.keepLast)}`);
  }
  const weights = new Map(entriesOf(input.weights));
  const moments = momentTensors(weights, input.optimizer);
  const paths = checkpointPaths(dir, state.step);
  const id = randomBytes(12).toString('hex');
  const meta = (role: string): SafetensorsMetadata => ({ format: 'pt', [META_ID]: id, [META_STEP]: String(state.step), [META_ROLE]: role });

  await mkdir(dir, { recursive: true });
  await writeSafetensors(paths.weights, weights, meta('weights'));
  await writeSafetensors(paths.optimizer, moments, meta('optimizer'));
  const doc = {
    format: FORMAT,
    version: VERSION,
    id,
    saved_at: new Date().toISOString(),
    files: { weights: path.basename(paths.weights), optimizer: path.basename(paths.optimizer) },
    state,
  };
  await writeBytesAtomic(paths.state, `${JSON.stringify(doc, null, 2)}\n`);
  await writeBytesAtomic(path.join(dir, LATEST), `${JSON.stringify({ step: state.step, state: path.basename(paths.state) })}\n`);
  if (options.keepLast !== undefined) await pruneTrainingCheckpoints(dir, options.keepLast);
  return paths;
}

interface StateDocument {
  id: string;
  files: { weights: string; optimizer: string };
  state: TrainingState;
}

/** A state document is small JSON; anything larger is not one of ours. */
const MAX_STATE_JSON_BYTES = 1 << 26;

async function readStateDocument(file: string): Promise<StateDocument> {
  let text: string;
  try {
    text = (await readRegularFile(file, { what: 'state', maxBytes: MAX_STATE_JSON_BYTES })).toString('utf8');
  } catch (err) {
    throw new Error(`checkpoint: ${file}: ${/no such file/.test((err as Error).message) ? 'missing' : (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`checkpoint: ${file}: not valid JSON (${(err as Error).message})`);
  }
  const d = doc as Partial<StateDocument> & { format?: unknown; version?: unknown };
  if (d === null || typeof d !== 'object' || d.format !== FORMAT) throw new Error(`checkpoint: ${file}: not a ${FORMAT} file`);
  if (d.version !== VERSION) throw new Error(`checkpoint: ${file}: version ${String(d.version)} is not supported (this is version ${VERSION})`);
  if (typeof d.id !== 'string' || !d.files || typeof d.files.weights !== 'string' || typeof d.files.optimizer !== 'string' || !d.state) {
    throw new Error(`checkpoint: ${file}: missing id, files or state`);
  }
  if (!Number.isSafeInteger(d.state.step)) throw new Error(`checkpoint: ${file}: state.step is missing`);
  // The whole state is checked here, so a damaged file is refused naming it, not deep in a resume.
  try {
    checkState(d.state);
    const config = d.state.config as Record<string, unknown> | null;
    if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new Error('state.config must be an object');
    for (const key of ['batchSize', 'samples', 'seed', 'worldSize', 'accumFreq'] as const) {
      const v = config[key];
      if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= 0)) throw new Error(`state.config.${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
    }
  } catch (err) {
    throw new Error(`checkpoint: ${file}: ${(err as Error).message.replace(/^checkpoint: /, '')}`);
  }
  return d as StateDocument;
}

/**
 * Checks that a checkpoint's three files are all there, whole (safetensors headers validated against
 * the file sizes), and from the same save. Returns its state document; throws saying what is wrong.
 */
async function verifyCheckpoint(paths: CheckpointPaths): Promise<StateDocument> {
  const doc = await readStateDocument(paths.state);
  if (doc.state.step !== paths.step) throw new Error(`checkpoint: ${paths.state}: records step ${doc.state.step}, not ${paths.step}`);
  const dir = path.dirname(paths.state);
  if (path.join(dir, doc.files.weights) !== paths.weights || path.join(dir, doc.files.optimizer) !== paths.optimizer) {
    throw new Error(`checkpoint: ${paths.state}: names files ${doc.files.weights} and ${doc.files.optimizer}, not this step's`);
  }
  for (const [file, role] of [[paths.weights, 'weights'], [paths.optimizer, 'optimizer']] as const) {
    let meta: SafetensorsMetadata | null;
    try {
      meta = (await readSafetensorsHeader(file)).metadata;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`checkpoint: ${file}: missing`);
      throw err;
    }
    if (meta?.[META_ID] !== doc.id || meta?.[META_ROLE] !== role) {
      throw new Error(`checkpoint: ${file}: belongs to a different save than ${path.basename(paths.state)} (checkpoint id ${meta?.[META_ID] ?? 'absent'}, expected ${doc.id})`);
    }
  }
  return doc;
}

const STATE_JSON = /^state-(\d+)\.json$/;
const STEP_FILE = /^(?:checkpoint|state)-(\d+)\.(?:safetensors|json)$/;

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Steps that have a state JSON in `dir`, newest first (not yet verified). */
async function candidateSteps(dir: string): Promise<number[]> {
  const steps: number[] = [];
  for (const name of await listDir(dir)) {
    const m = STATE_JSON.exec(name);
    // A step beyond 2^53 (a stray state-99999999999999999999.json) is not one of ours: ignored.
    if (m && Number.isSafeInteger(Number(m[1]))) steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => b - a);
}

async function readLatestPointer(dir: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(path.join(dir, LATEST), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const p = JSON.parse(text) as { step?: unknown };
    return Number.isSafeInteger(p.step) && (p.step as number) >= 0 ? (p.step as number) : null;
  } catch {
    return null;
  }
}

export interface FoundCheckpoint extends CheckpointPaths {
  /** Checkpoints passed over on the way, each with the reason (for the log). */
  skipped: string[];
}

/**
 * The checkpoint to resume from: the one latest.json names when it is whole, otherwise the newest
 * whole one in the directory; null when there is none (or no directory).
 */
export async function findLatestCheckpoint(dir: string): Promise<FoundCheckpoint | null> {
  return (await scanCheckpoints(dir)).found;
}

/**
 * The checkpoint to resume from (as findLatestCheckpoint), and why every checkpoint passed over was
 * passed over, and the checkpoint files present: a resume that finds files but no whole checkpoint
 * must say so rather than start over.
 */
export async function scanCheckpoints(dir: string): Promise<{ found: FoundCheckpoint | null; skipped: string[]; stepFiles: string[] }> {
  const stepFiles = (await listDir(dir)).filter((n) => STEP_FILE.test(n)).sort();
  const found = await findWhole(dir);
  return { found: found.found, skipped: found.skipped, stepFiles };
}

async function findWhole(dir: string): Promise<{ found: FoundCheckpoint | null; skipped: string[] }> {
  const skipped: string[] = [];
  const pointed = await readLatestPointer(dir);
  const steps = await candidateSteps(dir);
  const order = pointed === null ? steps : [pointed, ...steps.filter((s) => s !== pointed)];
  for (const step of order) {
    const paths = checkpointPaths(dir, step);
    try {
      await verifyCheckpoint(paths);
      return { found: { ...paths, skipped }, skipped };
    } catch (err) {
      skipped.push(`step ${step}: ${(err as Error).message}`);
    }
  }
  return { found: null, skipped };
}

/** Whole checkpoints in `dir`, oldest first. */
export async function listTrainingCheckpoints(dir: string): Promise<CheckpointPaths[]> {
  const out: CheckpointPaths[] = [];
  for (const step of (await candidateSteps(dir)).reverse()) {
    const paths = checkpointPaths(dir, step);
    try {
      await verifyCheckpoint(paths);
      out.push(paths);
    } catch {
      // incomplete or torn: not listed
    }
  }
  return out;
}

/**
 * Loads a checkpoint: from `dir` (latest), or the given paths. Verifies it first, so a torn or
 * mismatched checkpoint is refused with the reason.
 */
export async function loadTrainingCheckpoint(from: string | CheckpointPaths, options: { asF32?: boolean } = {}): Promise<LoadedCheckpoint> {
  let paths: CheckpointPaths;
  if (typeof from === 'string') {
    const found = await findLatestCheckpoint(from);
    if (!found) throw new Error(`checkpoint: no whole checkpoint in ${from}${(await listDir(from)).length === 0 ? ' (empty or missing directory)' : ''}`);
    paths = { step: found.step, weights: found.weights, optimizer: found.optimizer, state: found.state };
  } else {
    paths = from;
  }
  const doc = await verifyCheckpoint(paths);
  const weights = (await readSafetensors(paths.weights, options)).tensors;
  const m: TensorMap = new Map();
  const v: TensorMap = new Map();
  for (const [name, record] of (await readSafetensors(paths.optimizer, options)).tensors) {
    if (name.startsWith('m.')) m.set(name.slice(2), record);
    else if (name.startsWith('v.')) v.set(name.slice(2), record);
    else throw new Error(`checkpoint: ${paths.optimizer}: tensor '${name}' is neither an m. nor a v. moment`);
  }
  return { paths, weights, optimizer: { m, v }, state: doc.state };
}

function pidIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Keeps the `keepLast` newest whole checkpoints and the one latest.json names; deletes the files of
 * every other step (older checkpoints, and torn leftovers of crashed saves) and temporary files left
 * by writers that are no longer running. Returns the names deleted.
 */
export async function pruneTrainingCheckpoints(dir: string, keepLast: number): Promise<string[]> {
  if (!Number.isSafeInteger(keepLast) || keepLast < 1) throw new Error(`checkpoint: keepLast must be an integer >= 1, got ${String(keepLast)}`);
  const whole = (await listTrainingCheckpoints(dir)).map((p) => p.step);
  const keep = new Set(whole.slice(-keepLast));
  const pointed = await readLatestPointer(dir);
  if (pointed !== null) keep.add(pointed);
  const deleted: string[] = [];
  for (const name of await listDir(dir)) {
    const m = STEP_FILE.exec(name);
    let remove = m !== null && !keep.has(Number(m[1]));
    if (!remove && isAtomicTempName(name) && /^\.(?:checkpoint|state|latest)/.test(name)) {
      const pid = Number(/\.tmp-(\d+)-/.exec(name)?.[1]);
      remove = Number.isInteger(pid) && pid !== process.pid && !pidIsAlive(pid);
    }
    if (remove) {
      await unlink(path.join(dir, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      deleted.push(name);
    }
  }
  return deleted.sort();
}
