#!/usr/bin/env bash
# One prepared run on a GPU machine (a few minutes): VGG preset 10 epochs, the seed loop for the ratio, DDP smoke.
# Prepare here first (the GPU machine has torch but no internet and no data):
#   python bench/pack_data.py pack ../shared/data/cifar10-jpeg .gpu/cifar10-jpeg.npz
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#       -d .whl pydantic pydantic-core annotated-types typing-inspection
# then run this script there with .gpu and .whl carried. Results: $OUT/gpu.json (or bench/results/gpu.json).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
data=${CNNLAB_DATA_DIR:-/tmp/data}
[ -d "$data/cifar10-jpeg" ] || python3 bench/pack_data.py unpack .gpu/cifar10-jpeg.npz "$data"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
export CNNLAB_DATA_DIR=$data CNNLAB_VAR_DIR=/tmp/cnnlab-var
python3 bench/gpu_bench.py --data-dir "$data" --out "${OUT:-bench/results}/gpu.json" "$@"
