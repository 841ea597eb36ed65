"""Netflix converters, built from format-shaped fixtures (tests/fixtures/raw/netflix)."""

import os
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import netflix

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {t.name: t for t in netflix.TASKS}
# Customers with >= 10 titled ratings, in order of first rating in the files.
ELIGIBLE = ["1488844", "822109", "1283744", "2647871"]


def _build(name, raw_dir=FIXTURES, seed=0):
  instances = list(SPECS[name].generate(BuildContext(seed=seed,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


def _copy(tmp_path):
  shutil.copytree(os.path.join(FIXTURES, "netflix"), tmp_path / "netflix")
  return tmp_path


def test_sampling_fields_follow_the_release():
  assert sorted(SPECS) == ["netflix_individual_ratings",
                           "netflix_individual_views"]
  for spec in SPECS.values():
    assert spec.suite_split == "train" and spec.kind == "icl"
    assert spec.mean_k == 64 and spec.episodes_per_instance == 1
    assert not spec.chunk_all_rows and spec.max_episodes is None
    assert spec.p_desc == 0.6
    assert [f.path for f in spec.raw_files] == [
        "netflix/movie_titles.csv"] + [
            f"netflix/combined_data_{i}.txt" for i in range(1, 5)]
    assert all(f.download.manual and "kaggle" in f.download.manual.lower()
               for f in spec.raw_files)
  assert SPECS["netflix_individual_ratings"].default_descriptions == (
      "Movie ratings (1-5 stars) for a specific user.",
      "Movie ratings for a specific user.")
  assert SPECS["netflix_individual_views"].default_descriptions == (
      "Movie titles watched by a single user.",
      "Movies a single user has seen and rated.")
  assert (netflix.MIN_RATINGS, netflix.MAX_USERS,
          netflix.MAX_RATING_USERS) == (10, 2000, 1000)


def test_ratings():
  instances = _build("netflix_individual_ratings")
  # 885013 has 9 ratings; 30878 has 10, but one is of a movie with no title.
  assert [i.id for i in instances] == ELIGIBLE
  first = instances[0]
  assert len(first.rows) == 12
  # (1488844 + 3 * movie) % 5 + 1, per make_fixture.py.
  assert [(r.input, r.output) for r in first.rows[:2]] == [
      ("Dinosaur Planet", "3"), ("Character", "4")]
  by_title = {r.input: r.output for r in first.rows}
  assert by_title["Amélie"] == "4"  # latin-1 decoded
  assert by_title["Never Die Alone, Never Live Alone"] == "3"  # comma title
  assert by_title["Gonzo, the Great"] == "1"
  assert by_title["Chump Change"] == "1"  # NULL year
  assert {r.output for i in instances for r in i.rows} <= set("12345")


def test_views():
  instances = _build("netflix_individual_views")
  assert [i.id for i in instances] == ELIGIBLE
  assert all(r.input is None for i in instances for r in i.rows)
  assert [r.output for r in instances[3].rows] == [
      "Full Frame: Documentary Shorts", "My Favorite Brunette",
      "Lord of the Rings: The Return of the King: Extended Edition: Bonus "
      "Material", "Nature: Antarctica", "Neil Diamond: Greatest Hits Live",
      "Screamers", "7 Seconds", "Immortal Beloved", "By Dawn's Early Light",
      "Seeta Aur Geeta", "Strange Relations"]


def test_customer_draw_is_seeded_and_shared(monkeypatch):
  monkeypatch.setattr(netflix, "MAX_USERS", 2)
  monkeypatch.setattr(netflix, "MAX_RATING_USERS", 1)
  draws = set()
  for seed in range(8):
    views = [i.id for i in _build("netflix_individual_views", seed=seed)]
    ratings = [i.id for i in _build("netflix_individual_ratings", seed=seed)]
    assert len(views) == 2 and set(views) <= set(ELIGIBLE)
    # Kept in file order; the ratings task takes the first (its max_inds),
    # the views task all drawn customers (the release's max_inds no-op).
    assert views == sorted(views, key=ELIGIBLE.index)
    assert ratings == views[:1]
    assert views == [i.id for i in _build("netflix_individual_views",
                                          seed=seed)]
    draws.add(tuple(views))
  assert len(draws) > 1


@pytest.mark.parametrize("name", sorted(SPECS))
def test_missing_raw_file(name, tmp_path):
  with pytest.raises(MissingRawFileError, match="netflix/combined_data_4.txt"):
    _build(name, tmp_path)


def _edit(path, old, new):
  text = path.read_bytes()
  assert old in text
  path.write_bytes(text.replace(old, new, 1))


def test_rating_out_of_range(tmp_path):
  raw = _copy(tmp_path)
  _edit(raw / "netflix" / "combined_data_2.txt", b"1488844,5,", b"1488844,6,")
  with pytest.raises(ValueError, match=r"combined_data_2\.txt, line 10, "
                     r"column 'Rating': expected 1 to 5, got '6'"):
    _build("netflix_individual_ratings", raw)


def test_rating_line_with_wrong_fields(tmp_path):
  raw = _copy(tmp_path)
  _edit(raw / "netflix" / "combined_data_3.txt", b"2647871,", b"2647871;")
  with pytest.raises(ValueError, match=r"combined_data_3\.txt, line \d+, "
                     r"column 'CustomerID,Rating,Date'"):
    _build("netflix_individual_views", raw)


def test_bad_movie_id_in_titles(tmp_path):
  raw = _copy(tmp_path)
  _edit(raw / "netflix" / "movie_titles.csv", b"\n7,1992,", b"\nx7,1992,")
  with pytest.raises(ValueError, match=r"movie_titles\.csv, line 7, column "
                     r"'MovieID': not a movie id: 'x7'"):
    _build("netflix_individual_views", raw)
