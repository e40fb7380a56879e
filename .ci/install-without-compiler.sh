#!/usr/bin/env bash
# CI: the package installs and runs on a machine with no C++ toolchain.
#   1. npm pack: the source package (what a release is made from).
#   2. prebuildify in an unpacked copy (so the checkout's build/ is untouched): the N-API addon for
#      this platform, built without MPI (CLIPSCALE_WITH_MPI=0: a prebuild must not need libmpi).
#   3. npm pack again: the release tarball, with prebuilds/.
#   4. In a fresh folder, with a PATH that has no g++, gcc, cc, c++, make or clang:
#      npm install ./clipscale-*.tgz, then `npx clipscale info` and a short training run.
# Prints install times as JSON lines. Usage: .ci/install-without-compiler.sh [WORKDIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d "${TMPDIR:-/tmp}/clipscale-install-XXXXXX")}"
mkdir -p "$work/src" "$work/release"
cd "$repo"

# npm install of TARBALL into the current folder, its time printed as a JSON line labelled LABEL.
timed_install() {
  local label="$1" tarball="$2" t0 t1
  printf '{"name":"app","version":"1.0.0","private":true,"type":"module"}\n' > package.json
  t0=$(date +%s.%N)
  npm install --no-audit --no-fund --prefer-offline "./$tarball"
  t1=$(date +%s.%N)
  echo "{\"install\":\"$label\",\"seconds\":$(node -p "($t1 - $t0).toFixed(1)")}"
}

echo "== npm pack (source package) into $work/src"
npm pack --silent --pack-destination "$work/src" >/dev/null
src_tgz="$(ls "$work"/src/clipscale-*.tgz)"
tar -xzf "$src_tgz" -C "$work/src"

echo "== prebuildify (N-API, linux glibc tag, stripped, no MPI)"
ln -s "$repo/node_modules" "$work/src/package/node_modules"
# Through npm, which puts its node-gyp on PATH (the script is in package.json: build:prebuilds).
( cd "$work/src/package" && JOBS="${JOBS:-2}" npm run --silent build:prebuilds )
ls -l "$work"/src/package/prebuilds/*/
rm "$work/src/package/node_modules"
rm -rf "$work/src/package/build"

echo "== npm pack (release package, with prebuilds/)"
( cd "$work/src/package" && npm pack --silent --ignore-scripts --pack-destination "$work/release" >/dev/null )
release_tgz="$(ls "$work"/release/clipscale-*.tgz)"
tar -tzf "$release_tgz" > "$work/release/files.txt"
grep '^package/prebuilds/' "$work/release/files.txt"
grep -q '^package/prebuilds/linux-x64/.*\.node$' "$work/release/files.txt" || { echo "the release tarball has no prebuilds/linux-x64/*.node" >&2; exit 1; }

echo "== a PATH without a compiler or make"
nocc="$work/bin-without-compilers"
mkdir -p "$nocc"
IFS=: read -ra dirs <<< "$PATH"
for d in "${dirs[@]}"; do
  [ -d "$d" ] || continue
  for f in "$d"/*; do
    name="$(basename "$f")"
    case "$name" in
      g++*|gcc*|cc|c++|cpp|make|gmake|clang*|*-g++*|*-gcc*|*-c++*|ld|ld.*|as|cc1*|mpicc*|mpic++*|mpicxx*) continue ;;
    esac
    [ -x "$f" ] && [ ! -e "$nocc/$name" ] && ln -s "$f" "$nocc/$name"
  done
done
for tool in g++ gcc cc c++ make clang; do
  if PATH="$nocc" command -v "$tool" >/dev/null 2>&1; then echo "$tool is still on the stripped PATH" >&2; exit 1; fi
done

echo "== npm install ./$(basename "$release_tgz") in a fresh folder, no compiler"
app="$work/app"
mkdir -p "$app"
cp "$release_tgz" "$app/"
cd "$app"
PATH="$nocc" timed_install "tarball with prebuilds, no compiler" "$(basename "$release_tgz")"
[ ! -d node_modules/clipscale/build ] || { echo "node_modules/clipscale/build exists: the addon was compiled, not taken from prebuilds/" >&2; exit 1; }
PATH="$nocc" npx clipscale info
PATH="$nocc" npx clipscale info --json | node -e "const i=JSON.parse(require('fs').readFileSync(0,'utf8')); if(i.clipscale!=='$(node -p "require('$repo/package.json').version")') process.exit(1)"
PATH="$nocc" npx clipscale train --model micro --data synthetic:size=64 --batch-size 8 --samples 32 --out run
test -f run/checkpoint-4.safetensors
echo "installs and runs without a compiler: ok"

if [ "${CLIPSCALE_TIME_SOURCE_INSTALL:-0}" = 1 ]; then
  echo "== for comparison: npm install of the source package (compiles the addon)"
  src_app="$work/src-app"
  mkdir -p "$src_app"
  cp "$src_tgz" "$src_app/"
  cd "$src_app"
  JOBS="${JOBS:-2}" timed_install "source package, compiled by node-gyp" "$(basename "$src_tgz")"
fi
