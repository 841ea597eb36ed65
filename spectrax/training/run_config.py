"""Turns an ml_collections run config into validated spectrax objects.

Validation happens once, at start-up, and every error names the config field
and what to change (`--config.FIELD=...`).
"""

from __future__ import annotations

import dataclasses
import math
import os

import ml_collections

from spectrax.checkpoints.lora_base import BaseIdentity
from spectrax.data import templates
from spectrax.models import ModelConfig, preset
from spectrax.models import lora as lora_lib
from spectrax.models import remat
from spectrax.data.pipeline import PACKERS, DataConfig
from spectrax.training.in_training_eval import SUITES as EVAL_SUITES
from spectrax.training.step import OptimizerConfig


class ConfigError(ValueError):
  pass


def _need(cond: bool, message: str) -> None:
  if not cond:
    raise ConfigError(message)


def validate(c: ml_collections.ConfigDict) -> None:
  """Checks the fields a run needs, before anything expensive starts."""
  _need(c.data.template != templates.CHAT,
        "data.template='chat' formats with an instruct checkpoint's own chat template and is "
        "for evaluating instruct comparators (spectrax.evaluate --model=NAME=hf:DIR#chat), not "
        f"for training: use one of {sorted(templates.TEMPLATES)}.")
  _need(c.data.template in templates.TEMPLATES,
        f"data.template={c.data.template!r}: use one of "
        f"{sorted(templates.TEMPLATES)} (--config.data.template=gemma).")
  _need(c.data.packing in PACKERS,
        f"data.packing={c.data.packing!r}: use one of {sorted(PACKERS)}.")
  _need(c.data.batch_size > 0, "data.batch_size must be positive.")
  _need(c.train.microbatches >= 1 and
        c.data.batch_size % c.train.microbatches == 0,
        f"train.microbatches={c.train.microbatches} must divide "
        f"data.batch_size={c.data.batch_size}.")
  _need(c.train.num_steps >= 0, "train.num_steps must be >= 0 (0 = one "
        "pass over data.num_epochs).")
  _need(not (c.train.num_steps == 0 and c.data.num_epochs == 0),
        "train.num_steps=0 means 'one pass over the data', but "
        "data.num_epochs=0 repeats forever: set one of them.")
  _need(c.train.log_every >= 1, "train.log_every must be >= 1.")
  _need(c.train.checkpoint_every >= 1, "train.checkpoint_every must be >= 1.")
  _need(c.train.keep_checkpoints >= 1, "train.keep_checkpoints must be >= 1.")
  sources = [bool(c.init_from_hf), bool(c.model.preset),
             bool(c.model.hf_config.to_dict())]
  _need(any(sources), "no model: set --config.init_from_hf=HF_DIR (a "
        "checkpoint), or model.preset / model.hf_config (from scratch).")
  if c.get("require_init_from_hf", False):
    _need(bool(c.init_from_hf),
          "this config fine-tunes a pretrained checkpoint: set "
          f"--config.init_from_hf=/path/to/{c.get('instruct_hint', 'model')}"
          " (an HF directory with config.json and safetensors).")
  if c.init_from_hf:
    _need(os.path.exists(os.path.join(c.init_from_hf, "config.json")),
          f"init_from_hf={c.init_from_hf!r} has no config.json: point it at "
          "an HF model directory.")
  if c.transfer_special_tokens_from:
    _need(bool(c.init_from_hf), "transfer_special_tokens_from needs "
          "init_from_hf (the base checkpoint the rows are copied into).")
  _need(c.optimizer.schedule in ("linear", "cosine", "constant"),
        f"optimizer.schedule={c.optimizer.schedule!r}: use linear, cosine "
        "or constant.")
  _check_numbers(c)
  suites = tuple(c.train.get("eval_suites", ()))
  _need(all(s in EVAL_SUITES for s in suites),
        f"train.eval_suites={suites!r}: choose from {EVAL_SUITES} "
        "(--config.train.eval_suites=\"('steerability',)\"; () turns it off).")
  _check_lora(c)
  for axis in c.mesh.keys():
    _need(axis in ("data", "fsdp", "tensor", "dcn_data"),
          f"mesh.{axis}: mesh axes are data, fsdp and tensor (and dcn_data, "
          "the number of nodes or slices the data axis spans).")
    size = c.mesh[axis]
    _need(isinstance(size, int) and (size == -1 or size >= 1),
          f"mesh.{axis}={size!r}: " + (
              "the node / TPU slice count is a whole number >= 1, or -1 for one "
              "per node / slice." if axis == "dcn_data" else
              "a mesh axis is a whole number >= 1, or -1 for the devices left over."))


# (field, lowest, highest, lowest included): every number a run reads. NaN and
# inf fail every range, so a typo such as `--config.optimizer.learning_rate=nan`
# stops here instead of producing a NaN loss many minutes later.
_RANGES = (
    ("optimizer.learning_rate", 0.0, None, False),
    ("optimizer.end_learning_rate_fraction", 0.0, 1.0, True),
    ("optimizer.warmup_steps", 0, None, True),
    ("optimizer.b1", 0.0, 1.0, True),
    ("optimizer.b2", 0.0, 1.0, True),
    ("optimizer.eps", 0.0, None, True),
    ("optimizer.weight_decay", 0.0, None, True),
    ("optimizer.grad_clip_norm", 0.0, None, True),
    ("data.seq_len", 2, None, True),
    ("data.max_tokens", 2, None, True),
    ("data.num_epochs", 0, None, True),
    ("data.num_packing_bins", 0, None, True),
    ("data.worker_count", 0, None, True),
    ("data.seed", 0, None, True),
    ("data.shards", 0, None, True),
    ("train.loss_chunk_size", 1, None, True),
    ("train.seed", 0, None, True),
    ("train.eval_every", 0, None, True),
    ("train.eval_batches", 1, None, True),
    ("train.eval_suites_every", 1, None, True),
    ("train.eval_suites_episodes", 1, None, True),
    ("train.eval_suites_questions", 1, None, True),
    ("train.eval_suites_max_tokens", 0, None, True),
    ("train.stop_after", 0, None, True),
    ("train.peak_flops_per_device", 0.0, None, True),
)


def _check_numbers(c: ml_collections.ConfigDict) -> None:
  """Every number in `_RANGES` that the config has is finite and in range."""
  for field, low, high, low_included in _RANGES:
    section, key = field.split(".")
    if key not in c.get(section, {}):
      continue
    value = c[section][key]
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value)
          and (value >= low if low_included else value > low)
          and (high is None or value <= high))
    bound = f"{'>=' if low_included else '>'} {low}"
    if high is not None:
      bound = f"in [{low}, {high}]"
    _need(ok, f"{field}={value!r} must be a finite number {bound} "
          f"(--config.{field}=...).")


def _check_lora(c: ml_collections.ConfigDict) -> None:
  if "lora" not in c:
    return
  rank = c.lora.get("rank")
  _need(rank is None or (isinstance(rank, int) and not isinstance(rank, bool) and rank >= 0),
        f"lora.rank={rank!r} must be a whole number >= 0 (0 or None: full "
        "fine-tuning; --config.lora.rank=8).")
  if not rank:
    return
  alpha = c.lora.get("alpha", 16.0)
  _need(isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0,
        f"lora.alpha={alpha!r} must be a finite number > 0 (--config.lora.alpha=16).")
  dropout = c.lora.get("dropout", 0.0)
  _need(isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0,
        f"lora.dropout={dropout!r} must be in [0, 1) (--config.lora.dropout=0.05).")
  targets = lora_lib.parse_targets(c.lora.get("targets", ""))
  unknown = [t for t in targets if t not in lora_lib.TARGETS]
  _need(targets and not unknown,
        f"lora.targets={c.lora.get('targets')!r}: name projections among "
        f"{','.join(lora_lib.TARGETS)} (--config.lora.targets=q,k,v,o).")


def lora_config(c: ml_collections.ConfigDict) -> lora_lib.LoraConfig | None:
  """The run's LoRA settings, or None for full fine-tuning (rank 0 or None)."""
  if "lora" not in c or not c.lora.get("rank"):
    return None
  return lora_lib.LoraConfig(
      rank=int(c.lora.rank), alpha=float(c.lora.get("alpha", 16.0)),
      dropout=float(c.lora.get("dropout", 0.0)),
      targets=lora_lib.parse_targets(c.lora.get("targets", ",".join(lora_lib.TARGETS))))


def lora_base(c: ml_collections.ConfigDict) -> BaseIdentity:
  """Where a LoRA run's frozen base comes from (its fingerprint is computed on load)."""
  if c.init_from_hf:
    tokens = ()
    if c.transfer_special_tokens_from:
      tokens = templates.get_template(c.data.template).special_tokens
    return BaseIdentity("hf", os.path.abspath(c.init_from_hf),
                        transfer_special_tokens_from=(
                            os.path.abspath(c.transfer_special_tokens_from)
                            if c.transfer_special_tokens_from else ""),
                        special_tokens=tuple(tokens))
  return BaseIdentity("init", seed=int(c.train.seed))


def check_mesh(c: ml_collections.ConfigDict, mesh) -> None:
  """The batch must split evenly over the batch-sharded mesh axes."""
  shards = mesh.shape.get("data", 1) * mesh.shape.get("fsdp", 1)
  per_micro = c.data.batch_size // c.train.microbatches
  _need(per_micro % shards == 0,
        f"data.batch_size={c.data.batch_size} / train.microbatches="
        f"{c.train.microbatches} = {per_micro} rows per micro-batch do not "
        f"split over mesh data x fsdp = {shards} devices; use a batch_size "
        f"that is a multiple of {shards * c.train.microbatches}.")


def data_config(c: ml_collections.ConfigDict, *, split: str = "train",
                tokenizer: str | None = None) -> DataConfig:
  d = c.data
  return DataConfig(
      suite_dir=c.suite_dir, template=d.template,
      tokenizer=tokenizer or (d.tokenizer or None),
      tasks=tuple(d.tasks), split=split, seq_len=d.seq_len,
      max_tokens=d.max_tokens, batch_size=d.batch_size,
      seed=d.seed, num_epochs=(d.num_epochs or None) if split == "train" else 1,
      shuffle=split == "train", packing=d.packing,
      num_packing_bins=d.num_packing_bins,
      worker_count=d.worker_count if split == "train" else 0)


def tokenizer_path(c: ml_collections.ConfigDict) -> str | None:
  """data.tokenizer, else the HF checkpoint's, else None (the suite's)."""
  if c.data.tokenizer:
    return c.data.tokenizer
  if c.init_from_hf:
    return c.init_from_hf
  return None


def model_config(c: ml_collections.ConfigDict, vocab_size: int) -> ModelConfig:
  """The architecture: from the HF checkpoint, a preset, or hf_config keys."""
  # LoRA: the frozen base is held only in the compute dtype (no master copy).
  param_dtype = c.model.dtype if lora_config(c) else c.model.param_dtype
  _need(c.model.remat_policy in remat.POLICIES,
        f"model.remat_policy={c.model.remat_policy!r}: use one of {', '.join(remat.POLICIES)} "
        "(--config.model.remat_policy=save_attention; docs/models.md#remat-policies).")
  runtime = dict(param_dtype=param_dtype, dtype=c.model.dtype,
                 attention_backend=c.model.attention_backend,
                 remat_policy=c.model.remat_policy)
  if c.init_from_hf:
    cfg = ModelConfig.from_hf(c.init_from_hf, **runtime)
  elif c.model.preset:
    cfg = preset(c.model.preset, **runtime)
  else:
    hf = c.model.hf_config.to_dict()
    if not hf.get("vocab_size"):
      hf["vocab_size"] = vocab_size
    cfg = ModelConfig.from_hf(hf, **runtime)
  _need(cfg.vocab_size >= vocab_size,
        f"the model's vocabulary ({cfg.vocab_size}) is smaller than the "
        f"tokenizer's ({vocab_size}): use the model's own tokenizer "
        "(data.tokenizer) or raise model.hf_config.vocab_size.")
  return cfg


def optimizer_config(c: ml_collections.ConfigDict) -> OptimizerConfig:
  fields = {f.name for f in dataclasses.fields(OptimizerConfig)}
  return OptimizerConfig(**{k: v for k, v in c.optimizer.to_dict().items()
                            if k in fields})
