#!/usr/bin/env bash
# The GPU checks as one prepared script for the device tool, in two device calls (each carry < 64 MiB):
#   call 1: STAGE=stage_a  carry .gpu-data/a (train_a.webp test.webp labels.npz unpack.py); copies it to $HOME.
#   call 2: STAGE=bench    carry .gpu-data/b (train_b.webp); unpacks CIFAR-100 to $HOME/cifar100.npz with
#                          `python3 unpack.py $HOME/cifar100.npz --src DIR`, then benches HamJEPA and SIGReg,
#                          each with train.step=eager and train.step=compiled (--profile), writing every JSON
#                          to $OUT as soon as it exists.
#   (or STAGE=reproduce in call 2: 30-epoch HamJEPA + SIGReg (+ evaluation), seed 0)
#   STAGE=imagenet (one call): ImageNet-100 costs on real JPEGs staged at .gpu-data/imagenette-mini (44 MB,
#                          ignored by git): loader images/s (GPU decoding) and the 224 px step (batch 256 x 2
#                          views) with the encoder floor.
# Make call 2 right after call 1: the machine keeps $HOME only while it stays warm.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
# Run from the source tree (no install needed; the device machine has no network for build dependencies).
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
hamjepa() { python3 -m hamjepa "$@"; }
SRC="$HOME/cifar-src"
NPZ="$HOME/cifar100.npz"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

unpack() {
  if [ ! -f "$NPZ" ]; then
    [ -f "$SRC/unpack.py" ] || { echo "error: $SRC/unpack.py missing; run STAGE=stage_a first" >&2; exit 2; }
    cp .gpu-data/b/* "$SRC/"
    python3 "$SRC/unpack.py" "$NPZ" --src "$SRC"
  fi
}

case "${STAGE:-bench}" in
  stage_a)
    mkdir -p "$SRC" && cp .gpu-data/a/* "$SRC/"
    ls -l "$SRC"
    ;;
  bench)
    unpack
    for cfg in cifar100_hamjepa cifar100_sigreg; do
      for step in eager compiled; do
        warm=15
        [ "$step" = compiled ] && warm=25
        hamjepa bench "configs/$cfg.yaml" "data.path=$NPZ" "train.step=$step" --steps 40 --warmup "$warm" --profile \
          --out "$OUT/bench_${cfg}_${step}_${COMMIT}.json" || echo "bench failed: $cfg train.step=$step"
      done
    done
    ;;
  imagenet)
    IMN=.gpu-data/imagenette-mini
    python3 benchmarks/bench_imagefolder.py --data "$IMN" --workers 8 16 --batch-size 256 --batches 8 --warmup 2 \
      --sizes native 500x375 --out "$OUT/imagefolder_gpu_${COMMIT}.json"
    for cfg in imagenet100_hamjepa imagenet100_sigreg; do
      hamjepa bench "configs/$cfg.yaml" "data.path=$IMN" --steps 20 --warmup 10 --profile \
        --out "$OUT/bench_${cfg}_${COMMIT}.json" || echo "bench failed: $cfg"
    done
    ;;
  reproduce)
    unpack
    hamjepa reproduce cifar100 --data "$NPZ" --epochs "${EPOCHS:-30}" --seeds ${SEEDS:-0} \
      --methods ${METHODS:-hamjepa sigreg} --out "$HOME/repro" train.progress=false
    cp "$HOME/repro/table.json" "$OUT/reproduce_cifar100_e${EPOCHS:-30}_${COMMIT}.json"
    ;;
  *)
    echo "error: unknown STAGE=${STAGE}; use stage_a, bench, reproduce or imagenet" >&2
    exit 2
    ;;
esac
