#!/usr/bin/env bash
# seisseg weights in PyTorch: train briefly, predict with seisseg, then reproduce the probabilities
# with examples/pytorch_predict.py (Debian's python3-torch) to 1e-5.
set -euo pipefail
SEISSEG=$1
ROOT=$2
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import torch, h5py, numpy' 2>/dev/null; then
  echo "FAIL: $PY lacks torch, h5py or numpy (scripts/setup.sh installs python3-torch, python3-h5py)"
  exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$SEISSEG" synth --out "$dir/train.h5" --samples 16 --height 64 --width 48 --seed 3 >/dev/null 2>&1
"$SEISSEG" synth --out "$dir/test.h5" --samples 3 --height 64 --width 48 --seed 4 >/dev/null 2>&1
"$SEISSEG" train --data "$dir/train.h5" --val-fraction 0 --levels 3 --base 4 --batch 4 --steps 6 --device cpu \
  --out "$dir/run" >/dev/null
"$SEISSEG" predict --weights "$dir/run/weights.safetensors" --in "$dir/test.h5" --out "$dir/pred.h5" --device cpu
"$PY" "$ROOT/examples/pytorch_predict.py" "$dir/run/weights.safetensors" "$dir/test.h5" --compare "$dir/pred.h5"
