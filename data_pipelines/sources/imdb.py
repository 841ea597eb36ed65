"""IMDB movie reviews (Maas et al., 2011) as sentiment classification.

Raw file: `imdb/plain_text/train-00000-of-00001.parquet`, the file of that
path in the Hugging Face dataset `stanfordnlp/imdb` (25,000 reviews).
Columns `text` (the review) and `label` (0 = negative, 1 = positive).

One train task, `imdb` (docs/method.md#imdb; the release names it
`imdb_inverse` although its labels are not inverted): review -> `negative`
or `positive`.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

_FILE = "plain_text/train-00000-of-00001.parquet"
RAW = RawFile(
    path=f"imdb/{_FILE}",
    published_at=f"https://huggingface.co/datasets/stanfordnlp/imdb (file "
    f"{_FILE})",
    download=Download(target=f"imdb/{_FILE}", hf_repo="stanfordnlp/imdb",
                      hf_filename=_FILE))
LABELS = {0: "negative", 1: "positive"}
DESCRIPTION = ("Classify whether the following movie reviews as negative or "
               "positive.")


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every review -> its sentiment word."""
  (path,) = _common.raw_paths("imdb", ctx, (RAW,))
  rows = []
  for index, rec in enumerate(_common.read_parquet(path, ("text", "label"))):
    label = rec["label"]
    # The release maps every label other than 0 to positive; anything but
    # 0/1 (e.g. the unsupervised split's -1) is refused here instead.
    if isinstance(label, bool) or label not in LABELS:
      raise _common.bad_value(path, f"row {index}", "label",
                              f"expected 0 or 1, got {label!r}")
    if not isinstance(rec["text"], str):
      raise _common.bad_value(path, f"row {index}", "text",
                              f"expected a string, got {rec['text']!r}")
    rows.append(Row(input=rec["text"], output=LABELS[label]))
  yield Instance(id="all", rows=rows)


TASKS = [
    TaskSpec(name="imdb", suite_split="train", kind="icl", generate=generate,
             mean_k=128, episodes_per_instance=200,
             default_descriptions=(DESCRIPTION,), raw_files=(RAW,),
             about="IMDB: a movie review -> negative or positive."),
]
