"""Titanic passengers (the `mstz/titanic` packaging of the Kaggle data).

Raw file: `titanic/survival/train/0000.parquet`, the `survival` config's train
split as the Hugging Face parquet conversion of `mstz/titanic` publishes it
(revision `refs/convert/parquet`; the repository itself holds a CSV and a
loading script). Columns: `passenger_class` (int, 1-3), `is_male` (bool),
`age` (number; -1 where unknown), `sibsp`, `parch` (numbers), `ticket`,
`fare` (number), `cabin`, `embarked` (port letter), `has_survived` (0/1).

Two train tasks (docs/method.md#titanic): every passenger's eight fields as
JSON, and seven fields -> `has_survived` (`0` or `1`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

_FILE = "survival/train/0000.parquet"
RAW = RawFile(
    path=f"titanic/{_FILE}",
    published_at="https://huggingface.co/datasets/mstz/titanic (config "
    f"survival, train split: {_FILE} at revision refs/convert/parquet)",
    download=Download(target=f"titanic/{_FILE}", hf_repo="mstz/titanic",
                      hf_filename=_FILE, revision="refs/convert/parquet"))
FEATURES = ("passenger_class", "is_male", "age", "sibsp", "parch", "fare",
            "embarked")
TARGET = "has_survived"

ALL_VARIABLES_DESCRIPTIONS = (
    "Generate complete passenger information for the Titanic dataset, "
    "including survival status, passenger class, demographics, and travel "
    "details.",
    "Create realistic Titanic passenger profiles with all relevant attributes "
    "including whether they survived the disaster.",
    "Generate: has_survived (survival outcome), passenger_class (1st/2nd/3rd "
    "class), is_male (gender), age, sibsp (siblings/spouses aboard), parch "
    "(parents/children aboard), fare (ticket price), embarked (port of "
    "embarkation).",
)
SURVIVAL_DESCRIPTIONS = (
    "Given passenger information including class, demographics, family size, "
    "and travel details, predict whether the passenger survived the Titanic "
    "disaster.",
    "Predict Titanic passenger survival based on socioeconomic status, "
    "demographics, and family connections.",
    "Given: passenger_class (1st/2nd/3rd class), is_male (gender), age, sibsp "
    "(siblings/spouses), parch (parents/children), fare (ticket price), "
    "embarked (port). Generate: has_survived (survival status).",
)


def _passengers(ctx: BuildContext, task: str) -> list[dict[str, Any]]:
  """Rows with `has_survived` as the string `0`/`1`, as the release has it.

  Other fields keep their file types, so JSON shows e.g. `"is_male": true`,
  `"age": 22.0` and `null` for a missing value, as the release's json.dumps
  of the pandas row does.
  """
  (path,) = _common.raw_paths(task, ctx, (RAW,))
  rows = []
  for index, rec in enumerate(_common.read_parquet(path,
                                                   (TARGET, *FEATURES))):
    survived = rec[TARGET]
    if isinstance(survived, bool) or survived not in (0, 1):
      raise _common.bad_value(path, f"row {index}", TARGET,
                              f"expected 0 or 1, got {survived!r}")
    rows.append({**rec, TARGET: str(survived)})
  return rows


def generate_all_variables(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: each passenger's eight fields as one JSON output."""
  rows = [Row(output=serialise_fields(p))
          for p in _passengers(ctx, "titanic_all_variables")]
  yield Instance(id="all", rows=rows)


def generate_survival_prediction(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: seven fields (JSON) -> `0` / `1`."""
  rows = [Row(input=serialise_fields({f: p[f] for f in FEATURES}),
              output=p[TARGET])
          for p in _passengers(ctx, "titanic_survival_prediction")]
  yield Instance(id="all", rows=rows)


TASKS = [
    TaskSpec(name="titanic_all_variables", suite_split="train", kind="icl",
             generate=generate_all_variables, mean_k=64, chunk_all_rows=True,
             default_descriptions=ALL_VARIABLES_DESCRIPTIONS,
             raw_files=(RAW,),
             about="Titanic: whole passenger records, survival included."),
    TaskSpec(name="titanic_survival_prediction", suite_split="train",
             kind="icl", generate=generate_survival_prediction, mean_k=64,
             chunk_all_rows=True, default_descriptions=SURVIVAL_DESCRIPTIONS,
             raw_files=(RAW,),
             about="Titanic: a passenger's class, sex, age, family, fare "
             "and port -> survived (0/1)."),
]
