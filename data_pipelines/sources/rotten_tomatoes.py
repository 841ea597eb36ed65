"""Rotten Tomatoes (1970-2024 scrape): would critics / audiences call a film good?

Raw file: `rotten_tomatoes/rotten_tomatoes_data_1970_2024/movie_info.csv`,
from the Google Drive folder the release links (manual download); one row per
movie with (at least) `title`, `release_date`, `critic_score` and
`audience_score`, the scores as percentages like `85%` (empty when the site
shows none).

One task (docs/method.md#distributional-tasks, docs/method.md#distributional-alignment):
  rotten_tomatoes: one instance per available score (critic, then audience,
    per movie in file order); options `Good`, `Bad`, target [s/100, 1 - s/100].
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   TaskSpec)
from data_pipelines.sources import _common

NAME = "rotten_tomatoes"
DIR = "rotten_tomatoes/rotten_tomatoes_data_1970_2024"
RAW = RawFile(
    path=f"{DIR}/movie_info.csv",
    published_at="https://drive.google.com/file/d/12IpMErb4j83h5gGTdTpv0WZOf5"
    "ceY7b3/view (linked from the Spectrum Tuning release's data/README.md)",
    download=Download(
        target=f"{DIR}/movie_info.csv",
        manual="Google Drive serves it behind a confirmation page: open "
        "https://drive.google.com/file/d/12IpMErb4j83h5gGTdTpv0WZOf5ceY7b3/"
        "view and download it; unpack it if it is an archive, and put its "
        "movie_info.csv (columns title, release_date, critic_score, "
        "audience_score) at rotten_tomatoes/rotten_tomatoes_data_1970_2024/"
        "movie_info.csv under the raw directory."))

# The release's strings (data: copied exactly).
DESCRIPTIONS = {
    "critic": "You are a movie critic. Given a movie, you are asked to simply "
              "rate it as \"Good\" or \"Bad\".",
    "audience": "You recently watched the following movies. Given a movie, "
                "you are asked to simply rate it as \"Good\" or \"Bad\".",
}
OPTIONS = ("Good", "Bad")
OUTPUT_NAME = "Movie Rating (Good or Bad)"
_SCORE = re.compile(r"(\d+(?:\.\d+)?)\s*%?")


def _score(path: str, line: int, column: str, cell: str) -> int | None:
  """A percentage cell as an int 0..100; None when the site showed none."""
  cell = cell.strip()
  if cell in _common.MISSING:
    return None
  match = _SCORE.fullmatch(cell)
  # The release keeps only cells whose digits (after dropping `%`) are all
  # digits and silently skips the rest; a cell that is not a percentage is
  # an error here, so a changed file format cannot empty the task unnoticed.
  value = float(match.group(1)) if match else None
  if value is None or not value.is_integer() or value > 100:
    raise _common.bad_value(path, f"line {line}", column,
                            f"expected a percentage 0-100 like '85%', got "
                            f"{cell!r}")
  return int(value)


def question(title: str, release_date: str | None) -> str:
  text = f"Movie: {title}"
  if release_date is not None:
    text += f"\nRelease Date: {release_date}"
  return text


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """Per movie in file order: a critic instance, then an audience one."""
  (path,) = _common.raw_paths(NAME, ctx, (RAW,))
  columns = ("title", "release_date", "critic_score", "audience_score")
  for index, (line, rec) in enumerate(_common.read_csv(path, columns)):
    scores = {group: _score(path, line, f"{group}_score",
                            rec[f"{group}_score"])
              for group in DESCRIPTIONS}
    if all(s is None for s in scores.values()):
      continue
    title = rec["title"]
    if title.strip() in _common.MISSING:
      raise _common.bad_value(path, f"line {line}", "title",
                              "a scored movie has no title")
    date = rec["release_date"]
    text = question(title, None if date.strip() in _common.MISSING else date)
    for group, score in scores.items():
      if score is None:
        continue
      yield Instance(id=f"m{index}:{group}",
                     descriptions=[DESCRIPTIONS[group]], question=text,
                     options=list(OPTIONS),
                     target=[score / 100, (100 - score) / 100],
                     extra={"output_name": OUTPUT_NAME})


TASKS = [
    TaskSpec(name=NAME, suite_split="test", kind="distributional",
             generate=generate, raw_files=(RAW,),
             about="Rotten Tomatoes: score Good/Bad against a film's critic "
             "or audience score."),
]
