// Builds the emulated CUDA device (npm run build:cuda-emu; npm test's pretest):
//   build-cuda-emu/libclipscale_cuda_emu.so   the CUDA backend's .cu/.cpp sources compiled as
//                                             host C++ on the fiber runtime (native/cuda/emu),
//                                             with the same C ABI as libclipscale_cuda.so
//   build-cuda-emu/<test>                     the native CUDA tests (native/cuda/tests/*.cpp)
//                                             linked against it, and the emulator's own tests
//                                             (native/cuda/emu/tests/*.cu, on the runtime directly)
// Needs only a C++17 compiler ($CXX or g++), no CUDA toolkit. Incremental: an object is
// rebuilt when its source or a header it includes changed (g++ -MMD).
// Environment: CXX; CLIPSCALE_BUILD_JOBS (default: the CPU count, at most 2 on this
// project's CI); CLIPSCALE_EMU_DEBUG=1 for -O0 -g.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..', '..', '..');
const out = path.join(root, 'build-cuda-emu');
const objDir = path.join(out, 'obj');
const cxx = process.env.CXX || 'g++';
const debug = process.env.CLIPSCALE_EMU_DEBUG === '1';
const jobs = Math.max(1, Number(process.env.CLIPSCALE_BUILD_JOBS) || Math.min(2, os.availableParallelism?.() ?? os.cpus().length));

const flags = ['-std=c++17', '-fPIC', debug ? '-O0' : '-O2', ...(debug ? ['-g'] : []),
  '-I' + path.join(root, 'native', 'cuda', 'emu'), '-I' + path.join(root, 'native'),
  '-DCLIPSCALE_EMULATED_DEVICE', '-DCLIPSCALE_PTX_EMULATE',
  '-Wall', '-Wno-unused-parameter', '-Wno-unknown-pragmas', '-Wno-unused-function'];

const ls = (dir, re) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => path.join(dir, f)) : []);
const cudaDir = path.join(root, 'native', 'cuda');
const runtimeSources = ls(path.join(cudaDir, 'emu'), /\.cpp$/);
const librarySources = [...ls(cudaDir, /\.(cu|cpp)$/), ...runtimeSources];
const nativeTests = ls(path.join(cudaDir, 'tests'), /\.cpp$/);
const emuTests = ls(path.join(cudaDir, 'emu', 'tests'), /\.cu$/);

const mtime = (f) => { try { return fs.statSync(f).mtimeMs; } catch { return -1; } };

// An object is current when it is newer than every file its .d lists.
function upToDate(obj) {
  const dep = obj.replace(/\.o$/, '.d');
  const t = mtime(obj);
  if (t < 0 || mtime(dep) < 0) return false;
  const files = fs.readFileSync(dep, 'utf8').replace(/\\\n/g, ' ').split(':').slice(1).join(':').trim().split(/\s+/);
  return files.every((f) => f && mtime(f) >= 0 && mtime(f) <= t);
}

function objectFor(src) {
  const rel = path.relative(path.join(root, 'native'), src).replace(/[\\/]/g, '__');
  return path.join(objDir, rel + '.o');
}

function run(cmd, args, label) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', (e) => reject(new Error(`${label}: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${label} failed (exit ${code})`))));
  });
}

async function compileAll(sources) {
  const todo = sources.filter((s) => !upToDate(objectFor(s)));
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const src = todo[next++];
      const obj = objectFor(src);
      const lang = src.endsWith('.cu') ? ['-x', 'c++'] : [];
      await run(cxx, [...flags, '-MMD', '-MF', obj.replace(/\.o$/, '.d'), ...lang, '-c', src, '-o', obj], `compiling ${path.relative(root, src)}`);
      // -x c++ would also apply to what follows; it precedes only the source here.
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  return todo.length;
}

function newer(target, inputs) {
  const t = mtime(target);
  return t < 0 || inputs.some((i) => mtime(i) > t);
}

async function main() {
  if (process.platform !== 'linux') {
    // The runtime uses Linux's mmap guard pages, signals and (on x86-64) an ELF context switch.
    console.log(`clipscale: the emulated CUDA device is built on Linux only (this is ${process.platform}); ` +
      'the CUDA tests skip here, saying why');
    return;
  }
  if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.error(`clipscale: cannot build the emulated CUDA device: the C++ compiler '${cxx}' was not found (set CXX)`);
    process.exit(1);
  }
  fs.mkdirSync(objDir, { recursive: true });
  const t0 = Date.now();
  const compiled = await compileAll([...librarySources, ...nativeTests, ...emuTests]);
  const lib = path.join(out, 'libclipscale_cuda_emu.so');
  const libObjs = librarySources.map(objectFor);
  const exportsMap = path.join(cudaDir, 'exports.map');
  if (newer(lib, [...libObjs, exportsMap]))
    await run(cxx, ['-shared', '-o', lib, ...libObjs, `-Wl,--version-script=${exportsMap}`, '-ldl', '-lpthread'], 'linking the emulated CUDA library');
  for (const t of nativeTests) {
    const exe = path.join(out, path.basename(t, '.cpp'));
    if (newer(exe, [objectFor(t), lib]))
      await run(cxx, ['-o', exe, objectFor(t), lib, `-Wl,-rpath,${out}`, '-ldl', '-lpthread'], `linking ${path.basename(exe)}`);
  }
  const runtimeObjs = runtimeSources.map(objectFor);
  for (const t of emuTests) {
    const exe = path.join(out, path.basename(t, '.cu'));
    if (newer(exe, [objectFor(t), ...runtimeObjs]))
      await run(cxx, ['-o', exe, objectFor(t), ...runtimeObjs, '-ldl', '-lpthread'], `linking ${path.basename(exe)}`);
  }
  console.log(`clipscale: emulated CUDA device ${path.relative(root, lib)} is up to date ` +
    `(${compiled} file(s) compiled in ${((Date.now() - t0) / 1000).toFixed(1)} s with ${jobs} job(s))`);
}

main().catch((e) => {
  console.error(`clipscale: the emulated CUDA device build failed: ${e.message}`);
  process.exit(1);
});
