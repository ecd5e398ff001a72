#!/usr/bin/env bash
# Set up (idempotent), fetch both real models, lint, and run the whole test suite.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$here/scripts/setup.sh")"
"$venv/bin/vllm-void" fetch-model qwen2.5-coder-0.5b >/dev/null
cd "$here"
"$venv/bin/ruff" check vllm_void kernels server benchmarks tests
"$venv/bin/hadolint" Dockerfile
# The Triton kernel runs under Triton's interpreter, which breaks once vLLM
# is imported: its tests go first, in a process of their own.
"$venv/bin/python" -m pytest -q tests/test_lac_kernel.py
exec "$venv/bin/python" -m pytest "$@"
