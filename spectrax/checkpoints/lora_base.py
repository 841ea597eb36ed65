"""The frozen base of a LoRA run: how to rebuild it, and its fingerprint.

A LoRA run's checkpoints hold only the adapters (and the data state), so the
run must name the base it adapts: `BaseIdentity` records where it came from
(an HF directory, or a seeded random init for from-scratch configs such as
tiny.py), the special-token rows copied into it, and a fingerprint of its
arrays as loaded (in the compute dtype). The trainer stores the identity in
every checkpoint's config item and in run.json; a resumed run, an export
and a loader rebuild the base, fingerprint it again and refuse a different
one (`BaseMismatchError`, one line on the command line).

The fingerprint is the SHA-256 of `integrity.summarize` of the base's
arrays: per array its dtype, shape and two wrap-around sums of its bits,
computed on device whatever the sharding (see `integrity.py`), so it costs
one memory-bound pass and is independent of the mesh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

from flax import nnx

from spectrax.checkpoints import integrity
from spectrax.checkpoints.run_dir import RunDirError
from spectrax.models import Transformer, init_model, load_hf, transfer_special_tokens
from spectrax.models.config import ModelConfig
from spectrax.parallel import sharding


class BaseMismatchError(RunDirError):
  """A LoRA run met a base checkpoint other than the one it was trained on."""


@dataclasses.dataclass(frozen=True)
class BaseIdentity:
  """Where a LoRA run's base comes from, and its fingerprint ("" before it is computed)."""
  source: str  # "hf" (an HF directory) or "init" (random init with `seed`)
  path: str = ""  # the HF directory, absolute
  seed: int = 0
  transfer_special_tokens_from: str = ""
  special_tokens: tuple[str, ...] = ()
  fingerprint: str = ""

  def to_json(self) -> dict:
    d = dataclasses.asdict(self)
    d["special_tokens"] = list(self.special_tokens)
    return d

  @classmethod
  def from_json(cls, d: dict) -> "BaseIdentity":
    d = dict(d)
    d["special_tokens"] = tuple(d.get("special_tokens", ()))
    return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})

  def describe(self) -> str:
    what = f"HF checkpoint {self.path}" if self.source == "hf" else f"random init (seed {self.seed})"
    if self.transfer_special_tokens_from:
      what += f" + special-token rows of {self.transfer_special_tokens_from}"
    return what


def fingerprint(params) -> str:
  """SHA-256 (hex) of the arrays of `params` (an nnx.State or a pytree of arrays)."""
  summary = integrity.summarize(params)
  text = json.dumps({k: [v["dtype"], v["shape"], v["sum"], v["sumsq"]]
                     for k, v in sorted(summary.items())}, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()


def build_base(identity: BaseIdentity, model_cfg: ModelConfig, *, mesh=None,
               rules=sharding.DEFAULT_RULES) -> Transformer:
  """The base model as `identity` describes it, in `model_cfg`'s dtypes and placement."""
  runtime = dict(param_dtype=model_cfg.param_dtype, dtype=model_cfg.dtype,
                 attention_backend=model_cfg.attention_backend,
                 remat_policy=model_cfg.remat_policy)
  if identity.source == "hf":
    if not os.path.exists(os.path.join(identity.path, "config.json")):
      raise BaseMismatchError(
          f"the LoRA run's base checkpoint {identity.path} is gone (no config.json): "
          "put the base back where it was trained from, or export the adapters with "
          "`python -m spectrax.convert --from_workdir=RUN --to_peft=OUT` and load them "
          "onto a copy with peft.")
    model = load_hf(identity.path, mesh=mesh, rules=rules, **runtime)
    if identity.transfer_special_tokens_from:
      transfer_special_tokens(model, identity.transfer_special_tokens_from,
                              identity.special_tokens, base_tokenizer_dir=identity.path)
    return model
  if identity.source == "init":
    return init_model(model_cfg, mesh=mesh, rules=rules, seed=identity.seed)
  raise BaseMismatchError(f"unknown LoRA base source {identity.source!r} (hf or init)")


def with_fingerprint(identity: BaseIdentity, model: Transformer) -> BaseIdentity:
  return dataclasses.replace(identity, fingerprint=fingerprint(nnx.state(model, nnx.Param)))


def check_same(recorded: BaseIdentity, current: BaseIdentity, where: str) -> None:
  """Raises BaseMismatchError unless the fingerprints agree."""
  if recorded.fingerprint and recorded.fingerprint != current.fingerprint:
    raise BaseMismatchError(
        f"{where} adapts another base: it was trained on {recorded.describe()} "
        f"(fingerprint {recorded.fingerprint[:16]}), but the base given now is "
        f"{current.describe()} (fingerprint {current.fingerprint[:16]}). Give the run's own "
        "base (--config.init_from_hf=...), or start a new --workdir. Nothing was changed.")
