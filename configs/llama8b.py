r"""Spectrum Tuning of meta-llama/Llama-3.1-8B (docs/method.md#training-recipe): full fine-tune, AdamW lr 3e-6,
linear decay, no warmup, bf16 compute with float32 master weights, one epoch,
~1M packed tokens (~1100 episodes of <= 1024 tokens) per step.

  # TPU v5p pod slice (every chip one FSDP shard):
  python -m spectrax.train --config=configs/llama8b.py --workdir=gs://BUCKET/runs/llama8b \
      --config.init_from_hf=/ckpt/Llama-3.1-8B \
      --config.transfer_special_tokens_from=/ckpt/Llama-3.1-8B-Instruct
  # One 8xH100/H200 node:
  python -m spectrax.train --config=configs/llama8b.py:gpu --workdir=runs/llama8b \
      --config.init_from_hf=/ckpt/Llama-3.1-8B
  # LoRA on one 80-141 GB GPU (base frozen in bf16, rank-16 adapters):
  python -m spectrax.train --config=configs/llama8b.py:lora --workdir=runs/llama8b_lora \
      --config.init_from_hf=/ckpt/Llama-3.1-8B
  python -m spectrax.plan --config=configs/llama8b.py:lora --accelerator=h100
  # Check memory and step time first, without hardware:
  python -m spectrax.plan --config=configs/llama8b.py
"""

import ml_collections

from configs import _recipe


def get_config(hardware: str = "tpu") -> ml_collections.ConfigDict:
  return _recipe.recipe("llama3.1-8b", "llama", "meta-llama/Llama-3.1-8B (instruct: meta-llama/Llama-3.1-8B-Instruct)", hardware)
