#!/usr/bin/env bash
# The one GPU check: builds the CUDA backend with the GPU machine's nvcc, runs the native
# GPU tests (no Node) and the Node tests test/cuda-*.test.ts, then benchmarks against
# PyTorch on the same GPU; prints a short table last and writes everything under $OUT
# (or ./gpu-check-results when $OUT is unset). Aimed at ≤ 6 minutes on one H100.
#
# How to call it (a session with a lent GPU; see /work/.library/device/README.md):
#   1. Here, on the dev machine (no GPU needed), pack what the GPU machine lacks — a
#      portable Node, the built addon and a trimmed node_modules — into .device/
#      (git-ignored through .git/info/exclude):
#        benchmarks/gpu_check.sh pack
#   2. One device call, carrying .device:
#        run(command="bash benchmarks/gpu_check.sh", carry=[".device"], timeout_s=540)
#   3. Commit $OUT's files under benchmarks/results/gpu_check_<device>_<date>/ and flip
#      kCudaBackendVerifiedOnGpu (native/core/cuda_backend.h) once everything passed.
#
# Environment: CLIPSCALE_CUDA_ARCH (default 90a on the GPU machine: only the chip at hand,
# for a fast build); SKIP_BENCH=1 skips the benchmarks.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "pack" ]; then
  set -e
  bash ../shared/tools/portable-node.sh
  flock /tmp/clipscale-build.lock npm run build >/dev/null
  tar -cf - --exclude='node_modules/@typescript' --exclude='node_modules/typescript' --exclude='node_modules/@img' \
    --exclude='node_modules/sharp' --exclude='node_modules/@types' node_modules build/Release/clipscale.node |
    xz -T2 -3 > .device/bundle.tar.xz
  ls -la .device/
  echo "packed; now one device call: bash benchmarks/gpu_check.sh (carry .device)"
  exit 0
fi

OUT=${OUT:-$PWD/gpu-check-results}
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: > "$summary"
status() { printf '%-28s %s\n' "$1" "$2" | tee -a "$summary"; }
t0=$(date +%s)

# ── Node and the addon from the dev machine ──
if [ -f .device/node.xz ]; then
  { xz -dc .device/node.xz > /tmp/node 2>/dev/null ||
    python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.device/node.xz'),open('/tmp/node','wb'))"; } &&
    chmod +x /tmp/node && export PATH=/tmp:$PATH
fi
if [ -f .device/bundle.tar.xz ]; then
  xz -dc .device/bundle.tar.xz | tar -xf - || python3 -c "import lzma,tarfile;tarfile.open(fileobj=lzma.open('.device/bundle.tar.xz')).extractall('.')"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader 2>&1 | tee "$OUT/device.txt"
device=$(head -1 "$OUT/device.txt" | cut -d, -f1)
status "device" "$device"
command -v node >/dev/null && status "node" "$(node --version)" || status "node" "MISSING (run 'benchmarks/gpu_check.sh pack' here first and carry .device)"

# ── build the CUDA backend for this chip ──
arch=${CLIPSCALE_CUDA_ARCH:-90a}
export CLIPSCALE_BUILD_JOBS=${CLIPSCALE_BUILD_JOBS:-$(nproc)}
if command -v node >/dev/null; then
  node native/cuda/build.cjs --require --arch "$arch" > "$OUT/build.log" 2>&1
else
  { cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" &&
    cmake --build build-cuda --parallel "$CLIPSCALE_BUILD_JOBS"; } > "$OUT/build.log" 2>&1
fi
build_rc=$?
status "build (sm_$arch)" "$([ $build_rc = 0 ] && echo ok || echo "FAILED rc=$build_rc, see build.log") ($(( $(date +%s) - t0 )) s)"
tail -5 "$OUT/build.log"

# ── native GPU tests (no Node) ──
: > "$OUT/native_tests.log"
for t in build-cuda/*_test; do
  [ -x "$t" ] || continue
  echo "== $t" >> "$OUT/native_tests.log"
  timeout 120 "$t" >> "$OUT/native_tests.log" 2>&1
  rc=$?
  status "$(basename "$t")" "$(case $rc in 0) echo passed ;; 77) echo 'SKIPPED (no usable GPU)' ;; *) echo "FAILED rc=$rc" ;; esac)"
done
grep -E "FAIL|SKIP" "$OUT/native_tests.log" | head -20

# ── Node tests of the CUDA ops against the CPU ops, and of the NCCL communicator ──
# NCCL: the library PyTorch's nvidia-nccl package brought, unless one was chosen already.
if [ -z "${CLIPSCALE_NCCL_PATH:-}" ]; then
  nccl_lib=$(find / \( -path /proc -o -path /sys \) -prune -o -name 'libnccl.so*' -print 2>/dev/null | head -1)
  [ -n "$nccl_lib" ] && export CLIPSCALE_NCCL_PATH=$(dirname "$nccl_lib")
fi
status "CLIPSCALE_NCCL_PATH" "${CLIPSCALE_NCCL_PATH:-(no libnccl.so found)}"
if command -v node >/dev/null && [ -d node_modules/ava ]; then
  timeout 240 node node_modules/ava/entrypoints/cli.mjs --verbose test/cuda-*.test.ts test/dist-nccl.test.ts > "$OUT/ava.log" 2>&1
  rc=$?
  status "ava test/cuda-*.test.ts test/dist-nccl.test.ts" "$([ $rc = 0 ] && echo passed || echo "FAILED rc=$rc") $(grep -Eo '[0-9]+ tests? (passed|failed|skipped)' "$OUT/ava.log" | tr '\n' ' ')"
  grep -E "✘|skipped, no GPU|SKIPPED|\(skipped: " "$OUT/ava.log" | head -20
else
  status "ava test/cuda-*.test.ts test/dist-nccl.test.ts" "NOT RUN (no node or node_modules)"
fi

# ── benchmarks against PyTorch on this GPU ──
if [ "${SKIP_BENCH:-0}" != 1 ] && [ $build_rc = 0 ]; then
  timeout 150 python3 benchmarks/gpu_pointwise.py --out "$OUT/pointwise.jsonl" > "$OUT/bench.log" 2>&1 ||
    status "gpu_pointwise.py" "FAILED (see bench.log)"
  if [ -f benchmarks/gpu_layers.py ]; then
    timeout 150 python3 benchmarks/gpu_layers.py --quick --out "$OUT/layers.jsonl" >> "$OUT/bench.log" 2>&1 ||
      status "gpu_layers.py" "FAILED (see bench.log)"
  fi
  tail -3 "$OUT/bench.log"
fi

status "total" "$(( $(date +%s) - t0 )) s"
echo
echo "── summary ($device) ──"
cat "$summary"
python3 - "$OUT" <<'PY' | tee -a "$summary"
import json, os, sys
out = sys.argv[1]
for name in ('pointwise.jsonl', 'layers.jsonl'):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        continue
    print(f"{name}:")
    for line in open(path):
        r = json.loads(line)
        extra = ' '.join(f"{k}={r[k]:.1f}" for k in ('ours_GBps', 'ours_TFLOPs') if k in r)
        ours = r.get('ours_ms', r.get('ms'))
        ref = r.get('torch_ms')
        ratio = r.get('speedup_vs_torch')
        print(f"  {r.get('op', r.get('name', '?')):<48} {str(r.get('shape', '')):<18} ours {ours if ours is None else f'{ours:.3f}'} ms"
              + (f"  torch {ref:.3f} ms  ×{ratio:.2f}" if ref and ratio else '') + (f"  {extra}" if extra else ''))
PY
