#!/usr/bin/env bash
# The whole lab through the service on a GPU machine that has torch and nothing else (no Redis, no PostgreSQL, no
# package index, no data). A carried tree is limited to 64 MiB, so the carry takes two calls:
#   here:        bash bench/lab_gpu.sh prepare      # .gpu/ (CIFAR-10 JPEGs + MNIST, 30 MB), .gpu-run/ (wheels, 50 MB)
#   GPU, call 1: bash bench/lab_gpu.sh data         # carry .gpu: unpacks both into .gpu-data/ (kept while warm)
#   GPU, call 2: bash bench/lab_gpu.sh run [args]   # carry .gpu-run: installs the wheels, runs bench/lab_gpu.py
# Results: $OUT/lab_gpu.json (or bench/results/lab_gpu.json). Arguments after `run` go to bench/lab_gpu.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}  # the GPU machine's python (python3 --version there)

prepare() {
  python3 bench/pack_data.py pack ../shared/data/cifar10-jpeg .gpu/cifar10-jpeg.npz
  mkdir -p .gpu-run/whl
  python3 bench/pack_data.py pack ../shared/data/MNIST .gpu/MNIST.npz
  # The service's runtime dependencies (pyproject.toml) without torch, torchvision and numpy, which the GPU
  # machine has; psycopg and s3fs are left out too (SQLite and the filesystem artifact store need neither).
  .venv/bin/pip download -q --only-binary=:all: --python-version "$PYVER" --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -d .gpu-run/whl \
    "celery[redis]>=5.4" "sqlalchemy>=2.0" "alembic>=1.13" "flask>=3.0" "pydantic>=2.6" "gunicorn>=22" \
    "gevent>=24" tqdm requests pydantic-settings prometheus-client scipy "flask-limiter>=3.8" "fsspec>=2024.6"
  rm -f .gpu-run/whl/numpy-*.whl
  git rev-parse HEAD > .gpu-run/commit
  du -sh .gpu .gpu-run
}

data() {
  python3 bench/pack_data.py unpack .gpu/cifar10-jpeg.npz .gpu-data
  python3 bench/pack_data.py unpack .gpu/MNIST.npz .gpu-data
}

run() {
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu-run/whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
  [ -d .gpu-data/MNIST ] || { echo 'no .gpu-data/: run `bench/lab_gpu.sh data` first (carry .gpu)' >&2; exit 2; }
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi: a CPU run"
  CNNLAB_COMMIT=$(cat .gpu-run/commit) python3 -m bench.lab_gpu --data-dir .gpu-data \
    --out "${OUT:-bench/results}/lab_gpu.json" "$@"
}

cmd=${1:-}
shift || true
case "$cmd" in
  prepare|data|run) "$cmd" "$@" ;;
  *) echo "usage: bench/lab_gpu.sh prepare|data|run [bench/lab_gpu.py arguments]" >&2; exit 2 ;;
esac
