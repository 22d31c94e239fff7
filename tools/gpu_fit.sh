#!/usr/bin/env bash
# Fit both v2 models at once on a lent GPU machine (docs/model-card.md, "Training on a GPU").
# Runs in the repository root there, with the transport copies prepared here beforehand:
#   python -m inference.pack ../shared/data/brain-tumor-mri/Training .gpu/train224.npz --size 224
#   python -m inference.pretrained lite0 .gpu/lite0.npz
#   python -m inference.pretrained hed .gpu/hed_int8.npz --int8
#   pip download keras==3.15.1 namex==0.1.0 optree==0.20.0 (cp312 manylinux wheels) -d .gpu/whl
# Writes $OUT/{cnn_lstm,vgg16}/ (fit.json + weight shards) and $OUT/train.log; complete each here with
#   python -m inference.train finalize DIR --data ../shared/data/brain-tumor-mri/Training
# Keras runs on JAX there (no TensorFlow on that machine); torch is the fallback backend.
set -u
OUT=${OUT:-var/gpu-out}
BUDGET=${BUDGET:-400}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.4
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
start=$(date +%s)

fit() {  # arch, initial weights
  for backend in jax torch; do
    left=$((BUDGET - ($(date +%s) - start)))
    [ "$left" -gt 60 ] || return 1
    echo "== $1 on $backend, budget ${left}s" >> "$OUT/$1.log"
    KERAS_BACKEND=$backend python3 -m inference.train --arch "$1" --data .gpu/train224.npz --weights "$2" \
      --fit-only --budget "$left" --out "$OUT/$1" >> "$OUT/$1.log" 2>&1 && return 0
  done
  return 1
}
fit cnn_lstm .gpu/lite0.npz & a=$!
fit vgg16 .gpu/hed_int8.npz & b=$!
wait $a; ra=$?
wait $b; rb=$?
cat "$OUT/cnn_lstm.log" "$OUT/vgg16.log" > "$OUT/train.log" && rm -f "$OUT/cnn_lstm.log" "$OUT/vgg16.log"
grep -E "epoch|wrote|budget|Error|error" "$OUT/train.log" | grep -v "batch " | tail -n 80
echo "cnn_lstm rc=$ra vgg16 rc=$rb, $(( $(date +%s) - start ))s"
