"""HF <-> spectrax weights: load one source, copy special-token rows, write targets.

The library behind `python -m spectrax.convert`:

    convert_weights.convert(convert_weights.Source("hf", "gemma-3-12b-pt"),
                            to_spectrax="ckpt/base",
                            transfer_from="gemma-3-12b-it")

A source is an HF directory, a spectrax parameter directory (`params_dir`,
plus a `tokenizer/` folder this module writes) or a training run directory
(its newest checkpoint, or `step`). Parameters are placed on all local
devices per `mesh_axes`, so a model larger than one accelerator converts as
long as it fits the host set.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

from spectrax.checkpoints import params_dir
from spectrax.checkpoints.loading import load_model
from spectrax.checkpoints.run_dir import RunDir
from spectrax.data.templates import get_template
from spectrax.models.config import ModelConfig
from spectrax.models.hf import TOKENIZER_FILES, load_hf, save_hf, transfer_special_tokens
from spectrax.models.transformer import Transformer
from spectrax.parallel import sharding

# Which template's special tokens a family's base model needs
# (docs/method.md#base-model-preparation).
FAMILY_TEMPLATE = {"gemma3": "gemma", "qwen3": "qwen", "llama": "llama"}
# A spectrax parameter directory keeps its tokenizer files here, as a run does.
TOKENIZER_SUBDIR = "tokenizer"
SOURCE_KINDS = ("hf", "spectrax", "workdir")


class ConvertError(ValueError):
  """A conversion the inputs cannot support; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class Source:
  kind: str  # one of SOURCE_KINDS
  path: str
  step: int | None = None  # workdir only: the checkpoint step (default: newest)

  def __post_init__(self):
    if self.kind not in SOURCE_KINDS:
      raise ConvertError(f"source kind {self.kind!r}: use one of {SOURCE_KINDS}.")
    if self.step is not None and self.kind != "workdir":
      raise ConvertError("--step goes with --from_workdir (other sources hold one "
                         "set of weights).")


def special_tokens_for(cfg: ModelConfig, template: str | None, explicit: str | None
                       ) -> tuple[str, ...]:
  """The tokens to transfer: `explicit` (comma-separated) or the template's special tokens."""
  if explicit:
    return tuple(t for t in explicit.split(",") if t)
  return get_template(template or FAMILY_TEMPLATE[cfg.family]).special_tokens


def load_source(source: Source, mesh, param_dtype: str) -> tuple[Transformer, str]:
  """`(model, the directory its tokenizer files would be in)`, printing what was loaded."""
  if source.kind == "hf":
    model, tokenizer_src = load_hf(source.path, mesh=mesh, param_dtype=param_dtype), source.path
  elif source.kind == "workdir":
    loaded = load_model(workdir=source.path, step=source.step, mesh=mesh,
                        param_dtype=param_dtype)
    print(f"loaded {loaded.name} (template {loaded.template})")
    model, tokenizer_src = loaded.model, RunDir(source.path).tokenizer_dir
  else:
    model = params_dir.load_params_dir(source.path, mesh=mesh, param_dtype=param_dtype)
    tokenizer_src = os.path.join(source.path, TOKENIZER_SUBDIR)
  cfg = model.config
  print(f"loaded {cfg.family} model: {cfg.num_params() / 1e9:.3f}B parameters, "
        f"{cfg.num_layers} layers")
  return model, tokenizer_src


def copy_special_token_rows(model: Transformer, instruct_dir: str, tokens: tuple[str, ...],
                            tokenizer_src: str) -> None:
  """Copies the embedding (and head) rows of `tokens` from an HF instruct model."""
  has_hf_tokenizer = os.path.exists(os.path.join(tokenizer_src, "tokenizer_config.json"))
  try:
    copied = transfer_special_tokens(model, instruct_dir, tokens,
                                     tokenizer_src if has_hf_tokenizer else None)
  except ValueError as e:  # The two models or tokenizers do not match.
    raise ConvertError(f"--transfer_special_tokens_from={instruct_dir}: {e}") from e
  head = ("embedding rows" if model.config.tie_embeddings
          else "embedding and output-head rows")
  print(f"copied {head} from {instruct_dir}:")
  for tok, idx in copied.items():
    print(f"  {idx:>8d}  {tok}")


def write_spectrax(directory: str, model: Transformer, tokenizer_dir: str | None) -> None:
  """A spectrax parameter directory, with the tokenizer files found in `tokenizer_dir`."""
  params_dir.save_params_dir(directory, model, model.config)
  if tokenizer_dir:
    target = os.path.join(directory, TOKENIZER_SUBDIR)
    os.makedirs(target, exist_ok=True)
    for fn in TOKENIZER_FILES:
      if os.path.exists(os.path.join(tokenizer_dir, fn)):
        shutil.copy(os.path.join(tokenizer_dir, fn), os.path.join(target, fn))
  print(f"wrote spectrax checkpoint {directory}")


def convert(source: Source, *, to_spectrax: str | None = None, to_hf: str | None = None,
            transfer_from: str | None = None, template: str | None = None,
            special_tokens: str | None = None, tokenizer_dir: str | None = None,
            param_dtype: str = "float32", dtype: str | None = None,
            max_shard_gb: float = 4.0, mesh_axes: dict[str, int] | None = None) -> None:
  """Loads `source` and writes it to `to_spectrax` and/or `to_hf`.

  Args:
    source: what to read.
    to_spectrax: a new spectrax parameter directory (must not exist).
    to_hf: an HF directory (safetensors shards + index, config.json, tokenizer).
    transfer_from: an HF instruct model whose special-token rows to copy in;
      the tokens are `special_tokens` (comma-separated) or `template`'s
      (default: the model family's).
    tokenizer_dir: tokenizer files to write (default: the source's).
    param_dtype: dtype of the loaded parameters.
    dtype: tensor dtype written to `to_hf` (default: `param_dtype`).
    max_shard_gb: safetensors shard size for `to_hf`.
    mesh_axes: the device mesh (default: FSDP over every local device).

  Raises:
    ConvertError: no target, an existing `to_spectrax`, mismatched models.
  """
  if not (to_spectrax or to_hf):
    raise ConvertError("give --to_spectrax and/or --to_hf.")
  if to_spectrax and os.path.exists(to_spectrax):
    raise ConvertError(f"--to_spectrax={to_spectrax} exists; choose a new directory.")
  mesh = sharding.make_mesh(mesh_axes or {"data": 1, "fsdp": -1, "tensor": 1})
  model, tokenizer_src = load_source(source, mesh, param_dtype)
  if transfer_from:
    tokens = special_tokens_for(model.config, template, special_tokens)
    copy_special_token_rows(model, transfer_from, tokens, tokenizer_src)
  tokenizer_dir = tokenizer_dir or (tokenizer_src if os.path.isdir(tokenizer_src) else None)
  if to_spectrax:
    write_spectrax(to_spectrax, model, tokenizer_dir)
  if to_hf:
    files = save_hf(model, model.config, to_hf, dtype=dtype, tokenizer_dir=tokenizer_dir,
                    max_shard_bytes=int(max_shard_gb * (1 << 30)))
    print(f"wrote HF model {to_hf} ({len(files)} safetensors file(s))")
