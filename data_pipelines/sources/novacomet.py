"""NovaCOMET (West et al., 2023) commonsense inferences: two test tasks.

Raw file: the `train` split of the Hugging Face dataset tsor13/novacomet, one
parquet file with string columns `premise` (an event or situation) and
`hypothesis` (one commonsense inference about it); a premise repeats once per
inference.

novacomet_premise (docs/method.md#novacomet): generate premises like these
(the distinct premises, outputs only). novacomet_hypothesis: given a premise,
generate the JSON list of its hypotheses. The release registers these keys
with swapped internal names (the premise generator calls itself
`novacomet_hypothesis` and vice versa); the keys are what matter and we name
each task by its key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

HF_REPO = "tsor13/novacomet"
# The file `load_dataset("tsor13/novacomet", split="train")` reads: the hub's
# conventional name for a one-shard train split.
HF_FILENAME = "data/train-00000-of-00001.parquet"
TRAIN = RawFile(
    path="novacomet/" + HF_FILENAME,
    published_at=(f"https://huggingface.co/datasets/{HF_REPO} (split train, "
                  f"{HF_FILENAME})"),
    download=Download(target="novacomet/" + HF_FILENAME, hf_repo=HF_REPO,
                      hf_filename=HF_FILENAME))

PREMISE_DESCRIPTIONS = (
    "Generate an event.",
    "Events",
    "Generate a list of diverse events.",
    "Situations about which commonsense reasoning could be required.",
    "Single sentence events",
)
# As released: both promise hypotheses "separated by semicolons" although
# the output is a JSON list. Kept word for word: this is a test task and these
# are the descriptions its published numbers were measured with
# (docs/method.md#novacomet).
HYPOTHESIS_DESCRIPTIONS = (
    "Given a premise (or situation), generate a list of commonsense "
    "hypotheses separated by semicolons.",
    "You will be given a premise. Generate a list of around 8-10 hypotheses "
    "(or inferences) separated by semicolons.",
)


def _pairs(task: str, ctx: BuildContext) -> list[tuple[str, str | None]]:
  """(premise, hypothesis) per row in file order; rows without a premise go.

  A null hypothesis is kept as None (its premise still counts); a cell that
  is not text is an error naming the row and column.
  """
  (path,) = _common.raw_paths(task, ctx, (TRAIN,))
  pairs = []
  for index, rec in enumerate(_common.read_parquet(path,
                                                   ("premise", "hypothesis"))):
    for column in ("premise", "hypothesis"):
      value = rec[column]
      if value is not None and not isinstance(value, str):
        raise _common.bad_value(path, f"row {index}", column,
                                f"expected text, got "
                                f"{type(value).__name__} {value!r}")
    if rec["premise"] is not None:
      pairs.append((rec["premise"], rec["hypothesis"]))
  return pairs


def generate_premise(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: each distinct premise once, in order of first appearance."""
  premises = dict.fromkeys(p for p, _ in _pairs("novacomet_premise", ctx))
  yield Instance(id="all", rows=[Row(output=p) for p in premises])


def generate_hypothesis(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: premise -> json.dumps of its hypotheses, in file order.

  The release groups on premise and json.dumps the list (ASCII-escaped);
  a null hypothesis would print as `null` there, and is left out here
  (docs/method.md#novacomet). A premise with no hypothesis left is dropped.
  """
  groups: dict[str, list[str]] = {}
  for premise, hypothesis in _pairs("novacomet_hypothesis", ctx):
    hypotheses = groups.setdefault(premise, [])
    if hypothesis is not None:
      hypotheses.append(hypothesis)
  yield Instance(id="all", rows=[
      Row(input=premise, output=json.dumps(hypotheses))
      for premise, hypotheses in groups.items() if hypotheses])


TASKS = [
    # Release: SingleVariableIID of the unique premises, n_per=-1, GP(64).
    TaskSpec(name="novacomet_premise", suite_split="test", kind="icl",
             generate=generate_premise, mean_k=64, chunk_all_rows=True,
             default_descriptions=PREMISE_DESCRIPTIONS, raw_files=(TRAIN,),
             about="NovaCOMET: generate everyday events (premises)."),
    # Release: GenericMultivariate premise -> hypotheses, n_per=-1, GP(32).
    TaskSpec(name="novacomet_hypothesis", suite_split="test", kind="icl",
             generate=generate_hypothesis, mean_k=32, chunk_all_rows=True,
             default_descriptions=HYPOTHESIS_DESCRIPTIONS,
             raw_files=(TRAIN,),
             about="NovaCOMET: given an event, list commonsense inferences "
             "about it (a JSON list)."),
]
