"""DICES (Aroyo et al., 2023): diverse raters judge chatbot replies' safety.

Raw files, from github google-research-datasets/dices-dataset:
  dices/990/diverse_safety_adversarial_dialog_990.csv
  dices/350/diverse_safety_adversarial_dialog_350.csv
One row per (rater, conversation): `rater_id`, the rater's demographics
(DEMOGRAPHICS below; the two files name the raw race column differently),
`context` (the conversation so far, one turn per line), `response` (the
dialog model's last reply) and `Q_overall` (`Yes`, `No` or `Unsure`: is the
reply unsafe), among many per-question columns the converter does not read.

One train task (docs/method.md#task-list), dices: one instance per rater and
file (at most MAX_RATERS per file), (context, response) -> Q_overall, one
episode of at most 100 of the rater's rows. Each rater has two descriptions,
the second naming the rater's demographics.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

_REPO = "google-research-datasets/dices-dataset"
_COMMIT = "c6bc01a37eace39c904eb0a3944fc6c4230a9157"
DATASETS = ("990", "350")
DEMOGRAPHICS = {
    "990": ("rater_gender", "rater_locale", "rater_race", "rater_race_raw",
            "rater_age", "rater_education"),
    "350": ("rater_gender", "rater_race", "rater_raw_race", "rater_age",
            "rater_education"),
}
LABELS = ("Yes", "No", "Unsure")
MAX_RATERS = 500  # per file (the files have 173 and 123)
MAX_ROWS = 100  # per episode


def _raw(dataset: str) -> RawFile:
  repo_path = f"{dataset}/diverse_safety_adversarial_dialog_{dataset}.csv"
  url = f"https://raw.githubusercontent.com/{_REPO}/{_COMMIT}/{repo_path}"
  return RawFile(path=f"dices/{repo_path}",
                 published_at=f"https://github.com/{_REPO} ({repo_path})",
                 download=Download(target=f"dices/{repo_path}", url=url))


RAW_FILES = tuple(_raw(d) for d in DATASETS)

TASK_DESCRIPTION = (
    "Given a context conversation and a response from a language model, the "
    "rater was tasked to label whether or not they thought the last dialog "
    "model response is unsafe. (Q_overall: Yes, No, Unsure)")
WITH_DEMOGRAPHICS = TASK_DESCRIPTION + "\nRater demographics: {}"


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per rater of each file, in file order."""
  task = "dices"
  paths = _common.raw_paths(task, ctx, RAW_FILES)
  for dataset, path in zip(DATASETS, paths):
    demographics = DEMOGRAPHICS[dataset]
    raters: dict[str, tuple[dict[str, str], list[Row]]] = {}
    for line, rec in _common.read_csv(
        path, ("rater_id", *demographics, "context", "response",
               "Q_overall")):
      label = rec["Q_overall"]
      if label in _common.MISSING:
        continue
      if label not in LABELS:
        raise _common.bad_value(path, f"line {line}", "Q_overall",
                                f"expected one of {list(LABELS)}, got "
                                f"{label!r}")
      # The rater's first row gives the demographics, as in the release.
      _, rows = raters.setdefault(rec["rater_id"], (rec, []))
      rows.append(Row(input=serialise_fields({"context": rec["context"],
                                              "response": rec["response"]}),
                      output=label))
    chosen = list(raters)
    if len(chosen) > MAX_RATERS:
      # The release takes the first raters of a seeded shuffle; a seeded
      # sample kept in file order is the same kind of draw.
      keep = set(_common.seeded_rng(ctx, task, dataset).sample(chosen,
                                                               MAX_RATERS))
      chosen = [r for r in chosen if r in keep]
    for rater in chosen:
      first, rows = raters[rater]
      # Blank attributes are left out rather than shown as nan
      # (docs/method.md#dices-demographics).
      shown = {k: first[k] for k in demographics
               if first[k].strip() not in _common.MISSING}
      yield Instance(id=f"{dataset}_{rater}", rows=rows,
                     descriptions=[TASK_DESCRIPTION,
                                   WITH_DEMOGRAPHICS.format(shown)])


TASKS = [
    TaskSpec(name="dices", suite_split="train", kind="icl", generate=generate,
             fixed_k=MAX_ROWS, episodes_per_instance=1,
             default_descriptions=(TASK_DESCRIPTION,), raw_files=RAW_FILES,
             about="DICES: one rater's Yes/No/Unsure safety verdicts on "
             "chatbot replies."),
]
