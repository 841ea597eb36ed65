"""WinoGrande (Sakaguchi et al., 2020) as ICL episodes of 10 questions (docs/method.md#capabilities).

Raw file: `winogrande/winogrande_xl/validation-00000-of-00001.parquet`, the
`winogrande_xl` config's validation split (1,267 rows) of the Hugging Face
dataset `allenai/winogrande`, at its path in that repository. Columns:
`sentence` (string with one `_` blank), `option1`, `option2` (strings),
`answer` (the right option, "1" or "2", stored as a string).

One instance of every sentence; the prompt shows the sentence with the blank
widened to `_____` and the two options as `A.` / `B.`, the output is the
letter. Every row is used once per pass, in chunks of 10 (the release's
n_per=-1, n_iter=10); the sampler shuffles every pass, so file order is kept.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

_FILE = "winogrande_xl/validation-00000-of-00001.parquet"
# The commit that added the winogrande_xl parquet files to allenai/winogrande.
_REVISION = "df8eb8fe2e3ab788ec6eada56b9203a86a34c93d"
RAW = RawFile(
    path=f"winogrande/{_FILE}",
    published_at="https://huggingface.co/datasets/allenai/winogrande (file "
    f"{_FILE})",
    download=Download(target=f"winogrande/{_FILE}",
                      hf_repo="allenai/winogrande", hf_filename=_FILE,
                      revision=_REVISION))
DESCRIPTIONS = (
    "Given a sentence with a blank and two candidate fillers, respond with the "
    "letter of the correct option.",
    "Return the single uppercase letter corresponding to the correct choice.",
)
COLUMNS = ("sentence", "option1", "option2", "answer")


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every sentence -> `A` (option1) or `B` (option2)."""
  (path,) = _common.raw_paths("winogrande", ctx, (RAW,))
  rows = []
  for index, rec in enumerate(_common.read_parquet(path, COLUMNS)):
    where = f"row {index}"
    for column in COLUMNS[:3]:
      if not isinstance(rec[column], str):
        raise _common.bad_value(path, where, column,
                                f"expected a string, got {rec[column]!r}")
    answer = str(rec["answer"]).strip()
    if answer not in ("1", "2"):
      # The test split's answers are empty (unlabelled).
      raise _common.bad_value(path, where, "answer",
                              f"expected '1' or '2', got {rec['answer']!r}")
    prompt = "\n".join((
        f"Sentence: {rec['sentence'].replace('_', '_____')}",
        "Which option correctly fills in the blank?",
        f"A. {rec['option1']}",
        f"B. {rec['option2']}",
    ))
    rows.append(Row(input=prompt, output="AB"[int(answer) - 1]))
  yield Instance(id="all", rows=rows)


TASKS = [
    TaskSpec(name="winogrande", suite_split="test", kind="icl",
             generate=generate, fixed_k=10, chunk_all_rows=True,
             default_descriptions=DESCRIPTIONS, raw_files=(RAW,),
             about="WinoGrande (xl) validation sentences, 10 an episode; the "
             "output is the letter of the right filler."),
]
