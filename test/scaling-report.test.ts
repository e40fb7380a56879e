import { existsSync, mkdtempSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { main } from '../lib/cli/main.js';
import { fitPowerLaw } from '../lib/scaling/fit.js';
import { formatTick, logTicks, renderSvg } from '../lib/scaling/plot.js';
import { appendResult, readResults, recordKey, validateRecord, type ScalingRecord } from '../lib/scaling/record.js';
import { buildReport, writeReport } from '../lib/scaling/report.js';

/** A seeded generator (kept here so these tests need no native addon). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A synthetic sweep: 3 models × 2 data sizes × 3 budgets × 2 distributions with known slopes and a data bottleneck. */
function syntheticRecords(): ScalingRecord[] {
  const random = rng(42);
  const models = [['micro', 0.0008], ['tiny', 0.0054], ['small', 0.0175]] as const;
  const out: ScalingRecord[] = [];
  for (const [distribution, alpha] of [['precise', -0.2], ['noisy', -0.1]] as const) {
    for (const [model, gmacs] of models) {
      for (const data_size of [2000, 50000]) {
        for (const samples_seen of [20000, 60000, 180000]) {
          const repeats = samples_seen / data_size;
          const bottleneck = 1 + 0.08 * Math.max(0, Math.log10(repeats));
          const error = (scale: number) => scale * (gmacs * samples_seen) ** alpha * bottleneck * (1 + 0.02 * (random() - 0.5));
          out.push({ model, gmacs, image_gmacs: gmacs / 3, text_gmacs: (2 * gmacs) / 3, params: 1e5, samples_seen, data_size, distribution, metrics: { zeroshot: 1 - error(0.6), retrieval: 1 - error(0.8) }, wall_s: 2 });
        }
      }
    }
  }
  return out;
}

function sweepDir(records: ScalingRecord[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'clipscale-report-'));
  for (const r of records) appendResult(join(dir, 'results.jsonl'), r);
  return dir;
}

/** Tags open and close in order (a small well-formedness check). */
function assertWellFormed(xml: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  for (const m of xml.replace(/<\?xml[^>]*\?>/, '').matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:[^>"]|"[^"]*")*?)(\/?)>/g)) {
    const [, closing, name, , selfClosing] = m;
    names.push(name);
    if (closing) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else if (!selfClosing) stack.push(name);
  }
  if (stack.length) throw new Error(`unclosed: ${stack.join(', ')}`);
  if (/&(?!amp;|lt;|gt;|quot;|#)/.test(xml)) throw new Error('unescaped &');
  return names;
}

test('report: files, readable plots, and laws that match a direct fit', (t) => {
  const records = syntheticRecords();
  const dir = sweepDir(records);
  const report = writeReport(dir, { bootstrapSamples: 200 });
  for (const f of ['report.md', 'index.html', 'compute_zeroshot.svg', 'compute_retrieval.svg', 'samples_zeroshot_precise.svg', 'samples_retrieval_noisy.svg']) {
    t.true(existsSync(join(dir, f)), `${f} written`);
  }
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  for (const dist of ['precise', 'noisy']) {
    const pts = records.filter((r) => r.distribution === dist);
    const direct = fitPowerLaw(pts.map((r) => r.gmacs * r.samples_seen), pts.map((r) => 1 - r.metrics.zeroshot), { method: 'pareto-bins' });
    t.true(md.includes(`zeroshot / ${dist}: E = `), `${dist} law stated`);
    t.true(md.includes(`α = ${direct.alpha.toFixed(4)}, β = ${direct.beta.toFixed(4)}`), `report states α=${direct.alpha.toFixed(4)} β=${direct.beta.toFixed(4)} for ${dist}`);
    // the planted slopes come back
    t.true(Math.abs(direct.alpha - (dist === 'precise' ? -0.2 : -0.1)) < 0.04, `α ${direct.alpha}`);
  }
  // the distributions side by side in one table row per task
  t.regex(md, /\| task \| noisy: α \(95% CI\) \| noisy: β \| noisy: r² \| precise: α \(95% CI\) \| precise: β \| precise: r² \|/);
  t.regex(md, /do not overlap: the two caption distributions scale differently/);
  t.regex(md, /The gap grows with samples seen: a data bottleneck/);

  const svg = readFileSync(join(dir, 'compute_zeroshot.svg'), 'utf8');
  const tags = assertWellFormed(svg);
  t.true(tags.includes('svg') && tags.includes('path') && tags.includes('circle'));
  t.true(svg.includes('Compute C (GMACs per sample × samples seen) (log scale)'), 'x axis label');
  t.true(svg.includes('zeroshot error (1 − score) (log scale)'), 'y axis label');
  t.true(svg.includes('noisy fit (pareto-bins)') && svg.includes('precise · small'), 'legend');
  const ticks = [...svg.matchAll(/<text class="tick"[^>]*>([^<]+)</g)].map((m) => m[1]);
  t.true(ticks.length >= 4, `tick labels: ${ticks.join(' ')}`);
  assertWellFormed(readFileSync(join(dir, 'samples_zeroshot_noisy.svg'), 'utf8'));
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  for (const p of report.plots) t.true(html.includes(`<img src="${p.file}"`), `index.html shows ${p.file}`);
});

test('report: a torn last line is skipped and the CLI names it', async (t) => {
  const dir = sweepDir(syntheticRecords().slice(0, 18));
  appendFileSync(join(dir, 'results.jsonl'), '{"model":"tiny","gmacs":0.1,');
  const { records, tornLines } = readResults(join(dir, 'results.jsonl'));
  t.is(records.length, 18);
  t.deepEqual(tornLines, [19]);
  // a record appended after a torn line starts on its own line
  appendResult(join(dir, 'results.jsonl'), syntheticRecords()[20]);
  t.is(readResults(join(dir, 'results.jsonl')).records.length, 19);
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (s: string) => out.push(s);
  console.error = (s: string) => err.push(s);
  try {
    t.is(await main(['report', dir, '--bootstrap', '100', '--json']), 0);
  } finally {
    console.log = log;
    console.error = error;
  }
  const json = JSON.parse(out[0]);
  t.true(json.laws.length >= 2);
  t.regex(err.join('\n'), /skipped unfinished line\(s\) 19/);
});

test('records: validation errors name the field', (t) => {
  const good = syntheticRecords()[0];
  t.notThrows(() => validateRecord(good));
  t.throws(() => validateRecord({ ...good, samples_seen: 0 }, 'f:3'), { message: /f:3: 'samples_seen' must be a positive number, got 0/ });
  t.throws(() => validateRecord({ ...good, metrics: { zs: 1.5 } }), { message: /metrics\.zs must be a score in \[0, 1\], got 1\.5/ });
  t.throws(() => validateRecord({ ...good, distribution: undefined }), { message: /'distribution' must be a non-empty string/ });
  t.is(recordKey(good), 'micro|data=2000|samples=20000|dist=precise|seed=0');
  t.throws(() => buildReport([]), { message: /holds no records/ });
  const dir = mkdtempSync(join(tmpdir(), 'clipscale-report-'));
  t.throws(() => writeReport(dir), { message: /results file not found/ });
  writeFileSync(join(dir, 'results.jsonl'), '{"model": 3}\n');
  t.throws(() => writeReport(dir), { message: /line 1: 'model' must be a non-empty string/ });
});

test('plot: log ticks and labels', (t) => {
  t.deepEqual(logTicks(1e3, 1e9).major, [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9]);
  t.deepEqual(logTicks(0.15, 0.9).major, [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
  t.deepEqual(logTicks(15, 600).major, [20, 50, 100, 200, 500]);
  t.is(formatTick(1e9), '10⁹');
  t.is(formatTick(2e-5), '2×10⁻⁵');
  t.is(formatTick(0.25), '0.25');
  const svg = renderSvg({ title: 'a & b <c>', xLabel: 'x', yLabel: 'y', series: [{ label: 's', points: [{ x: 1, y: 2 }, { x: 3, y: 1 }], color: '#000', line: 'solid' }] });
  assertWellFormed(svg);
  t.true(svg.includes('a &amp; b &lt;c&gt;'));
  t.throws(() => renderSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [] }), { message: /no points/ });
});
