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
  for (const f of ['report.md', 'index.html', 'figure_zeroshot.svg', 'figure_retrieval.svg', 'samples_zeroshot_precise.svg', 'samples_retrieval_noisy.svg', 'paper_ImageNet_zero_shot_top_1.svg']) {
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
  t.regex(md, /The slopes separate: precise scales faster \(the 95% intervals on α do not overlap\)/);
  t.regex(md, /grows by [\d.]+ per decade of samples seen \(95% CI [\d.]+ to [\d.]+\): the gap grows with samples seen — repeated samples give less than fresh ones/);
  // the findings come first, before any figure or table
  t.true(md.indexOf('## What this study found') < md.indexOf('!['), 'summary before the figures');
  t.regex(md, /\*\*zeroshot\*\* — noisy: error falls as E = .*; precise: error falls as E = /, 'the headline law in a sentence');
  t.regex(md, /ImageNet zero-shot top-1: OpenCLIP \(LAION\) E = 5\.86·C\^-0\.111 .* vs OpenAI CLIP \(WIT\) E = 23\.2·C\^-0\.164/);

  const svg = readFileSync(join(dir, 'figure_zeroshot.svg'), 'utf8');
  const tags = assertWellFormed(svg);
  t.true(tags.includes('svg') && tags.includes('path') && tags.includes('circle'));
  t.true(svg.includes('Compute C (GMACs per sample × samples seen) (log scale)'), 'x axis label');
  t.true(svg.includes('error (1 − score) (log scale)'), 'y axis label');
  t.true(svg.includes('noisy: E = ') && svg.includes('precise, data set of 50k') && svg.includes('precise, data set of 2k'), 'legend: fit with its equation, data sizes apart');
  t.true(svg.includes('class="band"'), 'a confidence band');
  t.true(/fill="white"[^>]*stroke="#/.test(svg), 'points off the frontier drawn hollow');
  const ticks = [...svg.matchAll(/<text class="tick"[^>]*>([^<]+)</g)].map((m) => m[1]);
  t.true(ticks.length >= 4, `tick labels: ${ticks.join(' ')}`);
  assertWellFormed(readFileSync(join(dir, 'samples_zeroshot_noisy.svg'), 'utf8'));
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  for (const p of report.plots) t.true(html.includes(`<img src="${p.file}"`), `index.html shows ${p.file}`);
});

test('report: runs stuck at the plateau are flagged and left out; duplicates folded; near-chance tasks not learned', (t) => {
  const records = syntheticRecords().map((r, i) => {
    // realistic metric names: colour is learned, shape stays at chance (1/8), per-class recall equals acc1
    const colour = r.metrics.zeroshot;
    const shape = 0.125 + 0.01 * ((i * 7) % 3);
    return { ...r, batch_size: 32, final_loss: 2, metrics: { zeroshot_colour_acc1: colour, zeroshot_colour_mean_per_class_recall: colour, zeroshot_shape_acc1: shape, 'retrieval_image_retrieval_recall@5': r.metrics.retrieval } };
  });
  // two runs that never left ln(32): their chance-level scores must not become points of a law
  const stuck = records.slice(0, 2).map((r) => ({ ...r, samples_seen: r.samples_seen * 7, final_loss: Math.log(32) - 0.001, metrics: { ...r.metrics, zeroshot_colour_acc1: 0.125, zeroshot_colour_mean_per_class_recall: 0.125 } }));
  const report = buildReport([...records, ...stuck], { bootstrapSamples: 100 });
  t.is(report.plateau.length, 2);
  const colour = report.laws.find((l) => l.task === 'zeroshot_colour_acc1' && l.distribution === 'precise')!;
  t.is(colour.plateau, 2);
  const clean = fitPowerLaw(records.filter((r) => r.distribution === 'precise').map((r) => r.gmacs * r.samples_seen), records.filter((r) => r.distribution === 'precise').map((r) => 1 - r.metrics.zeroshot_colour_acc1));
  t.is(colour.fit!.alpha, clean.alpha, 'the fit is the fit without the stuck runs');
  t.regex(report.summary[0], /2 runs never left the loss plateau at ln\(batch size\)/);
  t.true(report.markdown.includes('never left the plateau'), 'flagged in the table of runs');
  t.deepEqual(report.folded, [{ metric: 'zeroshot_colour_mean_per_class_recall', sameAs: 'zeroshot_colour_acc1' }]);
  t.false(report.laws.some((l) => l.task === 'zeroshot_colour_mean_per_class_recall'));
  t.deepEqual(report.notLearned, ['zeroshot_shape_acc1']);
  t.false(report.headline.includes('zeroshot_shape_acc1'));
  const shapeLine = report.summary.find((s) => s.includes('shape classification'))!;
  t.regex(shapeLine, /not learned: its best score is 0\.145 against chance 0\.125/);
  t.notRegex(shapeLine, /error falls/);
  t.deepEqual(report.headline, ['retrieval_image_retrieval_recall@5', 'zeroshot_colour_acc1']);
  t.true(report.plots.some((p) => p.file === 'figure_zeroshot_colour_acc1.svg' && p.svg.includes('chance (E = 0.875)')), 'chance level drawn');
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

test.serial("report --paper: the paper's Figure 1 laws from its shipped results, and retrieval the other way round", async (t) => {
  const out: string[] = [];
  const log = console.log;
  console.log = (s: string) => out.push(s);
  try {
    t.is(await main(['report', '--paper', '--bootstrap', '100', '--json']), 0);
  } finally {
    console.log = log;
  }
  const { laws } = JSON.parse(out[0]) as { laws: { task: string; dataset: string; alpha: number; beta: number; n: number }[] };
  const law = (task: string, dataset: string) => laws.find((l) => l.task.startsWith(task) && l.dataset.startsWith(dataset))!;
  const openclip = law('ImageNet', 'OpenCLIP');
  const openai = law('ImageNet', 'OpenAI');
  t.is(openclip.n, 29);
  t.is(openai.n, 3);
  t.is(Number(openclip.beta.toFixed(2)), 5.86);
  t.is(Number(openclip.alpha.toFixed(2)), -0.11);
  t.is(Number(openai.beta.toFixed(2)), 23.18);
  t.is(Number(openai.alpha.toFixed(2)), -0.16);
  t.true(openai.alpha < openclip.alpha, 'ImageNet: OpenAI (WIT) scales faster');
  const coco = (dataset: string) => law('MS-COCO image', dataset).alpha;
  t.true(coco('OpenCLIP') < coco('OpenAI'), 'MS-COCO retrieval: OpenCLIP (LAION) scales faster');
  await t.throwsAsync(main(['report', '--paper', 'somedir']), { message: /takes no directory/ });
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

test('report: several seeds of a point are averaged before the frontier, and counted', (t) => {
  const base = syntheticRecords();
  // seed 1 of every point: its error differs from seed 0's by a factor alternating 1.3 and 0.8
  const seed1 = base.map((r, i) => {
    const factor = i % 2 ? 1.3 : 0.8;
    const metrics = Object.fromEntries(Object.entries(r.metrics).map(([k, v]) => [k, 1 - (1 - v) * factor]));
    return { ...r, seed: 1, metrics };
  });
  const report = buildReport([...base, ...seed1], { bootstrapSamples: 50, paper: false });
  const law = report.laws.find((l) => l.task === 'retrieval' && l.distribution === 'precise')!;
  t.is(law.n, 18, 'a point with two seeds counts once');
  t.is(law.runs, 36);
  t.deepEqual(law.seeds, [2, 2]);
  // the same law as a fit on the averaged errors, one record a point
  const averaged = base.map((r, i) => {
    const factor = i % 2 ? 1.3 : 0.8;
    return { ...r, metrics: { ...r.metrics, retrieval: 1 - ((1 - r.metrics.retrieval) * (1 + factor)) / 2 } };
  });
  const direct = fitPowerLaw(
    averaged.filter((r) => r.distribution === 'precise').map((r) => r.gmacs * r.samples_seen),
    averaged.filter((r) => r.distribution === 'precise').map((r) => 1 - r.metrics.retrieval),
  );
  t.true(Math.abs(law.fit!.alpha - direct.alpha) < 1e-9);
  t.true(Math.abs(law.fit!.r2 - direct.r2) < 1e-9);
  t.true(law.fit!.used.every((k) => !k.includes('seed=')), 'the frontier names points, not runs');
  t.regex(report.markdown, /2 seeds per point: a point's error is the mean over its seeds/);
  t.regex(report.markdown, /18 points \(36 runs: 2 seeds a point, errors averaged\)/);
  // one seed only: as before
  const single = buildReport(base, { bootstrapSamples: 50, paper: false });
  t.deepEqual(single.laws.find((l) => l.task === 'retrieval' && l.distribution === 'precise')!.seeds, [1, 1]);
  t.regex(single.markdown, /one seed per point/);
});

test('report: one headline rule for every task — weakly learned and saturating tasks keep their laws but leave the headline', (t) => {
  const records = syntheticRecords().map((r, i) => {
    const colour = r.metrics.zeroshot;
    // shape: learned (above 1.5 × chance) but only 10-15% of the way from chance (1/8) to perfect
    const shape = 0.125 + 0.875 * (0.1 + 0.05 * ((i * 7) % 3) / 2);
    // retrieval reaches a perfect score on the largest budget of the precise distribution
    const perfect = r.distribution === 'precise' && r.samples_seen === 180000;
    const retrieval = perfect ? 1 : r.metrics.retrieval;
    return { ...r, metrics: { zeroshot_colour_acc1: colour, zeroshot_shape_acc1: shape, 'retrieval_image_retrieval_recall@5': retrieval } };
  });
  const report = buildReport(records, { bootstrapSamples: 50, paper: false });
  t.deepEqual(report.headline, ['zeroshot_colour_acc1']);
  t.deepEqual(
    report.demoted.map((v) => [v.metric, v.status]),
    [
      ['retrieval_image_retrieval_recall@5', 'saturates'],
      ['zeroshot_shape_acc1', 'weakly learned'],
    ],
  );
  t.deepEqual(report.notLearned, []);
  const shapeLine = report.summary.find((s) => s.includes('shape classification'))!;
  t.regex(shapeLine, /not a headline law, weakly learned: its best score is 0\.\d+ against chance 0\.125, 1\d(\.\d)?% of the way from chance to a perfect score/);
  t.regex(shapeLine, /Its fits all the same: noisy: error (falls|RISES)|no clear trend/);
  const retrievalLine = report.summary.find((s) => s.includes('image retrieval'))!;
  t.regex(retrievalLine, /not a headline law, it saturates: a perfect score at 6 precise points/);
  t.regex(report.markdown, /Headline tasks are the paper's Figure 1 metrics .* at least 50% of the way from chance to a perfect score/);
  t.regex(report.markdown, /\| zeroshot_shape_acc1 \|.*\| weakly learned \|/);
  t.regex(report.markdown, /\| retrieval_image_retrieval_recall@5 \|.*\| saturates \|/);
  t.deepEqual(report.plots.filter((p) => p.file.startsWith('figure_')).map((p) => p.file), ['figure_zeroshot_colour_acc1.svg'], 'figures for the headline only');
});

test('report: the headline rule judges points (seed means), so one lucky seed past the half-way mark does not make a task a headline', (t) => {
  // shape: 40% of the way from chance (1/8) to perfect at every point, but seed 1 of one point reaches 55%
  const shapeAt = (progress: number) => 0.125 + 0.875 * progress;
  const base = syntheticRecords().map((r) => ({ ...r, metrics: { ...r.metrics, zeroshot_shape_acc1: shapeAt(0.4) } }));
  const seed1 = base.map((r, i) => ({ ...r, seed: 1, metrics: { ...r.metrics, zeroshot_shape_acc1: shapeAt(i === 5 ? 0.55 : 0.4) } }));
  const report = buildReport([...base, ...seed1], { bootstrapSamples: 20, paper: false });
  const shape = report.demoted.find((v) => v.metric === 'zeroshot_shape_acc1');
  t.is(shape?.status, 'weakly learned');
  t.true(shape?.status === 'weakly learned' && Math.abs(shape.progress - 0.475) < 1e-9, 'the best point is the mean of its seeds (40% and 55%), short of half-way');
});
