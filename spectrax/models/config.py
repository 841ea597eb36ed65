"""ModelConfig: the architecture of a decoder, read from an HF config.json.

One frozen dataclass describes Gemma 3, Llama 3 and Qwen 3 through flags
(norm style, QK-norm, activation, rope, window per layer, soft-capping). It is
built from a Hugging Face ``config.json`` (through transformers' own config
classes, so defaults and the old/new ``rope_*`` key formats resolve exactly as
transformers resolves them) or from a named preset for planning without files.

Runtime choices that do not change the maths (compute dtype, param dtype,
attention backend, remat policy) live in the same dataclass so one object
travels through jit as static data; override them with ``dataclasses.replace``
or the keyword arguments of ``from_hf`` / ``preset``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

import numpy as np

from spectrax.models import remat

# A window larger than any sequence: what a global (full-attention) layer uses
# in the per-layer window array that the layer scan consumes.
GLOBAL_WINDOW = 2**30

FAMILIES = ("gemma3", "llama", "qwen3")
ATTENTION_BACKENDS = ("dense", "xla", "cudnn", "splash")
# none | dots | dots_no_batch | save_all_but_mlp_hidden | save_attention | save_qkv |
# save_qkv_offloaded | full: one line each in spectrax/models/remat.py (POLICIES).
REMAT_POLICIES = tuple(remat.POLICIES)

# HF model_type -> our family.
_MODEL_TYPES = {
    "gemma3_text": "gemma3",
    "gemma3": "gemma3",
    "llama": "llama",
    "qwen3": "qwen3",
}

# Keys that hub checkpoints still carry but transformers 5 folds into other
# fields (rope_parameters, layer_types) or ignores; reading them is handled by
# the transformers config class, so they are known, not unknown.
_LEGACY_KEYS = frozenset({
    "rope_theta", "rope_scaling", "rope_local_base_freq",
    "sliding_window_pattern", "torch_dtype", "cache_implementation",
    "transformers_version", "_name_or_path", "architectures", "model_type",
    # Generic PreTrainedConfig fields that never change the maths.
    "bos_token_id", "eos_token_id", "pad_token_id", "use_cache", "dtype", "initializer_range",
    "output_attentions", "output_hidden_states", "return_dict", "tokenizer_class",
    "is_encoder_decoder", "chunk_size_feed_forward", "id2label", "label2id", "problem_type",
    "task_specific_params", "tie_word_embeddings",
})


@dataclasses.dataclass(frozen=True)
class RopeConfig:
  """Rotary embedding of one layer type.

  Attributes:
    theta: the base wavelength.
    kind: ``default``, ``linear`` (positions divided by ``factor``) or
      ``llama3`` (Llama 3.1 frequency-dependent scaling).
    factor, low_freq_factor, high_freq_factor, original_max_position: the
      scaling parameters (``factor`` is used by ``linear`` and ``llama3``).
  """
  theta: float = 10_000.0
  kind: str = "default"
  factor: float = 1.0
  low_freq_factor: float = 1.0
  high_freq_factor: float = 4.0
  original_max_position: int = 8192

  def inv_freq(self, head_dim: int) -> np.ndarray:
    """Inverse frequencies, ``[head_dim // 2]`` float32, as transformers computes them."""
    exponent = np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(head_dim)
    inv = (np.float32(1.0) / (np.float32(self.theta) ** exponent)).astype(np.float32)
    if self.kind == "default":
      return inv
    if self.kind == "linear":
      return (inv / np.float32(self.factor)).astype(np.float32)
    if self.kind == "llama3":
      low_wavelen = self.original_max_position / self.low_freq_factor
      high_wavelen = self.original_max_position / self.high_freq_factor
      wavelen = 2 * np.pi / inv
      scaled = np.where(wavelen > low_wavelen, inv / self.factor, inv)
      smooth = (self.original_max_position / wavelen - self.low_freq_factor) / (
          self.high_freq_factor - self.low_freq_factor)
      smoothed = (1 - smooth) * scaled / self.factor + smooth * scaled
      medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
      return np.where(medium, smoothed, scaled).astype(np.float32)
    raise ValueError(f"rope kind {self.kind!r} is not supported; use one of default, linear, llama3")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Architecture and runtime options of a spectrax decoder.

  Architecture fields mirror the HF config of the family; see ``from_hf``.
  ``layer_windows`` holds one entry per layer: ``None`` for a global layer or
  the sliding-window size (a query at position p sees keys at positions
  ``p - window < k <= p``).
  """
  family: str
  vocab_size: int
  hidden_size: int
  intermediate_size: int
  num_layers: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  activation: str  # "gelu_tanh" or "silu"
  norm_eps: float
  norm_plus_one: bool  # Gemma: x * (1 + w)
  sandwich_norms: bool  # Gemma 3: norms after attention and MLP outputs too
  qk_norm: bool
  embed_scale: bool  # Gemma: embeddings times sqrt(hidden_size)
  tie_embeddings: bool
  query_pre_attn_scalar: float | None  # None: scale by head_dim ** -0.5
  rope_global: RopeConfig
  rope_local: RopeConfig | None
  layer_windows: tuple[int | None, ...]
  final_logit_softcap: float | None = None
  max_position_embeddings: int = 8192
  bos_token_id: int | None = None
  eos_token_id: int | tuple[int, ...] | None = None
  pad_token_id: int | None = None
  # Runtime options (do not change the maths beyond precision).
  param_dtype: str = "float32"
  dtype: str = "float32"
  attention_backend: str = "dense"
  remat_policy: str = "none"

  def __post_init__(self):
    if self.family not in FAMILIES:
      raise ValueError(f"family={self.family!r} is not supported; use one of {FAMILIES}")
    if self.attention_backend not in ATTENTION_BACKENDS:
      raise ValueError(f"attention_backend={self.attention_backend!r}; use one of {ATTENTION_BACKENDS}")
    if self.remat_policy not in REMAT_POLICIES:
      raise ValueError(f"remat_policy={self.remat_policy!r}; use one of {REMAT_POLICIES}")
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}")
    if len(self.layer_windows) != self.num_layers:
      raise ValueError(f"layer_windows has {len(self.layer_windows)} entries for num_layers={self.num_layers}")
    if self.activation not in ("gelu_tanh", "silu"):
      raise ValueError(f"activation={self.activation!r}; use gelu_tanh or silu")

  @property
  def attn_scale(self) -> float:
    base = self.query_pre_attn_scalar if self.query_pre_attn_scalar is not None else self.head_dim
    return float(base) ** -0.5

  def window_array(self) -> np.ndarray:
    """``[num_layers]`` int32: the window per layer (``GLOBAL_WINDOW`` for global layers)."""
    return np.array([GLOBAL_WINDOW if w is None else w for w in self.layer_windows], np.int32)

  def inv_freq_array(self) -> np.ndarray:
    """``[num_layers, head_dim // 2]`` float32: the rope frequencies each layer uses."""
    glob = self.rope_global.inv_freq(self.head_dim)
    loc = (self.rope_local or self.rope_global).inv_freq(self.head_dim)
    return np.stack([glob if w is None else loc for w in self.layer_windows])

  def num_params(self) -> int:
    d, f, h = self.hidden_size, self.intermediate_size, self.head_dim
    attn = d * h * (2 * self.num_heads + 2 * self.num_kv_heads)
    norms = d * (4 if self.sandwich_norms else 2) + (2 * h if self.qk_norm else 0)
    per_layer = attn + 3 * d * f + norms
    head = 0 if self.tie_embeddings else d * self.vocab_size
    return self.vocab_size * d + head + self.num_layers * per_layer + d

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> "ModelConfig":
    data = json.loads(text)
    data["rope_global"] = RopeConfig(**data["rope_global"])
    if data.get("rope_local") is not None:
      data["rope_local"] = RopeConfig(**data["rope_local"])
    data["layer_windows"] = tuple(data["layer_windows"])
    if isinstance(data.get("eos_token_id"), list):
      data["eos_token_id"] = tuple(data["eos_token_id"])
    return cls(**data)

  @classmethod
  def from_hf(cls, path_or_dict: str | os.PathLike | Mapping[str, Any],
              ignore_fields: tuple[str, ...] = (), **overrides) -> "ModelConfig":
    """Builds the config from an HF ``config.json`` (a dir, the file, or its dict).

    Args:
      path_or_dict: an HF model directory, a ``config.json`` path, or the
        parsed dict. A Gemma 3 multimodal config (``model_type: gemma3``)
        is read through its ``text_config``; the vision tower is not modelled.
      ignore_fields: config keys that transformers does not know but that
        you have checked do not change the maths.
      **overrides: runtime fields (``dtype``, ``param_dtype``,
        ``attention_backend``, ``remat_policy``) or architecture fields.

    Raises:
      ValueError: for an unsupported ``model_type``, an unknown key, or a
        known key whose value we do not implement (e.g. ``attention_bias``).
    """
    raw, source = _read_config(path_or_dict)
    fields = _parse_hf(raw, source, ignore_fields)
    fields.update(overrides)
    return cls(**fields)


class HFCheckpointError(ValueError):
  """An HF checkpoint file (config.json, the safetensors index) that cannot be
  read: the message names the file, the line and what to do."""


class UnsupportedHFConfigError(HFCheckpointError):
  """An HF config that spectrax does not implement (model type, key or value):
  the message names the file, the field and the fix. Commands print it as one
  line, like any HFCheckpointError."""


def read_hf_json(path: str) -> dict:
  """A JSON object file of an HF checkpoint; HFCheckpointError naming the file
  (and line) when it is not UTF-8 JSON or not an object."""
  fix = "the checkpoint is damaged or partly copied: copy or download it again"
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except json.JSONDecodeError as e:
    raise HFCheckpointError(f"{path}, line {e.lineno}: not valid JSON ({e.msg} at column "
                            f"{e.colno}); {fix}") from None
  except UnicodeDecodeError as e:
    raise HFCheckpointError(f"{path}: not UTF-8 text ({e}); {fix}") from None
  if not isinstance(data, dict):
    raise HFCheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}; {fix}")
  return data


def _read_config(path_or_dict) -> tuple[dict, str]:
  if isinstance(path_or_dict, Mapping):
    return dict(path_or_dict), "<config dict>"
  path = os.fspath(path_or_dict)
  if os.path.isdir(path):
    path = os.path.join(path, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} does not exist: pass an HF model directory that holds config.json")
  return read_hf_json(path), path


def preset(name: str, **overrides) -> ModelConfig:
  """A named architecture (``gemma3-12b``, ``llama3.1-8b``, ``qwen3-14b``...) for planning without files."""
  if name not in PRESETS:
    raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}")
  return ModelConfig.from_hf(PRESETS[name], **overrides)


_ACTIVATIONS = {"gelu_pytorch_tanh": "gelu_tanh", "gelu_tanh": "gelu_tanh", "silu": "silu"}


def _hf_config_class(model_type: str):
  import transformers  # local import: only config parsing needs it
  return {"gemma3_text": transformers.Gemma3TextConfig, "gemma3": transformers.Gemma3Config,
          "llama": transformers.LlamaConfig, "qwen3": transformers.Qwen3Config}[model_type]


def _unknown_keys(raw: Mapping[str, Any], model_type: str, ignore: tuple[str, ...]) -> list[str]:
  known = set(_hf_config_class(model_type)().to_dict()) | _LEGACY_KEYS | set(ignore)
  return sorted(k for k in raw if k not in known)


def _rope(params: Mapping[str, Any], where: str) -> RopeConfig:
  kind = params.get("rope_type", params.get("type", "default"))
  if kind not in ("default", "linear", "llama3"):
    raise UnsupportedHFConfigError(f"{where}: rope_type={kind!r} is not implemented (default, linear, llama3 are)")
  if params.get("partial_rotary_factor", 1.0) != 1.0:
    raise UnsupportedHFConfigError(f"{where}: partial_rotary_factor={params['partial_rotary_factor']} is not implemented")
  if kind == "default":
    return RopeConfig(theta=float(params["rope_theta"]))
  if kind == "linear":
    return RopeConfig(theta=float(params["rope_theta"]), kind="linear", factor=float(params["factor"]))
  return RopeConfig(theta=float(params["rope_theta"]), kind="llama3", factor=float(params["factor"]),
                    low_freq_factor=float(params["low_freq_factor"]),
                    high_freq_factor=float(params["high_freq_factor"]),
                    original_max_position=int(params["original_max_position_embeddings"]))


def _parse_hf(raw: dict, source: str, ignore: tuple[str, ...]) -> dict:
  """Maps an HF config dict to ModelConfig fields, refusing what we do not implement."""
  model_type = raw.get("model_type")
  if model_type not in _MODEL_TYPES:
    raise UnsupportedHFConfigError(f"{source}: model_type={model_type!r} is not supported; "
                     f"supported: {', '.join(sorted(_MODEL_TYPES))}")
  family = _MODEL_TYPES[model_type]
  top = raw
  if model_type == "gemma3":  # multimodal wrapper: the decoder is text_config
    unknown = _unknown_keys(raw, "gemma3", ignore)
    if unknown:
      raise UnsupportedHFConfigError(f"{source}: unknown config keys {unknown}; if they do not change the "
                       "maths, pass ignore_fields=(...) naming them")
    raw = dict(raw.get("text_config") or {})
    raw["model_type"] = model_type = "gemma3_text"
    for key in ("tie_word_embeddings", "eos_token_id", "bos_token_id", "pad_token_id"):
      if key in top and key not in raw:
        raw[key] = top[key]
  unknown = _unknown_keys(raw, model_type, ignore)
  if unknown:
    raise UnsupportedHFConfigError(f"{source}: unknown config keys {unknown}; if they do not change the maths, "
                     "pass ignore_fields=(...) naming them")
  kwargs = {k: v for k, v in raw.items() if k not in ("model_type", "transformers_version")}
  try:
    hf = _hf_config_class(model_type)(**kwargs)
  except Exception as e:  # transformers' own validation: re-raise with the file named
    raise UnsupportedHFConfigError(f"{source}: transformers rejects this config: {e}") from e

  def refuse(field, value, fix):
    raise UnsupportedHFConfigError(f"{source}: {field}={value!r} is not implemented; {fix}")

  for flag in ("attention_bias", "mlp_bias", "use_bidirectional_attention"):
    if getattr(hf, flag, False):
      refuse(flag, True, f"set {flag} to false or add support in spectrax/models")
  if getattr(hf, "attn_logit_softcapping", None) is not None:
    refuse("attn_logit_softcapping", hf.attn_logit_softcapping,
           "set it to null (released Gemma 3 checkpoints do) or add attention soft-capping "
           "to spectrax/models/attention.py and decode.py")
  if float(getattr(hf, "attention_dropout", 0.0) or 0.0) != 0.0:
    refuse("attention_dropout", hf.attention_dropout, "set it to 0.0 (spectrax has no dropout)")
  act_name = getattr(hf, "hidden_activation", None) or hf.hidden_act
  if act_name not in _ACTIVATIONS:
    refuse("hidden_act", act_name, f"use one of {sorted(_ACTIVATIONS)}")
  head_dim = getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads

  layer_types = list(getattr(hf, "layer_types", None) or ["full_attention"] * hf.num_hidden_layers)
  bad = sorted(set(layer_types) - {"full_attention", "sliding_attention"})
  if bad:
    refuse("layer_types", bad, "only full_attention and sliding_attention layers exist here")
  if "sliding_attention" in layer_types and not hf.sliding_window:
    refuse("sliding_window", hf.sliding_window, "sliding_attention layers need an integer sliding_window")
  windows = tuple(int(hf.sliding_window) if t == "sliding_attention" else None for t in layer_types)

  rp = hf.rope_parameters
  if family == "gemma3":
    rope_global = _rope(rp["full_attention"], f"{source}: rope_parameters.full_attention")
    rope_local = _rope(rp["sliding_attention"], f"{source}: rope_parameters.sliding_attention")
  else:
    rope_global, rope_local = _rope(rp, f"{source}: rope_parameters"), None

  eos = hf.eos_token_id
  gemma = family == "gemma3"
  return dict(
      family=family, vocab_size=hf.vocab_size, hidden_size=hf.hidden_size,
      intermediate_size=hf.intermediate_size, num_layers=hf.num_hidden_layers,
      num_heads=hf.num_attention_heads, num_kv_heads=hf.num_key_value_heads or hf.num_attention_heads,
      head_dim=head_dim, activation=_ACTIVATIONS[act_name], norm_eps=float(hf.rms_norm_eps),
      norm_plus_one=gemma, sandwich_norms=gemma, qk_norm=family in ("gemma3", "qwen3"),
      embed_scale=gemma, tie_embeddings=bool(hf.tie_word_embeddings),
      query_pre_attn_scalar=float(hf.query_pre_attn_scalar) if gemma else None,
      rope_global=rope_global, rope_local=rope_local, layer_windows=windows,
      final_logit_softcap=(float(hf.final_logit_softcapping)
                           if getattr(hf, "final_logit_softcapping", None) else None),
      max_position_embeddings=int(hf.max_position_embeddings),
      bos_token_id=hf.bos_token_id, pad_token_id=hf.pad_token_id,
      eos_token_id=tuple(eos) if isinstance(eos, list) else eos,
  )


def to_hf_dict(cfg: ModelConfig) -> dict:
  """The transformers ``config.json`` dict of a text-only causal LM with this architecture."""
  def rope(r: RopeConfig) -> dict:
    out = {"rope_type": r.kind, "rope_theta": r.theta}
    if r.kind in ("linear", "llama3"):
      out["factor"] = r.factor
    if r.kind == "llama3":
      out.update(low_freq_factor=r.low_freq_factor, high_freq_factor=r.high_freq_factor,
                 original_max_position_embeddings=r.original_max_position)
    return out

  common = dict(
      vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
      num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
      num_key_value_heads=cfg.num_kv_heads, head_dim=cfg.head_dim, rms_norm_eps=cfg.norm_eps,
      tie_word_embeddings=cfg.tie_embeddings, max_position_embeddings=cfg.max_position_embeddings,
      bos_token_id=cfg.bos_token_id, pad_token_id=cfg.pad_token_id,
      eos_token_id=list(cfg.eos_token_id) if isinstance(cfg.eos_token_id, tuple) else cfg.eos_token_id,
      attention_bias=False, attention_dropout=0.0, dtype=cfg.param_dtype)
  windows = {w for w in cfg.layer_windows if w is not None}
  layer_types = ["full_attention" if w is None else "sliding_attention" for w in cfg.layer_windows]
  if cfg.family == "gemma3":
    return dict(common, model_type="gemma3_text", architectures=["Gemma3ForCausalLM"],
                hidden_activation="gelu_pytorch_tanh",
                query_pre_attn_scalar=_int_if_whole(cfg.query_pre_attn_scalar),
                sliding_window=max(windows) if windows else None, layer_types=layer_types,
                final_logit_softcapping=cfg.final_logit_softcap,
                rope_parameters={"full_attention": rope(cfg.rope_global),
                                 "sliding_attention": rope(cfg.rope_local or cfg.rope_global)})
  act = {"silu": "silu", "gelu_tanh": "gelu_pytorch_tanh"}[cfg.activation]
  if cfg.family == "llama":
    return dict(common, model_type="llama", architectures=["LlamaForCausalLM"], hidden_act=act,
                mlp_bias=False, rope_parameters=rope(cfg.rope_global))
  return dict(common, model_type="qwen3", architectures=["Qwen3ForCausalLM"], hidden_act=act,
              use_sliding_window=bool(windows), sliding_window=max(windows) if windows else None,
              layer_types=layer_types, rope_parameters=rope(cfg.rope_global))


def _int_if_whole(x: float | None):
  return int(x) if x is not None and float(x).is_integer() else x


def _gemma3(hidden, inter, layers, heads, kv, head_dim=256, vocab=262_208, window=1024,
            scaling=True, qpas=256, max_pos=131_072):
  return dict(model_type="gemma3_text", hidden_size=hidden, intermediate_size=inter,
              num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
              head_dim=head_dim, vocab_size=vocab, sliding_window=window, query_pre_attn_scalar=qpas,
              rope_theta=1_000_000.0, rope_local_base_freq=10_000.0, sliding_window_pattern=6,
              max_position_embeddings=max_pos,
              rope_scaling={"rope_type": "linear", "factor": 8.0} if scaling else None)


def _llama(hidden, inter, layers, heads, kv):
  return dict(model_type="llama", hidden_size=hidden, intermediate_size=inter,
              num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
              vocab_size=128_256, rms_norm_eps=1e-5, rope_theta=500_000.0,
              max_position_embeddings=131_072, tie_word_embeddings=False, hidden_act="silu",
              bos_token_id=128_000, eos_token_id=128_001,
              rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})


def _qwen3(hidden, inter, layers, heads, tie, kv=8):
  return dict(model_type="qwen3", hidden_size=hidden, intermediate_size=inter,
              num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
              head_dim=128, vocab_size=151_936, rms_norm_eps=1e-6, rope_theta=1_000_000.0,
              max_position_embeddings=32_768, tie_word_embeddings=tie, hidden_act="silu",
              bos_token_id=151_643, eos_token_id=151_643)


# Published architectures (the text decoder), as config.json dicts.
PRESETS: dict[str, dict] = {
    "gemma3-1b": _gemma3(1152, 6912, 26, 4, 1, vocab=262_144, window=512, scaling=False,
                         max_pos=32_768),
    "gemma3-4b": _gemma3(2560, 10_240, 34, 8, 4),
    "gemma3-12b": _gemma3(3840, 15_360, 48, 16, 8),
    "gemma3-27b": _gemma3(5376, 21_504, 62, 32, 16, head_dim=128, qpas=168),
    "llama3.1-8b": _llama(4096, 14_336, 32, 32, 8),
    "llama3.1-70b": _llama(8192, 28_672, 80, 64, 8),
    "qwen3-0.6b": _qwen3(1024, 3072, 28, 16, tie=True),
    "qwen3-1.7b": _qwen3(2048, 6144, 28, 16, tie=True),
    "qwen3-4b": _qwen3(2560, 9728, 36, 32, tie=True),
    "qwen3-8b": _qwen3(4096, 12_288, 36, 32, tie=False),
    "qwen3-14b": _qwen3(5120, 17_408, 40, 40, tie=False),
    "qwen3-32b": _qwen3(5120, 25_600, 64, 64, tie=False),
}
