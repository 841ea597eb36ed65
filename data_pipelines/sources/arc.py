"""ARC-Challenge (Clark et al., 2018) as ICL episodes of 10 questions (docs/method.md#capabilities).

Raw file: `arc/ARC-Challenge/test-00000-of-00001.parquet`, the `ARC-Challenge`
config's test split (1,172 rows) of the Hugging Face dataset
`allenai/ai2_arc`, at its path in that repository. Columns: `id`, `question`
(string), `choices` (struct of `text` and `label`, lists of strings),
`answerKey` (string, one of the labels).

One instance of every question; the prompt is `Question: {stem}` and one line
`{label}. {text}` per choice, labels as the file gives them (`A`-`E`, or
`1`-`4` for a few questions); the output is `answerKey`. Every row is used
once per pass, in chunks of 10 (the release's n_per=-1, n_iter=10); the
sampler shuffles every pass, so file order is kept.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

_FILE = "ARC-Challenge/test-00000-of-00001.parquet"
# A commit of allenai/ai2_arc holding the parquet files (pinned by several
# public evaluation scripts).
_REVISION = "210d026faf9955653af8916fad021475a3f00453"
RAW = RawFile(
    path=f"arc/{_FILE}",
    published_at="https://huggingface.co/datasets/allenai/ai2_arc (file "
    f"{_FILE})",
    download=Download(target=f"arc/{_FILE}", hf_repo="allenai/ai2_arc",
                      hf_filename=_FILE, revision=_REVISION))
DESCRIPTIONS = (
    "Given a question and multiple choice answers, return the correct answer "
    "letter.",
    "Respond with only the uppercase letter corresponding to the correct "
    "option.",
)


def _strings(path: str, where: str, column: str, value) -> list[str]:
  if (not isinstance(value, list) or len(value) < 2
      or not all(isinstance(v, str) for v in value)):
    raise _common.bad_value(path, where, column,
                            f"expected a list of at least 2 strings, got "
                            f"{value!r}")
  return value


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every question -> its answer label."""
  (path,) = _common.raw_paths("arc", ctx, (RAW,))
  rows = []
  for index, rec in enumerate(_common.read_parquet(
      path, ("question", "choices.text", "choices.label", "answerKey"))):
    where = f"row {index}"
    for column in ("question", "answerKey"):
      if not isinstance(rec[column], str):
        raise _common.bad_value(path, where, column,
                                f"expected a string, got {rec[column]!r}")
    texts = _strings(path, where, "choices.text", rec["choices.text"])
    labels = [label.strip() for label in
              _strings(path, where, "choices.label", rec["choices.label"])]
    if len(labels) != len(texts):
      raise _common.bad_value(path, where, "choices.label",
                              f"{len(labels)} labels for {len(texts)} texts")
    answer = rec["answerKey"].strip()
    if answer not in labels:
      raise _common.bad_value(path, where, "answerKey",
                              f"{answer!r} is not one of the labels {labels}")
    # Stem, labels and texts stripped, as the release does.
    prompt = f"Question: {rec['question'].strip()}" + "".join(
        f"\n{label}. {text.strip()}" for label, text in zip(labels, texts))
    rows.append(Row(input=prompt, output=answer))
  yield Instance(id="all", rows=rows)


TASKS = [
    TaskSpec(name="arc", suite_split="test", kind="icl", generate=generate,
             fixed_k=10, chunk_all_rows=True,
             default_descriptions=DESCRIPTIONS, raw_files=(RAW,),
             about="ARC-Challenge test questions, 10 an episode; the output "
             "is the answer label."),
]
