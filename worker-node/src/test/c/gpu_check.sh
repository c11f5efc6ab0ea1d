#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, in one run (made for the device machine, where nvcc, torch
# and transformers are installed):
#   worker-node/src/test/c/gpu_check.sh OUT_DIR HF_MODEL_DIR...
# builds both kernel libraries there, runs the C tests (test_cuda: CUDA against the naive reference
# and the CPU library, batch invariance, chunked prefill, capacity), runs test_cuda under
# compute-sanitizer, compares both libraries with Hugging Face transformers on the given random
# models (`./cocoon model random --format hf`), measures the device-to-device copy bandwidth and
# runs the decode benchmark. Logs go to OUT_DIR.
set -uo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR HF_MODEL_DIR...}; shift
here=$(cd "$(dirname "$0")" && pwd)
module=$(cd "$here/../../.." && pwd)
src=$module/src/main/c lib=$module/target/classes/native/linux-x86_64 native=$module/target/native
status=0
step() { echo "== $*"; "$@" || { echo "== FAILED ($?): $*"; status=1; }; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
nvcc --version | tail -1
lscpu | grep -E 'Model name|^CPU\(s\)'
make -s -C "$src" clean
step make -s -C "$src" all test 2>&1 | tee "$out/make-test.log"
step timeout 300 compute-sanitizer --tool memcheck --print-limit 20 "$native/test_cuda" "$lib/libcocoon_kernels.so" \
  "$lib/libcocoon_kernels_cuda.so" > "$out/sanitizer.log" 2>&1
tail -5 "$out/sanitizer.log"
for l in libcocoon_kernels_cuda.so libcocoon_kernels.so; do
  step env PYTHONUNBUFFERED=1 python3 "$module/src/test/python/hf_compare.py" "$lib/$l" "$@"
done
echo "== device-to-device copy of 1 GiB, median of 20 (bytes read + written)"
python3 - <<'PY'
import torch
n = 1 << 30
a = torch.randint(0, 255, (n,), dtype=torch.uint8, device="cuda"); b = torch.empty_like(a)
for _ in range(3): b.copy_(a)
times = []
for _ in range(20):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); b.copy_(a); e.record(); e.synchronize(); times.append(s.elapsed_time(e))
t = sorted(times)[10] / 1e3
print("copy: %.3f ms, %.0f GB/s" % (t * 1e3, 2 * n / t / 1e9))
PY
step make -s -C "$src" bench-cuda BENCH_ARGS="${BENCH_ARGS:--d f32,f16,bf16,q8_0 -b 1 -n 128 -p 128}" 2>&1 | tee "$out/bench.log"
step make -s -C "$src" bench-cuda BENCH_ARGS="${BENCH_BATCH_ARGS:--d bf16 -b 1,8,32,64 -n 128 -p 128}" 2>&1 | tee -a "$out/bench.log"
exit $status
