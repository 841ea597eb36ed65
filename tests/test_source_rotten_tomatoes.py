"""Rotten Tomatoes distributional task, built from made-up rows in the
documented shape (tests/fixtures/raw/rotten_tomatoes, see PROVENANCE.md)."""

import os
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import rotten_tomatoes

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPEC = rotten_tomatoes.TASKS[0]
FILE = "rotten_tomatoes/rotten_tomatoes_data_1970_2024/movie_info.csv"
CRITIC = ("You are a movie critic. Given a movie, you are asked to simply "
          "rate it as \"Good\" or \"Bad\".")
AUDIENCE = ("You recently watched the following movies. Given a movie, you "
            "are asked to simply rate it as \"Good\" or \"Bad\".")


def _build(raw_dir=FIXTURES):
  instances = list(SPEC.generate(BuildContext(seed=0, raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(SPEC.name)
  return instances


def _with_rows(tmp_path, *rows):
  path = tmp_path / FILE
  path.parent.mkdir(parents=True)
  path.write_text("title,release_date,critic_score,audience_score\n"
                  + "".join(r + "\n" for r in rows), "utf-8")
  return tmp_path


def test_task_is_a_test_distributional_task():
  assert [t.name for t in rotten_tomatoes.TASKS] == ["rotten_tomatoes"]
  assert SPEC.suite_split == "test" and SPEC.kind == "distributional"
  assert SPEC.raw_files == (rotten_tomatoes.RAW,)


def test_manual_download():
  raw = rotten_tomatoes.RAW
  assert raw.path == raw.download.target == FILE
  assert raw.download.url is None and raw.download.hf_repo is None
  assert "12IpMErb4j83h5gGTdTpv0WZOf5ceY7b3" in raw.download.manual


def test_one_instance_per_available_score():
  instances = _build()
  # Record 3 has no score at all; 1 and 2 have one each.
  assert [i.id for i in instances] == [
      "m0:critic", "m0:audience", "m1:critic", "m2:audience", "m4:critic",
      "m4:audience", "m5:critic", "m5:audience", "m6:critic", "m6:audience"]
  for inst in instances:
    assert inst.options == ["Good", "Bad"]
    assert inst.extra == {"output_name": "Movie Rating (Good or Bad)"}
    assert inst.descriptions == [
        CRITIC if inst.id.endswith("critic") else AUDIENCE]


def test_questions_and_targets():
  by_id = {i.id: i for i in _build()}
  assert by_id["m0:critic"].question == (
      "Movie: Oppenheimer\nRelease Date: Jul 21, 2023")
  assert by_id["m0:critic"].target == [0.93, 0.07]  # (100 - s) / 100
  assert by_id["m0:audience"].target == [0.91, 0.09]
  assert by_id["m1:critic"].question == (
      "Movie: Am\u00e9lie\nRelease Date: Nov 2, 2001")
  assert by_id["m2:audience"].question == (
      "Movie: Crouching Tiger, Hidden Dragon\nRelease Date: Dec 8, 2000")
  # No release date: no date line.
  assert by_id["m4:critic"].question == "Movie: The Room"
  assert by_id["m4:critic"].target == [0.26, 0.74]
  assert by_id["m5:critic"].target == [1.0, 0.0]
  assert by_id["m5:audience"].target == [0.0, 1.0]
  assert by_id["m6:audience"].question == (
      "Movie: Line One\nLine Two\nRelease Date: Mar 3, 1999")


def test_colon_prompt_names_the_output():
  from spectrax.evaluation.distributional import distributional_request
  req = distributional_request("rt/m4:critic", _build()[4], "colon")
  assert req.prompt == (f"Description: {CRITIC}\n\nInput: Movie: The Room\n"
                        "Movie Rating (Good or Bad):")
  assert req.options == [" Good", " Bad"]


def test_scores_without_percent_sign(tmp_path):
  raw = _with_rows(tmp_path, "A,,85,40.0", "B,2001,NaN,7 %")
  assert [(i.id, i.target) for i in _build(raw)] == [
      ("m0:critic", [0.85, 0.15]), ("m0:audience", [0.4, 0.6]),
      ("m1:audience", [0.07, 0.93])]


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError, match="movie_info.csv"):
    _build(tmp_path)


@pytest.mark.parametrize("value", ["101%", "85.5%", "great", "-3%"])
def test_bad_score_names_file_line_and_column(tmp_path, value):
  raw = _with_rows(tmp_path, "A,,50%,50%", f"B,,40%,{value}")
  with pytest.raises(ValueError, match=r"movie_info\.csv, line 3, column "
                     rf"'audience_score': expected a percentage 0-100 like "
                     rf"'85%', got '{value}'"):
    _build(raw)


def test_scored_movie_without_title(tmp_path):
  raw = _with_rows(tmp_path, "A,,50%,50%", ",2001,40%,")
  with pytest.raises(ValueError, match=r"line 3, column 'title'"):
    _build(raw)


def test_missing_column(tmp_path):
  path = tmp_path / FILE
  path.parent.mkdir(parents=True)
  path.write_text("title,release_date,tomatometer\nA,,50%\n", "utf-8")
  with pytest.raises(ValueError, match=r"missing column\(s\) \['critic_score'"
                     r", 'audience_score'\]"):
    _build(tmp_path)
