#!/usr/bin/env bash
# Create .venv (if missing) and install hamjepa with its test tools and the docs site's. Idempotent.
# TORCH_SPEC overrides the PyTorch pins (default: the releases this project is tested with).
# Nothing is installed outside .venv unless asked: HAMJEPA_INSTALL_DEBIAN_PACKAGES=1 lets it `apt-get install`
# the Debian package dataset-fashion-mnist (the data of the image-halves tests; CI sets it in .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# shellcheck disable=SC2086
.venv/bin/python -m pip install -q $TORCH_SPEC
.venv/bin/python -m pip install -q -e ".[dev,tensorboard,docs]"
FASHION_MNIST_DIR=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
if [ ! -d "$FASHION_MNIST_DIR" ]; then
  if [ "${HAMJEPA_INSTALL_DEBIAN_PACKAGES:-0}" = 1 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
      || echo "note: could not install dataset-fashion-mnist; the image-halves tests will be skipped"
  else
    echo "note: no Fashion-MNIST at $FASHION_MNIST_DIR; the image-halves tests will be skipped" \
      "(HAMJEPA_INSTALL_DEBIAN_PACKAGES=1 lets this script apt-get install dataset-fashion-mnist)"
  fi
fi
