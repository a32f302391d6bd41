#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and torch (not part of CI):
# starts a server and a worker here, runs a CUDA matrix product in a notebook cell on the
# `gpu` runtime, and checks the output and the GPU name in the runtime status.
#
#   pip install -e ".[test]"   # once (torch comes from the machine)
#   bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=index,name,memory.total,uuid --format=csv,noheader,nounits || true
exec timeout 420 python bench/gpu_check.py
