#!/usr/bin/env node
// Finds libjpeg-turbo for binding.gyp. Usage: node native/tools/find_jpeg.cjs WHAT
//   found         "true" when jpeglib.h and a library to link were found, else "false"
//   include_dirs  the directory of jpeglib.h (and of jconfig.h where it lives apart), one a line
//   libraries     the static archive libjpeg.a (so the addon and its prebuilds need no libjpeg at
//                 run time), or -L/-ljpeg with an rpath where only a shared library is installed
// Looks in the usual places (Debian's multiarch folders, /usr/lib64, /usr/local, Homebrew), and
// in JPEG_PREFIX first when it is set. CLIPSCALE_WITH_JPEG=0 turns JPEG decoding off: the addon
// then builds without it, and decoding through it fails with an error that says so.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');

function find() {
  if (process.env.CLIPSCALE_WITH_JPEG === '0') return undefined;
  const prefixes = [process.env.JPEG_PREFIX, '/usr', '/usr/local', '/opt/libjpeg-turbo', '/opt/homebrew/opt/jpeg-turbo', '/usr/local/opt/jpeg-turbo'].filter(Boolean);
  const multiarch = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', ppc64: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu' }[os.arch()];
  for (const prefix of prefixes) {
    const include = path.join(prefix, 'include');
    if (!fs.existsSync(path.join(include, 'jpeglib.h'))) continue;
    const libDirs = [multiarch && path.join(prefix, 'lib', multiarch), path.join(prefix, 'lib64'), path.join(prefix, 'lib')].filter(Boolean);
    // jconfig.h sits in the multiarch include folder on Debian.
    const includeDirs = [include];
    if (multiarch && fs.existsSync(path.join(include, multiarch, 'jconfig.h'))) includeDirs.push(path.join(include, multiarch));
    if (process.env.CLIPSCALE_JPEG_STATIC !== '0') {
      for (const d of libDirs) {
        const a = path.join(d, 'libjpeg.a');
        if (fs.existsSync(a)) return { includeDirs, libraries: [a] };
      }
    }
    for (const d of libDirs) {
      if (['libjpeg.so', 'libjpeg.dylib'].some((f) => fs.existsSync(path.join(d, f)))) {
        return { includeDirs, libraries: [`-L${d}`, '-ljpeg', `-Wl,-rpath,${d}`] };
      }
    }
  }
  return undefined;
}

const what = process.argv[2];
const jpeg = find();
switch (what) {
  case 'found':
    console.log(jpeg ? 'true' : 'false');
    break;
  case 'include_dirs':
    if (jpeg) console.log(jpeg.includeDirs.join('\n'));
    break;
  case 'libraries':
    if (jpeg) console.log(jpeg.libraries.join('\n'));
    break;
  default:
    console.error('usage: node native/tools/find_jpeg.cjs found|include_dirs|libraries');
    process.exit(2);
}
