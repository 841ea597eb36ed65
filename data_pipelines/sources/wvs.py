"""World Values Survey wave 7: one respondent's answers per instance (docs/method.md#wvs).

Raw file: `wvs/WVS_Cross-National_Wave_7_inverted_sav_v6_0.sav`, the
cross-national wave 7 data set (v6.0, "inverted" scales) in SPSS format, from
worldvaluessurvey.org after registration (a manual download). It is read with
pyreadstat (data, variable labels, value labels), which is not a dependency of
this project: `pip install pyreadstat` to build this task.

2000 respondents, drawn at random (seeded), each an instance. Its rows are
the questions it answered: every column whose name starts with `Q`, except
Q261, Q262, Q270, Q274 and variables with more than 17 value labels, skipping
missing answers. The input is `{variable label}\\nOptions:\\nA: {label}\\nB: …`
with the value labels in reverse order, lettered from A; the output is the
letter of the respondent's answer. One episode per respondent with all its
rows (shuffled; long ones are cut at the token limit). Descriptions:
`response ~ question + options` and `Responses from this user: {dict}`, the
dict (Python repr, as the release prints it) mapping the labels of B_COUNTRY,
N_TOWN and S_INTLANGUAGE to the respondent's value labels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

_FILE = "WVS_Cross-National_Wave_7_inverted_sav_v6_0.sav"
RAW = RawFile(
    path=f"wvs/{_FILE}",
    published_at="https://www.worldvaluessurvey.org/WVSDocumentationWV7.jsp "
    "(WVS Cross-National Wave 7 inverted sav v6.0; registration required)",
    download=Download(
        target=f"wvs/{_FILE}",
        manual="Register at https://www.worldvaluessurvey.org, open "
        "https://www.worldvaluessurvey.org/WVSDocumentationWV7.jsp, download "
        "'WVS Cross-National Inverted Wave 7 sav v6 0.zip' and unzip it into "
        f"<raw_dir>/wvs/ so that <raw_dir>/wvs/{_FILE} exists. Reading it "
        "needs `pip install pyreadstat`."))
N_RESPONDENTS = 2000
MAX_OPTIONS = 17
SKIPPED = frozenset({"Q261", "Q262", "Q270", "Q274"})
DEMOGRAPHICS = ("B_COUNTRY", "N_TOWN", "S_INTLANGUAGE")


def _missing(value: Any) -> bool:
  return value is None or (isinstance(value, float) and math.isnan(value))


def _label(path: str, where: str, column: str, value: Any,
           value_labels: Mapping[str, Mapping[Any, str]]) -> str:
  labels = value_labels.get(column, {})
  if value not in labels:
    raise _common.bad_value(path, where, column,
                            f"the value {value!r} has no value label "
                            f"(labels: {dict(labels)!r})")
  return labels[value]


def build_instances(path: str, picks: Sequence[int],
                    records: Sequence[Mapping[str, Any]],
                    columns: Sequence[str],
                    column_labels: Mapping[str, str | None],
                    value_labels: Mapping[str, Mapping[Any, str]]
                    ) -> Iterator[Instance]:
  """One instance per respondent, from what pyreadstat reads.

  Args:
    path: the .sav file (for error messages).
    picks: the data row of each respondent in `records`.
    records: column -> value (float, NaN when missing) per respondent.
    columns: the file's columns in order.
    column_labels: column -> variable label (`meta.column_names_to_labels`).
    value_labels: column -> {value: label} (`meta.variable_value_labels`).
  """
  absent = [c for c in DEMOGRAPHICS if c not in columns]
  if absent:
    raise ValueError(f"{path}: missing column(s) {absent}.")
  questions = []
  for column in columns:
    if not column.startswith("Q") or column in SKIPPED:
      continue
    labels = value_labels.get(column)
    if not labels or len(labels) > MAX_OPTIONS:
      # The release skips >17 labels; a Q column without value labels (e.g.
      # a year) would crash it, so it can only have been one of the
      # explicitly skipped ones: skipped here too.
      continue
    # Reverse label order, lettered from A. Built as the release does, so
    # a label given to two values keeps the later letter only.
    letter_of = {label: chr(ord("A") + i)
                 for i, label in enumerate(list(labels.values())[::-1])}
    option_of = {letter: label for label, letter in letter_of.items()}
    text = (f"{column_labels.get(column)}\nOptions:\n"
            + "\n".join(f"{k}: {v}" for k, v in option_of.items()))
    questions.append((column, text, letter_of))
  for index, record in zip(picks, records):
    where = f"row {index}"
    demographics = {
        column_labels.get(c): _label(path, where, c, record[c], value_labels)
        for c in DEMOGRAPHICS if not _missing(record[c])}
    rows = []
    for column, text, letter_of in questions:
      value = record[column]
      if _missing(value):
        continue
      answer = _label(path, where, column, value, value_labels)
      rows.append(Row(input=text, output=letter_of[answer]))
    yield Instance(id=str(index), rows=rows, descriptions=[
        "response ~ question + options",
        # str() of the dict: a Python repr, as the release writes it.
        "Responses from this user: " + str(demographics)])


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """2000 seeded-random respondents, each with its answered questions."""
  (path,) = _common.raw_paths("wvs_individual", ctx, (RAW,))
  try:
    import pyreadstat  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError(
        "task 'wvs_individual' reads an SPSS .sav file with pyreadstat, "
        "which is not installed: run `pip install pyreadstat`, or leave the "
        "task out with --tasks=...") from None
  try:
    df, meta = pyreadstat.read_sav(path)
  except Exception as e:  # pyreadstat raises its own error types.
    raise ValueError(f"{path}: cannot read as SPSS .sav: {e}") from e
  # The release shuffles all respondents (seed 42) and keeps the first
  # 2000; ours is our own seeded draw of 2000 (parity is not a goal).
  picks = _common.seeded_rng(ctx, "wvs_individual", "respondents").sample(
      range(len(df)), min(N_RESPONDENTS, len(df)))
  records = df.iloc[picks].to_dict("records")
  yield from build_instances(path, picks, records, list(df.columns),
                             meta.column_names_to_labels,
                             meta.variable_value_labels)


TASKS = [
    TaskSpec(name="wvs_individual", suite_split="test", kind="icl",
             generate=generate, raw_files=(RAW,),
             about="World Values Survey wave 7: one respondent's answers "
             "(question + lettered options -> letter), all in one episode."),
]
