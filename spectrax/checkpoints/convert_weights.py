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
import json
import os
import shutil

import jax

from spectrax.checkpoints import lora_base, params_dir
from spectrax.checkpoints.loading import load_model, restore_adapters
from spectrax.checkpoints.run_dir import RunDir
from spectrax.data.templates import get_template
from spectrax.models.config import ModelConfig
from spectrax.models import lora as lora_lib
from spectrax.models.hf import (TOKENIZER_FILES, SafetensorsReader, detect_prefix, load_hf,
                                save_hf, transfer_special_tokens)
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


def is_lora_run(source: Source) -> bool:
  """Whether `source` is a training run of LoRA adapters (its run.json says so)."""
  return source.kind == "workdir" and RunDir(source.path).read_run_info().lora is not None


def peft_module_prefix(base_dir: str) -> str:
  """Where the decoder's layers sit in the transformers model of `base_dir`:
  ``model.`` (a causal LM) or ``model.language_model.`` (Gemma 3 multimodal)."""
  reader = SafetensorsReader(base_dir)
  try:
    prefix = detect_prefix(reader.files, base_dir)
  finally:
    reader.close()
  return "model." if prefix == "model." else "model.language_model."


def write_peft(source: Source, directory: str, mesh) -> None:
  """A LoRA run's adapters as a PEFT adapter directory (adapter_config.json +
  adapter_model.safetensors, float32, plus the run's tokenizer files) that
  ``peft.PeftModel.from_pretrained(base, directory)`` loads onto the base."""
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  run = RunDir(source.path)
  info = run.read_run_info()
  if info.lora is None:
    raise ConvertError(f"--to_peft: {source.path} is a full fine-tuning run; only a LoRA run "
                       "(config.lora.rank > 0) has adapters. Use --to_hf.")
  lora, adapters, step = restore_adapters(run, info, source.step, mesh, sharding.DEFAULT_RULES)
  identity = lora_base.BaseIdentity.from_json(info.lora["base"])
  prefix, base_name = "model.", identity.path
  if identity.source == "hf" and os.path.exists(os.path.join(identity.path, "config.json")):
    prefix = peft_module_prefix(identity.path)
  elif identity.source != "hf":
    base_name = ""
    print(f"warning: {run.name}'s base is a {identity.describe()}, not an HF checkpoint: "
          "the adapter applies to that model only (spectrax.convert --from_workdir --to_hf "
          "--merge writes the merged model).")
  if identity.transfer_special_tokens_from:
    print(f"note: the run's base had special-token rows copied from "
          f"{identity.transfer_special_tokens_from}; load the adapter onto that prepared base "
          "(python -m spectrax.convert --from_hf=BASE --transfer_special_tokens_from=... --to_hf=...).")
  os.makedirs(directory, exist_ok=True)
  tensors = lora_lib.to_peft(info.model_config, lora, adapters, prefix)
  if jax.process_index() == 0:
    save_file(tensors, os.path.join(directory, "adapter_model.safetensors"),
              metadata={"format": "pt"})
    with open(os.path.join(directory, "adapter_config.json"), "w") as fh:
      json.dump(lora_lib.peft_config(lora, base_name, prefix), fh, indent=2)
    tokenizer_dir = run.tokenizer_dir
    for fn in TOKENIZER_FILES:
      if os.path.exists(os.path.join(tokenizer_dir, fn)):
        shutil.copy(os.path.join(tokenizer_dir, fn), os.path.join(directory, fn))
  print(f"wrote PEFT adapter {directory} ({run.name}@{step}: rank {lora.rank}, alpha "
        f"{lora.alpha:g}, {len(tensors)} tensors) for base {base_name or identity.describe()}")


def convert(source: Source, *, to_spectrax: str | None = None, to_hf: str | None = None,
            to_peft: str | None = None, merge: bool = False,
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
    to_peft: a LoRA run's adapters as a PEFT adapter directory.
    merge: a LoRA run's `to_hf` / `to_spectrax` is the base with the adapters
      merged in (``W + alpha / rank * A @ B``); required for LoRA runs.

  Raises:
    ConvertError: no target, an existing `to_spectrax`, mismatched models.
  """
  if not (to_spectrax or to_hf or to_peft):
    raise ConvertError("give --to_spectrax, --to_hf and/or --to_peft.")
  if to_spectrax and os.path.exists(to_spectrax):
    raise ConvertError(f"--to_spectrax={to_spectrax} exists; choose a new directory.")
  lora_run = is_lora_run(source)
  if merge and not lora_run:
    raise ConvertError("--merge merges a LoRA run's adapters: give --from_workdir=RUN of a "
                       "run trained with config.lora.rank > 0.")
  if lora_run and (to_hf or to_spectrax) and not merge:
    raise ConvertError(f"{source.path} is a LoRA run: add --merge to write the base with the "
                       "adapters merged in, or use --to_peft=OUT for the adapter alone.")
  if to_peft and not lora_run:
    raise ConvertError("--to_peft writes a LoRA run's adapters: give --from_workdir=RUN of a "
                       "run trained with config.lora.rank > 0.")
  mesh = sharding.make_mesh(mesh_axes or {"data": 1, "fsdp": -1, "tensor": 1})
  if to_peft:
    write_peft(source, to_peft, mesh)
    if not (to_hf or to_spectrax):
      return
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
