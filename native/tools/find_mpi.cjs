#!/usr/bin/env node
// Finds an MPI installation for binding.gyp. Usage: node native/tools/find_mpi.cjs WHAT
//   found         "true" when mpi.h and its link flags were found, else "false"
//   include_dirs  the -I directories, one a line
//   libraries     the link flags (-L, -l, and an rpath for each -L), one a line
//   sources       native/dist/*.cpp, one a line
// It asks the MPI compiler wrapper (mpicc --showme, Open MPI; mpicc -show, MPICH),
// then pkg-config. CLIPSCALE_WITH_MPI=0 turns MPI off; MPICC names the wrapper.
// Prints nothing (or "false") when MPI is absent: the build then goes on without it.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20000 }).trim();
  } catch {
    return undefined;
  }
}

function split(flags) {
  return (flags || '').split(/\s+/).filter(Boolean);
}

function fromFlags(compile, link) {
  const includeDirs = split(compile).filter((f) => f.startsWith('-I')).map((f) => f.slice(2));
  const libs = split(link).filter((f) => f.startsWith('-L') || f.startsWith('-l') || f === '-pthread');
  const rpaths = libs.filter((f) => f.startsWith('-L')).map((f) => `-Wl,-rpath,${f.slice(2)}`);
  return { includeDirs, libraries: [...libs, ...rpaths] };
}

function hasHeader(dirs) {
  const candidates = [...dirs, '/usr/include', '/usr/local/include'];
  return candidates.some((d) => fs.existsSync(path.join(d, 'mpi.h')));
}

function find() {
  if (process.env.CLIPSCALE_WITH_MPI === '0') return undefined;
  const mpicc = process.env.MPICC || 'mpicc';
  // Open MPI
  let compile = run(mpicc, ['--showme:compile']);
  let link = run(mpicc, ['--showme:link']);
  if (compile !== undefined && link !== undefined) {
    const f = fromFlags(compile, link);
    if (hasHeader(f.includeDirs) && f.libraries.some((l) => l.startsWith('-l'))) return f;
  }
  // MPICH: the whole command line, compile and link flags together
  const show = run(mpicc, ['-show']);
  if (show) {
    const f = fromFlags(show, show);
    if (hasHeader(f.includeDirs) && f.libraries.some((l) => l.startsWith('-l'))) return f;
  }
  for (const pkg of ['ompi', 'mpich', 'mpi']) {
    compile = run('pkg-config', ['--cflags', pkg]);
    link = run('pkg-config', ['--libs', pkg]);
    if (compile !== undefined && link !== undefined) {
      const f = fromFlags(compile, link);
      if (hasHeader(f.includeDirs) && f.libraries.some((l) => l.startsWith('-l'))) return f;
    }
  }
  return undefined;
}

const what = process.argv[2];
const mpi = find();
const root = path.join(__dirname, '..', '..');
switch (what) {
  case 'found':
    console.log(mpi ? 'true' : 'false');
    break;
  case 'include_dirs':
    if (mpi) console.log(mpi.includeDirs.join('\n'));
    break;
  case 'libraries':
    if (mpi) console.log(mpi.libraries.join('\n'));
    break;
  case 'sources': {
    const dir = path.join(root, 'native', 'dist');
    if (mpi) console.log(fs.readdirSync(dir).filter((f) => f.endsWith('.cpp')).sort().map((f) => `native/dist/${f}`).join('\n'));
    break;
  }
  default:
    console.error('usage: node native/tools/find_mpi.cjs found|include_dirs|libraries|sources');
    process.exit(2);
}
