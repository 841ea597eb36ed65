"""Tests of data_pipelines/sources/babynames.py on tests/fixtures/raw."""

from __future__ import annotations

import os
import random
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import babynames

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
(SPEC,) = babynames.TASKS
GIRLS_2023 = ["Olivia", "Emma", "Charlotte", "Amelia", "Sophia", "Mia",
              "Isabella", "Ava", "Evelyn", "Luna"]
BOYS_2023 = ["Liam", "Noah", "Oliver", "James", "Elijah", "Mateo", "Theodore",
             "Henry", "Lucas", "William"]


def _build(raw_dir=FIXTURES, seed=0):
  instances = list(SPEC.generate(BuildContext(seed=seed,
                                              raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(SPEC.name)
  return instances


def _find(instances, **config):
  for inst in instances:
    if all(inst.extra[k] == v for k, v in config.items()):
      return inst
  raise AssertionError(f"no instance with {config}")


def test_task_spec():
  assert (SPEC.name, SPEC.suite_split, SPEC.kind, SPEC.mean_k, SPEC.fixed_k,
          SPEC.episodes_per_instance, SPEC.chunk_all_rows, SPEC.shuffle_rows,
          SPEC.p_desc, SPEC.default_descriptions) == (
              "babynames", "train", "icl", None, None, 1, False, False, 0.6,
              ())
  assert [f.path for f in SPEC.raw_files[:2]] == ["baby_names/yob1880.txt",
                                                  "baby_names/yob1881.txt"]
  assert len(SPEC.raw_files) == 144
  assert SPEC.raw_files[-1].path == "baby_names/yob2023.txt"
  # One archive gives every year.
  assert {f.download for f in SPEC.raw_files} == {babynames.NAMES_ZIP}
  assert (babynames.NAMES_ZIP.url, babynames.NAMES_ZIP.unpack,
          babynames.NAMES_ZIP.unpack_to) == (
              "https://www.ssa.gov/oact/babynames/names.zip", "zip",
              "baby_names/")


def test_configurations():
  insts = _build()
  assert len(insts) == 500
  assert len({i.id for i in insts}) == 500
  assert insts[0].id.startswith("000_top_k=")
  spans = [i.extra["timespan"] for i in insts]
  # "all" and the latest years are the likeliest (weights 5, 4, 3, 2, 1).
  assert spans.count("all") > spans.count("2023") > spans.count("2020") > 0
  assert {i.extra["sex"] for i in insts} == {"balanced", "M", "F"}
  assert {i.extra["top_k"] for i in insts} == {10, 100, 1000, 5000}
  assert [i.id for i in _build()] == [i.id for i in insts]
  assert [i.id for i in _build(seed=1)] != [i.id for i in insts]


def test_uniform_top_names_keep_each_files_first_line():
  insts = _build()
  girls = _find(insts, sex="F", sampling="uniform", top_k=10,
                timespan="2023")
  # Olivia is yob2023.txt's first line, which the release's header=0 drops.
  # Uniform: the top names in a seeded random order, shown as stored.
  assert sorted(r.output for r in girls.rows) == sorted(GIRLS_2023)
  assert [r.output for r in girls.rows] != GIRLS_2023
  assert girls.descriptions == [
      "The following are drawn from the list of top 10 baby girl names in "
      "the US in 2023"]
  balanced = _find(insts, sex="balanced", sampling="uniform", top_k=10,
                   timespan="2023")
  assert sorted(r.output for r in balanced.rows) == sorted(
      BOYS_2023[:5] + GIRLS_2023[:5])
  assert balanced.descriptions == [
      "The following are drawn from the list of top 10 baby names in the US "
      "in 2023"]


def test_all_years_sum_the_counts():
  counts = {}
  for year in range(2020, 2024):
    path = os.path.join(FIXTURES, f"baby_names/yob{year}.txt")
    for line in open(path, encoding="utf-8").read().split():
      name, sex, n = line.split(",")
      counts[name, sex] = counts.get((name, sex), 0) + int(n)
  boys = sorted((n for n, s in counts if s == "M"),
                key=lambda n: (-counts[n, "M"], n))
  boys_all = _find(_build(), sex="M", sampling="uniform", top_k=100,
                   timespan="all")
  # Fewer than 100 boys' names in the fixture: all of them.
  assert sorted(r.output for r in boys_all.rows) == sorted(boys)
  assert len(boys) == 17 and boys[:3] == ["Liam", "Noah", "Oliver"]
  assert boys_all.descriptions == [
      "The following are drawn from the list of top 100 baby boy names in "
      "the US from 2020 - 2023"]


def test_balanced_lists_a_name_once_per_sex():
  inst = _find(_build(), sex="balanced", top_k=1000, timespan="all")
  names = [r.output for r in inst.rows]
  assert len(names) == 35 and names.count("Avery") == 2
  assert "Renée" in names and "José" in names


def test_population_sampling():
  insts = _build()
  inst = _find(insts, sex="F", sampling="population", top_k=10,
               timespan="all")
  assert sorted(r.output for r in inst.rows) == sorted(
      ["Olivia", "Emma", "Charlotte", "Amelia", "Sophia", "Mia", "Isabella",
       "Ava", "Luna", "Evelyn"])
  assert inst.descriptions == [
      "The following are drawn randomly from among the top 10 baby girl "
      "names in the US from 2020 - 2023, proportional to their population "
      "frequency."]


def test_weighted_order_favours_heavy_names():
  firsts = [babynames._weighted_order(random.Random(s), ["a", "b", "c"],
                                      [0.9, 0.09, 0.01])[0]
            for s in range(2000)]
  assert 0.87 < firsts.count("a") / 2000 < 0.93
  assert 0.07 < firsts.count("b") / 2000 < 0.12


def test_no_year_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(tmp_path)
  for f in SPEC.raw_files:
    assert f.path in str(e.value)
  with pytest.raises(MissingRawFileError):
    _build(None)


def _copy(tmp_path, years):
  (tmp_path / "baby_names").mkdir()
  for year in years:
    shutil.copy(os.path.join(FIXTURES, f"baby_names/yob{year}.txt"),
                tmp_path / "baby_names" / f"yob{year}.txt")


def test_a_gap_in_the_years_is_an_error(tmp_path):
  _copy(tmp_path, (2020, 2022, 2023))
  with pytest.raises(MissingRawFileError) as e:
    _build(tmp_path)
  assert "baby_names/yob2021.txt" in str(e.value)
  assert "yob2019" not in str(e.value) and "yob2022" not in str(e.value)


def test_one_year_is_enough(tmp_path):
  _copy(tmp_path, (2022,))
  insts = _build(tmp_path)
  assert {i.extra["timespan"] for i in insts} == {"all", "2022"}
  inst = _find(insts, timespan="all", sampling="uniform")
  assert inst.descriptions[0].endswith("in the US from 2022 - 2022")


@pytest.mark.parametrize("line,message", [
    ("Nova,X,12", "line 3, column 'sex': expected F or M, got 'X'"),
    ("Nova,F,many", "line 3, column 'count': expected a positive integer, "
     "got 'many'"),
    ("Nova,F,0", "line 3, column 'count': expected a positive integer"),
    (",F,12", "line 3, column 'name': empty"),
    ("Nova,F", "line 3: 2 fields; expected name,sex,count."),
])
def test_malformed_line_names_file_line_and_column(tmp_path, line, message):
  (tmp_path / "baby_names").mkdir()
  path = tmp_path / "baby_names" / "yob2023.txt"
  path.write_text(f"Olivia,F,15270\r\nEmma,F,13527\r\n{line}\r\n",
                  encoding="utf-8")
  with pytest.raises(ValueError) as e:
    _build(tmp_path)
  assert f"{path}, {message}" in str(e.value)


def test_balanced_population_weights_give_each_sex_half(monkeypatch):
  seen = {}
  def record(rng, names, weights):
    seen[tuple(names)] = list(weights)
    return list(names)
  monkeypatch.setattr(babynames, "_weighted_order", record)
  inst = _find(_build(), sex="balanced", sampling="population", top_k=10,
               timespan="2023")
  names = [r.output for r in inst.rows]
  assert names == BOYS_2023[:5] + GIRLS_2023[:5]
  boys = [20802, 18995, 15517, 12589, 12454]
  girls = [15270, 13527, 12596, 12327, 11944]
  want = ([c / sum(boys) / 2 for c in boys]
          + [c / sum(girls) / 2 for c in girls])
  assert seen[tuple(names)] == pytest.approx(want)
  assert sum(seen[tuple(names)]) == pytest.approx(1.0)
