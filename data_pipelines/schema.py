"""The data contract between task generators, the suite builder and spectrax.

A *task* (docs/method.md#data-model) is a named family of *instances*; an instance is one
distribution to infer (one biased coin, one survey respondent, one urn).
Generators yield `Instance`s; the suite builder stores one TFDS record per
instance; `spectrax.tasks` reads them back for episode sampling.

Pure Python: nothing here imports jax or tensorflow.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

SUITE_SPLITS = ("train", "test")
KINDS = ("icl", "distributional", "diversity")

# The layout of a built suite directory: one dataset per task plus this
# manifest; DEFAULT_TOKENIZER is where spectrax keeps the SentencePiece model it
# trains from the built text (removed whenever a task is rebuilt).
MANIFEST = "suite.json"
DEFAULT_TOKENIZER = "tokenizer.model"


@dataclasses.dataclass(frozen=True)
class Row:
  """One example: an optional input and exactly one output (docs/method.md#data-model)."""

  output: str
  input: str | None = None


@dataclasses.dataclass
class Instance:
  """One distribution to infer.

  Attributes:
    id: unique within the task, stable across builds with the same seed.
    descriptions: alternative descriptions of *this* instance (may state its
      parameters); empty means the task's `default_descriptions` apply.
    rows: the examples. Either every row has an input or none has.
    question: distributional tasks only: the input of the question whose
      answer distribution is `target` over `options`.
    options / target: distributional (options and target shares, summing to
      1) or diversity tasks (options = the finite valid set, target empty).
    extra: small JSON-serialisable attributes (e.g. a diversity task's
      `match` rule or `max_new_tokens`).
  """

  id: str
  rows: list[Row] = dataclasses.field(default_factory=list)
  descriptions: list[str] = dataclasses.field(default_factory=list)
  question: str | None = None
  options: list[str] = dataclasses.field(default_factory=list)
  target: list[float] = dataclasses.field(default_factory=list)
  extra: dict[str, Any] = dataclasses.field(default_factory=dict)

  def validate(self, task: str) -> None:
    where = f"task {task!r}, instance {self.id!r}"
    has_input = {row.input is not None for row in self.rows}
    if len(has_input) > 1:
      raise ValueError(f"{where}: some rows have an input and some do not; "
                       "give every row an input or none.")
    for i, row in enumerate(self.rows):
      if not isinstance(row.output, str):
        raise ValueError(f"{where}, row {i}: output must be a string, got "
                         f"{type(row.output).__name__}.")
    if self.target and len(self.target) != len(self.options):
      raise ValueError(f"{where}: {len(self.target)} target shares for "
                       f"{len(self.options)} options.")


@dataclasses.dataclass(frozen=True)
class RawFile:
  """A file a real source needs, and where its user can get it."""

  path: str  # relative to --raw_dir
  published_at: str  # URL or citation telling the user where to download it


@dataclasses.dataclass(frozen=True)
class BuildContext:
  seed: int
  raw_dir: str | None


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """How to build one task and how to sample its episodes.

  Exactly one of `mean_k` (k ~ Geometric(2/m) + Poisson(m/2)) and `fixed_k`
  is set for ICL tasks; `None` for both means "all rows of the instance".
  """

  name: str
  suite_split: str  # "train" or "test": which half of the Spectrum Suite.
  kind: str  # one of KINDS.
  generate: Callable[[BuildContext], Iterable[Instance]]
  mean_k: float | None = None
  fixed_k: int | None = None
  p_desc: float = 0.6
  default_descriptions: tuple[str, ...] = ()
  raw_files: tuple[RawFile, ...] = ()
  test_fraction: float = 0.05  # held-out instances of a train-suite task.
  about: str = ""  # one line for `--list` and the README.

  def __post_init__(self):
    """Checked here so a bad number stops the build naming task and field,
    rather than the training that samples episodes from it."""
    where = f"task {self.name!r}"
    if self.suite_split not in SUITE_SPLITS:
      raise ValueError(f"{where}: suite_split must be one of {SUITE_SPLITS}, "
                       f"got {self.suite_split!r}.")
    if self.kind not in KINDS:
      raise ValueError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}.")
    if self.mean_k is not None and self.fixed_k is not None:
      raise ValueError(f"{where}: set mean_k or fixed_k, not both.")
    if self.mean_k is not None and not (_finite(self.mean_k) and self.mean_k >= 2):
      raise ValueError(f"{where}: mean_k must be a finite number >= 2 "
                       f"(k ~ Geometric(2/mean_k) + ...), got {self.mean_k!r}.")
    if self.fixed_k is not None and not (
        _finite(self.fixed_k) and self.fixed_k == int(self.fixed_k) and self.fixed_k >= 1):
      raise ValueError(f"{where}: fixed_k must be a whole number >= 1, got "
                       f"{self.fixed_k!r}.")
    for field in ("p_desc", "test_fraction"):
      value = getattr(self, field)
      if not (_finite(value) and 0 <= value <= 1):
        raise ValueError(f"{where}: {field} must be a number in [0, 1], got "
                         f"{value!r}.")

  def metadata(self) -> dict[str, Any]:
    return {
        "name": self.name,
        "suite_split": self.suite_split,
        "kind": self.kind,
        "mean_k": self.mean_k,
        "fixed_k": self.fixed_k,
        "p_desc": self.p_desc,
        "default_descriptions": list(self.default_descriptions),
        "about": self.about,
    }


class MissingRawFileError(FileNotFoundError):
  """A real source's raw file is absent; the message says where to get it."""

  def __init__(self, task: str, raw_dir: str | None,
               missing: Sequence[RawFile]):
    lines = [f"task {task!r} needs raw files that are not in "
             f"--raw_dir={raw_dir}:"]
    for f in missing:
      lines.append(f"  {f.path}  (published at {f.published_at})")
    lines.append("Download them to those paths, or leave the task out with "
                 "--tasks=...; synthetic tasks build without raw files.")
    super().__init__("\n".join(lines))
    self.task = task


def _finite(x: Any) -> bool:
  return (isinstance(x, (int, float)) and not isinstance(x, bool)
          and math.isfinite(x))


def serialise_fields(fields: dict[str, Any]) -> str:
  """docs/method.md#data-model: one field is the raw string; several are json.dumps in order."""
  if len(fields) == 1:
    return str(next(iter(fields.values())))
  return json.dumps(fields)
