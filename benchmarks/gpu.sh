#!/usr/bin/env bash
# Everything GPU-worth in one call (a lent H200 has 15 minutes in all, at most
# 10 minutes per command):
#   bash benchmarks/gpu.sh            # from the repository root
# 1. installs the pinned requirements plus jax's CUDA plugin (~2-3 min),
# 2. the training step of a ~1B Llama-style config at seq 2048 with the
#    cuDNN attention backend: tokens/s and MFU (benchmarks/train_step_gpu.py),
# 3. the scorer (shared-prefix vs one forward per option) on a ~0.2B model.
# The packing benchmark is CPU-only and is not repeated here. Each part
# prints one JSON object on its last line, and a failing part does not stop
# the next; record the output in benchmarks/RESULTS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m venv /tmp/spectrax-gpu-venv
. /tmp/spectrax-gpu-venv/bin/activate
pip install -q -r requirements.txt || exit 1
pip install -q "jax[cuda12]==0.10.2" || pip install -q "jax[cuda13]==0.10.2" || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -c "import jax; print(jax.devices())" || exit 1
timeout 240 python benchmarks/train_step_gpu.py --hidden=2048 --layers=16 \
  --seq=2048 --batch=8 --microbatches=1 --steps=10 --attention=cudnn \
  || echo "train_step_gpu.py failed (status $?)"
timeout 120 python benchmarks/scorer.py --hidden=1024 --layers=8 --requests=128 \
  || echo "scorer.py failed (status $?)"
