#!/usr/bin/env bash
# Set up (idempotent, see setup.sh), then run the vllm-void CLI with the arguments given.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$here/scripts/setup.sh")"
exec "$venv/bin/vllm-void" "$@"
