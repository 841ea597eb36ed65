"""Low-rank adapters (LoRA) on the decoder's attention and MLP projections.

A target projection ``y = x @ W`` becomes ``y = x @ W + scale * (drop(x) @ A) @ B``
with ``scale = alpha / rank`` (PEFT's definition, without rsLoRA), ``A``
initialised as PEFT does (uniform in ``±1/sqrt(fan_in)``) and ``B`` zero, so a
fresh adapter leaves the model unchanged. The base weights stay in the
``Transformer``'s own state (frozen by the trainer, held in the compute
dtype); the adapters are a separate plain pytree, float32, one entry per
target with a leading ``layers`` axis::

    {"q": {"a": [L, D, r], "b": [L, r, N, H]}, ..., "down": {"a": [L, F, r], "b": [L, r, D]}}

``A`` carries the logical axes of its base matrix's input dims and ``B`` those
of its output dims (the rank dim is replicated), so the one rules table
shards adapters like their base matrices.

Usage::

    lora = LoraConfig(rank=8, alpha=16.0, targets=("q", "v"))
    weights = init_adapters(model.config, lora, jax.random.key(0))
    hidden = model(tokens, positions, segment_ids, lora=Adapters(lora, weights))
    merged = merge_into(nnx.state(model, nnx.Param), weights, lora)  # W + scale * A @ B
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from spectrax.models.config import ModelConfig
from spectrax.models.layers import project
from spectrax.parallel import sharding

# target name -> (module, parameter, input dims contracted): the parameter's
# first `contract` dims are its input, the rest its output.
TARGETS = {
    "q": ("attn", "q", 1), "k": ("attn", "k", 1), "v": ("attn", "v", 1), "o": ("attn", "o", 2),
    "gate": ("mlp", "gate", 1), "up": ("mlp", "up", 1), "down": ("mlp", "down", 1),
}
# Their module names in Hugging Face checkpoints (PEFT's target_modules).
HF_MODULES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
              "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
              "down": "mlp.down_proj"}


@dataclasses.dataclass(frozen=True)
class LoraConfig:
  """Rank, scaling, dropout and target projections of the adapters."""
  rank: int
  alpha: float = 16.0
  dropout: float = 0.0
  targets: tuple[str, ...] = tuple(TARGETS)

  def __post_init__(self):
    if self.rank < 1:
      raise ValueError(f"LoRA rank={self.rank} must be >= 1")
    unknown = [t for t in self.targets if t not in TARGETS]
    if unknown or not self.targets:
      raise ValueError(f"LoRA targets {list(self.targets)}: name some of {list(TARGETS)}")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"LoRA dropout={self.dropout} must be in [0, 1)")

  @property
  def scale(self) -> float:
    return float(self.alpha) / float(self.rank)

  def to_json(self) -> dict:
    return {"rank": self.rank, "alpha": self.alpha, "dropout": self.dropout,
            "targets": list(self.targets)}

  @classmethod
  def from_json(cls, d: dict) -> "LoraConfig":
    return cls(rank=int(d["rank"]), alpha=float(d["alpha"]), dropout=float(d["dropout"]),
               targets=tuple(d["targets"]))


def parse_targets(text) -> tuple[str, ...]:
  """``"q,k,v"`` (or a sequence of names) -> ``("q", "k", "v")``."""
  if isinstance(text, str):
    return tuple(t.strip() for t in text.split(",") if t.strip())
  return tuple(text)


def base_geometry(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
  """Per-layer ``(shape, logical axes)`` of every target's base matrix (``layers.py``, ``attention.py``)."""
  d, f, n, kv, h = (cfg.hidden_size, cfg.intermediate_size, cfg.num_heads, cfg.num_kv_heads,
                    cfg.head_dim)
  return {
      "q": ((d, n, h), ("embed", "heads", "head_dim")),
      "k": ((d, kv, h), ("embed", "kv_heads", "head_dim")),
      "v": ((d, kv, h), ("embed", "kv_heads", "head_dim")),
      "o": ((n, h, d), ("heads", "head_dim", "embed")),
      "gate": ((d, f), ("embed", "mlp")),
      "up": ((d, f), ("embed", "mlp")),
      "down": ((f, d), ("mlp", "embed")),
  }


def adapter_specs(cfg: ModelConfig, lora: LoraConfig) -> dict:
  """``{target: {"a": (shape, axes), "b": (shape, axes)}}`` with the leading ``layers`` axis."""
  geo = base_geometry(cfg)
  out = {}
  for t in lora.targets:
    shape, axes = geo[t]
    c = TARGETS[t][2]
    out[t] = {"a": ((cfg.num_layers, *shape[:c], lora.rank), ("layers", *axes[:c], None)),
              "b": ((cfg.num_layers, lora.rank, *shape[c:]), ("layers", None, *axes[c:]))}
  return out


def num_adapter_params(cfg: ModelConfig, lora: LoraConfig) -> int:
  return sum(math.prod(s) for t in adapter_specs(cfg, lora).values() for s, _ in t.values())


def abstract_adapters(cfg: ModelConfig, lora: LoraConfig) -> dict:
  """ShapeDtypeStructs (float32) of the adapters."""
  return {t: {k: jax.ShapeDtypeStruct(s, jnp.float32) for k, (s, _) in ab.items()}
          for t, ab in adapter_specs(cfg, lora).items()}


def adapter_logical_axes(cfg: ModelConfig, lora: LoraConfig) -> dict:
  return {t: {k: axes for k, (_, axes) in ab.items()} for t, ab in adapter_specs(cfg, lora).items()}


def adapter_shardings(cfg: ModelConfig, lora: LoraConfig, mesh, rules) -> dict:
  """NamedShardings of the adapters: each like its base matrix (the rank dim replicated)."""
  from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
  return {t: {k: NamedSharding(mesh, sharding.logical_to_spec(axes, rules, mesh))
              for k, (_, axes) in ab.items()} for t, ab in adapter_specs(cfg, lora).items()}


def init_adapters(cfg: ModelConfig, lora: LoraConfig, key: jax.Array) -> dict:
  """Fresh float32 adapters: A uniform in ``±1/sqrt(fan_in)`` (PEFT's kaiming-uniform), B zero."""
  out = {}
  for i, (t, ab) in enumerate(adapter_specs(cfg, lora).items()):
    a_shape = ab["a"][0]
    fan_in = math.prod(a_shape[1:-1])
    bound = 1.0 / math.sqrt(fan_in)
    out[t] = {"a": jax.random.uniform(jax.random.fold_in(key, i), a_shape, jnp.float32,
                                      -bound, bound),
              "b": jnp.zeros(ab["b"][0], jnp.float32)}
  return out


def delta(a: jax.Array, b: jax.Array, scale: float, contract: int) -> jax.Array:
  """``scale * A @ B`` in the base matrix's shape (one layer, or stacked with a leading axis)."""
  if a.ndim == contract + 1:
    return scale * jnp.tensordot(a.astype(jnp.float32), b.astype(jnp.float32), 1)
  return jax.vmap(lambda x, y: delta(x, y, scale, contract))(a, b)


def merge_into(params, weights: dict, lora: LoraConfig):
  """The base params (an ``nnx.State`` of the Transformer) with ``W + scale * A @ B``
  on every target, computed in float32 and cast back to each base's dtype.

  Updates the state's Variables in place (and so any model built on them)
  and returns the state.
  """
  for t, ab in weights.items():
    module, name, contract = TARGETS[t]
    var = params["layers"][module][name]
    w = var[...]
    merged = (w.astype(jnp.float32) + delta(ab["a"], ab["b"], lora.scale, contract)).astype(w.dtype)
    if hasattr(w, "sharding"):
      merged = jax.device_put(merged, w.sharding)
    var.set_value(merged)
  return params


@dataclasses.dataclass(frozen=True)
class Adapters:
  """What ``Transformer.__call__`` takes as ``lora=``: the config, the stacked
  weights, and a dropout key (None: no dropout, as in evaluation)."""
  config: LoraConfig
  weights: dict
  rng: jax.Array | None = None


class LayerLora:
  """One layer's adapters inside the layer scan: ``project(name, x, w, contract)``
  is the base projection plus the adapter's, for targets that have one."""

  def __init__(self, config: LoraConfig, weights: dict, rng: jax.Array | None):
    self.config, self.weights, self.rng = config, weights, rng

  def project(self, name: str, x: jax.Array, w: jax.Array, contract: int = 1) -> jax.Array:
    y = project(x, w, contract)
    if name not in self.weights:
      return y
    a = self.weights[name]["a"].astype(x.dtype)
    b = self.weights[name]["b"].astype(x.dtype)
    h = x
    p = self.config.dropout
    if p > 0.0 and self.rng is not None:
      keep = jax.random.bernoulli(jax.random.fold_in(self.rng, list(TARGETS).index(name)),
                                  1.0 - p, x.shape)
      h = jnp.where(keep, x / jnp.asarray(1.0 - p, x.dtype), jnp.zeros((), x.dtype))
    low = project(h, a, contract)
    return y + project(low, b, 1) * jnp.asarray(self.config.scale, x.dtype)


def to_peft(cfg: ModelConfig, lora: LoraConfig, weights: dict, module_prefix: str = "model."
            ) -> dict[str, np.ndarray]:
  """PEFT tensors ``base_model.model.<module>.lora_{A,B}.weight`` (float32, HF layout:
  A ``[r, in_features]``, B ``[out_features, r]``, features flattened as HF flattens heads)."""
  out = {}
  for t, ab in weights.items():
    a = sharding.host_local_array(ab["a"]).astype(np.float32)
    b = sharding.host_local_array(ab["b"]).astype(np.float32)
    for i in range(cfg.num_layers):
      name = f"base_model.model.{module_prefix}layers.{i}.{HF_MODULES[t]}"
      out[f"{name}.lora_A.weight"] = np.ascontiguousarray(a[i].reshape(-1, lora.rank).T)
      out[f"{name}.lora_B.weight"] = np.ascontiguousarray(b[i].reshape(lora.rank, -1).T)
  return out


def peft_config(lora: LoraConfig, base_model: str, module_prefix: str = "model.") -> dict:
  """``adapter_config.json``: a regex over the decoder's projections only (not a vision tower's)."""
  import re  # pylint: disable=g-import-not-at-top
  attn = [HF_MODULES[t].split(".")[1] for t in lora.targets if t in ("q", "k", "v", "o")]
  mlp = [HF_MODULES[t].split(".")[1] for t in lora.targets if t in ("gate", "up", "down")]
  parts = ([f"self_attn\\.({'|'.join(attn)})"] if attn else []) + (
      [f"mlp\\.({'|'.join(mlp)})"] if mlp else [])
  regex = f"{re.escape(module_prefix)}layers\\.\\d+\\.({'|'.join(parts)})"
  return {
      "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_model,
      "r": lora.rank, "lora_alpha": lora.alpha, "lora_dropout": lora.dropout,
      "target_modules": regex, "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
      "use_dora": False, "init_lora_weights": True, "inference_mode": True,
      "modules_to_save": None, "layers_to_transform": None, "rank_pattern": {},
      "alpha_pattern": {},
  }
