"""MMLU (Hendrycks et al., 2021) as ICL episodes of 20 questions (docs/method.md#capabilities).

Raw file: `mmlu/all/test-00000-of-00001.parquet`, the `all` config's test
split of the Hugging Face dataset `cais/mmlu` (14,042 rows), stored at the
same path as in that repository. Columns: `question` (string), `choices`
(list of strings), `answer` (int, the index of the correct choice).
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

RAW = RawFile(
    path="mmlu/all/test-00000-of-00001.parquet",
    published_at="https://huggingface.co/datasets/cais/mmlu (file "
    "all/test-00000-of-00001.parquet)",
    download=Download(target="mmlu/all/test-00000-of-00001.parquet",
                      hf_repo="cais/mmlu",
                      hf_filename="all/test-00000-of-00001.parquet"))
DESCRIPTION = ("Given a question and a list of choices, return the correct "
               "answer choice.")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every question -> the letter of its answer."""
  (path,) = _common.raw_paths("mmlu", ctx, (RAW,))
  rows = []
  for index, rec in enumerate(_common.read_parquet(
      path, ("question", "choices", "answer"))):
    where = f"row {index}"
    choices = rec["choices"]
    if (not isinstance(choices, list) or not choices
        or len(choices) > len(LETTERS)
        or not all(isinstance(c, str) for c in choices)):
      raise _common.bad_value(path, where, "choices",
                              f"expected a list of 1 to {len(LETTERS)} "
                              f"strings, got {choices!r}")
    answer = rec["answer"]
    if (not isinstance(answer, int) or isinstance(answer, bool)
        or not 0 <= answer < len(choices)):
      raise _common.bad_value(
          path, where, "answer",
          f"expected a choice index in 0..{len(choices) - 1}, got {answer!r}")
    if not isinstance(rec["question"], str):
      raise _common.bad_value(path, where, "question",
                              f"expected a string, got {rec['question']!r}")
    prompt = f"Question: {rec['question']}" + "".join(
        f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, choices))
    rows.append(Row(input=prompt, output=LETTERS[answer]))
  yield Instance(id="all", rows=rows)


TASKS = [
    TaskSpec(name="mmlu", suite_split="test", kind="icl", generate=generate,
             fixed_k=20, episodes_per_instance=1000,  # fresh shuffles
             default_descriptions=(DESCRIPTION,),
             raw_files=(RAW,),
             about="MMLU test questions, 20 an episode; the output is the "
             "answer letter."),
]
