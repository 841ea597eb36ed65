r"""Spectrum Tuning of google/gemma-3-12b-pt (docs/method.md#training-recipe): full fine-tune, AdamW lr 3e-6,
linear decay, no warmup, bf16 compute with float32 master weights, one epoch,
~1M packed tokens (~1100 episodes of <= 1024 tokens) per step.

  # TPU v5p pod slice (every chip one FSDP shard):
  python -m spectrax.train --config=configs/gemma12b.py --workdir=gs://BUCKET/runs/gemma12b \
      --config.init_from_hf=/ckpt/gemma-3-12b-pt \
      --config.transfer_special_tokens_from=/ckpt/gemma-3-12b-it
  # One 8xH100/H200 node:
  python -m spectrax.train --config=configs/gemma12b.py:gpu --workdir=runs/gemma12b \
      --config.init_from_hf=/ckpt/gemma-3-12b-pt
  # LoRA on one 80-141 GB GPU (base frozen in bf16, rank-16 adapters):
  python -m spectrax.train --config=configs/gemma12b.py:lora --workdir=runs/gemma12b_lora \
      --config.init_from_hf=/ckpt/gemma-3-12b-pt
  python -m spectrax.plan --config=configs/gemma12b.py:lora --accelerator=h100
  # Check memory and step time first, without hardware:
  python -m spectrax.plan --config=configs/gemma12b.py
"""

import ml_collections

from configs import _recipe


def get_config(hardware: str = "tpu") -> ml_collections.ConfigDict:
  return _recipe.recipe("gemma3-12b", "gemma", "google/gemma-3-12b-pt (instruct: google/gemma-3-12b-it)", hardware)
