#!/usr/bin/env node
// npm run build:cuda — builds the CUDA backend, build-cuda/libclipscale_cuda.so, with
// cmake-js (CMakeLists.txt at the package root). Without nvcc it prints why and exits 0,
// so installs on machines without the CUDA toolkit never fail; pass --require (CI) to
// make a missing toolkit an error. Options:
//   --require            fail when nvcc or cmake is missing
//   --arch "80;90a"      CUDA architectures (default: CMakeLists.txt's, 80 and 90a)
//   --debug              a Debug build
//   --emulate            build the emulated device instead (native/cuda/emu/build.cjs:
//                        build-cuda-emu/libclipscale_cuda_emu.so with g++, no nvcc needed)
// Environment: CUDACXX or CUDA_HOME/CUDA_PATH point at a toolkit outside PATH and
// /usr/local/cuda; CLIPSCALE_BUILD_JOBS sets the parallel jobs (default: CPU count).
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const args = process.argv.slice(2);
if (args.includes('--emulate')) {
  require('./emu/build.cjs');
  return;
}
const require_ = args.includes('--require');
const archAt = args.indexOf('--arch');
const arch = archAt >= 0 ? args[archAt + 1] : null;
const debug = args.includes('--debug');

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function findNvcc() {
  const candidates = [
    process.env.CUDACXX,
    ...['CUDA_HOME', 'CUDA_PATH'].map((v) => process.env[v] && path.join(process.env[v], 'bin', 'nvcc')),
    which('nvcc'),
    '/usr/local/cuda/bin/nvcc',
  ];
  return candidates.find((p) => p && fs.existsSync(p)) ?? null;
}

function skip(why) {
  const msg = `clipscale: CUDA backend not built: ${why}.\n` +
    '  The CPU backend works without it; device: "cuda" will say the library is missing.';
  if (require_) {
    console.error(msg);
    process.exit(1);
  }
  console.log(msg);
  process.exit(0);
}

const nvcc = findNvcc();
if (!nvcc) skip('nvcc (the CUDA toolkit compiler) was not found on PATH, in $CUDACXX, $CUDA_HOME or /usr/local/cuda');
if (!which('cmake')) skip('cmake was not found on PATH (CMake 3.24 or newer is needed)');

const jobs = process.env.CLIPSCALE_BUILD_JOBS ?? String(os.availableParallelism?.() ?? os.cpus().length);
const defines = [`CMAKE_CUDA_COMPILER=${nvcc}`, `CMAKE_BUILD_TYPE=${debug ? 'Debug' : 'Release'}`];
if (arch) defines.push(`CMAKE_CUDA_ARCHITECTURES=${arch}`);

const cmakeJs = path.join(root, 'node_modules', '.bin', 'cmake-js');
let cmd, cmdArgs;
if (fs.existsSync(cmakeJs)) {
  cmd = cmakeJs;
  cmdArgs = ['build', '--directory', root, '--out', 'build-cuda', '--parallel', jobs, ...(debug ? ['--debug'] : []),
    ...defines.map((d) => `--CD${d}`)];
} else {
  // Without cmake-js (e.g. an install without devDependencies): plain CMake does the same.
  cmd = 'sh';
  cmdArgs = ['-c', `cmake -S "${root}" -B "${path.join(root, 'build-cuda')}" ${defines.map((d) => `-D"${d}"`).join(' ')} && ` +
    `cmake --build "${path.join(root, 'build-cuda')}" --parallel ${jobs}`];
}
console.log(`clipscale: building the CUDA backend with ${path.basename(cmd)} (nvcc: ${nvcc})`);
try {
  execFileSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit' });
} catch (e) {
  console.error(`clipscale: the CUDA backend build failed (${e.message.split('\n')[0]})`);
  process.exit(1);
}
const lib = path.join(root, 'build-cuda', 'libclipscale_cuda.so');
if (!fs.existsSync(lib)) {
  console.error(`clipscale: the build finished but ${lib} is missing`);
  process.exit(1);
}
console.log(`clipscale: built ${lib} (not yet verified on a GPU; see clipscale info)`);
