#!/usr/bin/env bash
# One prepared script for a GPU machine (the `device` tool): set up, run the
# kernel tests natively on CUDA, then the kernel micro-benchmark in bf16.
# Results land in ${OUT:-results}/. Budget: a few minutes after set-up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${OUT:-results}"
mkdir -p "$out"
venv="$(bash scripts/setup.sh)"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
VLLM_VOID_KERNEL_DEVICE=cuda "$venv/bin/python" -m pytest -q tests/test_lac_kernel.py \
  2>&1 | tee "$out/kernel_tests.txt"
"$venv/bin/python" benchmarks/lac_kernel.py --dtype bfloat16 --hidden 896 4096 8192 \
  --tokens 1 64 4096 --output "$out/lac_kernel.json" 2>&1 | tee "$out/lac_kernel.txt"
