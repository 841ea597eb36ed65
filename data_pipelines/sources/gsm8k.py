"""GSM8K (Cobbe et al., 2021): grade-school math word problems.

Raw file: `gsm8k/main/train-00000-of-00001.parquet`, the `main` config's
train split of the Hugging Face dataset `openai/gsm8k` (7,473 problems).
Columns `question` and `answer` (the worked solution, ending `#### <n>`).

Four train tasks (docs/method.md#gsm8k), one instance each: questions alone,
question -> answer, {question, answer} jointly, answer -> question.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

_FILE = "main/train-00000-of-00001.parquet"
RAW = RawFile(
    path=f"gsm8k/{_FILE}",
    published_at=f"https://huggingface.co/datasets/openai/gsm8k (file {_FILE})",
    download=Download(target=f"gsm8k/{_FILE}", hf_repo="openai/gsm8k",
                      hf_filename=_FILE))
EPISODES = 50  # per task; the release's n_per

QUESTION_DESCRIPTIONS = (
    "Generate grade school math word problems covering arithmetic, basic "
    "algebra, and word problem reasoning.",
    "Create diverse math word problems involving real-world scenarios and "
    "numerical reasoning.",
    "Math word problems suitable for grade school students.",
)
ANSWER_FROM_QUESTION_DESCRIPTIONS = (
    "Given a math word problem, generate its step-by-step solution with "
    "calculations and reasoning.",
    "Solve grade school math word problems by providing detailed worked "
    "solutions.",
    "Given: question (math word problem). Generate: answer (step-by-step "
    "solution with final numerical answer).",
)
QUESTION_ANSWER_DESCRIPTIONS = (
    "Generate both a math word problem (question) and its step-by-step "
    "solution (answer). These are grade school math problems covering "
    "arithmetic, basic algebra, and word problem reasoning.",
    "Create complete math problem pairs: generate both the word problem "
    "statement and its detailed solution with calculations.",
    "Generate: question (math word problem), answer (step-by-step solution "
    "with final numerical answer).",
)
QUESTION_FROM_ANSWER_DESCRIPTIONS = (
    "Given a step-by-step math solution, generate a word problem that would "
    "lead to this solution.",
    "Create math word problems that match the given worked solution and "
    "final answer.",
    "Given: answer (step-by-step solution). Generate: question (word problem "
    "that leads to this solution).",
)


def _problems(ctx: BuildContext, task: str) -> list[tuple[str, str]]:
  (path,) = _common.raw_paths(task, ctx, (RAW,))
  out = []
  for index, rec in enumerate(_common.read_parquet(path,
                                                   ("question", "answer"))):
    for column in ("question", "answer"):
      if not isinstance(rec[column], str):
        raise _common.bad_value(path, f"row {index}", column,
                                f"expected a string, got {rec[column]!r}")
    out.append((rec["question"], rec["answer"]))
  return out


def _generator(task: str, row: Callable[[str, str], Row]
               ) -> Callable[[BuildContext], Iterator[Instance]]:
  def generate(ctx: BuildContext) -> Iterator[Instance]:
    yield Instance(id="all", rows=[row(q, a) for q, a in _problems(ctx, task)])
  generate.__doc__ = f"One instance: every problem, as {task} uses it."
  return generate


def _spec(name: str, row: Callable[[str, str], Row],
          descriptions: tuple[str, ...], about: str) -> TaskSpec:
  return TaskSpec(name=name, suite_split="train", kind="icl",
                  generate=_generator(name, row), mean_k=64,
                  episodes_per_instance=EPISODES,
                  default_descriptions=descriptions, raw_files=(RAW,),
                  about=about)


TASKS = [
    _spec("gsm8k_question", lambda q, a: Row(output=q), QUESTION_DESCRIPTIONS,
          "GSM8K: grade-school math word problems."),
    _spec("gsm8k_answer_from_question", lambda q, a: Row(input=q, output=a),
          ANSWER_FROM_QUESTION_DESCRIPTIONS,
          "GSM8K: a word problem -> its worked solution."),
    _spec("gsm8k_question_answer",
          lambda q, a: Row(output=serialise_fields({"question": q,
                                                    "answer": a})),
          QUESTION_ANSWER_DESCRIPTIONS,
          "GSM8K: a word problem and its solution together, as JSON."),
    _spec("gsm8k_question_from_answer", lambda q, a: Row(input=a, output=q),
          QUESTION_FROM_ANSWER_DESCRIPTIONS,
          "GSM8K: a worked solution -> the word problem it solves."),
]
