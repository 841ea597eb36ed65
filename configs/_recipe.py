"""The paper's fine-tuning recipe for a real checkpoint, on TPU or GPU."""

import ml_collections

from configs import base

# Meshes: a TPU v5p pod slice shards parameters and optimizer state fully
# (FSDP over every chip); an 8-GPU node does the same over its 8 GPUs and
# accumulates micro-batches to keep activations small. On several nodes or
# slices the launch scripts add mesh.dcn_data (one data row per node / slice),
# so these sizes stay per node / slice and FSDP never crosses the slow network.
HARDWARE = {
    "tpu": dict(mesh=dict(data=1, fsdp=-1, tensor=1, dcn_data=1), microbatches=1,
                attention_backend="splash"),
    "gpu": dict(mesh=dict(data=1, fsdp=8, tensor=1, dcn_data=1), microbatches=16,
                attention_backend="cudnn"),
    # LoRA on one 80-141 GB GPU (docs/models.md#lora): the base frozen in
    # bf16, adapters on every projection; the same ~1M-token step,
    # accumulated 8 rows at a time (4 for Qwen 3 14B) with full remat.
    "lora": dict(mesh=dict(data=1, fsdp=1, tensor=1), microbatches=64,
                 attention_backend="cudnn"),
}

# LoRA settings of the `lora` hardware: rank 16, alpha 32 (scale 2), all
# seven projections, AdamW at 1e-4 (LoRA's usual rate; full fine-tuning's
# 3e-6 barely moves zero-initialised B), the same linear decay.
LORA = dict(rank=16, alpha=32.0, dropout=0.0, targets="q,k,v,o,gate,up,down")
LORA_LEARNING_RATE = 1e-4
# Qwen 3 14B's base (27.5 GiB) leaves less room: 4 rows per micro-batch keep
# it within an 80 GB GPU (python -m spectrax.plan --config=configs/qwen14b.py:lora).
LORA_MICROBATCHES = {"qwen3-14b": 128}


def recipe(preset: str, template: str, instruct_hint: str, hardware: str
           ) -> ml_collections.ConfigDict:
  if hardware not in HARDWARE:
    raise ValueError(f"config argument {hardware!r}: use one of "
                     f"{sorted(HARDWARE)} (e.g. --config=configs/x.py:gpu).")
  hw = HARDWARE[hardware]
  c = base.get_config()
  c.require_init_from_hf = True
  c.instruct_hint = instruct_hint  # printed when init_from_hf is missing
  c.model.preset = preset  # the architecture, for plan and validation
  c.data.template = template
  c.mesh = ml_collections.ConfigDict(hw["mesh"])
  c.train.microbatches = hw["microbatches"]
  c.model.attention_backend = hw["attention_backend"]
  if hardware == "lora":
    c.lora.update(LORA)
    c.optimizer.learning_rate = LORA_LEARNING_RATE
    c.model.remat_policy = "full"
    c.train.microbatches = LORA_MICROBATCHES.get(preset, hw["microbatches"])
  return c
