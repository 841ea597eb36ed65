"""diffuse_distribution built from the real prompt files (tests/fixtures/raw/diffuse)."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import diffuse

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPEC = diffuse.TASKS[0]


def _build(raw_dir=RAW):
  instances = list(SPEC.generate(BuildContext(seed=0, raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(SPEC.name)
  return instances


@pytest.fixture
def raw_copy(tmp_path):
  shutil.copytree(os.path.join(RAW, "diffuse"), tmp_path / "diffuse")
  return tmp_path


def test_spec_follows_the_release():
  # n_per=1 without n_iter: all targets per episode; permutations_per_iter=10.
  assert (SPEC.name, SPEC.suite_split, SPEC.mean_k, SPEC.fixed_k,
          SPEC.episodes_per_instance, SPEC.chunk_all_rows, SPEC.orderings,
          SPEC.max_episodes, SPEC.p_desc) == (
              "diffuse_distribution", "train", None, None, 1, False, 10, None,
              0.6)
  assert len(SPEC.raw_files) == 27
  for f in SPEC.raw_files:
    assert re.fullmatch(
        r"https://raw\.githubusercontent\.com/y0mingzhang/diffuse-"
        r"distributions/[0-9a-f]{40}/prompts/[a-z-]+/[a-z0-9-]+\.json",
        f.download.url)
    assert f.path == f.download.target
    assert f.download.url.endswith(f.path.removeprefix("diffuse/"))


def test_instances_rows_and_descriptions():
  by_id = {inst.id: inst for inst in _build()}
  assert len(by_id) == 27
  days = by_id["day-date/day-0"]
  assert days.rows == [Row(output=d) for d in (
      "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
      "Sunday")]
  assert days.descriptions == [
      "Output a randomly selected day of the week, without replacement."]
  assert by_id["occupations/occupations-1"].descriptions == [
      'Output an occupation that starts with the letter "A", chosen '
      "completely at random, without replacement."]
  assert [r.output for r in by_id["numbers/rng-1"].rows] == [
      str(n) for n in range(1, 101)]
  assert by_id["continent-countries/oceania"].rows[2] == Row(
      output="Federated States of Micronesia")
  # Multi-line targets keep one field per line (the release glues them).
  people = by_id["ficticious-people/ficticious-people-train"]
  assert people.rows[0] == Row(
      output="Fatema Rahman\nFemale\nFebruary 20, 1934\nRajshahi, Bangladesh")
  assert people.descriptions == [
      "Generate a random biography sketch of a fictional, notable person, "
      "without replacement."]


def test_cleaning_and_skipping(raw_copy):
  path = raw_copy / "diffuse" / "prompts" / "day-date" / "day-0.json"
  data = json.loads(path.read_text())
  data["targets"] = ["{ Mon\u200bday }", "{}", "\u200b", "{Tue}\n"]
  path.write_text(json.dumps(data))
  empty = raw_copy / "diffuse" / "prompts" / "numbers" / "odd-0.json"
  empty.write_text(json.dumps({"request": "Pick.", "targets": []}))
  by_id = {inst.id: inst for inst in _build(raw_copy)}
  assert by_id["day-date/day-0"].rows == [Row(output="Monday"),
                                          Row(output="Tue")]
  assert "numbers/odd-0" not in by_id and len(by_id) == 26


def test_missing_raw_file(raw_copy):
  os.remove(raw_copy / "diffuse" / "prompts" / "fruits" / "fruit-1.json")
  with pytest.raises(MissingRawFileError, match="fruits/fruit-1.json"):
    _build(raw_copy)


def test_malformed_target_names_file_and_field(raw_copy):
  path = raw_copy / "diffuse" / "prompts" / "numbers" / "even-0.json"
  data = json.loads(path.read_text())
  data["targets"][3] = 8
  path.write_text(json.dumps(data))
  with pytest.raises(ValueError,
                     match=r"even-0\.json, targets\[3\], column 'targets'"):
    _build(raw_copy)
  path.write_text("{not json")
  with pytest.raises(ValueError, match=r"even-0\.json: not a JSON file"):
    _build(raw_copy)
