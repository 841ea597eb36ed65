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
class Download:
  """How `python -m data_pipelines.download` fetches one raw file or archive.

  Exactly one way is set: `url` (a direct HTTPS address: a GitHub file at a
  pinned commit, Zenodo, the SSA, a public bucket), `hf_repo` + `hf_filename`
  (a file of a Hugging Face *dataset* repository at `revision`, fetched with
  huggingface_hub), or `manual` (no public address: what the user must do,
  e.g. accept a licence, fill a form, use Kaggle).

  `target` is where the download lands, relative to --raw_dir; an archive
  (`unpack` = "zip", "tar.gz" or "bz2") is then unpacked into `unpack_to`
  (a directory for zip/tar, a file for bz2). Several `RawFile`s may share one
  `Download` (the files of one archive); the command fetches it once.
  `sha256` / `size`, when known, are checked; a mismatch removes the file.
  """

  target: str
  url: str | None = None
  hf_repo: str | None = None
  hf_filename: str | None = None
  revision: str | None = None  # hub commit or tag; None = the repo's default.
  sha256: str | None = None
  size: int | None = None
  unpack: str | None = None  # None, "zip", "tar.gz" or "bz2".
  unpack_to: str | None = None
  password: str | None = None  # of a zip archive (legacy ZipCrypto).
  manual: str | None = None

  def __post_init__(self):
    ways = [self.url is not None, self.hf_repo is not None,
            self.manual is not None]
    if sum(ways) != 1:
      raise ValueError(f"download of {self.target!r}: give exactly one of "
                       "url, hf_repo (+ hf_filename) and manual.")
    if self.hf_repo is not None and not self.hf_filename:
      raise ValueError(f"download of {self.target!r}: hf_repo needs "
                       "hf_filename.")
    if self.unpack not in (None, "zip", "tar.gz", "bz2"):
      raise ValueError(f"download of {self.target!r}: unpack must be zip, "
                       f"tar.gz or bz2, got {self.unpack!r}.")
    if self.password is not None and self.unpack != "zip":
      raise ValueError(f"download of {self.target!r}: a password is for a "
                       "zip archive.")
    if (self.unpack is None) != (self.unpack_to is None):
      raise ValueError(f"download of {self.target!r}: give unpack and "
                       "unpack_to together.")


@dataclasses.dataclass(frozen=True)
class RawFile:
  """A file a real source needs, and where its user can get it."""

  path: str  # relative to --raw_dir
  published_at: str  # URL or citation telling the user where to download it
  download: Download | None = None  # how the download command gets it.


@dataclasses.dataclass(frozen=True)
class BuildContext:
  seed: int
  raw_dir: str | None


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """How to build one task and how to sample its episodes.

  Examples per episode (docs/method.md#episodes-per-instance): `mean_k`
  (k ~ Geometric(2/m) + Poisson(m/2), a fresh draw per episode or chunk),
  `fixed_k`, or neither: all rows of the instance.

  Episodes per instance, as the release's generators make them:
    - `episodes_per_instance=n` (the release's `n_per=n`): n episodes per
      instance, each an independent random draw of k of its rows;
    - `chunk_all_rows=True` (the release's `n_per=-1`): every row of the
      instance exactly once per pass, shuffled, cut into consecutive chunks
      whose sizes come from the k rule (`episodes_per_instance` unused);
    - `orderings=q` (`permutations_per_iter`): each drawn set of rows is
      emitted q times, in q different orders;
    - `max_episodes` (`max_total`): at most this many episodes per split,
      the first ones in instance order;
    - `shuffle_rows=False`: rows keep the instance's order (OpinionQA's
      survey order) instead of being shuffled before they are drawn.
  Caps on instances (`max_inds`) belong to the converter.
  """

  name: str
  suite_split: str  # "train" or "test": which half of the Spectrum Suite.
  kind: str  # one of KINDS.
  generate: Callable[[BuildContext], Iterable[Instance]]
  mean_k: float | None = None
  fixed_k: int | None = None
  episodes_per_instance: int = 1
  chunk_all_rows: bool = False
  orderings: int = 1
  max_episodes: int | None = None
  shuffle_rows: bool = True
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
    for field in ("episodes_per_instance", "orderings"):
      value = getattr(self, field)
      if not (_finite(value) and value == int(value) and value >= 1):
        raise ValueError(f"{where}: {field} must be a whole number >= 1, "
                         f"got {value!r}.")
    if self.max_episodes is not None and not (
        _finite(self.max_episodes) and self.max_episodes == int(self.max_episodes)
        and self.max_episodes >= 1):
      raise ValueError(f"{where}: max_episodes must be None or a whole number "
                       f">= 1, got {self.max_episodes!r}.")
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
        "episodes_per_instance": self.episodes_per_instance,
        "chunk_all_rows": self.chunk_all_rows,
        "orderings": self.orderings,
        "max_episodes": self.max_episodes,
        "shuffle_rows": self.shuffle_rows,
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
