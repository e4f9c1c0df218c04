#!/usr/bin/env bash
# The GPU checks of issue 6 in one command, for a machine with a CUDA device and PyTorch
# already installed (no network needed; captum is not used):
#   1. the CUDA tests (tests/test_cuda.py: CUDA step against the CPU step, the speed-ups'
#      distance from fp32, several units in one batch, the facets command on cuda);
#   2. the throughput bench on the GPU, paper size then glyphs, with every speed-up
#      (bf16, channels_last, both, torch.compile) and a whole 2,000-sample unit timed with
#      each (the target: under 2 s at paper size).
# Outputs go to $OUT if set (the device tool's folder), else runs/gpu/, as they are printed,
# so a part cut off by its time limit (120 s, then 400 s: 520 s in all, inside one device
# call of 600 s) still leaves what it had measured.
#
#   bash bench/gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/gpu}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"

"$py" - <<'EOF' 2>&1 | tee "$out/gpu_checks.log"
import torch
print("torch", torch.__version__, "| cuda", torch.version.cuda, "|",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NO CUDA DEVICE")
EOF
timeout 120 "$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee -a "$out/gpu_checks.log"
echo "tests rc ${PIPESTATUS[0]}" | tee -a "$out/gpu_checks.log"
timeout 400 "$py" bench/throughput.py --device cuda --batches 10,20,40,80,160,320 \
    --variants fp32,bf16,channels_last,bf16+channels_last,compile --variant-batch 10 --unit \
    2>&1 | tee "$out/throughput_gpu.md"
echo "throughput rc ${PIPESTATUS[0]}" | tee -a "$out/gpu_checks.log"
