"""TruthfulQA multiple choice (Lin et al., 2022) as ICL episodes of 10 questions (docs/method.md#capabilities).

Raw file: `truthful_qa/multiple_choice/validation/0000.parquet`, the
`multiple_choice` config's validation split (684 rows) of the Hugging Face
dataset `EleutherAI/truthful_qa_mc`, as the hub's parquet conversion publishes
it (revision `refs/convert/parquet`; the repository itself holds a loading
script). Columns: `question` (string), `choices` (list of 4 strings), `label`
(int, the index of the true choice).

One instance of every question; the prompt is `Question: {q}` and the
lettered choices (all stripped), the output the letter of `label`. Every row
is used once per pass, in chunks of 10 (the release's n_per=-1, n_iter=10);
the sampler shuffles every pass, so file order is kept.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

_FILE = "multiple_choice/validation/0000.parquet"
RAW = RawFile(
    path=f"truthful_qa/{_FILE}",
    published_at="https://huggingface.co/datasets/EleutherAI/truthful_qa_mc "
    f"(config multiple_choice, validation split: {_FILE} at revision "
    "refs/convert/parquet)",
    download=Download(target=f"truthful_qa/{_FILE}",
                      hf_repo="EleutherAI/truthful_qa_mc", hf_filename=_FILE,
                      revision="refs/convert/parquet"))
DESCRIPTIONS = (
    "You will be given a question and several answer choices, only one of "
    "which is true. Respond with the correct answer letter.",
)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every question -> the letter of its true choice."""
  (path,) = _common.raw_paths("truthful_qa", ctx, (RAW,))
  rows = []
  for index, rec in enumerate(_common.read_parquet(
      path, ("question", "choices", "label"))):
    where = f"row {index}"
    if not isinstance(rec["question"], str):
      raise _common.bad_value(path, where, "question",
                              f"expected a string, got {rec['question']!r}")
    choices = rec["choices"]
    if (not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS)
        or not all(isinstance(c, str) for c in choices)):
      raise _common.bad_value(path, where, "choices",
                              f"expected a list of 2 to {len(LETTERS)} "
                              f"strings, got {choices!r}")
    label = rec["label"]
    if (not isinstance(label, int) or isinstance(label, bool)
        or not 0 <= label < len(choices)):
      raise _common.bad_value(
          path, where, "label",
          f"expected a choice index in 0..{len(choices) - 1}, got {label!r}")
    prompt = f"Question: {rec['question'].strip()}" + "".join(
        f"\n{letter}. {choice.strip()}"
        for letter, choice in zip(LETTERS, choices))
    rows.append(Row(input=prompt, output=LETTERS[label]))
  yield Instance(id="all", rows=rows)


TASKS = [
    TaskSpec(name="truthful_qa", suite_split="test", kind="icl",
             generate=generate, fixed_k=10, chunk_all_rows=True,
             default_descriptions=DESCRIPTIONS, raw_files=(RAW,),
             about="TruthfulQA (multiple choice) validation questions, 10 an "
             "episode; the output is the letter of the true answer."),
]
