"""ValueConsistency (Moore et al., 2024): value-laden questions in four languages.

Raw file: `valueconsistency/valueconsistency.jsonl`, the file of the same
name in the Hugging Face dataset `jlcmoore/ValueConsistency` (its `train`
split). JSON lines with `question`, `rephrase` (whether the question is a
paraphrase of `original`), `controversial` (bool), `language`, `country`,
and fields this converter does not use (`topic`, `original`, `options`, ...).

One train task (docs/method.md#valueconsistency): given whether a question is
controversial, its language and its country, generate a question; only the
original (non-paraphrased) questions are used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

RAW = RawFile(
    path="valueconsistency/valueconsistency.jsonl",
    published_at="https://huggingface.co/datasets/jlcmoore/ValueConsistency "
    "(file valueconsistency.jsonl)",
    download=Download(target="valueconsistency/valueconsistency.jsonl",
                      hf_repo="jlcmoore/ValueConsistency",
                      hf_filename="valueconsistency.jsonl"))
GIVEN = ("controversial", "language", "country")
DESCRIPTIONS = (
    "Value-based questions.",
    "Value-based questions given whether the question is controversial, the "
    "language it is asked in, and the country it is for.",
)


def _records(path: str, keys: Sequence[str]
             ) -> Iterator[tuple[int, dict[str, Any]]]:
  """(line, record) of each JSON-lines record; a missing key is an error."""
  for line, rec in _common.read_jsonl(path):
    missing = [k for k in keys if k not in rec]
    if missing:
      raise ValueError(f"{path}, line {line}: missing key(s) {missing}")
    yield line, rec


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: {controversial, language, country} -> question."""
  (path,) = _common.raw_paths("valueconsistency", ctx, (RAW,))
  rows = []
  for line, rec in _records(path, ("question", "rephrase", *GIVEN)):
    where = f"line {line}"
    rephrase = rec["rephrase"]
    # The dataset card says bool; the authors' GitHub copy writes 0/1.
    if rephrase not in (True, False, 0, 1):
      raise _common.bad_value(path, where, "rephrase",
                              f"expected true/false or 0/1, got {rephrase!r}")
    if rephrase:
      continue
    if not isinstance(rec["question"], str) or not rec["question"].strip():
      raise _common.bad_value(path, where, "question",
                              f"expected a question, got {rec['question']!r}")
    rows.append(Row(input=serialise_fields({k: rec[k] for k in GIVEN}),
                    output=rec["question"]))
  yield Instance(id="all", rows=rows)


TASKS = [
    TaskSpec(name="valueconsistency", suite_split="train", kind="icl",
             generate=generate, mean_k=64, chunk_all_rows=True,
             default_descriptions=DESCRIPTIONS, raw_files=(RAW,),
             about="ValueConsistency: value-laden questions given "
             "controversy, language and country."),
]
