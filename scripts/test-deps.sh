#!/usr/bin/env bash
# What the tests need beyond the venv: test data, Chromium for the browser tests, jq for the README's blocks.
set -u
data=${CNNLAB_TEST_DATA:-../shared/data}
if [ ! -d "$data/MNIST/raw" ]; then
  echo "test data not at $data: downloading MNIST into ./data (set CNNLAB_TEST_DATA to use another copy)"
  .venv/bin/python -c "from torchvision.datasets import MNIST; [MNIST('data', train=t, download=True) for t in (True, False)]" || exit 1
fi
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium: browser tests will be skipped" >&2
fi
if ! command -v jq >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing jq for the README's shell blocks (tests/test_readme.py)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null) \
    || echo "could not install jq: the README block tests will fail" >&2
fi
exit 0
