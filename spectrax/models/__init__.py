"""Gemma 3, Llama 3 and Qwen 3 decoders in Flax NNX, with exact Hugging Face import/export.

Public API::

    from spectrax import models
    cfg = models.ModelConfig.from_hf("path/to/hf_dir")   # or models.preset("gemma3-12b")
    model = models.load_hf("path/to/hf_dir", mesh=mesh, rules=rules, dtype="bfloat16")
    hidden = model(tokens, positions, segment_ids)        # [B, L, D]
    head = model.head()                                   # [D, V], for spectrax.models.loss
    models.save_hf(model, model.config, "out_dir", tokenizer_dir="path/to/hf_dir")
"""

from spectrax.models.config import GLOBAL_WINDOW, PRESETS, ModelConfig, RopeConfig, preset, to_hf_dict
from spectrax.models.hf import SafetensorsReader, load_hf, save_hf, tensor_specs, transfer_special_tokens
from spectrax.models.transformer import (Transformer, abstract_model, init_model, param_shardings,
                                         reconfigure, softcap)

__all__ = [
    "GLOBAL_WINDOW", "PRESETS", "ModelConfig", "RopeConfig", "SafetensorsReader", "Transformer",
    "abstract_model", "init_model", "load_hf", "param_shardings", "preset", "reconfigure", "save_hf", "softcap", "tensor_specs",
    "to_hf_dict", "transfer_special_tokens",
]
