"""Hugging Face import/export: safetensors <-> spectrax parameters, tensor by tensor.

``load_hf`` reads one tensor at a time (``safe_open``), converts it to our
layout and dtype on the host, and places it straight into its final
``NamedSharding``. Stacked layer parameters (leading ``layers`` axis) are
filled one layer at a time on the device with a donated in-place update, so
host memory stays near one per-layer tensor (plus its converted copy), never a
whole stacked parameter and never the model. ``save_hf`` is the inverse:
gathers one layer tensor at a time to the host and streams safetensors shards
(host memory: one output shard, ``max_shard_bytes``).

Name map (HF prefix ``model.``, or ``model.language_model.`` /
``language_model.model.`` in Gemma 3 multimodal checkpoints; ``N`` heads,
``K`` KV heads, ``H`` head_dim, ``D`` hidden, ``F`` mlp):

  embed_tokens.weight [V, D]                -> embed [V, D]
  layers.i.self_attn.q_proj.weight [N*H, D] -> layers.attn.q [i, D, N, H]
  layers.i.self_attn.{k,v}_proj [K*H, D]    -> layers.attn.{k,v} [i, D, K, H]
  layers.i.self_attn.o_proj [D, N*H]        -> layers.attn.o [i, N, H, D]
  layers.i.self_attn.{q,k}_norm [H]         -> layers.attn.{q,k}_norm.scale [i, H]
  layers.i.mlp.{gate,up}_proj [F, D]        -> layers.mlp.{gate,up} [i, D, F]
  layers.i.mlp.down_proj [D, F]             -> layers.mlp.down [i, F, D]
  input_layernorm                           -> pre_attn_norm
  post_attention_layernorm                  -> post_attn_norm (Gemma 3) or pre_mlp_norm
  pre/post_feedforward_layernorm (Gemma 3)  -> pre/post_mlp_norm
  norm.weight                               -> final_norm.scale
  lm_head.weight [V, D] (untied)            -> lm_head [V, D]
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
from typing import Callable

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from spectrax.parallel import sharding
from spectrax.models.config import HFCheckpointError, ModelConfig, read_hf_json, to_hf_dict
from spectrax.models.transformer import Transformer, abstract_model, param_shardings

_PREFIXES = ("model.", "model.language_model.", "language_model.model.")
_HEAD_NAMES = ("lm_head.weight", "language_model.lm_head.weight")
# Parts of a Gemma 3 multimodal checkpoint that the text decoder does not use.
_IGNORED_PREFIXES = ("vision_tower.", "multi_modal_projector.", "model.vision_tower.",
                     "model.multi_modal_projector.")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                    "special_tokens_map.json", "added_tokens.json", "generation_config.json",
                    "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt")


@dataclasses.dataclass(frozen=True)
class TensorSpec:
  """How one spectrax parameter maps to HF tensors.

  ``hf_name`` contains ``{i}`` for stacked layer parameters; ``to_ours`` and
  ``to_hf`` convert one (per-layer) tensor between layouts.
  """
  path: tuple[str, ...]
  hf_name: str
  hf_shape: tuple[int, ...]
  to_ours: Callable[[np.ndarray], np.ndarray]
  to_hf: Callable[[np.ndarray], np.ndarray]

  @property
  def stacked(self) -> bool:
    return "{i}" in self.hf_name


def tensor_specs(cfg: ModelConfig, prefix: str = "model.") -> list[TensorSpec]:
  """The full name map of ``cfg``'s parameters, in a stable order."""
  d, f, h = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
  n, kv, v = cfg.num_heads, cfg.num_kv_heads, cfg.vocab_size
  same = lambda w: w  # noqa: E731
  trans = lambda w: w.T  # noqa: E731

  def qkv(heads):
    return (lambda w: w.reshape(heads, h, d).transpose(2, 0, 1),
            lambda w: w.transpose(1, 2, 0).reshape(heads * h, d))

  layer = prefix + "layers.{i}."
  specs = [TensorSpec(("embed",), prefix + "embed_tokens.weight", (v, d), same, same)]
  for name, heads in (("q", n), ("k", kv), ("v", kv)):
    specs.append(TensorSpec(("layers", "attn", name), f"{layer}self_attn.{name}_proj.weight",
                            (heads * h, d), *qkv(heads)))
  specs.append(TensorSpec(("layers", "attn", "o"), f"{layer}self_attn.o_proj.weight", (d, n * h),
                          lambda w: w.reshape(d, n, h).transpose(1, 2, 0),
                          lambda w: w.transpose(2, 0, 1).reshape(d, n * h)))
  if cfg.qk_norm:
    for name in ("q_norm", "k_norm"):
      specs.append(TensorSpec(("layers", "attn", name, "scale"), f"{layer}self_attn.{name}.weight",
                              (h,), same, same))
  specs += [
      TensorSpec(("layers", "mlp", "gate"), f"{layer}mlp.gate_proj.weight", (f, d), trans, trans),
      TensorSpec(("layers", "mlp", "up"), f"{layer}mlp.up_proj.weight", (f, d), trans, trans),
      TensorSpec(("layers", "mlp", "down"), f"{layer}mlp.down_proj.weight", (d, f), trans, trans),
  ]
  norms = {"pre_attn_norm": "input_layernorm"}
  if cfg.sandwich_norms:
    norms.update(post_attn_norm="post_attention_layernorm", pre_mlp_norm="pre_feedforward_layernorm",
                 post_mlp_norm="post_feedforward_layernorm")
  else:
    norms.update(pre_mlp_norm="post_attention_layernorm")
  for ours, theirs in norms.items():
    specs.append(TensorSpec(("layers", ours, "scale"), f"{layer}{theirs}.weight", (d,), same, same))
  specs.append(TensorSpec(("final_norm", "scale"), prefix + "norm.weight", (d,), same, same))
  if not cfg.tie_embeddings:
    head = "language_model.lm_head.weight" if prefix == "language_model.model." else "lm_head.weight"
    specs.append(TensorSpec(("lm_head",), head, (v, d), same, same))
  return specs


class SafetensorsReader:
  """Reads tensors by name from a single-file or sharded (index.json) safetensors checkpoint."""

  def __init__(self, directory: str):
    from safetensors import safe_open
    self._open = safe_open
    index = os.path.join(directory, "model.safetensors.index.json")
    single = os.path.join(directory, "model.safetensors")
    if os.path.exists(index):
      weight_map = read_hf_json(index).get("weight_map")
      if not isinstance(weight_map, dict):
        raise HFCheckpointError(f"{index}: no \"weight_map\" object; the checkpoint is "
                                "damaged or partly copied: copy or download it again")
      self.files = {name: os.path.join(directory, fn) for name, fn in weight_map.items()}
    elif os.path.exists(single):
      with safe_open(single, "np") as fh:
        self.files = {name: single for name in fh.keys()}
    else:
      raise FileNotFoundError(f"{directory} holds neither model.safetensors nor "
                              "model.safetensors.index.json; pass an HF model directory")
    self._handles: dict[str, object] = {}

  def _handle(self, name: str):
    fn = self.files[name]
    if fn not in self._handles:
      self._handles[fn] = self._open(fn, "np").__enter__()
    return self._handles[fn]

  def shape(self, name: str) -> tuple[int, ...]:
    return tuple(self._handle(name).get_slice(name).get_shape())

  def get(self, name: str) -> np.ndarray:
    return self._handle(name).get_tensor(name)

  def rows(self, name: str, ids) -> np.ndarray:
    """Rows ``ids`` of a 2-D tensor, reading only those rows."""
    sl = self._handle(name).get_slice(name)
    return np.stack([sl[int(i):int(i) + 1][0] for i in ids])

  def close(self):
    for h in self._handles.values():
      h.__exit__(None, None, None)
    self._handles.clear()


def detect_prefix(names, directory: str = "") -> str:
  for prefix in _PREFIXES:
    if prefix + "embed_tokens.weight" in names:
      return prefix
  raise ValueError(f"{directory}: no embed_tokens.weight under any of {_PREFIXES}; "
                   "is this a Gemma 3 / Llama / Qwen 3 causal LM checkpoint?")


def _check_names(reader: SafetensorsReader, specs: list[TensorSpec], cfg: ModelConfig, directory: str):
  """Raises one error listing every missing, unexpected and mis-shaped tensor."""
  expected = {}
  for s in specs:
    for i in range(cfg.num_layers) if s.stacked else (None,):
      expected[s.hf_name.format(i=i)] = s.hf_shape
  present = set(reader.files)
  ignorable = {n for n in present if n.startswith(_IGNORED_PREFIXES)}
  if cfg.tie_embeddings:  # some tied checkpoints still store the head; transformers ignores it
    ignorable |= present & set(_HEAD_NAMES)
  missing = sorted(set(expected) - present)
  unexpected = sorted(present - set(expected) - ignorable)
  misshaped = [f"{n}: file {reader.shape(n)}, config wants {expected[n]}"
               for n in sorted(set(expected) & present) if reader.shape(n) != expected[n]]
  if missing or unexpected or misshaped:
    def show(xs):
      return ", ".join(xs[:20]) + (f" ... ({len(xs)} in all)" if len(xs) > 20 else "")
    parts = [f"{label} ({len(xs)}): {show(xs)}" for label, xs in
             (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if xs]
    raise ValueError(f"{directory}: checkpoint does not match its config.json:\n  " + "\n  ".join(parts))


def _path_of(keypath) -> tuple[str, ...]:
  return tuple(str(getattr(k, "key", getattr(k, "name", k))) for k in keypath)


def _place(host: np.ndarray, target: NamedSharding) -> jax.Array:
  # make_array_from_callback works for multi-process meshes too: each process
  # transfers only the shards its devices hold.
  return jax.make_array_from_callback(host.shape, target, lambda idx: host[idx])


@functools.partial(jax.jit, donate_argnums=(0,))
def _set_layer(stacked: jax.Array, value: jax.Array, i: jax.Array) -> jax.Array:
  return jax.lax.dynamic_update_index_in_dim(stacked, value, i, 0)


def _np_dtype(name: str):
  return ml_dtypes.bfloat16 if name == "bfloat16" else np.dtype(name)


def load_hf(directory: str, *, mesh: Mesh | None = None, rules=sharding.DEFAULT_RULES,
            ignore_fields: tuple[str, ...] = (), **config_overrides) -> Transformer:
  """Loads an HF Gemma 3 / Llama / Qwen 3 checkpoint directory as a ``Transformer``.

  Args:
    directory: holds ``config.json`` and ``model.safetensors`` or
      ``model.safetensors.index.json`` + shards.
    mesh, rules: where to place the parameters (logical-axis rules, see
      ``spectrax.parallel.sharding``); default: the first device, unsharded.
    ignore_fields: passed to ``ModelConfig.from_hf``.
    **config_overrides: e.g. ``param_dtype="bfloat16"``, ``dtype="bfloat16"``,
      ``attention_backend="splash"``, ``remat_policy="full"``.

  Returns:
    The model, every parameter already in its final sharding and dtype.

  Raises:
    ValueError: listing all missing / unexpected / mis-shaped tensors at once.
  """
  cfg = ModelConfig.from_hf(directory, ignore_fields=ignore_fields, **config_overrides)
  reader = SafetensorsReader(directory)
  try:
    specs = tensor_specs(cfg, detect_prefix(reader.files, directory))
    _check_names(reader, specs, cfg, directory)
    graphdef, abstract = abstract_model(cfg)
    targets = param_shardings(abstract, mesh, rules)
    by_path = {s.path: s for s in specs}
    dtype = _np_dtype(cfg.param_dtype)

    def load(keypath, var):
      spec = by_path[_path_of(keypath)]
      target = targets
      for k in spec.path:
        target = target[k]
      target = target.get_value()
      if not spec.stacked:
        return var.replace(_place(spec.to_ours(reader.get(spec.hf_name)).astype(dtype, copy=False), target))
      layer_target = NamedSharding(target.mesh, PartitionSpec(*target.spec[1:]))
      stacked = jax.jit(lambda: jnp.zeros(var.shape, var.dtype), out_shardings=target)()
      for i in range(cfg.num_layers):
        host = spec.to_ours(reader.get(spec.hf_name.format(i=i))).astype(dtype, copy=False)
        stacked = _set_layer(stacked, _place(host, layer_target), jnp.int32(i))
      return var.replace(stacked)

    state = jax.tree_util.tree_map_with_path(load, abstract,
                                             is_leaf=lambda x: isinstance(x, nnx.Variable))
  finally:
    reader.close()
  return nnx.merge(graphdef, state)


def _flat_params(model_or_state) -> dict[tuple[str, ...], jax.Array]:
  state = nnx.state(model_or_state, nnx.Param) if isinstance(model_or_state, nnx.Module) else model_or_state
  flat = {}

  def visit(keypath, leaf):
    flat[_path_of(keypath)] = leaf.get_value() if isinstance(leaf, nnx.Variable) else leaf

  jax.tree_util.tree_map_with_path(visit, state, is_leaf=lambda x: isinstance(x, nnx.Variable))
  return flat


def save_hf(model_or_state, cfg: ModelConfig, directory: str, *, dtype: str | None = None,
            tokenizer_dir: str | None = None, max_shard_bytes: int = 4 << 30) -> list[str]:
  """Writes an HF directory that ``AutoModelForCausalLM.from_pretrained`` loads.

  Args:
    model_or_state: a ``Transformer`` or its ``nnx.Param`` state.
    cfg: its config (Gemma 3 is written as a text-only ``Gemma3ForCausalLM``).
    directory: created if missing.
    dtype: tensor dtype on disk (default ``cfg.param_dtype``), e.g. ``bfloat16``.
    tokenizer_dir: copy tokenizer files from here (e.g. the source HF dir).
    max_shard_bytes: safetensors shard size; host memory peaks near it.

  Returns:
    The written safetensors file names.
  """
  from safetensors.numpy import save_file
  dtype = dtype or cfg.param_dtype
  np_dtype = _np_dtype(dtype)
  flat = _flat_params(model_or_state)
  writer = jax.process_index() == 0
  os.makedirs(directory, exist_ok=True)
  shards: list[dict[str, np.ndarray]] = [{}]
  files: list[str] = []
  weight_map: dict[str, int] = {}
  total = 0
  size = 0

  def flush():
    nonlocal size
    if shards[-1] and writer:
      fn = f"_part{len(files):05d}.safetensors"
      save_file(shards[-1], os.path.join(directory, fn), metadata={"format": "pt"})
      files.append(fn)
    shards[-1] = {}
    size = 0

  for spec in tensor_specs(cfg):
    value = flat[spec.path]
    for i in range(cfg.num_layers) if spec.stacked else (None,):
      part = value if i is None else value[i]
      host = np.ascontiguousarray(spec.to_hf(sharding.host_local_array(part)).astype(np_dtype))
      if size and size + host.nbytes > max_shard_bytes:
        flush()
      name = spec.hf_name.format(i=i)
      shards[-1][name] = host
      weight_map[name] = len(files)
      size += host.nbytes
      total += host.nbytes
  flush()
  if not writer:
    return []
  names = (["model.safetensors"] if len(files) == 1 else
           [f"model-{k + 1:05d}-of-{len(files):05d}.safetensors" for k in range(len(files))])
  for tmp, final in zip(files, names):
    os.replace(os.path.join(directory, tmp), os.path.join(directory, final))
  if len(files) > 1:
    index = {"metadata": {"total_size": total},
             "weight_map": {n: names[k] for n, k in sorted(weight_map.items())}}
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as fh:
      json.dump(index, fh, indent=2)
  hf_config = to_hf_dict(dataclasses.replace(cfg, param_dtype=dtype))
  with open(os.path.join(directory, "config.json"), "w") as fh:
    json.dump(hf_config, fh, indent=2)
  if tokenizer_dir:
    for fn in TOKENIZER_FILES:
      src = os.path.join(tokenizer_dir, fn)
      if os.path.exists(src):
        shutil.copy(src, os.path.join(directory, fn))
  return names


def transfer_special_tokens(model: Transformer, instruct_dir: str, tokens: tuple[str, ...],
                            base_tokenizer_dir: str | None = None) -> dict[str, int]:
  """Copies embedding (and untied output-head) rows of ``tokens`` from an instruct checkpoint.

  Pretrained checkpoints carry untrained rows for chat special tokens
  (docs/method.md#base-model-preparation); the matching instruct checkpoint has trained ones. Only the needed
  rows are read from disk. The model is updated in place, shardings kept.

  Args:
    model: the loaded base model.
    instruct_dir: HF directory of the instruct model (weights + tokenizer).
    tokens: the template's special tokens, e.g. ``("<start_of_turn>", "<end_of_turn>")``.
    base_tokenizer_dir: if given, the base tokenizer must map ``tokens`` to
      the same ids (otherwise rows would land on the wrong tokens).

  Returns:
    ``{token: id}`` of the copied rows.
  """
  from transformers import AutoTokenizer
  cfg = model.config
  ids = _single_token_ids(AutoTokenizer.from_pretrained(instruct_dir), tokens, instruct_dir)
  if base_tokenizer_dir:
    base_ids = _single_token_ids(AutoTokenizer.from_pretrained(base_tokenizer_dir), tokens,
                                 base_tokenizer_dir)
    if base_ids != ids:
      raise ValueError(f"special tokens map to different ids in {base_tokenizer_dir} ({base_ids}) "
                       f"and {instruct_dir} ({ids}); these checkpoints are not a matching pair")
  bad = {t: i for t, i in ids.items() if i >= cfg.vocab_size}
  if bad:
    raise ValueError(f"token ids {bad} are outside the model's vocab_size={cfg.vocab_size}")
  instruct_cfg = ModelConfig.from_hf(instruct_dir)
  if (instruct_cfg.hidden_size, instruct_cfg.vocab_size) != (cfg.hidden_size, cfg.vocab_size):
    raise ValueError(f"{instruct_dir} has hidden_size/vocab_size {instruct_cfg.hidden_size}/"
                     f"{instruct_cfg.vocab_size}, the model {cfg.hidden_size}/{cfg.vocab_size}")
  reader = SafetensorsReader(instruct_dir)
  try:
    prefix = detect_prefix(reader.files, instruct_dir)
    rows = jnp.asarray(reader.rows(prefix + "embed_tokens.weight", ids.values()))
    idx = jnp.asarray(list(ids.values()))
    embed = model.embed[...]
    model.embed[...] = jax.device_put(embed.at[idx].set(rows.astype(embed.dtype)), embed.sharding)
    if not cfg.tie_embeddings:
      head_name = next((n for n in _HEAD_NAMES if n in reader.files), None)
      if head_name is None or instruct_cfg.tie_embeddings:
        head_rows = rows  # the instruct model ties: its head rows are its embedding rows
      else:
        head_rows = jnp.asarray(reader.rows(head_name, ids.values()))
      head = model.lm_head[...]
      model.lm_head[...] = jax.device_put(head.at[idx].set(head_rows.astype(head.dtype)),
                                          head.sharding)
  finally:
    reader.close()
  return ids


def _single_token_ids(tokenizer, tokens, where: str) -> dict[str, int]:
  ids = {}
  for tok in tokens:
    pieces = tokenizer.encode(tok, add_special_tokens=False)
    # An unknown token encodes to one id too (unk): require the round trip.
    if len(pieces) != 1 or tokenizer.convert_ids_to_tokens(pieces[0]) != tok:
      raise ValueError(f"{where}: {tok!r} is not a single token in this tokenizer (ids {pieces})")
    ids[tok] = int(pieces[0])
  return ids
