"""popquorn_individual / popquorn_og_categorical built from tests/fixtures/raw/popquorn."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import popquorn

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {spec.name: spec for spec in popquorn.TASKS}
QA_USER = ("question_answering/Woman_Asian_30-34_Student_Some college but no "
           "degree")


def _build(name, raw_dir=RAW, seed=0):
  instances = list(SPECS[name].generate(BuildContext(seed=seed,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


@pytest.fixture
def raw_copy(tmp_path):
  shutil.copytree(os.path.join(RAW, "popquorn"), tmp_path / "popquorn")
  return tmp_path


def test_specs_follow_the_release():
  ind, og = SPECS["popquorn_individual"], SPECS["popquorn_og_categorical"]
  # GenericMultivariate per user, n_per=1, no n_iter: all of a user's rows.
  assert (ind.mean_k, ind.fixed_k, ind.episodes_per_instance,
          ind.chunk_all_rows, ind.orderings, ind.max_episodes) == (
              None, None, 1, False, 1, None)
  # SingleVariableIID of texts, n_per=20, n_iter=GP(128).
  assert (og.mean_k, og.fixed_k, og.episodes_per_instance, og.chunk_all_rows,
          og.orderings, og.max_episodes) == (128, None, 20, False, 1, None)
  for spec in (ind, og):
    assert spec.suite_split == "train" and spec.p_desc == 0.6
    assert [f.path for f in spec.raw_files] == [
        f"popquorn/{s}/raw_data.csv" for s in (
            "email_rewriting", "offensiveness", "politeness_rating",
            "question_answering")]
    for f in spec.raw_files:
      assert re.fullmatch(
          r"https://raw\.githubusercontent\.com/Jiaxin-Pei/Potato-Prolific-"
          r"Dataset/[0-9a-f]{40}/dataset/[a-z_]+/raw_data\.csv",
          f.download.url)


def test_individual_users_and_caps():
  ids = [(i.id, len(i.rows)) for i in _build("popquorn_individual")]
  # email 1.0 has 6 rows (kept: more than 5), 2.0 has 5 and rows without a
  # user_id are skipped; offensiveness 3 has 5 rows; politeness user 8 has
  # 4; the second QA profile has 6 rows but one blank answer, and the row
  # with a blank gender has no profile.
  assert ids == [("email_rewriting/0.0", 10), ("email_rewriting/1.0", 6),
                 ("offensiveness/0", 8), ("offensiveness/2", 7),
                 ("politeness_rating/7", 7), (QA_USER, 6)]


def test_user_cap_is_seeded(monkeypatch):
  monkeypatch.setattr(popquorn, "MAX_USERS", 1)
  per_seed = []
  for seed in range(6):
    ids = [i.id for i in _build("popquorn_individual", seed=seed)]
    assert sum(i.startswith("email_rewriting/") for i in ids) == 1
    assert sum(i.startswith("offensiveness/") for i in ids) == 1
    per_seed.append(tuple(ids))
  assert per_seed[0] == tuple(
      i.id for i in _build("popquorn_individual", seed=0))
  assert len(set(per_seed)) > 1  # the seed decides who is kept


def test_rows_and_descriptions():
  by_id = {i.id: i for i in _build("popquorn_individual")}
  email = by_id["email_rewriting/0.0"]
  assert email.rows[0] == Row(
      input="Which award are you going for?  the Skankiest Ass Bitch, and "
      "Classiest Ho!",
      output="Hey,\r\nWhich award are you going for? I would love to know so "
      "that I can give you my vote in whatever category you're going for. "
      "Next time I see you, I'll tell you which award I think you'd win!"
      "\r\nTTYL")
  # Email annotators have no age in the file: it is left out of the profile.
  assert email.descriptions == [
      "Your collegue is trying to draft an email and is asking for your "
      "help. Please help to rewrite the message to make it more polite and "
      "professional.",
      "The following are rewrites to make the email more polite and "
      "professional, all from the same individual.",
      "The following are rewrites to make the email more polite and "
      "professional, all from the same individual.\nIndividual demographics: "
      "{'gender': 'Woman', 'race': 'White', 'occupation': 'Student', "
      "'education': 'High school diploma or equivalent'}"]
  offensive = by_id["offensiveness/0"]
  # Ratings written 1.0 in the file print as 1.
  assert offensive.rows[0] == Row(
      input="I think a lot of Dethklok songs use drop C, would defo recommend",
      output="1")
  assert offensive.descriptions[1] == (
      "The following is a message that a user read. Please rate the message "
      "on a scale of 1 to 5, where 1 is not offensive and 5 is very "
      "offensive.\nIndividual demographics: {'gender': 'Man', 'race': "
      "'White', 'age': '35-39', 'occupation': 'Unemployed', 'education': "
      "'High school diploma or equivalent'}")
  polite = by_id["politeness_rating/7"]
  assert polite.rows[3] == Row(
      input="FYI the meeting moved to 3pm.\nBring the slides.", output="3")
  qa = by_id[QA_USER]
  assert qa.rows[0] == Row(
      input='{"passage": "The Amazon rainforest covers much of the Amazon '
      'basin of South America. The majority of the forest is contained within '
      'Brazil, with 60% of the rainforest.", "question": "Which country '
      'contains most of the Amazon rainforest?"}',
      output='{"groundtruth": "Brazil", "answer": "Brazil", "difficulty": '
      '"1"}')
  assert '"groundtruth": "Krak\\u00f3w"' in qa.rows[3].output
  assert len(qa.descriptions) == 2
  assert qa.descriptions[0].endswith(
      "(1-5)\nIndividual demographics: {'gender': 'Woman', 'race': 'Asian', "
      "'age': '30-34', 'occupation': 'Student', 'education': 'Some college "
      "but no degree'}")
  assert qa.descriptions[1].startswith("Answer the question by copying")


def test_og_categorical():
  instances = _build("popquorn_og_categorical")
  assert [(i.id, len(i.rows)) for i in instances] == [
      ("email_rewriting", 24), ("offensiveness", 20),
      ("politeness_rating", 7), ("question_answering", 2)]
  assert instances[0].rows[0] == Row(output="yes.  you need to come over more.")
  assert instances[3].descriptions == [
      "Data to use as samples for this task: question_answering"]
  assert all(r.input is None for i in instances for r in i.rows)


def test_missing_raw_file(raw_copy):
  os.remove(raw_copy / "popquorn" / "politeness_rating" / "raw_data.csv")
  for name in SPECS:
    with pytest.raises(MissingRawFileError,
                       match="politeness_rating/raw_data.csv"):
      _build(name, raw_copy)


def test_malformed_rating_names_file_line_and_column(raw_copy):
  path = raw_copy / "popquorn" / "offensiveness" / "raw_data.csv"
  with open(path, "a", encoding="utf-8") as f:
    f.write("1,0,some text,very,Man,White,35-39,Unemployed,None\n")
  with pytest.raises(ValueError, match=r"offensiveness/raw_data\.csv, line "
                     r"\d+, column 'offensiveness': expected a whole-number "
                     r"rating, got 'very'"):
    _build("popquorn_individual", raw_copy)
