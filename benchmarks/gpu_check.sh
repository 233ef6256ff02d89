#!/usr/bin/env bash
# Every GPU figure in one run (see benchmarks/gpu_check.py): under 8 minutes on one H200, no network.
#   bash benchmarks/gpu_check.sh            # prints a markdown table for benchmarks/README.md
#   bash benchmarks/gpu_check.sh --smoke    # the same code on the CPU at tiny sizes
# PYTHON overrides the interpreter (default: .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 MPLBACKEND=Agg
export TOKENIZERS_PARALLELISM=false
exec "${PYTHON:-.venv/bin/python}" benchmarks/gpu_check.py "$@"
