#!/usr/bin/env bash
# Creates .venv and installs r1track with everything its tests need, offline-friendly:
# torch/torchvision come from the pinned wheels (on this project's machines they lie on disk).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
case "$(uname -m)" in
  aarch64) .venv/bin/pip install -q torch==2.9.1 torchvision==0.24.1 ;;
  *)       .venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1 ;;
esac
.venv/bin/pip install -q -c constraints.txt -e ".[dev]"
# DeepSpeed's setup imports torch, so it builds against the venv's torch (no isolated build env);
# no CUDA ops are compiled here: the tests only validate the shipped ZeRO configs with it.
.venv/bin/pip install -q -c constraints.txt --no-build-isolation deepspeed
