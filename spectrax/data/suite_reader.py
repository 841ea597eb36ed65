"""Reading a built Spectrum Suite (`python -m data_pipelines.build --out=DIR`).

A suite directory holds `suite.json` (`data_pipelines.schema.MANIFEST`: (task → record directory) and one
TFDS/ArrayRecord dataset per task. `Suite` gives random-access instance
sources (for `grain.MapDataset.source`) and per-task sampling settings.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
from collections.abc import Sequence

from data_pipelines.schema import DEFAULT_TOKENIZER, MANIFEST
from spectrax.data.episode_sampling import SamplingSpec

_OPEN_LOCK = threading.Lock()


class SuiteError(ValueError):
  """A built suite that is damaged: the message names the file or task and
  the build command that repairs it."""


def read_json(path: str, what: str, fix: str):
  """`path`'s JSON; a file that is not UTF-8 JSON is a SuiteError naming it
  (with the line and column) and `fix`."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise SuiteError(f"{path}, line {e.lineno}: {what} is not valid JSON "
                     f"({e.msg} at column {e.colno}); {fix}") from None
  except UnicodeDecodeError as e:
    raise SuiteError(f"{path}: {what} is not UTF-8 text ({e}); {fix}") from None


def _rebuild(suite_dir: str, task: str) -> str:
  return (f"rebuild the task with `python -m data_pipelines.build "
          f"--out={suite_dir} --tasks={task} --overwrite` (plus --user_tasks / "
          "--raw_dir as when it was built)")


@dataclasses.dataclass(frozen=True)
class InstanceRecord:
  """One instance as stored (see data_pipelines/schema.py)."""

  id: str
  descriptions: list[str]
  inputs: list[str]  # empty: the task has no inputs.
  outputs: list[str]
  question: str
  options: list[str]
  target: list[float]
  extra: dict


def _text(x) -> str:
  return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def decode_record(raw: dict) -> InstanceRecord:
  return InstanceRecord(
      id=_text(raw["id"]),
      descriptions=[_text(x) for x in raw["descriptions"]],
      inputs=[_text(x) for x in raw["inputs"]],
      outputs=[_text(x) for x in raw["outputs"]],
      question=_text(raw["question"]),
      options=[_text(x) for x in raw["options"]],
      target=[float(x) for x in raw["target"]],
      extra=json.loads(_text(raw["extra"]) or "{}"),
  )


class TaskSource(Sequence):
  """Random access to one task split's instances; picklable for workers."""

  def __init__(self, directory: str, split: str, suite_dir: str | None = None):
    self.directory = directory
    self.split = split
    self._source = None
    # The layout is SUITE/spectrum_suite/TASK/VERSION.
    self.suite_dir = suite_dir or os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.normpath(directory))))
    task = os.path.basename(os.path.dirname(os.path.normpath(directory)))
    path = os.path.join(directory, "metadata.json")
    if not os.path.exists(path):
      raise SuiteError(f"{path} is missing: task {task!r} of the suite "
                       f"{self.suite_dir} is damaged; {_rebuild(self.suite_dir, task)}.")
    self.metadata = read_json(path, f"the metadata of task {task!r}",
                              _rebuild(self.suite_dir, task) + ".")
    self.num_rows: list[int] = list(self.metadata["num_rows"].get(split, []))

  def _data_source(self):
    if self._source is None:
      # One thread at a time: a Grain worker's prefetch threads reach here
      # together, and tfds' lazy imports (etils) deadlock when imported from
      # several threads at once.
      with _OPEN_LOCK:
        if self._source is None:
          import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
          builder = tfds.builder_from_directory(self.directory)
          self._check_files(builder)
          self._source = builder.as_data_source(split=self.split)
    return self._source

  def _damaged(self, why: str) -> SuiteError:
    return SuiteError(f"task {self.name!r} of the suite {self.suite_dir} is damaged "
                      f"({why}); {_rebuild(self.suite_dir, self.name)}.")

  def _check_files(self, builder) -> None:
    """ArrayRecord opens a file on first read, as `RuntimeError: open() failed`
    deep in a worker: a missing file is named here instead."""
    if self.split not in builder.info.splits:
      return  # tfds says which splits exist.
    missing = [p for p in map(str, builder.info.splits[self.split].filepaths)
               if not os.path.exists(p)]
    if missing:
      raise self._damaged(f"{missing[0]} is missing")

  def __len__(self) -> int:
    return len(self.num_rows)

  def __getitem__(self, index: int) -> InstanceRecord:  # type: ignore[override]
    if not 0 <= int(index) < len(self):  # IndexError ends `for` and `list()`.
      raise IndexError(f"instance {index} is out of range: the {self.split} "
                       f"split of {self.directory} has {len(self)}.")
    source = self._data_source()
    try:
      raw = source[int(index)]
    except RuntimeError as e:  # ArrayRecord: a truncated or unreadable file.
      raise self._damaged(f"reading instance {index} of its {self.split} split in "
                          f"{self.directory}: {e}") from e
    return decode_record(raw)

  def __getstate__(self):
    state = dict(self.__dict__)
    state["_source"] = None  # Re-opened lazily in each worker process.
    return state

  @property
  def name(self) -> str:
    return self.metadata["name"]

  @functools.cached_property
  def sampling(self) -> SamplingSpec:
    return SamplingSpec.from_metadata(self.metadata)

  @property
  def default_descriptions(self) -> list[str]:
    return list(self.metadata.get("default_descriptions", []))


class Suite:
  """A built suite directory."""

  def __init__(self, path: str):
    manifest = os.path.join(path, MANIFEST)
    if not os.path.exists(manifest):
      raise FileNotFoundError(
          f"{manifest} not found: build the suite first with "
          f"`python -m data_pipelines.build --out={path}`.")
    fix = (f"rebuild the suite with `python -m data_pipelines.build --out={path} "
           "--overwrite` (or into a new --out)")
    self.manifest = read_json(manifest, "the suite manifest", fix + ".")
    if not isinstance(self.manifest, dict) or not isinstance(self.manifest.get("tasks"), dict):
      raise SuiteError(f"{manifest}: not a suite manifest (no \"tasks\" object); {fix}.")
    self.path = path

  @property
  def tasks(self) -> dict[str, dict]:
    return self.manifest["tasks"]

  @property
  def seed(self) -> int:
    return int(self.manifest.get("seed", 0))

  @property
  def tokenizer_path(self) -> str | None:
    """The suite's default tokenizer, if trained (`tokenizer_training`)."""
    name = self.manifest.get("tokenizer")  # suites built before it moved here
    path = os.path.join(self.path, name or DEFAULT_TOKENIZER)
    return path if os.path.exists(path) else None

  def task_names(self, suite_split: str | None = None,
                 kind: str | None = "icl") -> list[str]:
    """Tasks of one half of the suite (`train`/`test`) and kind, sorted."""
    return sorted(n for n, t in self.tasks.items()
                  if (suite_split is None or t["suite_split"] == suite_split)
                  and (kind is None or t["kind"] == kind))

  def source(self, task: str, split: str) -> TaskSource:
    if task not in self.tasks:
      raise ValueError(f"task {task!r} is not in the suite at {self.path}; it "
                       f"has {sorted(self.tasks)}. Build it with "
                       f"`python -m data_pipelines.build --out={self.path} "
                       f"--tasks={task}`.")
    return TaskSource(os.path.join(self.path, self.tasks[task]["dir"]), split,
                      suite_dir=self.path)
