"""NYTimes books distributional task, built from real books (tests/fixtures/raw/nytimes)."""

import json
import os
import re

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import nytimes

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPEC = nytimes.TASKS[0]
FILE = "nytimes/NYTIMES_proportions.json"
GROUPS = ["Democrat", "Republican", "Male", "Female"]
OPTIONS = ("\nOptions:\n1: Very unlikely\n2: Somewhat unlikely\n"
           "3: Somewhat likely\n4: Very likely")


def _build(raw_dir=FIXTURES):
  instances = list(SPEC.generate(BuildContext(seed=0, raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(SPEC.name)
  return instances


def _rewrite(tmp_path, edit):
  """A copy of the fixture with `edit(books)` applied."""
  with open(os.path.join(FIXTURES, FILE), encoding="utf-8") as f:
    books = json.load(f)
  edit(books)
  (tmp_path / "nytimes").mkdir()
  (tmp_path / FILE).write_text(json.dumps(books, indent=4), encoding="utf-8")
  return tmp_path


def test_task_is_a_test_distributional_task():
  assert [t.name for t in nytimes.TASKS] == ["nytimes"]
  assert SPEC.suite_split == "test" and SPEC.kind == "distributional"
  assert SPEC.raw_files == (nytimes.RAW,)


def test_download_pins_a_commit():
  download = nytimes.RAW.download
  assert nytimes.RAW.path == download.target == FILE
  assert re.fullmatch(
      r"https://raw\.githubusercontent\.com/nicolemeister/"
      r"benchmarking-distributional-alignment/[0-9a-f]{40}/"
      r"nytimes/NYTIMES_proportions\.json", download.url)
  assert download.size == 316996 and len(download.sha256) == 64
  assert download.manual is None


def test_one_instance_per_book_and_group_in_file_order():
  instances = _build()
  assert len(instances) == 7 * 4
  assert [i.id for i in instances[:5]] == [
      "b0:Democrat", "b0:Republican", "b0:Male", "b0:Female", "b1:Democrat"]
  # The fixture keeps books 1, 2, 7, ... of the real file; ids count them
  # in the fixture's order.
  assert instances[-1].id == "b6:Female"
  for inst in instances:
    assert inst.options == ["1", "2", "3", "4"]
    assert inst.extra == {"output_name": "Reading Likelihood (1, 2, 3, 4)"}
    assert abs(sum(inst.target) - 1) < 1e-12


def test_first_book_formatted_as_the_release():
  first = _build()[0]
  assert first.descriptions == [
      "You are a random survey respondent. Respondent demographic: Democrat"]
  assert first.question == (
      "How likely are you to read this book?\n"
      "Book: The Bee Sting By Paul Murray\nGenre: Fiction\n"
      "Summary: In Murray\u2019s boisterous tragicomic novel, a once wealthy "
      "Irish family struggles with both the aftermath of the 2008 financial "
      "crash and their own inner demons." + OPTIONS)
  assert first.target == [9 / 20, 6 / 20, 3 / 20, 2 / 20]


def test_unicode_titles_and_other_groups():
  by_id = {i.id: i for i in _build()}
  otoole = by_id["b3:Republican"]
  assert otoole.question.startswith(
      "How likely are you to read this book?\n"
      "Book: We Don'T Know Ourselves By Fintan O\u2019Toole\nGenre: History\n"
      "Summary: O\u2019Toole, a prolific journalist")
  assert otoole.target == [5 / 20, 6 / 20, 6 / 20, 3 / 20]
  coates = by_id["b6:Female"]
  # Soft hyphens stay as the file has them.
  assert "Book: Between The World And Me By \u00adTa-\u00adNehisi Coates\n" \
      "Genre: Essays\n" in coates.question
  assert coates.descriptions == [
      "You are a random survey respondent. Respondent demographic: Female"]
  assert coates.target == [3 / 21, 6 / 21, 7 / 21, 5 / 21]


def test_colon_prompt_names_the_output():
  from spectrax.evaluation.distributional import distributional_request
  req = distributional_request("nytimes/b0:Male", _build()[2], "colon")
  assert req.prompt.startswith(
      "Description: You are a random survey respondent. Respondent "
      "demographic: Male\n\nInput: How likely are you to read this book?\n")
  assert req.prompt.endswith("4: Very likely\nReading Likelihood (1, 2, 3, 4):")
  assert req.options == [" 1", " 2", " 3", " 4"]


def test_answer_lines_are_dropped_from_the_question():
  book = nytimes._Book(0, "T", "G", "One.\nAnswer:\nTwo.", ["1: a", "2: b"],
                       {})
  assert nytimes.question(book) == (
      "How likely are you to read this book?\nBook: T\nGenre: G\n"
      "Summary: One.\nTwo.\nOptions:\n1: a\n2: b")


def test_absent_group_and_empty_counts_are_skipped(tmp_path):
  def edit(books):
    first, second = list(books.values())[:2]
    del first["Male"]
    second["Female"] = {k: 0 for k in second["Female"]}
  ids = [i.id for i in _build(_rewrite(tmp_path, edit))]
  assert len(ids) == 26
  assert "b0:Male" not in ids and "b1:Female" not in ids
  assert "b0:Female" in ids


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError, match="NYTIMES_proportions.json"):
    _build(tmp_path)


def test_bad_count_names_file_book_and_group(tmp_path):
  def edit(books):
    list(books.values())[2]["Republican"]["3: Somewhat likely"] = "5"
  with pytest.raises(ValueError, match=r"NYTIMES_proportions\.json, book 3 "
                     r"\('Bottoms Up And The Devil Laughs By Kerry Howley'\), "
                     r"column 'Republican': '3: Somewhat likely': expected a "
                     r"count, got '5'"):
    _build(_rewrite(tmp_path, edit))


def test_count_for_an_unknown_option_is_an_error(tmp_path):
  def edit(books):
    list(books.values())[0]["Male"]["5: Certainly"] = 1
  with pytest.raises(ValueError, match=r"book 1 .*column 'Male': counts for "
                     r"\['5: Certainly'\] are not among the options"):
    _build(_rewrite(tmp_path, edit))


def test_invalid_json_names_the_line(tmp_path):
  (tmp_path / "nytimes").mkdir()
  (tmp_path / FILE).write_text('{\n  "A": {\n    "genre": oops\n', "utf-8")
  with pytest.raises(ValueError, match=r"NYTIMES_proportions\.json, line 3: "
                     "not valid JSON"):
    _build(tmp_path)
