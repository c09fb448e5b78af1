#!/usr/bin/env bash
# Set up, fetch CIFAR-100, pre-train HamJEPA on it, then evaluate the frozen encoder.
# Extra arguments are config overrides, e.g.:  bash scripts/quickstart.sh train.epochs=80 seed=1
# On a machine without a GPU:  bash scripts/quickstart.sh --cpu-demo   (HamJEPA and SIGReg trained CPU-sized, kNN@20
# beside the untrained encoder's; see `hamjepa reproduce cpu-demo --help`; about 8 minutes on 2 cores).
# CIFAR-100 comes from ../shared/data/cifar100 when that offline copy exists, else from torchvision's download.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p data
if [ ! -f data/cifar100.npz ]; then
  if [ -f ../shared/data/cifar100/unpack.py ]; then
    .venv/bin/python ../shared/data/cifar100/unpack.py data/cifar100.npz --src ../shared/data/cifar100
  else
    .venv/bin/hamjepa data cifar100 --root data --out data/cifar100.npz
  fi
fi
if [ "${1:-}" = "--cpu-demo" ]; then
  shift
  exec .venv/bin/hamjepa reproduce cpu-demo --data data/cifar100.npz "$@"
fi
.venv/bin/hamjepa train configs/cifar100_hamjepa.yaml data.path=data/cifar100.npz train.eval_at_end=true "$@"
