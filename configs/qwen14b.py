r"""Spectrum Tuning of Qwen/Qwen3-14B-Base (docs/method.md#training-recipe): full fine-tune, AdamW lr 3e-6,
linear decay, no warmup, bf16 compute with float32 master weights, one epoch,
~1M packed tokens (~1100 episodes of <= 1024 tokens) per step.

  # TPU v5p pod slice (every chip one FSDP shard):
  python -m spectrax.train --config=configs/qwen14b.py --workdir=gs://BUCKET/runs/qwen14b \
      --config.init_from_hf=/ckpt/Qwen3-14B-Base \
      --config.transfer_special_tokens_from=/ckpt/Qwen3-14B
  # One 8xH100/H200 node:
  python -m spectrax.train --config=configs/qwen14b.py:gpu --workdir=runs/qwen14b \
      --config.init_from_hf=/ckpt/Qwen3-14B-Base
  # LoRA on one 80-141 GB GPU (base frozen in bf16, rank-16 adapters):
  python -m spectrax.train --config=configs/qwen14b.py:lora --workdir=runs/qwen14b_lora \
      --config.init_from_hf=/ckpt/Qwen3-14B-Base
  python -m spectrax.plan --config=configs/qwen14b.py:lora --accelerator=h100
  # Check memory and step time first, without hardware:
  python -m spectrax.plan --config=configs/qwen14b.py
"""

import ml_collections

from configs import _recipe


def get_config(hardware: str = "tpu") -> ml_collections.ConfigDict:
  return _recipe.recipe("qwen3-14b", "qwen", "Qwen/Qwen3-14B-Base (instruct: Qwen/Qwen3-14B)", hardware)
