import test, { type ExecutionContext } from 'ava';

import { native } from '../lib/native.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { dot, finiteDiff, lossWeights, randTensor, relErr } from './_helpers/numeric.js';

const f32 = (t: Tensor): Float32Array => t.view() as Float32Array;
const nans = (shape: number[]): Tensor => Tensor.from(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(NaN), shape);

interface Geo {
  B: number;
  C: number;
  H: number;
  W: number;
  P: number;
  width: number;
}

// Float64 convolution with stride = kernel = P, output flattened and transposed as
// OpenCLIP does (conv1(x).reshape(B, width, -1).permute(0, 2, 1)).
function refForward(img: Float32Array, wt: Float32Array, g: Geo): Float64Array {
  const { B, C, H, W, P, width } = g;
  const gh = H / P;
  const gw = W / P;
  const out = new Float64Array(B * gh * gw * width);
  for (let b = 0; b < B; b++)
    for (let py = 0; py < gh; py++)
      for (let px = 0; px < gw; px++)
        for (let o = 0; o < width; o++) {
          let s = 0;
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < P; ky++)
              for (let kx = 0; kx < P; kx++)
                s += wt[((o * C + c) * P + ky) * P + kx] * img[((b * C + c) * H + py * P + ky) * W + px * P + kx];
          out[((b * gh + py) * gw + px) * width + o] = s;
        }
  return out;
}

function refBackward(img: Float32Array, wt: Float32Array, dout: Float32Array, g: Geo) {
  const { B, C, H, W, P, width } = g;
  const gh = H / P;
  const gw = W / P;
  const dweight = new Float64Array(wt.length);
  const dimages = new Float64Array(img.length);
  for (let b = 0; b < B; b++)
    for (let py = 0; py < gh; py++)
      for (let px = 0; px < gw; px++)
        for (let o = 0; o < width; o++) {
          const d = dout[((b * gh + py) * gw + px) * width + o];
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < P; ky++)
              for (let kx = 0; kx < P; kx++) {
                const wi = ((o * C + c) * P + ky) * P + kx;
                const ii = ((b * C + c) * H + py * P + ky) * W + px * P + kx;
                dweight[wi] += d * img[ii];
                dimages[ii] += d * wt[wi];
              }
        }
  return { dweight, dimages };
}

function isBf16(a: Float32Array): boolean {
  return new Uint32Array(a.buffer, a.byteOffset, a.length).every((u) => (u & 0xffff) === 0);
}

function checkFiniteDiff(t: ExecutionContext, what: string, param: Tensor, analytic: Float32Array, forward: () => Float32Array, lw: Float32Array): void {
  const { idx, grad } = finiteDiff(() => dot(forward(), lw), param, 24, 1e-2);
  const err = relErr(idx.map((i) => analytic[i]), grad);
  t.log(`${what}: finite-difference relErr ${err.toExponential(2)}`);
  t.true(err < 1e-2, `${what}: finite-difference relErr ${err}`);
}

const geometries: { name: string; g: Geo }[] = [
  { name: 'C=3, P=4 on 16×16', g: { B: 2, C: 3, H: 16, W: 16, P: 4, width: 12 } },
  { name: 'C=3, P=4 on a 16×8 (non-square) image', g: { B: 1, C: 3, H: 16, W: 8, P: 4, width: 5 } },
  { name: 'C=2, P=3 on 9×6', g: { B: 3, C: 2, H: 9, W: 6, P: 3, width: 7 } },
];

for (const [gi, { name, g }] of geometries.entries()) {
  test(`patch embedding ${name}: forward and backward match float64 and finite differences`, (t) => {
    const { B, C, H, W, P, width } = g;
    const patches = (H / P) * (W / P);
    const images = randTensor([B, C, H, W], 10 + gi);
    const weight = randTensor([width, C, P, P], 20 + gi, 0.3);
    const out = nans([B, patches, width]);
    ops.patchEmbedForward(images, weight, out);
    const eOut = relErr(f32(out), refForward(f32(images), f32(weight), g));
    t.log(`out relErr vs float64 ${eOut.toExponential(2)}`);
    t.true(eOut <= 1e-5, `out relErr ${eOut}`);

    const lw = lossWeights(B * patches * width, 30 + gi);
    const dout = Tensor.from(lw, [B, patches, width]);
    const dweight = nans([width, C, P, P]);
    const dimages = nans([B, C, H, W]);
    ops.patchEmbedBackward(images, weight, dout, { dweight, dimages });
    const ref = refBackward(f32(images), f32(weight), lw, g);
    t.log(`relErr vs float64: dweight ${relErr(f32(dweight), ref.dweight).toExponential(2)}, dimages ${relErr(f32(dimages), ref.dimages).toExponential(2)}`);
    t.true(relErr(f32(dweight), ref.dweight) <= 1e-5, `dweight relErr ${relErr(f32(dweight), ref.dweight)}`);
    t.true(relErr(f32(dimages), ref.dimages) <= 1e-5, `dimages relErr ${relErr(f32(dimages), ref.dimages)}`);

    const forward = (): Float32Array => {
      ops.patchEmbedForward(images, weight, out);
      return f32(out);
    };
    checkFiniteDiff(t, 'dweight', weight, f32(dweight), forward, lw);
    checkFiniteDiff(t, 'dimages', images, f32(dimages), forward, lw);
  });
}

test('patch embedding of a batch larger than one im2col block (16 MiB) matches float64', (t) => {
  // 4·3·608·608 floats exceed the 2^22-float block: M = 4·38·38 = 5776 patches, 5461 per block.
  const g: Geo = { B: 4, C: 3, H: 608, W: 608, P: 16, width: 4 };
  const patches = (g.H / g.P) * (g.W / g.P);
  const images = randTensor([g.B, g.C, g.H, g.W], 51);
  const weight = randTensor([g.width, g.C, g.P, g.P], 52, 0.05);
  const out = nans([g.B, patches, g.width]);
  ops.patchEmbedForward(images, weight, out);
  const dout = randTensor([g.B, patches, g.width], 53);
  const dweight = nans([g.width, g.C, g.P, g.P]);
  const dimages = nans([g.B, g.C, g.H, g.W]);
  ops.patchEmbedBackward(images, weight, dout, { dweight, dimages });
  const ref = refBackward(f32(images), f32(weight), f32(dout), g);
  const e = {
    out: relErr(f32(out), refForward(f32(images), f32(weight), g)),
    dweight: relErr(f32(dweight), ref.dweight),
    dimages: relErr(f32(dimages), ref.dimages),
  };
  t.log(`relErr vs float64: out ${e.out.toExponential(2)}, dweight ${e.dweight.toExponential(2)}, dimages ${e.dimages.toExponential(2)}`);
  t.true(e.out <= 1e-5 && e.dweight <= 1e-5 && e.dimages <= 1e-5);
});

test('patchEmbedBackward accumulates dweight on request; dimages is optional', (t) => {
  const images = randTensor([2, 3, 8, 8], 1);
  const weight = randTensor([6, 3, 4, 4], 2);
  const dout = randTensor([2, 4, 6], 3);
  const dweight = Tensor.zeros([6, 3, 4, 4]);
  ops.patchEmbedBackward(images, weight, dout, { dweight });
  const once = new Float32Array(f32(dweight));
  ops.patchEmbedBackward(images, weight, dout, { dweight, accumulate: true });
  t.true(relErr(f32(dweight), once.map((v) => 2 * v)) <= 1e-6);
  ops.patchEmbedBackward(images, weight, dout, { dweight });
  t.deepEqual(f32(dweight), once, 'without accumulate the gradient is overwritten');
});

test('patch embedding errors name the op and what was wrong', (t) => {
  const weight = Tensor.zeros([8, 3, 4, 4]);
  t.throws(() => ops.patchEmbedForward(Tensor.zeros([1, 3, 15, 16]), weight, Tensor.zeros([1, 12, 8])), {
    message: 'patchEmbedForward: image height 15 and width 16 must be multiples of the patch size 4, got images f32[1, 3, 15, 16] on cpu and weight f32[8, 3, 4, 4] on cpu',
  });
  t.throws(() => ops.patchEmbedForward(Tensor.zeros([1, 1, 16, 16]), weight, Tensor.zeros([1, 16, 8])), {
    message: 'patchEmbedForward: weight must have shape [*, 1, 4, 4], got f32[8, 3, 4, 4] on cpu',
  });
  t.throws(() => ops.patchEmbedForward(Tensor.zeros([1, 3, 16, 16]), weight, Tensor.zeros([1, 16, 9])), {
    message: 'patchEmbedForward: out must have shape [1, 16, 8], got f32[1, 16, 9] on cpu',
  });
  t.throws(() => ops.patchEmbedForward(Tensor.zeros([3, 16, 16]), weight, Tensor.zeros([1, 16, 8])), {
    message: 'patchEmbedForward: images must have 4 dimensions, got f32[3, 16, 16] on cpu',
  });
  t.throws(() => ops.patchEmbedBackward(Tensor.zeros([1, 3, 16, 16]), weight, Tensor.zeros([1, 16, 8]), { dweight: Tensor.zeros([8, 3, 4]) }), {
    message: /patchEmbedBackward: dweight and weight must have the same shape/,
  });
  // Gradients over the inputs or over each other: dweight reads images and dimages reads weight while both are written.
  const images = Tensor.zeros([1, 3, 16, 16]), dout = Tensor.zeros([1, 16, 8]);
  t.throws(() => ops.patchEmbedBackward(images, weight, dout, { dweight: weight }), { message: 'patchEmbedBackward: output dweight overlaps input weight; pass a separate tensor' });
  t.throws(() => ops.patchEmbedBackward(images, weight, dout, { dimages: images }), { message: 'patchEmbedBackward: output dimages overlaps input images; pass a separate tensor' });
  const both = Tensor.zeros([3 * 16 * 16 + 8 * 3 * 4 * 4]);
  t.throws(() => ops.patchEmbedBackward(images, weight, dout, { dimages: both.slice(0, [1, 3, 16, 16]), dweight: both.slice(3 * 16 * 16 - 1, [8, 3, 4, 4]) }), {
    message: 'patchEmbedBackward: outputs dweight and dimages overlap; pass separate tensors',
  });
});

test('a prepacked weight (the matrix [width, C·P·P]) gives the same output bit for bit, and one of another shape is refused', (t) => {
  // ViT-B-32's geometry (width 768 → 24 column panels, K = 3072 over several k-blocks) at batch 2.
  const g: Geo = { B: 2, C: 3, H: 64, W: 64, P: 32, width: 768 };
  const images = randTensor([g.B, g.C, g.H, g.W], 61);
  const weight = randTensor([g.width, g.C, g.P, g.P], 62, 0.05);
  using matrix = weight.reshape([g.width, g.C * g.P * g.P]);
  const packed = ops.packLinearWeight(matrix);
  const plain = Tensor.empty([g.B, 4, g.width]);
  const fromPacked = nans([g.B, 4, g.width]);
  ops.patchEmbedForward(images, weight, plain);
  ops.patchEmbedForward(images, weight, fromPacked, packed);
  t.deepEqual(f32(fromPacked), f32(plain));
  t.true(relErr(f32(fromPacked), refForward(f32(images), f32(weight), g)) < 1e-5);
  // Packed from the weight of another width: refused, naming both.
  t.throws(() => ops.patchEmbedForward(images, weight, packed.slice(64, [g.B, 4, g.width]), packed), {
    message: 'patchEmbedForward: output out overlaps input packed; pass a separate tensor',
  });
  const other = ops.packLinearWeight(randTensor([g.width - 32, g.C * g.P * g.P], 63));
  t.throws(() => ops.patchEmbedForward(images, weight, plain, other), {
    message: /^patchEmbedForward: packed f32\[\d+\] on cpu is not weight f32\[768, 3, 32, 32\] on cpu viewed as \[768, 3072\] and packed for the \w+ GEMM kernel/,
  });
});

test.serial('patch embedding with bf16 emulation: bf16-representable outputs close to fp32', (t) => {
  const images = randTensor([2, 3, 16, 16], 41);
  const weight = randTensor([12, 3, 4, 4], 42, 0.3);
  const dout = randTensor([2, 16, 12], 43);
  const run = () => {
    const out = Tensor.empty([2, 16, 12]);
    const dweight = Tensor.empty([12, 3, 4, 4]);
    const dimages = Tensor.empty([2, 3, 16, 16]);
    ops.patchEmbedForward(images, weight, out);
    ops.patchEmbedBackward(images, weight, dout, { dweight, dimages });
    return { out: f32(out), dweight: f32(dweight), dimages: f32(dimages) };
  };
  const exact = run();
  native.setBf16Emulation(true);
  let emu;
  try {
    emu = run();
  } finally {
    native.setBf16Emulation(false);
  }
  t.true(isBf16(emu.out), 'out is bf16-representable');
  t.true(isBf16(emu.dimages), 'dimages is bf16-representable');
  for (const k of ['out', 'dweight', 'dimages'] as const) {
    const e = relErr(emu[k], exact[k]);
    t.log(`${k}: bf16 vs fp32 relErr ${e.toExponential(2)}`);
    t.true(e < 1e-2 && e > 0, `${k}: bf16 vs fp32 relErr ${e}`);
  }
});
