#!/usr/bin/env bash
# The one GPU check: builds the CUDA backend with the GPU machine's nvcc (and, beside it, the
# same sources with every PTX instruction emulated by warp shuffles, CLIPSCALE_PTX_EMULATE),
# runs the native GPU tests (no Node) on both builds and the Node tests test/cuda-*.test.ts
# and test/dist-nccl.test.ts on the real one and on the emulated-PTX one, then benchmarks
# against PyTorch on the same GPU: full training steps (benchmarks/train_gpu.ts against
# benchmarks/train_gpu_pytorch.py, eager and torch.compile, with the ViT-B-32 parity check),
# then pointwise and layer kernels. Writes everything under $OUT (or ./gpu-check-results)
# and prints the benchmark tables, then the pass/fail table LAST.
#
# It cannot pass by skipping: on a machine with a GPU, a test that skips, a native test
# that exits 77, the CUDA backend not using the GPU, the GEMM not using cuBLASLt (PyTorch's
# libcublasLt.so.13 is found and exported as CLIPSCALE_CUBLASLT_PATH) or NCCL not found
# (PyTorch's libnccl, CLIPSCALE_NCCL_PATH) each count as a failure, and the script exits
# non-zero when anything failed or skipped. Fits one 10-minute device call (timeouts below).
#
# How to call it (a session with a lent GPU; see /work/.library/device/README.md):
#   1. Here, on the dev machine (no GPU needed), pack what the GPU machine lacks — a
#      portable Node, the built addon and a trimmed node_modules — into .device/
#      (git-ignored through .git/info/exclude):
#        benchmarks/gpu_check.sh pack
#   2. One device call, carrying .device:
#        run(command="bash benchmarks/gpu_check.sh", carry=[".device"], timeout_s=590)
#   3. Commit $OUT's files under benchmarks/results/gpu_check_<device>_<date>/ and flip
#      kCudaBackendVerifiedOnGpu (native/cuda_dispatch/cuda_backend.h) once everything passed.
#
# Environment: CLIPSCALE_CUDA_ARCH (default 90a on the GPU machine: only the chip at hand,
# for a fast build); SKIP_BENCH=1 skips the benchmarks; SKIP_TESTS=1 skips the native and ava
# tests (for a second call that benchmarks only; it still fails); TRAIN_DEADLINE (default 540): the
# training cases start only while their estimate fits before this many seconds since the
# start, and are cut there (a case that does not fit is a NOT RUN row: the check fails).
#
# Training benchmarks alone, as a dry run (tiny `micro` shapes; the emulated device when
# there is no GPU, PyTorch on the CPU), to show the scripts run — measures nothing:
#   benchmarks/gpu_check.sh train-dry-run
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "pack" ]; then
  set -e
  bash ../shared/tools/portable-node.sh
  flock /tmp/clipscale-build.lock npm run build >/dev/null
  tar -cf - --exclude='node_modules/@typescript' --exclude='node_modules/typescript' --exclude='node_modules/@img' \
    --exclude='node_modules/sharp' --exclude='node_modules/@types' node_modules build/Release/clipscale.node |
    xz -T2 -3 > .device/bundle.tar.xz
  # open_clip_torch (and its ftfy, wcwidth) are not in the GPU machine's image: carry wheels.
  rm -rf .device/whl
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --index-url file:///opt/pypi/simple -d .device/whl open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth
  ls -la .device/ .device/whl
  echo "packed; now one device call: bash benchmarks/gpu_check.sh (carry .device)"
  exit 0
fi

OUT=${OUT:-$PWD/gpu-check-results}
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: > "$summary"
failures=0
DRY_RUN=
[ "${1:-}" = "train-dry-run" ] && DRY_RUN=--dry-run
# One row of the pass/fail table; a row that says FAILED, SKIPPED, MISSING or NOT RUN counts.
status() {
  printf '%-44s %s\n' "$1" "$2" | tee -a "$summary"
  case "$2" in *FAILED* | *SKIPPED* | *MISSING* | *"NOT RUN"* | *"NOT USED"*) failures=$((failures + 1)) ;; esac
}
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }

# ── training steps: clipscale against PyTorch eager and torch.compile, ViT-L-14 last ──
# One process per case, so a case cut by its time limit loses only itself. Each case starts
# only when its estimate (seconds on an H100/H200) fits before TRAIN_DEADLINE.
train_case() {  # train_case <label> <estimate s> <limit s> <command...>
  local label=$1 est=$2 cap=$3
  shift 3
  local left=$(( ${TRAIN_DEADLINE:-540} - $(elapsed) ))
  if [ -z "$DRY_RUN" ] && [ "$left" -lt "$est" ]; then
    status "$label" "NOT RUN (time budget: $left s left of TRAIN_DEADLINE, needs ~$est s)"
    return
  fi
  [ -z "$DRY_RUN" ] && [ "$cap" -gt "$left" ] && cap=$left
  local t1
  t1=$(date +%s)
  echo "== $label: $*" >> "$OUT/train.log"
  timeout "$cap" "$@" >> "$OUT/train.jsonl" 2>> "$OUT/train.log"
  local rc=$?
  local took=$(( $(date +%s) - t1 ))
  case $rc in
    0) status "$label" "ok ($took s)" ;;
    124) status "$label" "FAILED (cut at its $cap s limit; see train.log)" ;;
    *) status "$label" "FAILED rc=$rc ($took s; see train.log)" ;;
  esac
}
train_benches() {
  : > "$OUT/train.jsonl"
  : > "$OUT/train.log"
  local specs="ViT-B-32:256 ViT-B-16:128 ViT-L-14:64"
  [ -n "$DRY_RUN" ] && specs="micro:4"
  local dump="$OUT/train_dump"
  for spec in $specs; do
    local name=${spec%%:*}
    # Our weights, batch, loss and gradients of one step for PyTorch's parity check (ViT-B-32);
    # MACs per sample for every config's MFU.
    local ours=(--meta "$dump") eager_extra=(--meta "$dump") eager_label="pytorch eager"
    if [ "$name" = ViT-B-32 ] || [ -n "$DRY_RUN" ]; then
      ours=(--dump "$dump")
      eager_extra=(--parity "$dump")
      eager_label="pytorch eager + parity"
    fi
    local est_cs=40 est_eager=30 est_compile=90
    [ "$name" = ViT-L-14 ] && { est_cs=60; est_eager=40; est_compile=120; }
    train_case "train $spec clipscale (CUDA graphs)" $est_cs 180 \
      node --import=tsx benchmarks/train_gpu.ts --configs "$spec" "${ours[@]}" $DRY_RUN
    train_case "train $spec $eager_label" $est_eager 150 \
      python3 benchmarks/train_gpu_pytorch.py --configs "$spec" --modes eager "${eager_extra[@]}" $DRY_RUN
    train_case "train $spec pytorch torch.compile" $est_compile 240 \
      python3 benchmarks/train_gpu_pytorch.py --configs "$spec" --modes compile --meta "$dump" $DRY_RUN
  done
}
# The training table: one row per (config, implementation), the parity check below it.
train_table() {
  [ -s "$OUT/train.jsonl" ] || return 0
  python3 - "$OUT/train.jsonl" <<'PY'
import json, sys
rows, parity = [], []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith('{'):
        continue
    r = json.loads(line)
    if r.get('bench') == 'train_step' and 'step_ms' in r:
        rows.append(r)
    elif r.get('bench') == 'parity':
        parity.append(r)
if not rows and not parity:
    sys.exit()
print("training steps (bf16; MFU = 6 · MACs/sample · batch / step time / peak bf16 dense, peak 989 TFLOP/s;")
print("  step time = a window of steps queued back to back, ended when the last loss is on the host;")
print("  peak memory = allocator peak: clipscale native.cudaMemoryStats, PyTorch max_memory_allocated)")
print(f"  {'config':<10} {'batch':>5} {'implementation':<20} {'samples/s':>10} {'step ms':>9} {'MFU':>7} {'peak GiB':>9} {'vs eager':>9} {'vs compile':>10}")
by = {}
for r in rows:
    by.setdefault(r['config'], {})[r['impl']] = r
for cfg, impls in by.items():
    eager, comp = impls.get('pytorch-eager'), impls.get('pytorch-compile')
    for impl in ('clipscale', 'pytorch-eager', 'pytorch-compile'):
        r = impls.get(impl)
        if not r:
            continue
        mem = r.get('peak_memory_bytes')
        vs = lambda ref: f"{r['samples_per_s'] / ref['samples_per_s']:.2f}x" if ref and ref['samples_per_s'] else '-'
        mfu = r.get('mfu')
        name = impl + (' (graphs)' if impl == 'clipscale' and r.get('graphs') == 'on' else '')
        print(f"  {cfg:<10} {r['batch']:>5} {name:<20} {r['samples_per_s']:>10.1f} {r['step_ms']:>9.2f} "
              f"{(f'{100 * mfu:.1f}%' if mfu is not None else '-'):>7} {(f'{mem / 2**30:.2f}' if mem else '-'):>9} {vs(eager):>9} {vs(comp):>10}")
    bd = impls.get('clipscale', {}).get('eager_breakdown_ms')
    if bd:
        print(f"  {cfg:<10} clipscale eager step, ms: " + ', '.join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in bd.items())
              + f" (sum {sum(bd.values()):.2f})")
    g = impls.get('clipscale', {}).get('graphs', '')
    if g and g != 'on':
        print(f"  {cfg:<10} clipscale CUDA graphs {g}")
for p in parity:
    print(f"  parity {p['config']} b{p['batch']}: loss clipscale {p['loss_clipscale']:.5f} vs torch bf16 {p['loss_torch_bf16']:.5f} "
          f"(rel {p['loss_rel_err']:.1e}); max grad rel err vs torch fp32 {p['grad_rel_err_vs_torch_fp32']:.3f} "
          f"({p['worst_tensor_vs_torch_fp32']}); torch bf16 vs fp32 {p['torch_bf16_vs_fp32']:.3f}: {'PASS' if p['pass'] else 'FAIL'}")
PY
}

if [ -n "$DRY_RUN" ]; then
  # The training benchmarks' dry run on this machine: emulated device unless a GPU is here.
  t0=$(date +%s)
  elapsed() { echo $(( $(date +%s) - t0 )); }
  nvidia-smi -L > /dev/null 2>&1 || export CLIPSCALE_CUDA=emulate
  status "device" "${CLIPSCALE_CUDA:-gpu} (dry run: micro at batch 4, nothing measured)"
  train_benches
  echo
  train_table | tee "$OUT/train_table.txt"
  status "total" "$(elapsed) s"
  echo
  echo "── pass/fail (train dry run) ──"
  cat "$summary"
  [ "$failures" -gt 0 ] && { echo "TRAIN DRY RUN FAILED: $failures row(s)"; exit 1; }
  echo "TRAIN DRY RUN PASSED"
  exit 0
fi

# ── Node and the addon from the dev machine ──
if [ -f .device/node.xz ]; then
  { xz -dc .device/node.xz > /tmp/node 2>/dev/null ||
    python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.device/node.xz'),open('/tmp/node','wb'))"; } &&
    chmod +x /tmp/node && export PATH=/tmp:$PATH
fi
if [ -f .device/bundle.tar.xz ]; then
  xz -dc .device/bundle.tar.xz | tar -xf - || python3 -c "import lzma,tarfile;tarfile.open(fileobj=lzma.open('.device/bundle.tar.xz')).extractall('.')"
fi
if ls .device/whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/whl/*.whl &&
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import open_clip" > /dev/null 2>&1 && status "open_clip (PyTorch peer)" "ok" ||
  status "open_clip (PyTorch peer)" "MISSING (no open_clip_torch: run 'benchmarks/gpu_check.sh pack' here and carry .device)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader 2>&1 | tee "$OUT/device.txt"
if nvidia-smi -L > /dev/null 2>&1; then
  device=$(head -1 "$OUT/device.txt" | cut -d, -f1)
  status "device" "$device"
else
  device="no GPU"
  status "device" "MISSING (nvidia-smi finds no GPU: this check needs one)"
fi
command -v node >/dev/null && status "node" "$(node --version)" || status "node" "MISSING (run 'benchmarks/gpu_check.sh pack' here first and carry .device)"

# ── the GPU's libraries PyTorch brought: cuBLASLt 13 and NCCL ──
find_lib() { find / \( -path /proc -o -path /sys \) -prune -o -name "$1" -print 2>/dev/null | head -1; }
if [ -z "${CLIPSCALE_CUBLASLT_PATH:-}" ]; then
  lt_lib=$(find_lib 'libcublasLt.so.13')
  [ -n "$lt_lib" ] || lt_lib=$(find_lib 'libcublasLt.so.12')
  [ -n "$lt_lib" ] && export CLIPSCALE_CUBLASLT_PATH=$(dirname "$lt_lib")
fi
if [ -z "${CLIPSCALE_NCCL_PATH:-}" ]; then
  nccl_lib=$(find_lib 'libnccl.so*')
  [ -n "$nccl_lib" ] && export CLIPSCALE_NCCL_PATH=$(dirname "$nccl_lib")
fi
echo "CLIPSCALE_CUBLASLT_PATH=${CLIPSCALE_CUBLASLT_PATH:-} CLIPSCALE_NCCL_PATH=${CLIPSCALE_NCCL_PATH:-}" | tee "$OUT/libraries.txt"
# Never the emulated device here: a test that cannot use the GPU must fail, not fall back.
export CLIPSCALE_CUDA=gpu

# ── build the CUDA backend for this chip, and the emulated-PTX build beside it ──
arch=${CLIPSCALE_CUDA_ARCH:-90a}
jobs=$(nproc)
export CLIPSCALE_BUILD_JOBS=$(( jobs > 1 ? jobs / 2 : 1 ))
build() {  # build <dir> <extra cmake args...>
  local dir=$1
  shift
  timeout 300 cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" "$@" &&
    timeout 300 cmake --build "$dir" --parallel "$CLIPSCALE_BUILD_JOBS"
}
build build-cuda > "$OUT/build.log" 2>&1 &
real_pid=$!
build build-cuda-ptxemu -DCLIPSCALE_PTX_EMULATE=ON > "$OUT/build_ptxemu.log" 2>&1 &
emu_pid=$!
wait $real_pid
build_rc=$?
wait $emu_pid
emu_build_rc=$?
status "build (sm_$arch)" "$([ $build_rc = 0 ] && echo ok || echo "FAILED rc=$build_rc, see build.log") ($(elapsed) s)"
status "build, PTX emulated (sm_$arch)" "$([ $emu_build_rc = 0 ] && echo ok || echo "FAILED rc=$emu_build_rc, see build_ptxemu.log")"
tail -3 "$OUT/build.log" "$OUT/build_ptxemu.log"

# ── what the backend uses on this machine: the GPU, cuBLASLt, NCCL ──
if command -v node >/dev/null && [ -d node_modules/tsx ]; then
  node --import=tsx lib/cli/main.ts info --json > "$OUT/info.json" 2> "$OUT/info.err"
  node --import=tsx lib/cli/main.ts info > "$OUT/info.txt" 2>&1
  python3 - "$OUT/info.json" > "$OUT/uses.txt" <<'PY'
import json, sys
try:
    g = json.load(open(sys.argv[1]))['gpu']
except Exception as e:
    print(f"GPU used by the CUDA backend\tFAILED (clipscale info: {e})"); sys.exit()
b = g['cudaBackend']
print("GPU used by the CUDA backend\t" + ("ok" if b.get('loaded') and b.get('devicesUsable') and not b.get('emulated')
      else f"NOT USED ({b.get('reason') or b.get('deviceError') or 'emulated'})"))
e = g.get('gemmEngine') or ''
print("cuBLASLt used for GEMMs\t" + ("ok: " + e if e.startswith('cublaslt') else f"NOT USED ({e or 'no engine'})"))
n = g['nccl']
print("NCCL found\t" + (f"ok: {n.get('version')} at {n.get('path')}" if n.get('found') else f"NOT USED ({n.get('error')})"))
PY
  while IFS=$'\t' read -r what verdict; do status "$what" "$verdict"; done < "$OUT/uses.txt"
else
  status "clipscale info (GPU, cuBLASLt, NCCL used)" "NOT RUN (no node or node_modules)"
fi

# ── native GPU tests (no Node), on the real build and on the emulated-PTX one ──
# SKIP_TESTS=1 (a second call on a warm machine, the builds kept): benchmarks only; the tests
# then show as NOT RUN, so that call exits non-zero.
: > "$OUT/native_tests.log"
tests_dirs="build-cuda build-cuda-ptxemu"
if [ "${SKIP_TESTS:-0}" = 1 ]; then
  tests_dirs=
  status "native GPU tests and ava tests" "NOT RUN (SKIP_TESTS=1)"
fi
for dir in $tests_dirs; do
  for t in "$dir"/*_test; do
    [ -x "$t" ] || continue
    echo "== $t" >> "$OUT/native_tests.log"
    args=()
    [ "$dir" = build-cuda-ptxemu ] && args=(--quick)
    timeout 90 "$t" "${args[@]}" >> "$OUT/native_tests.log" 2>&1
    rc=$?
    status "$t" "$(case $rc in 0) echo passed ;; 77) echo 'SKIPPED (no usable GPU)' ;; *) echo "FAILED rc=$rc" ;; esac)"
  done
done
grep -E "FAIL|SKIP" "$OUT/native_tests.log" | head -20

# ── Node tests of the CUDA ops against the CPU ops, and of the NCCL communicator ──
status "CLIPSCALE_NCCL_PATH" "${CLIPSCALE_NCCL_PATH:-MISSING (no libnccl.so found)}"
status "CLIPSCALE_CUBLASLT_PATH" "${CLIPSCALE_CUBLASLT_PATH:-MISSING (no libcublasLt.so.13/.12 found)}"
ava_run() {  # ava_run <label> <log> <files...>: any skipped or failed test fails the row
  local label=$1 log=$2
  shift 2
  timeout 200 node node_modules/ava/entrypoints/cli.mjs --verbose "$@" > "$log" 2>&1
  local rc=$? skipped
  skipped=$(grep -cE "^\s*- \[skip\]|\(skipped: |SKIPPED" "$log")
  local counts
  counts=$(grep -Eo '[0-9]+ tests? (passed|failed|skipped)|CUDA tests run: [0-9]+ in [a-z-]+' "$log" | tr '\n' ' ')
  if [ $rc != 0 ]; then status "$label" "FAILED rc=$rc $counts"
  elif [ "$skipped" != 0 ]; then status "$label" "SKIPPED $skipped test(s): $counts"
  else status "$label" "passed $counts"; fi
  grep -E "✘|\[skip\]|SKIPPED|\(skipped: " "$log" | head -20
}
if [ "${SKIP_TESTS:-0}" = 1 ]; then
  :
elif command -v node >/dev/null && [ -d node_modules/ava ]; then
  ava_run "ava test/cuda-*.test.ts test/dist-nccl.test.ts" "$OUT/ava.log" test/cuda-ops.test.ts test/cuda-layers.test.ts test/cuda-backend.test.ts test/dist-nccl.test.ts
  # Training on the GPU: CUDA graph capture and replay, pinned uploads on the copy stream, the
  # per-step event read, no allocation in a step (micro/tiny models: seconds each).
  ava_run "ava training on CUDA (graphs, streams, memory)" "$OUT/ava_train.log" test/cuda-graphs.test.ts \
    test/cuda-streams.test.ts test/cuda-memory.test.ts test/cuda-train.test.ts test/cuda-train-async.test.ts \
    test/cuda-graphs-fp16.test.ts test/cuda-siglip.test.ts
  # The same op tests with every PTX instruction emulated: they must agree with the real ones.
  CLIPSCALE_CUDA_LIB=$PWD/build-cuda-ptxemu/libclipscale_cuda.so \
    ava_run "ava cuda-layers+ops, PTX emulated" "$OUT/ava_ptxemu.log" test/cuda-layers.test.ts test/cuda-ops.test.ts
else
  status "ava test/cuda-*.test.ts test/dist-nccl.test.ts" "NOT RUN (no node or node_modules)"
fi

# ── training benchmarks (budgeted: see train_benches) ──
if [ "${SKIP_BENCH:-0}" != 1 ] && [ $build_rc = 0 ] && command -v node >/dev/null; then
  train_benches
else
  status "training benchmarks" "NOT RUN (SKIP_BENCH, a failed build or no node)"
fi

# ── kernel benchmarks against PyTorch on this GPU (when the build worked and time is left) ──
if [ "${SKIP_BENCH:-0}" != 1 ] && [ $build_rc = 0 ] && [ "$(elapsed)" -lt 480 ]; then
  timeout 60 python3 benchmarks/gpu_pointwise.py --out "$OUT/pointwise.jsonl" > "$OUT/bench.log" 2>&1 ||
    status "gpu_pointwise.py" "FAILED (see bench.log)"
  timeout 60 python3 benchmarks/gpu_layers.py --quick --out "$OUT/layers.jsonl" >> "$OUT/bench.log" 2>&1 ||
    status "gpu_layers.py" "FAILED (see bench.log)"
  tail -3 "$OUT/bench.log"
else
  echo "benchmarks not run (SKIP_BENCH, a failed build, or past 420 s)" | tee -a "$OUT/bench.log"
fi

echo
train_table | tee "$OUT/train_table.txt"
echo
python3 - "$OUT" <<'PY' | tee "$OUT/bench_table.txt"
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

status "total" "$(elapsed) s"
echo
echo "── pass/fail ($device) ──"
cat "$summary"
if [ "$failures" -gt 0 ]; then
  echo "GPU CHECK FAILED: $failures row(s) failed, skipped or not run"
  exit 1
fi
echo "GPU CHECK PASSED"
