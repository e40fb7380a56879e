// The CUDA backend's loading and its errors, testable without a GPU: without the library
// or a driver, asking for a CUDA tensor fails with an error that says why.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { cudaStatus, noGpuReason } from './_helpers/cuda.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

test('the status says whether the CUDA backend loaded, and why not', (t) => {
  t.log(noGpuReason ?? `GPU usable: ${cudaStatus.deviceCount} device(s) through ${cudaStatus.path}`);
  if (!cudaStatus.loaded) t.regex(cudaStatus.reason ?? '', /not built|could not be loaded|ABI version/);
  else t.truthy(cudaStatus.path);
  // Until the tests have run on a GPU, the backend says it is unverified.
  if (!cudaStatus.verifiedOnGpu) t.regex(cudaStatus.note ?? '', /not yet verified on a GPU/);
});

test('a CUDA tensor without a usable GPU is a clear error naming the reason', (t) => {
  if (noGpuReason === null) {
    t.log('a GPU is usable here: checking that CUDA tensors work instead');
    const x = Tensor.from([1, 2, 3]).to('cuda');
    t.is(x.device, 'cuda:0');
    t.deepEqual(Array.from(x.to('cpu').toFloat32Array()), [1, 2, 3]);
    return;
  }
  const why = cudaStatus.loaded ? cudaStatus.deviceError! : cudaStatus.reason!;
  const e1 = t.throws(() => Tensor.empty([2, 3], 'f32', 'cuda'));
  t.true(e1!.message.includes('CUDA backend') && e1!.message.includes(why), e1!.message);
  const e2 = t.throws(() => Tensor.from([1, 2]).to('cuda:0'));
  t.true(e2!.message.includes(why), e2!.message);
  // The CPU path is untouched.
  const y = Tensor.from([1, 2]).to('cpu');
  ops.scale(y, 2);
  t.deepEqual(Array.from(y.toFloat32Array()), [2, 4]);
});

test('a bad device name is rejected', (t) => {
  t.throws(() => Tensor.from([1]).to('gpu'), { message: /device/ });
});

test('CLIPSCALE_CUDA_LIB pointing nowhere: info and the error both say so', (t) => {
  const env = { ...process.env, CLIPSCALE_CUDA_LIB: '/nonexistent/libclipscale_cuda.so' };
  const out = execFileSync(process.execPath, ['--import=tsx', join(root, 'lib/cli/main.ts'), 'info', '--json'], { env, cwd: root, encoding: 'utf8' });
  const info = JSON.parse(out) as { gpu: { cudaBackend: { loaded: boolean; reason: string } } };
  t.false(info.gpu.cudaBackend.loaded);
  t.regex(info.gpu.cudaBackend.reason, /CLIPSCALE_CUDA_LIB=\/nonexistent\/libclipscale_cuda\.so could not be loaded/);
  const script = "import { Tensor } from './lib/tensor.ts'; try { Tensor.empty([1], 'f32', 'cuda'); } catch (e) { console.log(e.message); }";
  const msg = execFileSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { env, cwd: root, encoding: 'utf8' });
  t.regex(msg, /CUDA backend: CLIPSCALE_CUDA_LIB=\/nonexistent\/libclipscale_cuda\.so could not be loaded/);
});
