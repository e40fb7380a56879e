// Loading side by side: the same JPEG files through clipscale's DataLoader (with and without
// shrink-on-load `draft`) and through PIL + torchvision in torch's DataLoader (with and without
// PIL's Image.draft; benchmarks/loader_side_by_side.py), the same number of decode workers and
// batch size, images held in memory on both sides. Transform: OpenCLIP's training
// RandomResizedCrop(224, scale 0.9–1.0, bicubic) + normalise (or eval: resize + centre crop).
//
//   npm run build:ts && node --import=tsx benchmarks/loader_side_by_side.ts [--sets small,vga] [--images 480]
//        [--workers 2] [--mode train|eval] [--rounds 3] [--passes 3] [--out FILE] [--from-source]
//
// Sets: `small`, ~256-px JPEGs of four shapes (256×256, 320×256, 256×288, 240×320) as web
// images come; `vga`, 640×480 photos. Both are the synthetic world's images, JPEG q90 4:2:0.
// Rounds are interleaved: in each round every side runs `passes` passes over the set, in an
// order that rotates from round to round, so that all four see the same machine load. A pass
// is timed from its first batch to its last (worker start-up excluded on both sides). Each line
// records the load average; the summary gives per-side medians and bests (images/s) and the
// ratios of clipscale to PIL, with and without draft. --out FILE also appends the lines there.
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

import { SyntheticWorld } from '../lib/data/synthetic.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    'from-source': { type: 'boolean' },
    sets: { type: 'string' }, images: { type: 'string' }, workers: { type: 'string' }, mode: { type: 'string' },
    rounds: { type: 'string' }, passes: { type: 'string' }, out: { type: 'string' }, batch: { type: 'string' },
  },
});
const sets = (values.sets ?? 'small,vga').split(',').filter(Boolean);
const count = Number(values.images ?? 480);
const workers = Number(values.workers ?? 2);
const mode = (values.mode ?? 'train') as 'train' | 'eval';
const rounds = Number(values.rounds ?? 3);
const passes = Number(values.passes ?? 3);
const batch = Number(values.batch ?? 16);
const SIZE = 224;

// clipscale as users run it: plain Node on the compiled dist/ (`npm run build:ts`), in a process
// of its own (benchmarks/loader_side_by_side_clipscale.mjs), as the PIL side has. Under tsx
// (--from-source) the main thread and every worker carry tsx: larger heaps, slower GCs.
const distLoader = join(here, '..', 'dist', 'data', 'loader.js');
function newestSource(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestSource(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }
  return t;
}
const fromSource = values['from-source'] ?? false;
if (!fromSource && !(existsSync(distLoader) && statSync(distLoader).mtimeMs >= newestSource(join(here, '..', 'lib')))) {
  throw new Error('loader_side_by_side: dist/ is missing or older than lib/: run `npm run build:ts` first (or pass --from-source)');
}
const cpu = os.cpus()[0]?.model ?? 'unknown';
const round = (x: number, d = 2) => Number(x.toFixed(d));

function report(line: Record<string, unknown>): void {
  const text = JSON.stringify({ bench: 'loader_side_by_side', cpu, cores: os.availableParallelism(), load_avg: os.loadavg().map((x) => round(x)), ...line });
  console.log(text);
  if (values.out) appendFileSync(values.out, text + '\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const SHAPES: Record<string, [number, number][]> = { small: [[256, 256], [320, 256], [256, 288], [240, 320]], vga: [[640, 480]] };

async function writeSet(dir: string, name: string): Promise<{ paths: string[]; meanKiB: number }> {
  const shapes = SHAPES[name];
  if (!shapes) throw new Error(`unknown set '${name}' (small, vga)`);
  const world = new SyntheticWorld({ imageSize: 256, size: count });
  const paths: string[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const [w, h] = shapes[i % shapes.length];
    const path = join(dir, `${name}-${String(i).padStart(5, '0')}.jpg`);
    const jpg = await sharp(Buffer.from(world.imageBytes(i)), { raw: { width: 256, height: 256, channels: 3 } })
      .resize(w, h, { fit: 'fill', kernel: 'cubic' }).jpeg({ quality: 90, chromaSubsampling: '4:2:0' }).toBuffer();
    writeFileSync(path, jpg);
    bytes += jpg.length;
    paths.push(path);
  }
  return { paths, meanKiB: bytes / count / 1024 };
}

/** clipscale: `passes` passes of its DataLoader in a fresh Node process; images/s and images/CPU-s per pass. */
function ours(listFile: string, draft: boolean): { rates: number[]; perCpu: number[] } {
  const args = [join(here, 'loader_side_by_side_clipscale.mjs'), '--files', listFile, '--workers', String(workers), '--batch', String(batch),
    '--size', String(SIZE), '--draft', draft ? '1' : '0', '--mode', mode, '--passes', String(passes)];
  const out = execFileSync(process.execPath, fromSource ? ['--import=tsx', ...args, '--from-source'] : args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { images_per_s: number; images_per_cpu_s: number });
  return { rates: lines.map((l) => l.images_per_s), perCpu: lines.map((l) => l.images_per_cpu_s) };
}

function pil(listFile: string, draft: boolean): { rates: number[]; perCpu: number[]; info: Record<string, unknown> } {
  const out = execFileSync('python3', [join(here, 'loader_side_by_side.py'), '--files', listFile, '--workers', String(workers), '--batch', String(batch),
    '--size', String(SIZE), '--draft', draft ? '1' : '0', '--mode', mode, '--passes', String(passes)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { images_per_s: number; images_per_cpu_s: number; torch: string; torchvision: string; pillow: string; libjpeg_turbo: string });
  const { torch, torchvision, pillow, libjpeg_turbo } = lines[0];
  return { rates: lines.map((l) => l.images_per_s), perCpu: lines.map((l) => l.images_per_cpu_s), info: { torch, torchvision, pillow, libjpeg_turbo } };
}

const dir = mkdtempSync(join(os.tmpdir(), 'clipscale-loader-sbs-'));
try {
  report({ case: 'setup', sets, images: count, workers, batch, mode, rounds, passes, output: SIZE, node: process.version, sharp: sharp.versions.sharp, clipscale_from: fromSource ? 'lib/ (TypeScript under tsx), own process' : 'dist/ (compiled JavaScript), own process',
    transform: mode === 'train' ? 'RandomResizedCrop(224, scale 0.9-1.0, bicubic) + normalise' : 'Resize(224, bicubic) + CenterCrop(224) + normalise',
    pil_side: 'torch DataLoader(num_workers=workers), PIL.Image.open on in-memory bytes, torchvision transforms, ToTensor, Normalize' });
  for (const set of sets) {
    const { paths, meanKiB } = await writeSet(dir, set);
    const listFile = join(dir, `${set}.json`);
    writeFileSync(listFile, JSON.stringify(paths));
    type Side = 'clipscale' | 'clipscale_draft' | 'pil' | 'pil_draft';
    const rates: Record<Side, number[]> = { clipscale: [], clipscale_draft: [], pil: [], pil_draft: [] };
    const perCpu: Record<Side, number[]> = { clipscale: [], clipscale_draft: [], pil: [], pil_draft: [] };
    let info: Record<string, unknown> = {};
    const order: Side[] = ['clipscale', 'pil', 'clipscale_draft', 'pil_draft'];
    for (let r = 0; r < rounds; r++) {
      // Rotate the order each round so no side always runs first (or right after Python's start-up).
      const sides = order.slice(r % order.length).concat(order.slice(0, r % order.length));
      for (const side of sides) {
        const load = os.loadavg()[0];
        let got: number[];
        let cpuRates: number[];
        if (side.startsWith('pil')) {
          const p = pil(listFile, side === 'pil_draft');
          got = p.rates;
          cpuRates = p.perCpu;
          info = p.info;
        } else {
          const o = ours(listFile, side === 'clipscale_draft');
          got = o.rates;
          cpuRates = o.perCpu;
        }
        rates[side].push(...got);
        perCpu[side].push(...cpuRates);
        report({ set, round: r, side, images_per_s: got.map((x) => round(x, 1)), images_per_cpu_s: cpuRates.map((x) => round(x, 1)), load_before: round(load), load_after: round(os.loadavg()[0]) });
      }
    }
    const s = (side: Side) => ({
      median: round(median(rates[side]), 1), best: round(Math.max(...rates[side]), 1), worst: round(Math.min(...rates[side]), 1), passes: rates[side].length,
      per_cpu_s_median: round(median(perCpu[side]), 1), per_cpu_s_best: round(Math.max(...perCpu[side]), 1),
    });
    const sum = { clipscale: s('clipscale'), clipscale_draft: s('clipscale_draft'), pil: s('pil'), pil_draft: s('pil_draft') };
    report({
      set, summary: true, mean_jpeg_kib: round(meanKiB, 1), images_per_s: sum, ...info,
      ratio_draft_vs_pil_draft_median: round(sum.clipscale_draft.median / sum.pil_draft.median, 3),
      ratio_draft_vs_pil_draft_best: round(sum.clipscale_draft.best / sum.pil_draft.best, 3),
      ratio_vs_pil_median: round(sum.clipscale.median / sum.pil.median, 3),
      ratio_vs_pil_best: round(sum.clipscale.best / sum.pil.best, 3),
      ratio_draft_vs_pil_median: round(sum.clipscale_draft.median / sum.pil.median, 3),
      ratio_per_cpu_s_draft_vs_pil_draft_median: round(sum.clipscale_draft.per_cpu_s_median / sum.pil_draft.per_cpu_s_median, 3),
      ratio_per_cpu_s_vs_pil_median: round(sum.clipscale.per_cpu_s_median / sum.pil.per_cpu_s_median, 3),
    });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
