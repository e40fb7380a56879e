// TensorBoard event files (`--report-to tensorboard`): TFRecord-framed `Event` protocol buffers with
// scalar summaries, named events.out.tfevents.<seconds>.<host> as TensorFlow names them, and a
// reader for them (tests; anyone who wants a run's curves without Python).
//
// The few protobuf fields used (tensorflow/core/util/event.proto, framework/summary.proto):
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; TensorProto tensor = 8; }
//   TensorProto { DataType dtype = 1; bytes tensor_content = 4; repeated float float_val = 5; repeated double double_val = 6; }
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import type { TrainLogRecord } from './logging.js';
import { frameRecord, readRecords } from './tfrecord.js';

// ---------------------------------------------------------------------------------------------
// Protobuf, the little of it needed

class ProtoWriter {
  private chunks: number[] = [];

  private varint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.chunks.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.chunks.push(Number(x));
  }

  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  double(field: number, v: number): this {
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.chunks.push(...b);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.chunks.push(...b);
    return this;
  }

  int64(field: number, v: number): this {
    this.key(field, 0);
    this.varint(BigInt(v));
    return this;
  }

  bytes(field: number, v: Uint8Array): this {
    this.key(field, 2);
    this.varint(BigInt(v.length));
    for (const x of v) this.chunks.push(x);
    return this;
  }

  string(field: number, v: string): this {
    return this.bytes(field, new TextEncoder().encode(v));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

type FieldValue = { wire: 0; value: bigint } | { wire: 1; value: DataView } | { wire: 2; value: Uint8Array } | { wire: 5; value: DataView };

/** The fields of one message, in order (unknown fields are kept and skipped by the caller). */
function decodeFields(bytes: Uint8Array, where: string): { field: number; v: FieldValue }[] {
  const out: { field: number; v: FieldValue }[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (at >= bytes.length) throw new Error(`${where}: truncated varint`);
      const b = bytes[at++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
      if (shift > 63n) throw new Error(`${where}: varint too long`);
    }
  };
  const take = (n: number): Uint8Array => {
    if (at + n > bytes.length) throw new Error(`${where}: field runs past the end of the message`);
    const s = bytes.subarray(at, at + n);
    at += n;
    return s;
  };
  while (at < bytes.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ field, v: { wire, value: varint() } });
    else if (wire === 1) {
      const s = take(8);
      out.push({ field, v: { wire, value: new DataView(s.buffer, s.byteOffset, 8) } });
    } else if (wire === 2) out.push({ field, v: { wire, value: take(Number(varint())) } });
    else if (wire === 5) {
      const s = take(4);
      out.push({ field, v: { wire, value: new DataView(s.buffer, s.byteOffset, 4) } });
    } else throw new Error(`${where}: unsupported wire type ${wire} (field ${field})`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Events

export interface ScalarValue {
  tag: string;
  value: number;
}

export interface TensorBoardEvent {
  wallTime: number;
  step: number;
  /** Only in a file's first event: 'brain.Event:2'. */
  fileVersion?: string;
  scalars: ScalarValue[];
}

export function encodeEvent(e: TensorBoardEvent): Uint8Array {
  const w = new ProtoWriter().double(1, e.wallTime).int64(2, e.step);
  if (e.fileVersion !== undefined) w.string(3, e.fileVersion);
  if (e.scalars.length) {
    const summary = new ProtoWriter();
    for (const s of e.scalars) summary.bytes(1, new ProtoWriter().string(1, s.tag).float(2, s.value).finish());
    w.bytes(5, summary.finish());
  }
  return w.finish();
}

const DT_FLOAT = 1;
const DT_DOUBLE = 2;

/** A scalar held as a one-element TensorProto (TF2-style summaries), or undefined. */
function tensorScalar(bytes: Uint8Array, where: string): number | undefined {
  let dtype = 0;
  let value: number | undefined;
  let content: Uint8Array | undefined;
  for (const { field, v } of decodeFields(bytes, where)) {
    if (field === 1 && v.wire === 0) dtype = Number(v.value);
    else if (field === 4 && v.wire === 2) content = v.value;
    else if (field === 5 && v.wire === 5) value = v.value.getFloat32(0, true);
    else if (field === 5 && v.wire === 2 && v.value.length >= 4) value = new DataView(v.value.buffer, v.value.byteOffset).getFloat32(0, true);
    else if (field === 6 && v.wire === 1) value = v.value.getFloat64(0, true);
    else if (field === 6 && v.wire === 2 && v.value.length >= 8) value = new DataView(v.value.buffer, v.value.byteOffset).getFloat64(0, true);
  }
  if (value === undefined && content) {
    const view = new DataView(content.buffer, content.byteOffset, content.byteLength);
    if (dtype === DT_FLOAT && content.length === 4) value = view.getFloat32(0, true);
    if (dtype === DT_DOUBLE && content.length === 8) value = view.getFloat64(0, true);
  }
  return value;
}

export function decodeEvent(bytes: Uint8Array, where = 'event'): TensorBoardEvent {
  const e: TensorBoardEvent = { wallTime: NaN, step: 0, scalars: [] };
  for (const { field, v } of decodeFields(bytes, where)) {
    if (field === 1 && v.wire === 1) e.wallTime = v.value.getFloat64(0, true);
    else if (field === 2 && v.wire === 0) e.step = Number(BigInt.asIntN(64, v.value));
    else if (field === 3 && v.wire === 2) e.fileVersion = new TextDecoder().decode(v.value);
    else if (field === 5 && v.wire === 2) {
      for (const value of decodeFields(v.value, `${where} summary`)) {
        if (value.field !== 1 || value.v.wire !== 2) continue;
        let tag = '';
        let scalar: number | undefined;
        for (const f of decodeFields(value.v.value, `${where} summary value`)) {
          if (f.field === 1 && f.v.wire === 2) tag = new TextDecoder().decode(f.v.value);
          else if (f.field === 2 && f.v.wire === 5) scalar = f.v.value.getFloat32(0, true);
          else if (f.field === 8 && f.v.wire === 2) scalar = tensorScalar(f.v.value, `${where} tensor`);
        }
        if (scalar !== undefined) e.scalars.push({ tag, value: scalar });
      }
    }
  }
  return e;
}

/** The events of one event file, checked record by record. */
export function readEventFile(path: string): TensorBoardEvent[] {
  return readRecords(readFileSync(path), path).map((r, i) => decodeEvent(r, `${path}: event ${i}`));
}

/** Event files of a log directory, oldest first (their names start with the creation time). */
export function listEventFiles(dir: string): string[] {
  const files = readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.'));
  const time = (f: string) => Number(f.split('.')[3]);
  return files.sort((a, b) => time(a) - time(b) || a.localeCompare(b)).map((f) => join(dir, f));
}

/** Every scalar in a log directory by tag: [{step, value, wallTime}] in file then write order. */
export function readScalars(dir: string): Map<string, { step: number; value: number; wallTime: number }[]> {
  const out = new Map<string, { step: number; value: number; wallTime: number }[]>();
  for (const file of listEventFiles(dir)) {
    for (const e of readEventFile(file)) {
      for (const s of e.scalars) {
        let list = out.get(s.tag);
        if (!list) out.set(s.tag, (list = []));
        list.push({ step: e.step, value: s.value, wallTime: e.wallTime });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The writer

/** OpenCLIP's tag for each standard log key; evaluation metrics go under val/. */
const TRAIN_TAGS: Record<string, string> = {
  loss: 'train/loss',
  lr: 'train/lr',
  logit_scale: 'train/scale',
  samples_per_s: 'train/samples_per_second',
  data_time_s: 'train/data_time',
  step_time_s: 'train/batch_time',
  grad_norm: 'train/grad_norm',
  skipped_steps: 'train/skipped_steps',
};

/** The scalars of one training log record, under OpenCLIP's tags. */
export function scalarsOfRecord(record: TrainLogRecord): ScalarValue[] {
  const out: ScalarValue[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (typeof value !== 'number' || key === 'step' || key === 'samples') continue;
    const tag = TRAIN_TAGS[key] ?? (key.startsWith('zeroshot_') || key.startsWith('retrieval_') ? `val/${key}` : `train/${key}`);
    out.push({ tag, value });
  }
  out.push({ tag: 'train/samples_seen', value: record.samples });
  return out;
}

export interface TensorBoardWriterOptions {
  /** Seconds since the epoch (default: now); used in the file name and the first event. */
  wallTime?: number;
  /** Default: os.hostname(). */
  host?: string;
}

/** Appends events to a new events.out.tfevents.<seconds>.<host> file in `dir`. */
export class TensorBoardWriter {
  readonly path: string;
  private fd: number | null;

  constructor(dir: string, options: TensorBoardWriterOptions = {}) {
    mkdirSync(dir, { recursive: true });
    const wallTime = options.wallTime ?? Date.now() / 1000;
    // A host name with a path separator would make the name a path; TensorFlow uses it as given otherwise.
    const host = (options.host ?? hostname()).replace(/[/\\]/g, '_');
    let path = join(dir, `events.out.tfevents.${Math.floor(wallTime)}.${host}`);
    // Two writers in the same second (a quick resume) get distinct files, as TensorFlow's suffixes do.
    for (let i = 1; ; i++) {
      try {
        this.fd = openSync(path, 'wx');
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`tensorboard: cannot create ${path}: ${(err as Error).message}`);
        path = join(dir, `events.out.tfevents.${Math.floor(wallTime)}.${host}.${i}`);
      }
    }
    this.path = path;
    this.writeEvent({ wallTime, step: 0, fileVersion: 'brain.Event:2', scalars: [] });
  }

  writeEvent(event: TensorBoardEvent): void {
    if (this.fd === null) throw new Error(`tensorboard: ${this.path} is closed`);
    const bytes = frameRecord(encodeEvent(event));
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done);
  }

  /** One event holding every scalar given, at `step`. */
  scalars(step: number, values: ScalarValue[], wallTime = Date.now() / 1000): void {
    if (values.length) this.writeEvent({ wallTime, step, scalars: values });
  }

  /** The scalars of a training log record (loss, lr, logit scale, samples/s, evaluation metrics, …). */
  record(record: TrainLogRecord): void {
    this.scalars(record.step, scalarsOfRecord(record));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
