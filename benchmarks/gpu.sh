#!/usr/bin/env bash
# Everything GPU-worthy in one call, on a lent H200 (15 minutes of device time in
# all, at most 10 minutes per command, and no package registry):
#   bash benchmarks/gpu.sh            # there, from the repository root
#   bash benchmarks/gpu.sh --check    # here: the same parts, tiny, on CPU, with
#                                     # the modules the device lacks hidden
# It installs nothing: the device image's own python3 has jax 0.11.2 with the
# CUDA plugin, flax, optax, orbax-checkpoint, transformers, numpy -- and no
# grain, ml_collections, tensorflow-datasets or array_record, which these
# benchmarks do not import (--check proves it).
# Parts:
# 1. the training step of a ~1B Llama-style config at seq 2048 with the cuDNN
#    attention backend: tokens/s and MFU (benchmarks/train_step_gpu.py);
# 2. the attention backends on packed rows (cuDNN packed layout, cuDNN with a
#    mask, XLA) against a float32 reference: errors and fwd+bwd time
#    (benchmarks/attention_gpu.py);
# 3. the scorer (shared-prefix vs one forward per option) on a ~0.2B model.
# Each part prints one JSON object on its last line; a failing part does not
# stop the next. Record the output in benchmarks/RESULTS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
missing=grain,ml_collections,tensorflow_datasets,array_record,tensorboardX
status=0
part() {  # part NAME TIMEOUT SCRIPT ARGS...
  local name=$1 limit=$2; shift 2
  echo "== $name"
  timeout "$limit" "$py" benchmarks/without_modules.py "$missing" -- "$@" \
    || { echo "$name failed (status $?)"; status=1; }
}
if [[ "${1:-}" == "--check" ]]; then
  py=${PYTHON:-python}
  export JAX_PLATFORMS=cpu PIP_NO_INDEX=1  # as on the device: nothing can be downloaded
  # float32 here: XLA:CPU's runtime rejects some of the step's bfloat16 x
  # bfloat16 -> float32 products ("DotThunk ... BF16 x BF16 = F32"); GPUs run
  # them natively, and the device run below keeps bfloat16.
  part train_step 300 benchmarks/train_step_gpu.py --hidden=128 --layers=2 \
    --seq=256 --batch=2 --steps=2 --vocab=1024 --attention=dense --dtype=float32
  part attention 300 benchmarks/attention_gpu.py --seq=256 --rows=2 --repeats=1
  part scorer 300 benchmarks/scorer.py --hidden=64 --layers=2 --requests=8
  exit $status
fi
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$py" -c "import jax; print(jax.__version__, jax.devices())" || exit 1
part train_step 240 benchmarks/train_step_gpu.py --hidden=2048 --layers=16 \
  --seq=2048 --batch=8 --microbatches=1 --steps=10 --attention=cudnn
part attention 150 benchmarks/attention_gpu.py
part scorer 120 benchmarks/scorer.py --hidden=1024 --layers=8 --requests=128
exit $status
