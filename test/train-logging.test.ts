import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import {
  JsonLinesFile,
  ProgressBar,
  TrainingLogger,
  formatCount,
  formatDuration,
  formatJsonLine,
  type TrainLogRecord,
} from '../lib/train/logging.js';

class FakeStream {
  chunks: string[] = [];
  constructor(readonly isTTY: boolean, readonly columns = 100) {}
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

function fakeClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function record(step: number, extra: Partial<TrainLogRecord> = {}): TrainLogRecord {
  return {
    step,
    samples: step * 100,
    loss: 4 - step * 0.01,
    lr: 5e-4,
    logit_scale: 14.2857,
    samples_per_s: 1000,
    data_time_s: 0.01,
    step_time_s: 0.1,
    ...extra,
  };
}

test('JSON lines: standard keys first, extras after, non-finite numbers as null', (t) => {
  const line = formatJsonLine({ ...record(3), 'zeroshot-val-top1': 0.5, step_time_s: 0.25, loss: NaN });
  t.true(line.endsWith('\n'));
  t.is(line.split('\n').length, 2);
  t.deepEqual(Object.keys(JSON.parse(line)), ['step', 'samples', 'loss', 'lr', 'logit_scale', 'samples_per_s', 'data_time_s', 'step_time_s', 'zeroshot-val-top1']);
  t.deepEqual(JSON.parse(line), {
    step: 3, samples: 300, loss: null, lr: 5e-4, logit_scale: 14.2857, samples_per_s: 1000, data_time_s: 0.01, step_time_s: 0.25, 'zeroshot-val-top1': 0.5,
  });
  t.throws(() => formatJsonLine({ ...record(1), step: undefined as unknown as number }), { message: /'step' must be a number/ });
});

test('on a terminal the bar is redrawn in place with \\r, throttled, with rate and ETA', (t) => {
  const out = new FakeStream(true, 100);
  const clock = fakeClock();
  const bar = new ProgressBar({ stream: out, total: 10_000, minIntervalMs: 100, now: clock.now });
  clock.advance(1000);
  bar.update(1000, { loss: 3.5 });
  t.is(out.chunks.length, 1);
  const first = out.chunks[0];
  t.true(first.startsWith('\r['), 'starts with a carriage return and the bar');
  t.true(first.endsWith('\x1b[K'), 'clears what an older, longer line left');
  t.false(first.includes('\n'));
  t.regex(first, / 10\.0%  1\.00k\/10\.0k  1\.00k samples\/s  loss 3\.5000  eta 0:09/);
  t.is(first.length - 1 - 3, 99, 'fills the width less the last column (\\r and \\x1b[K take no columns)');
  const inside = first.slice(2, first.indexOf(']'));
  t.is((inside.match(/#/g) ?? []).length, Math.round(0.1 * inside.length), '10% of the bar filled');

  // Within the throttle interval: nothing drawn.
  clock.advance(50);
  bar.update(1050);
  t.is(out.chunks.length, 1);
  clock.advance(60);
  bar.update(1100);
  t.is(out.chunks.length, 2);
  // The end is always drawn, then finish() moves to a fresh line.
  clock.advance(1);
  bar.update(10_000);
  t.is(out.chunks.length, 3);
  t.regex(out.chunks[2], /\[#+\] 100\.0%  10\.0k\/10\.0k .* eta 0:00/);
  bar.finish();
  t.true(out.text.endsWith('\n'));
});

test('ETA follows the rate measured since the bar started (a resumed run counts from its start)', (t) => {
  const clock = fakeClock();
  const bar = new ProgressBar({ stream: new FakeStream(true), total: 100_000, start: 50_000, now: clock.now });
  t.true(Number.isNaN(bar.eta()));
  clock.advance(10_000);
  bar.update(60_000);
  t.is(bar.rate(), 1000);
  t.is(bar.eta(), 40);
});

test('a narrow terminal gets the text without a bar, cut to fit', (t) => {
  const bar = new ProgressBar({ stream: new FakeStream(true, 30), total: 100 });
  bar.update(50, { loss: 1 });
  const line = bar.render(30);
  t.false(line.includes('['));
  t.true(line.length <= 29);
});

test('not a terminal: no bar, one plain line per log step, JSON lines to every sink', (t) => {
  const consoleOut = new FakeStream(false);
  const jsonA = new FakeStream(false);
  const jsonB = new FakeStream(false);
  const clock = fakeClock();
  const logger = new TrainingLogger({ totalSamples: 1000, console: consoleOut, jsonl: [jsonA, jsonB], now: clock.now });
  for (let step = 1; step <= 10; step++) {
    clock.advance(100);
    logger.progress(step * 100, { loss: 1 });
    if (step % 5 === 0) logger.log(record(step, step === 10 ? { 'imagenet-zeroshot-top1': 0.1234 } : {}));
  }
  logger.message('saved checkpoint-10');
  logger.finish();
  const lines = consoleOut.text.split('\n').filter((l) => l);
  t.is(lines.length, 3);
  t.false(consoleOut.text.includes('\r'));
  t.regex(lines[0], /^step 5  samples 500\/1000 \(50\.0%\)  loss 3\.9500  lr 5\.000e-4  logit_scale 14\.286  1\.00k samples\/s  data 0\.010s  step 0\.100s  eta 0:01$/);
  t.regex(lines[1], /^step 10 .* eta 0:00  imagenet-zeroshot-top1 0\.1234$/);
  t.is(lines[2], 'saved checkpoint-10');
  for (const sink of [jsonA, jsonB]) {
    const records = sink.text.trim().split('\n').map((l) => JSON.parse(l));
    t.deepEqual(records.map((r) => r.step), [5, 10]);
    t.is(records[1]['imagenet-zeroshot-top1'], 0.1234);
  }
});

test('on a terminal, messages and JSON lines to the same terminal print above the bar', (t) => {
  const term = new FakeStream(true, 80);
  const clock = fakeClock();
  const logger = new TrainingLogger({ totalSamples: 1000, console: term, jsonl: [term], now: clock.now, minIntervalMs: 0 });
  clock.advance(100);
  logger.progress(100);
  logger.log(record(1));
  logger.message('eval: top1 0.5');
  const text = term.text;
  // Each full line is preceded by a cleared line and followed by the bar redrawn.
  t.true(text.includes('\r\x1b[K{"step":1,'));
  t.true(text.includes('\r\x1b[Keval: top1 0.5\n\r['));
  t.false(/\}\[/.test(text), 'no JSON glued to the bar');
});

test('JsonLinesFile writes and appends a log file', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'clipscale-log-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'out', 'log.jsonl');
  const a = await JsonLinesFile.open(file);
  new TrainingLogger({ totalSamples: 100, jsonl: [a] }).log(record(1));
  await a.close();
  const b = await JsonLinesFile.open(file, { append: true });
  new TrainingLogger({ totalSamples: 100, jsonl: [b] }).log(record(2));
  await b.close();
  const steps = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l).step);
  t.deepEqual(steps, [1, 2]);
});

test('number formatting', (t) => {
  t.is(formatCount(999), '999');
  t.is(formatCount(1234), '1.23k');
  t.is(formatCount(12_800_000), '12.8M');
  t.is(formatCount(3.4e9), '3.40G');
  t.is(formatDuration(59.6), '1:00');
  t.is(formatDuration(3725), '1:02:05');
  t.is(formatDuration(NaN), '--:--');
});

test('a terminal reporting 0 columns (or no sensible width) gets an 80-column bar', (t) => {
  for (const columns of [0, -5, Number.NaN, Infinity]) {
    const stream = new FakeStream(true, columns);
    const bar = new ProgressBar({ stream, total: 1000, now: fakeClock().now });
    bar.update(500, { loss: 1.5 });
    const line = bar.render();
    t.is(line.length, 80 - 1, `columns ${columns}`);
    t.regex(line, /^\[#+\.+\] +50\.0%/);
    t.true(stream.text.includes('50.0%'), 'drawn');
  }
});
