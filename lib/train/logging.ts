// Training logs: a progress bar redrawn in place on a terminal (plain lines when the output is not a
// terminal), and one JSON object per log step to any number of sinks (a log.jsonl file, stdout).
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';

/** What the logger writes to: process.stdout/stderr, a file stream, or a test's fake. */
export interface TextSink {
  write(chunk: string): unknown;
  /** True for a terminal: the progress bar is redrawn in place. */
  isTTY?: boolean;
  /** Terminal width; 80 when unknown. */
  columns?: number;
}

/** One log step. Extra keys (eval metrics, ...) are written after the standard ones. */
export interface TrainLogRecord {
  step: number;
  samples: number;
  loss: number;
  lr: number;
  logit_scale: number;
  samples_per_s: number;
  data_time_s: number;
  step_time_s: number;
  [metric: string]: number | string | boolean | null;
}

const STANDARD_KEYS = ['step', 'samples', 'loss', 'lr', 'logit_scale', 'samples_per_s', 'data_time_s', 'step_time_s'] as const;

/**
 * The record as one JSON line: standard keys first, then the rest in their order. Non-finite numbers
 * (a NaN loss) are written as null, which is what JSON can hold.
 */
export function formatJsonLine(record: TrainLogRecord): string {
  for (const key of ['step', 'samples'] as const) {
    if (typeof record[key] !== 'number') throw new Error(`log record: '${key}' must be a number, got ${String(record[key])}`);
  }
  const parts: string[] = [];
  const put = (k: string, v: unknown) => {
    if (v === undefined) return;
    const value = typeof v === 'number' && !Number.isFinite(v) ? null : v;
    parts.push(`${JSON.stringify(k)}:${JSON.stringify(value)}`);
  };
  for (const k of STANDARD_KEYS) put(k, record[k]);
  for (const [k, v] of Object.entries(record)) if (!(STANDARD_KEYS as readonly string[]).includes(k)) put(k, v);
  return `{${parts.join(',')}}\n`;
}

/** A JSON-lines file (created with its directory; appended to when `append`). */
export class JsonLinesFile implements TextSink {
  private readonly stream: WriteStream;
  private error: Error | null = null;

  private constructor(readonly path: string, stream: WriteStream) {
    this.stream = stream;
    stream.on('error', (err) => {
      this.error = err;
    });
  }

  static async open(file: string, options: { append?: boolean } = {}): Promise<JsonLinesFile> {
    await mkdir(path.dirname(file), { recursive: true });
    const stream = createWriteStream(file, { flags: options.append ? 'a' : 'w' });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    return new JsonLinesFile(file, stream);
  }

  write(chunk: string): boolean {
    if (this.error) throw new Error(`log file ${this.path}: ${this.error.message}`);
    return this.stream.write(chunk);
  }

  /** Flushes and closes; throws if any write failed. */
  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.stream.end((err?: Error | null) => (err ? reject(new Error(`log file ${this.path}: ${err.message}`)) : resolve())),
    );
    if (this.error) throw new Error(`log file ${this.path}: ${this.error.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Human-readable numbers

/** 1234 → "1.23k", 12_800_000 → "12.8M". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  for (const [unit, scale] of [['G', 1e9], ['M', 1e6], ['k', 1e3]] as const) {
    if (a >= scale) return `${(n / scale).toPrecision(3)}${unit}`;
  }
  return Number.isInteger(n) ? String(n) : n.toPrecision(3);
}

/** Seconds → "m:ss" or "h:mm:ss"; "--:--" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function formatLoss(x: number | undefined): string {
  return x === undefined ? '' : Number.isFinite(x) ? x.toFixed(4) : String(x);
}

// ---------------------------------------------------------------------------------------------
// Progress

export interface ProgressOptions {
  stream: TextSink;
  /** Total samples of the run. */
  total: number;
  /** Samples already done when the bar starts (a resumed run); its rate counts from here. */
  start?: number;
  /** Least time between two redraws, ms (default 100). */
  minIntervalMs?: number;
  /** Clock in ms (tests pass a fake one). */
  now?: () => number;
}

export interface ProgressInfo {
  loss?: number;
  samplesPerS?: number;
}

/**
 * A one-line progress display: samples done / total, samples/s, loss, ETA. On a terminal it is
 * redrawn in place with \r, at most once per `minIntervalMs`; elsewhere it draws nothing (the
 * training logger prints plain lines instead).
 */
export class ProgressBar {
  private readonly stream: TextSink;
  private readonly total: number;
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  private readonly startSamples: number;
  private readonly startTime: number;
  private lastDraw = -Infinity;
  private done: number;
  private info: ProgressInfo = {};
  private drawn = false;

  constructor(options: ProgressOptions) {
    if (!Number.isFinite(options.total) || options.total <= 0) throw new Error(`progress: total must be a positive number, got ${String(options.total)}`);
    this.stream = options.stream;
    this.total = options.total;
    this.minIntervalMs = options.minIntervalMs ?? 100;
    this.now = options.now ?? (() => performance.now());
    this.startSamples = options.start ?? 0;
    this.done = this.startSamples;
    this.startTime = this.now();
  }

  get isTTY(): boolean {
    return this.stream.isTTY === true;
  }

  /** Samples per second since the bar started; NaN before any time has passed. */
  rate(): number {
    const seconds = (this.now() - this.startTime) / 1000;
    return seconds > 0 ? (this.done - this.startSamples) / seconds : NaN;
  }

  /** Seconds left at the rate so far. */
  eta(): number {
    const r = this.rate();
    return r > 0 ? (this.total - this.done) / r : NaN;
  }

  /**
   * The line as it would be drawn now (without \r), fitted to `columns`. A terminal that reports no
   * width (0, as some CI pseudo-terminals and detached sessions do, or nonsense) is taken as 80 wide.
   */
  render(width = this.stream.columns): string {
    const columns = typeof width === 'number' && Number.isFinite(width) && width >= 1 ? Math.floor(width) : 80;
    const frac = Math.min(1, Math.max(0, this.done / this.total));
    const perSecond = this.info.samplesPerS ?? this.rate();
    const fields = [
      `${(frac * 100).toFixed(1).padStart(5)}%`,
      `${formatCount(this.done)}/${formatCount(this.total)}`,
      Number.isFinite(perSecond) ? `${formatCount(perSecond)} samples/s` : '',
      this.info.loss !== undefined ? `loss ${formatLoss(this.info.loss)}` : '',
      `eta ${formatDuration(this.eta())}`,
    ].filter((f) => f !== '');
    const text = fields.join('  ');
    const barWidth = columns - 1 - text.length - 3; // keep the last column free: writing it wraps some terminals
    if (barWidth < 10) return text.slice(0, Math.max(0, columns - 1));
    const filled = Math.round(frac * barWidth);
    return `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${text}`;
  }

  /** Records progress; redraws on a terminal when the throttle allows (always at the end). */
  update(done: number, info: ProgressInfo = {}): void {
    this.done = done;
    this.info = { ...this.info, ...info };
    if (!this.isTTY) return;
    const t = this.now();
    if (t - this.lastDraw < this.minIntervalMs && done < this.total) return;
    this.draw(t);
  }

  private draw(t = this.now()): void {
    this.stream.write(`\r${this.render()}\x1b[K`);
    this.lastDraw = t;
    this.drawn = true;
  }

  /** Writes a full line above the bar (the bar is cleared, the line printed, the bar redrawn). */
  printAbove(line: string): void {
    if (this.isTTY && this.drawn) {
      this.stream.write(`\r\x1b[K${line}\n`);
      this.draw();
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  /** Final redraw and newline, so what follows starts on its own line. */
  finish(): void {
    if (!this.isTTY) return;
    this.draw();
    this.stream.write('\n');
    this.drawn = false;
  }
}

// ---------------------------------------------------------------------------------------------
// The training logger

export interface TrainingLoggerOptions {
  /** Samples the run will see in all. */
  totalSamples: number;
  /** Samples already seen (resume). */
  startSamples?: number;
  /** Human output (e.g. process.stderr); null for none. A terminal gets the bar, anything else plain lines. */
  console?: TextSink | null;
  /** JSON-lines sinks: a JsonLinesFile, process.stdout, ... */
  jsonl?: TextSink[];
  minIntervalMs?: number;
  now?: () => number;
}

/** The plain (non-terminal) line for a log step. */
export function formatPlainLine(record: TrainLogRecord, totalSamples: number, etaSeconds: number): string {
  const pct = ((100 * record.samples) / totalSamples).toFixed(1);
  const parts = [
    `step ${record.step}`,
    `samples ${record.samples}/${totalSamples} (${pct}%)`,
    `loss ${formatLoss(record.loss)}`,
    `lr ${Number.isFinite(record.lr) ? record.lr.toExponential(3) : String(record.lr)}`,
    `logit_scale ${Number.isFinite(record.logit_scale) ? record.logit_scale.toFixed(3) : String(record.logit_scale)}`,
    `${formatCount(record.samples_per_s)} samples/s`,
    `data ${record.data_time_s.toFixed(3)}s`,
    `step ${record.step_time_s.toFixed(3)}s`,
    `eta ${formatDuration(etaSeconds)}`,
  ];
  for (const [k, v] of Object.entries(record)) {
    if ((STANDARD_KEYS as readonly string[]).includes(k)) continue;
    parts.push(`${k} ${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : String(v)}`);
  }
  return parts.join('  ');
}

/**
 * What a trainer talks to: `progress()` after every step (cheap; redraws the bar at most every
 * minIntervalMs on a terminal), `log()` at each log step (a JSON line to every sink, and a plain line
 * when the console is not a terminal), `message()` for anything else a person should read.
 */
export class TrainingLogger {
  private readonly bar: ProgressBar;
  private readonly console: TextSink | null;
  private readonly jsonl: TextSink[];
  private readonly totalSamples: number;

  constructor(options: TrainingLoggerOptions) {
    this.console = options.console ?? null;
    this.jsonl = options.jsonl ?? [];
    this.totalSamples = options.totalSamples;
    this.bar = new ProgressBar({
      stream: this.console ?? { write: () => undefined },
      total: options.totalSamples,
      start: options.startSamples,
      minIntervalMs: options.minIntervalMs,
      now: options.now,
    });
  }

  progress(samplesDone: number, info: ProgressInfo = {}): void {
    this.bar.update(samplesDone, info);
  }

  log(record: TrainLogRecord): void {
    const line = formatJsonLine(record);
    for (const sink of this.jsonl) {
      // JSON lines to the console's own terminal go above the bar, not through it.
      if (sink === this.console) this.bar.printAbove(line.slice(0, -1));
      else sink.write(line);
    }
    if (!this.console) return;
    this.bar.update(record.samples, { loss: record.loss, samplesPerS: record.samples_per_s });
    if (!this.bar.isTTY) this.console.write(`${formatPlainLine(record, this.totalSamples, this.bar.eta())}\n`);
  }

  message(text: string): void {
    if (this.console) this.bar.printAbove(text);
  }

  finish(): void {
    this.bar.finish();
  }
}
