// Every pointwise-group CUDA op against the CPU op with bf16 emulation on: fresh random
// inputs each run, GPU outputs poisoned with NaN before the op, ‖gpu − cpu‖/‖cpu‖ ≤ 1e-2,
// NaN never passes. Skips, saying why, where no GPU is found.
import test from 'ava';

import { native } from '../lib/native.js';
import * as ops from '../lib/ops.js';
import { Tensor, type DType } from '../lib/tensor.js';
import { countCudaTests, noGpuReason } from './_helpers/cuda.js';
import { randTensor, relErr } from './_helpers/numeric.js';

const counted = countCudaTests(test, 'cuda-ops');
const gpuTest = (title: string, fn: (t: import('ava').ExecutionContext) => void) =>
  noGpuReason === null
    ? test.serial(title, (t) => {
        counted();
        fn(t);
      })
    : test.skip(title, fn);
const TOL = 1e-2;

if (noGpuReason !== null) {
  test('CUDA ops: skipped, no GPU', (t) => {
    t.log(`SKIPPED every CUDA op test: ${noGpuReason}`);
    t.pass();
  });
}

// Fresh inputs on every run; the seed is in each test's log so a failure reproduces.
let seed = (Date.now() ^ (process.pid << 8)) >>> 0;
const nextSeed = () => (seed = (seed * 1103515245 + 12345) >>> 0);

type Tensors = Record<string, Tensor>;
interface Case {
  /** CPU tensors: inputs, in-out tensors (updated in place) and outputs. */
  build(): Tensors;
  /** Pure outputs: poisoned with NaN before the op runs. */
  outputs: string[];
  /** Tensors compared after the op (outputs and in-out tensors). */
  compare: string[];
  run(ts: Tensors): number | void;
  /** Compare integer outputs exactly. */
  exact?: string[];
}

// NaN in every element of a CPU tensor (integers: -7, a value no op writes here).
function poison(t: Tensor): Tensor {
  const v = t.view();
  if (v instanceof Float32Array) v.fill(NaN);
  else if (v instanceof Uint16Array) v.fill(0x7fc0);
  else if (v instanceof BigInt64Array) v.fill(-7n);
  else v.fill(-7);
  return t;
}

function runCase(t: import('ava').ExecutionContext, c: Case): void {
  t.log(`seed ${seed}`);
  const wasEmulating = native.bf16Emulation();
  native.setBf16Emulation(true);
  try {
    const cpu = c.build();
    const gpu: Tensors = {};
    for (const [k, v] of Object.entries(cpu)) {
      if (c.outputs.includes(k)) poison(v);
      gpu[k] = v.to('cuda');
    }
    const rc = c.run(cpu);
    const rg = c.run(gpu);
    if (typeof rc === 'number') {
      t.true(Number.isFinite(rg as number), `returned ${rg}`);
      t.true(Math.abs((rg as number) - rc) <= TOL * Math.max(1, Math.abs(rc)), `returned ${rg}, CPU ${rc}`);
    }
    for (const k of c.compare) {
      const back = gpu[k]!.to('cpu');
      const got = back.toFloat32Array();
      const want = cpu[k]!.toFloat32Array();
      if (c.exact?.includes(k)) t.deepEqual(Array.from(got), Array.from(want), k);
      else {
        const e = relErr(got, want);
        t.true(e <= TOL, `${k}: relative error ${e} (NaN/unwritten gives Infinity)`);
      }
      back.dispose();
    }
    for (const v of [...Object.values(cpu), ...Object.values(gpu)]) v.dispose();
  } finally {
    native.setBf16Emulation(wasEmulating);
  }
}

const rand = (shape: number[], scale = 1) => randTensor(shape, nextSeed(), scale);
const empty = (shape: number[], dtype: DType = 'f32') => Tensor.empty(shape, dtype);
function ints(shape: number[], max: number): Tensor {
  const a = new Int32Array(shape.reduce((x, y) => x * y, 1));
  let s = nextSeed();
  for (let i = 0; i < a.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s % max;
  }
  return Tensor.from(a, shape);
}

// ── element-wise ──
for (const dtype of ['f32', 'bf16', 'i32'] as DType[]) {
  gpuTest(`fill ${dtype}`, (t) =>
    runCase(t, { build: () => ({ x: empty([1000], dtype) }), outputs: ['x'], compare: ['x'], run: (s) => ops.fill(s.x!, dtype === 'i32' ? 3 : 1.37) }));
}
gpuTest('copy', (t) => runCase(t, { build: () => ({ a: rand([513]), b: empty([513]) }), outputs: ['b'], compare: ['b'], run: (s) => ops.copy(s.a!, s.b!) }));
gpuTest('scale', (t) => runCase(t, { build: () => ({ x: rand([4097]) }), outputs: [], compare: ['x'], run: (s) => ops.scale(s.x!, -0.3) }));
gpuTest('axpy', (t) => runCase(t, { build: () => ({ x: rand([4097]), y: rand([4097]) }), outputs: [], compare: ['y'], run: (s) => ops.axpy(0.7, s.x!, s.y!) }));
gpuTest('add (and in place)', (t) => {
  runCase(t, { build: () => ({ a: rand([999]), b: rand([999]), o: empty([999]) }), outputs: ['o'], compare: ['o'], run: (s) => ops.add(s.a!, s.b!, s.o!) });
  runCase(t, { build: () => ({ a: rand([999]), b: rand([999]) }), outputs: [], compare: ['a'], run: (s) => ops.add(s.a!, s.b!, s.a!) });
});
for (const [from, to] of [['f32', 'bf16'], ['bf16', 'f32'], ['f32', 'i32'], ['i32', 'f32'], ['f32', 'i64'], ['i64', 'f32']] as [DType, DType][]) {
  gpuTest(`convert ${from} → ${to}`, (t) =>
    runCase(t, {
      build: () => {
        const f = rand([777], 50);
        const src = from === 'f32' ? f : f.clone(from);
        if (src !== f) f.dispose();
        return { src, dst: empty([777], to) };
      },
      outputs: ['dst'],
      compare: ['dst'],
      exact: to === 'i32' || to === 'i64' ? ['dst'] : [],
      run: (s) => ops.convert(s.src!, s.dst!),
    }));
}

// ── layernorm ──
for (const w of [768, 100]) {  // float4 path and scalar path
  const rows = [3, 37];
  gpuTest(`layernormForward width ${w}`, (t) =>
    runCase(t, {
      build: () => ({ x: rand([...rows, w], 2), g: rand([w]), b: rand([w]), out: empty([...rows, w]), mean: empty(rows), rstd: empty(rows) }),
      outputs: ['out', 'mean', 'rstd'], compare: ['out', 'mean', 'rstd'],
      run: (s) => native.layernormForward(s.x!.handle, s.g!.handle, s.b!.handle, s.out!.handle, s.mean!.handle, s.rstd!.handle, 1e-5),
    }));
  gpuTest(`residualLayernormForward width ${w} (sum in place over the residual)`, (t) =>
    runCase(t, {
      build: () => ({ x: rand([...rows, w]), r: rand([...rows, w]), g: rand([w]), b: rand([w]), out: empty([...rows, w]), mean: empty(rows), rstd: empty(rows) }),
      outputs: ['out', 'mean', 'rstd'], compare: ['r', 'out', 'mean', 'rstd'],
      run: (s) => native.residualLayernormForward(s.x!.handle, s.r!.handle, s.r!.handle, s.g!.handle, s.b!.handle, s.out!.handle, s.mean!.handle, s.rstd!.handle, 1e-5),
    }));
  gpuTest(`layernormBackward width ${w}`, (t) =>
    runCase(t, {
      build: () => {
        const x = rand([...rows, w], 2);
        const g = rand([w]);
        const mean = empty(rows);
        const rstd = empty(rows);
        const tmp = empty([...rows, w]);
        const b = rand([w]);
        native.layernormForward(x.handle, g.handle, b.handle, tmp.handle, mean.handle, rstd.handle, 1e-5);
        tmp.dispose();
        b.dispose();
        return { dout: rand([...rows, w]), x, g, mean, rstd, dx: empty([...rows, w]), dg: empty([w]), db: empty([w]) };
      },
      outputs: ['dx', 'dg', 'db'], compare: ['dx', 'dg', 'db'],
      run: (s) => native.layernormBackward(s.dout!.handle, s.x!.handle, s.g!.handle, s.mean!.handle, s.rstd!.handle, s.dx!.handle, s.dg!.handle, s.db!.handle),
    }));
}

// ── activations ──
for (const name of ['gelu', 'quickGelu'] as const) {
  gpuTest(`${name}Forward`, (t) =>
    runCase(t, { build: () => ({ x: rand([5, 1031], 3), out: empty([5, 1031]) }), outputs: ['out'], compare: ['out'], run: (s) => (native[`${name}Forward`] as (a: unknown, b: unknown) => void)(s.x!.handle, s.out!.handle) }));
  gpuTest(`${name}Backward`, (t) =>
    runCase(t, { build: () => ({ x: rand([5, 1031], 3), d: rand([5, 1031]), dx: empty([5, 1031]) }), outputs: ['dx'], compare: ['dx'], run: (s) => (native[`${name}Backward`] as (a: unknown, b: unknown, c: unknown) => void)(s.x!.handle, s.d!.handle, s.dx!.handle) }));
}

// ── embeddings ──
gpuTest('embeddingForward', (t) =>
  runCase(t, { build: () => ({ ids: ints([4, 77], 500), table: rand([500, 64]), out: empty([4, 77, 64]) }), outputs: ['out'], compare: ['out'], run: (s) => native.embeddingForward(s.ids!.handle, s.table!.handle, s.out!.handle) }));
gpuTest('embeddingBackward (repeated ids add up)', (t) =>
  runCase(t, { build: () => ({ ids: ints([4, 77], 50), dout: rand([4, 77, 64]), dt: empty([50, 64]) }), outputs: ['dt'], compare: ['dt'], run: (s) => native.embeddingBackward(s.ids!.handle, s.dout!.handle, s.dt!.handle) }));
gpuTest('posEmbedForward / posEmbedBackward', (t) => {
  runCase(t, { build: () => ({ x: rand([3, 50, 96]), pos: rand([50, 96]), out: empty([3, 50, 96]) }), outputs: ['out'], compare: ['out'], run: (s) => native.posEmbedForward(s.x!.handle, s.pos!.handle, s.out!.handle) });
  runCase(t, { build: () => ({ d: rand([3, 50, 96]), dpos: empty([50, 96]) }), outputs: ['dpos'], compare: ['dpos'], run: (s) => native.posEmbedBackward(s.d!.handle, s.dpos!.handle) });
});
gpuTest('classTokenConcat / classTokenConcatBackward', (t) => {
  runCase(t, { build: () => ({ x: rand([3, 49, 80]), cls: rand([80]), out: empty([3, 50, 80]) }), outputs: ['out'], compare: ['out'], run: (s) => native.classTokenConcat(s.x!.handle, s.cls!.handle, s.out!.handle) });
  runCase(t, { build: () => ({ d: rand([3, 50, 80]), dx: empty([3, 49, 80]), dcls: empty([80]) }), outputs: ['dx', 'dcls'], compare: ['dx', 'dcls'], run: (s) => native.classTokenConcatBackward(s.d!.handle, s.dx!.handle, s.dcls!.handle) });
});

// ── pooling ──
gpuTest('gatherRows / gatherRowsBackward / argmaxIds', (t) => {
  runCase(t, { build: () => ({ x: rand([6, 77, 64]), idx: ints([6], 77), out: empty([6, 64]) }), outputs: ['out'], compare: ['out'], run: (s) => native.gatherRows(s.x!.handle, s.idx!.handle, s.out!.handle) });
  runCase(t, { build: () => ({ d: rand([6, 64]), idx: ints([6], 77), dx: empty([6, 77, 64]) }), outputs: ['dx'], compare: ['dx'], run: (s) => native.gatherRowsBackward(s.d!.handle, s.idx!.handle, s.dx!.handle) });
  runCase(t, { build: () => ({ ids: ints([9, 77], 60), out: empty([9], 'i32') }), outputs: ['out'], compare: ['out'], exact: ['out'], run: (s) => native.argmaxIds(s.ids!.handle, s.out!.handle) });
});

// ── L2 normalisation ──
gpuTest('l2normalizeForward / l2normalizeBackward', (t) => {
  runCase(t, { build: () => ({ x: rand([33, 512]), out: empty([33, 512]), n: empty([33]) }), outputs: ['out', 'n'], compare: ['out', 'n'], run: (s) => native.l2normalizeForward(s.x!.handle, s.out!.handle, s.n!.handle) });
  runCase(t, {
    build: () => {
      const x = rand([33, 512]);
      const y = empty([33, 512]);
      const n = empty([33]);
      native.l2normalizeForward(x.handle, y.handle, n.handle);
      x.dispose();
      return { d: rand([33, 512]), y, n, dx: empty([33, 512]) };
    },
    outputs: ['dx'], compare: ['dx'],
    run: (s) => native.l2normalizeBackward(s.d!.handle, s.y!.handle, s.n!.handle, s.dx!.handle),
  });
});

// ── contrastive loss ──
function features(n: number, d: number): Tensor {
  const x = rand([n, d]);
  const y = empty([n, d]);
  const norms = empty([n]);
  native.l2normalizeForward(x.handle, y.handle, norms.handle);
  x.dispose();
  norms.dispose();
  return y;
}
for (const [label, r0, rows] of [['whole batch', 0, 150], ['one rank of three (local loss)', 50, 50]] as const) {
  gpuTest(`contrastiveLoss, ${label}`, (t) =>
    runCase(t, {
      build: () => ({ img: features(150, 64), txt: features(150, 64), ls: Tensor.from([Math.log(1 / 0.07)]), di: empty([150, 64]), dt: empty([150, 64]), ds: empty([1]), lo: empty([1]) }),
      outputs: ['di', 'dt', 'ds', 'lo'], compare: ['di', 'dt', 'ds', 'lo'],
      run: (s) => ops.contrastiveLossLocal(s.img!, s.txt!, s.ls!, r0, rows, { grads: { dImage: s.di!, dText: s.dt!, dLogitScale: s.ds! }, lossOut: s.lo!, lossScale: 2 }).loss,
    }));
}

// The column log-sum-exp runs over row chunks of 256 and combines them: one chunk, a
// partial one, several.
for (const N of [1, 33, 256, 1000]) {
  gpuTest(`contrastiveLoss, whole batch of ${N} (column log-sum-exp over row chunks)`, (t) =>
    runCase(t, {
      build: () => ({ img: features(N, 32), txt: features(N, 32), ls: Tensor.from([Math.log(1 / 0.07)]), di: empty([N, 32]), dt: empty([N, 32]), ds: empty([1]), lo: empty([1]) }),
      outputs: ['di', 'dt', 'ds', 'lo'], compare: ['di', 'dt', 'ds', 'lo'],
      run: (s) => ops.contrastiveLossLocal(s.img!, s.txt!, s.ls!, 0, N, { grads: { dImage: s.di!, dText: s.dt!, dLogitScale: s.ds! }, lossOut: s.lo! }).loss,
    }));
}

// ── optimizer ──
gpuTest('adamwStep with the bf16 copy', (t) =>
  runCase(t, {
    build: () => {
      const v = rand([3001], 0.01);
      const vv = Tensor.from((v.view() as Float32Array).map((a) => a * a));
      v.dispose();
      return { p: rand([3001]), g: rand([3001]), m: rand([3001], 0.1), v: vv, pb: empty([3001], 'bf16') };
    },
    outputs: ['pb'], compare: ['p', 'm', 'v', 'pb'],
    run: (s) => ops.adamwStep(s.p!, s.g!, s.m!, s.v!, { lr: 1e-2, step: 7, beta2: 0.98, eps: 1e-6, weightDecay: 0.2, paramBf16: s.pb!, gradScale: 0.5 }),
  }));
gpuTest('gradNorm and clipGradNorm over several tensors', (t) => {
  runCase(t, { build: () => ({ a: rand([70000]), b: rand([13]), c: rand([300, 7]) }), outputs: [], compare: [], run: (s) => ops.gradNorm([s.a!, s.b!, s.c!]) });
  runCase(t, { build: () => ({ a: rand([70000]), b: rand([13]), c: rand([300, 7]) }), outputs: [], compare: ['a', 'b', 'c'], run: (s) => ops.clipGradNorm([s.a!, s.b!, s.c!], 1.5) });
});

// ── errors on the GPU ──
gpuTest('mixed devices and ids out of range give clear errors', (t) => {
  const a = Tensor.from([1, 2, 3]).to('cuda');
  const b = Tensor.from([1, 2, 3]);
  t.throws(() => ops.add(a, b, a), { message: /add: tensors are on different devices/ });
  const ids = Tensor.from(new Int32Array([0, 9, 1]), [3]).to('cuda');
  const table = randTensor([4, 8], 1).to('cuda');
  const out = Tensor.empty([3, 8], 'f32', 'cuda');
  native.embeddingForward(ids.handle, table.handle, out.handle);
  t.throws(() => out.to('cpu'), { message: /embeddingForward: ids \(flat index 1\) = 9 is out of range for a table of 4 rows/ });
  // The error is reported once; the device goes on working.
  t.deepEqual(Array.from(a.to('cpu').toFloat32Array()), [1, 2, 3]);
  for (const x of [a, b, ids, table, out]) x.dispose();
});

gpuTest('CPU-only options are refused on the GPU, saying so: attention rows, AdamW zeroGrad', (t) => {
  const qkv = randTensor([2, 3, 12], 2).to('cuda');
  const out = Tensor.empty([2, 3, 4], 'f32', 'cuda');
  const rows = Tensor.from(new Int32Array([0, 3]), [2]);
  t.throws(() => ops.attentionForward(qkv, out, null, { heads: 1, causal: false }, rows), { message: /attentionForward: rows .* is for CPU tensors/ });
  const [p, g, m, v] = [randTensor([64], 3), randTensor([64], 4), Tensor.zeros([64]), Tensor.zeros([64])].map((x) => x.to('cuda'));
  t.throws(() => ops.adamwStep(p, g, m, v, { lr: 1e-3, step: 1, zeroGrad: true }), { message: /adamwStep: zeroGrad is for CPU tensors/ });
  for (const x of [qkv, out, rows, p, g, m, v]) x.dispose();
});
