"""DROP (Dua et al., 2019) as ICL episodes of 10 questions (docs/method.md#capabilities).

Raw file: `drop/data/validation-00000-of-00001.parquet`, the validation split
(9,535 rows) of the Hugging Face dataset `ucinlp/drop`, at its path in that
repository. Columns used: `passage`, `question` (strings), `answers_spans`
(struct of `spans` and `types`, lists of strings).

One instance of every question; the prompt is `Passage: …` and `Question: …`
(both stripped), the output the first non-blank gold span, stripped — free
text, so the capability suite scores it by exact match. Every row is used
once per pass, in chunks of 10 (the release's n_per=-1, n_iter=10); the
sampler shuffles every pass, so file order is kept.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

_FILE = "data/validation-00000-of-00001.parquet"
RAW = RawFile(
    path=f"drop/{_FILE}",
    published_at=f"https://huggingface.co/datasets/ucinlp/drop (file {_FILE})",
    # No commit of ucinlp/drop is known here: the repository's default
    # branch.
    download=Download(target=f"drop/{_FILE}", hf_repo="ucinlp/drop",
                      hf_filename=_FILE))
DESCRIPTIONS = (
    "Answer the question based on the passage. Respond with just the answer, "
    "usually a short word or phrase, either extracted from the passage or "
    "deduced from the information in the passage.",
)


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every passage + question -> its first gold span."""
  (path,) = _common.raw_paths("drop", ctx, (RAW,))
  rows = []
  for index, rec in enumerate(_common.read_parquet(
      path, ("passage", "question", "answers_spans.spans"))):
    where = f"row {index}"
    for column in ("passage", "question"):
      if not isinstance(rec[column], str):
        raise _common.bad_value(path, where, column,
                                f"expected a string, got {rec[column]!r}")
    spans = rec["answers_spans.spans"]
    if not isinstance(spans, list) or not all(isinstance(s, str)
                                              for s in spans):
      raise _common.bad_value(path, where, "answers_spans.spans",
                              f"expected a list of strings, got {spans!r}")
    # The release takes the first span that is not blank once stripped.
    answers = [s.strip() for s in spans if s.strip()]
    if not answers:
      raise _common.bad_value(path, where, "answers_spans.spans",
                              f"no non-blank answer span in {spans!r}")
    prompt = (f"Passage: {rec['passage'].strip()}\n"
              f"Question: {rec['question'].strip()}")
    rows.append(Row(input=prompt, output=answers[0]))
  yield Instance(id="all", rows=rows)


TASKS = [
    TaskSpec(name="drop", suite_split="test", kind="icl", generate=generate,
             fixed_k=10, chunk_all_rows=True,
             default_descriptions=DESCRIPTIONS, raw_files=(RAW,),
             about="DROP validation questions, 10 an episode; the output is "
             "the first gold answer span (free text)."),
]
