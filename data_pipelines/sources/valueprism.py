"""ValuePrism (Sorensen et al., 2024): values, rights and duties for situations.

Raw file: `valueprism/full.csv`, the file `full/full.csv` of the Hugging Face
dataset `allenai/ValuePrism` (gated behind the AI2 ImpACT licence, so the
user downloads it). One row per (situation, consideration); columns
`situation`, `vrd` (`Value`, `Right` or `Duty`), `text` (the consideration,
e.g. `Autonomy`), `explanation`, `valence` (`Supports`, `Opposes`, `Either`).

Four train tasks (docs/method.md#valueprism):
  valueprism_situation: generate situations (all of them, in chunks).
  valueprism_vrd: situation -> the Python repr of its list of
    {text, vrd, explanation, valence} dicts.
  valueprism_vrds_noncontextual: lists of Value / Right / Duty names.
  valueprism_misc: for up to 400 frequent values, situations involving it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

RAW = RawFile(
    path="valueprism/full.csv",
    published_at="https://huggingface.co/datasets/allenai/ValuePrism (file "
    "full/full.csv; gated: accept the AI2 ImpACT licence first)",
    download=Download(
        target="valueprism/full.csv",
        manual="Log in to https://huggingface.co/datasets/allenai/ValuePrism "
        "and accept the AI2 ImpACT licence, then download the file "
        "full/full.csv (e.g. `huggingface-cli download allenai/ValuePrism "
        "full/full.csv --repo-type dataset`) and save it as "
        "<raw_dir>/valueprism/full.csv."))
COLUMNS = ("situation", "vrd", "text", "explanation", "valence")
KINDS = ("Value", "Right", "Duty")
MAX_VALUES = 400  # valueprism_misc: instances (values) kept
MIN_VALUE_ROWS = 10  # valueprism_misc: a value needs this many Value rows

SITUATION_DESCRIPTIONS = ("Generate a situation.",
                          "Situations to do moral reasoning over")
VRD_DESCRIPTION = (
    "You will be given a situation and be asked to do moral reasoning over "
    "it. For each situation, you will output a list of dictionaries, each "
    "containing the following keys:\n-text: A relevant moral consideration "
    "or factor.\n-vrd: Whether the consideration is a value, a right, or a "
    "duty.\n-explanation: A short explanation of why the consideration is "
    "relevant to the situation.\n-valence: The valence of the consideration "
    "(Supports, Opposes, or Neutral). It should ideally contain at least 3-8 "
    "moral considerations.")
NONCONTEXTUAL_DESCRIPTION = "{} (wrt moral reasoning)"
MISC_DESCRIPTION = "Generate a situation relating to {}."


def _rows(ctx: BuildContext, task: str) -> list[dict[str, Any]]:
  """The file's rows with a situation and a text; missing cells are None.

  The release reads the file with pandas, so an empty `situation` or `text`
  would become a `nan` situation or name; we leave such rows out
  (docs/method.md#valueprism).
  """
  (path,) = _common.raw_paths(task, ctx, (RAW,))
  rows = []
  for line, rec in _common.read_csv(path, COLUMNS):
    if rec["vrd"] not in KINDS:
      raise _common.bad_value(path, f"line {line}", "vrd",
                              f"expected one of {list(KINDS)}, got "
                              f"{rec['vrd']!r}")
    cells = {c: (None if rec[c].strip() in _common.MISSING else rec[c])
             for c in COLUMNS}
    if cells["situation"] is None or cells["text"] is None:
      continue
    rows.append(cells)
  return rows


def generate_situation(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every distinct situation (outputs only)."""
  rows = _rows(ctx, "valueprism_situation")
  situations = dict.fromkeys(r["situation"] for r in rows)
  yield Instance(id="all", rows=[Row(output=s) for s in situations])


def generate_vrd(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: situation -> repr of its list of consideration dicts."""
  task = "valueprism_vrd"
  by_situation: dict[str, list[dict[str, Any]]] = {}
  for r in _rows(ctx, task):
    by_situation.setdefault(r["situation"], []).append(
        {"text": r["text"], "vrd": r["vrd"],
         "explanation": r["explanation"], "valence": r["valence"]})
  rng = _common.seeded_rng(ctx, task)
  rows = []
  for situation, considerations in by_situation.items():
    # The release shuffles the file's rows once before grouping, so each
    # list is in one fixed random order; a seeded shuffle per list does the
    # same. A missing explanation or valence prints as None where the
    # release (pandas) prints nan (docs/method.md#valueprism).
    rng.shuffle(considerations)
    rows.append(Row(input=situation, output=str(considerations)))
  yield Instance(id="all", rows=rows)


def generate_vrds_noncontextual(ctx: BuildContext) -> Iterator[Instance]:
  """Three instances, Value / Right / Duty: their distinct names."""
  rows = _rows(ctx, "valueprism_vrds_noncontextual")
  for kind in KINDS:
    names = dict.fromkeys(r["text"] for r in rows if r["vrd"] == kind)
    if names:
      yield Instance(id=kind, rows=[Row(output=n) for n in names],
                     descriptions=[NONCONTEXTUAL_DESCRIPTION.format(kind)])


def generate_misc(ctx: BuildContext) -> Iterator[Instance]:
  """Per frequent value (seeded choice of MAX_VALUES), its situations."""
  task = "valueprism_misc"
  rows = _rows(ctx, task)
  counts: dict[str, int] = {}
  for r in rows:
    if r["vrd"] == "Value":
      counts[r["text"]] = counts.get(r["text"], 0) + 1
  values = [v for v, n in counts.items() if n >= MIN_VALUE_ROWS]
  # The release shuffles the frequent values and keeps the first
  # MAX_VALUES; so do we, with our own seeded stream.
  _common.seeded_rng(ctx, task).shuffle(values)
  situations: dict[str, dict[str, None]] = {v: {} for v in values[:MAX_VALUES]}
  for r in rows:
    # As in the release, a value's situations include those where the same
    # name appears as a right or duty.
    if r["text"] in situations:
      situations[r["text"]][r["situation"]] = None
  for value, found in situations.items():
    yield Instance(id=value, rows=[Row(output=s) for s in found],
                   descriptions=[MISC_DESCRIPTION.format(value)])


TASKS = [
    TaskSpec(name="valueprism_situation", suite_split="train", kind="icl",
             generate=generate_situation, mean_k=256, chunk_all_rows=True,
             default_descriptions=SITUATION_DESCRIPTIONS, raw_files=(RAW,),
             about="ValuePrism: situations to do moral reasoning over."),
    TaskSpec(name="valueprism_vrd", suite_split="train", kind="icl",
             generate=generate_vrd, mean_k=32, chunk_all_rows=True,
             max_episodes=500, default_descriptions=(VRD_DESCRIPTION,),
             raw_files=(RAW,),
             about="ValuePrism: a situation -> its values, rights and duties "
             "with explanations and valence."),
    TaskSpec(name="valueprism_vrds_noncontextual", suite_split="train",
             kind="icl", generate=generate_vrds_noncontextual, mean_k=256,
             chunk_all_rows=True, raw_files=(RAW,),
             # Three unlike instances (values, rights, duties): none is held
             # out, or one kind would be missing from training.
             test_fraction=0.0,
             about="ValuePrism: names of values, of rights, or of duties."),
    TaskSpec(name="valueprism_misc", suite_split="train", kind="icl",
             generate=generate_misc, mean_k=32, raw_files=(RAW,),
             about="ValuePrism: situations that involve one given value."),
]
