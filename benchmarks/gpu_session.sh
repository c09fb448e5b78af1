#!/usr/bin/env bash
# The GPU checks of issue "Reproduce the paper on real CIFAR-100" as one prepared script for the device tool.
# Expects CIFAR-100 staged as in DEVELOPERS.md (.gpu-data/a with train_a.webp test.webp labels.npz unpack.py,
# .gpu-data/b with train_b.webp) and writes JSON results under $OUT (default benchmarks/results).
#   STAGE=bench       throughput of HamJEPA and SIGReg + encoder floor (a few minutes)
#   STAGE=reproduce   30-epoch HamJEPA + SIGReg (+ evaluation), seed 0
#   STAGE=imagenet    ImageNet-100 costs on real JPEGs staged at .gpu-data/imagenette-mini (44 MB, ignored by git):
#                     loader images/s (GPU decoding) and the 224 px step (batch 256 x 2 views) with the encoder floor
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
# Run from the source tree (no install needed; the device machine has no network for build dependencies).
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
hamjepa() { python3 -m hamjepa "$@"; }
if [ "${STAGE:-bench}" = imagenet ]; then
  COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  IMN=.gpu-data/imagenette-mini
  python3 benchmarks/bench_imagefolder.py --data "$IMN" --workers 8 16 --batch-size 256 --batches 8 --warmup 2 \
    --sizes native 500x375 --out "$OUT/imagefolder_gpu_${COMMIT}.json"
  for cfg in imagenet100_hamjepa imagenet100_sigreg; do
    hamjepa bench "configs/$cfg.yaml" "data.path=$IMN" --steps 20 --warmup 10 --out "$OUT/bench_${cfg}_${COMMIT}.json"
  done
  exit 0
fi
NPZ=/root/cifar100.npz
if [ ! -f "$NPZ" ]; then
  mkdir -p /root/cifar-src && cp .gpu-data/a/* .gpu-data/b/* /root/cifar-src/
  python3 /root/cifar-src/unpack.py "$NPZ" --src /root/cifar-src
fi
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
case "${STAGE:-bench}" in
  bench)
    for cfg in cifar100_hamjepa cifar100_sigreg; do
      hamjepa bench "configs/$cfg.yaml" "data.path=$NPZ" --steps 40 --warmup 15 --out "$OUT/bench_${cfg}_${COMMIT}.json"
      hamjepa bench "configs/$cfg.yaml" "data.path=$NPZ" model.compile=true --steps 40 --warmup 25 \
        --out "$OUT/bench_${cfg}_compile_${COMMIT}.json" || echo "compile failed for $cfg"
    done
    ;;
  reproduce)
    hamjepa reproduce cifar100 --data "$NPZ" --epochs "${EPOCHS:-30}" --seeds ${SEEDS:-0} \
      --methods ${METHODS:-hamjepa sigreg} --out /root/repro train.progress=false
    cp /root/repro/table.json "$OUT/reproduce_cifar100_e${EPOCHS:-30}_${COMMIT}.json"
    ;;
esac
