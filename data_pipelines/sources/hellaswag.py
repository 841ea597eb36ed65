"""HellaSwag (Zellers et al., 2019) as ICL episodes of 20 questions (docs/method.md#capabilities).

Raw file: `hellaswag/data/validation-00000-of-00001.parquet`, the validation
split (10,042 rows) of the Hugging Face dataset `Rowan/hellaswag`, at its path
in that repository. Columns used: `activity_label` (string), `ctx` (string),
`endings` (list of 4 strings), `label` (the index of the right ending, stored
as a string, e.g. "3").

One instance of every question; the prompt is the activity, the context and
the lettered endings, the output the letter of the right ending. Every row is
used once per pass, in chunks of 20 (the release's n_per=-1, n_iter=20). The
release shuffles the rows (seed 42) before chunking; our chunked sampler
shuffles every pass, so the converter keeps file order.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

_FILE = "data/validation-00000-of-00001.parquet"
# A commit of Rowan/hellaswag after its conversion to parquet (found pinned
# in a public benchmark script; the file layout is that of the conversion).
_REVISION = "218ec52e09a7e7462a5400043bb9a69a41d06b76"
RAW = RawFile(
    path=f"hellaswag/{_FILE}",
    published_at="https://huggingface.co/datasets/Rowan/hellaswag (file "
    f"{_FILE})",
    download=Download(target=f"hellaswag/{_FILE}", hf_repo="Rowan/hellaswag",
                      hf_filename=_FILE, revision=_REVISION))
DESCRIPTIONS = (
    "Given a context and four possible endings, output the letter of the "
    "ending that best completes the context.",
    "Respond with the single uppercase letter for the correct choice.",
)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _prompt(activity: str, ctx: str, endings: list[str]) -> str:
  # As the release: the Activity / Context lines only when non-empty.
  lines = []
  if activity:
    lines.append(f"Activity: {activity}")
  if ctx:
    lines.append(f"Context: {ctx}")
  lines.append("Choose the option that best completes the description:")
  lines.extend(f"{letter}. {ending}"
               for letter, ending in zip(LETTERS, endings))
  return "\n".join(lines)


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every question -> the letter of its right ending."""
  (path,) = _common.raw_paths("hellaswag", ctx, (RAW,))
  rows = []
  for index, rec in enumerate(_common.read_parquet(
      path, ("activity_label", "ctx", "endings", "label"))):
    where = f"row {index}"
    for column in ("activity_label", "ctx"):
      if not isinstance(rec[column], str):
        raise _common.bad_value(path, where, column,
                                f"expected a string, got {rec[column]!r}")
    endings = rec["endings"]
    if (not isinstance(endings, list) or not 2 <= len(endings) <= len(LETTERS)
        or not all(isinstance(e, str) for e in endings)):
      raise _common.bad_value(path, where, "endings",
                              f"expected a list of 2 to {len(LETTERS)} "
                              f"strings, got {endings!r}")
    label = rec["label"]
    # The hub stores the label as a string ("0".."3"); the test split's is
    # empty (unlabelled), which is an error here.
    try:
      answer = int(str(label).strip())
    except ValueError:
      answer = -1
    if isinstance(label, bool) or not 0 <= answer < len(endings):
      raise _common.bad_value(
          path, where, "label",
          f"expected an ending index in 0..{len(endings) - 1}, got {label!r}")
    rows.append(Row(input=_prompt(rec["activity_label"], rec["ctx"], endings),
                    output=LETTERS[answer]))
  yield Instance(id="all", rows=rows)


TASKS = [
    TaskSpec(name="hellaswag", suite_split="test", kind="icl",
             generate=generate, fixed_k=20, chunk_all_rows=True,
             default_descriptions=DESCRIPTIONS, raw_files=(RAW,),
             about="HellaSwag validation questions, 20 an episode; the "
             "output is the letter of the right ending."),
]
