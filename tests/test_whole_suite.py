"""The whole Spectrum Suite: every key of the release is known, and every
training task builds from its real-shaped fixtures (tests/fixtures/raw)
through the real build command, then yields episodes."""

from __future__ import annotations

import json
import os

import pytest

from data_pipelines import build, registry
from spectrax.data.episode_planning import TaskPlan, plan_messages
from spectrax.data.suite_reader import Suite

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures", "raw")
# The project's copy of the release's key list, where the checkout has it.
KEYS_FILE = os.path.join(HERE, "..", "..", "shared", "data", "suite_keys.json")

# The release's 71 training keys (shared/data/suite_keys.json,
# tsor13/spectrum@5a33588 dataloaders.py), copied so the test runs anywhere.
TRAIN_KEYS = (
    "polis_vote polis_comment diffuse_distribution coinflip normal "
    "hatespeech_individual valueprism_situation valueprism_vrd "
    "valueprism_vrds_noncontextual valueprism_misc opinionqa_individual "
    "opinionqa_questions generativesocialchoice_validation "
    "generativesocialchoice_freetext popquorn_individual "
    "popquorn_og_categorical babynames haikus valueconsistency issuebench "
    "helpsteer dices cards multinomial geometric poisson binomial "
    "negative_binomial categorical geometric_beta hypergeometric zipfian imdb "
    "changemyview_categories changemyview_posts bare_gsm8k bare_enron "
    "bare_hotpot bare_lcb newsgroups pubmed gsm8k_question "
    "gsm8k_answer_from_question gsm8k_question_answer "
    "gsm8k_question_from_answer ambient_premise_hypothesis "
    "ambient_ambiguity_detection ambient_disambiguation "
    "ambient_linguist_annotations ambient_interpretation_labels "
    "ambient_annotation_distributions titanic_all_variables "
    "titanic_survival_prediction jeopardy_question_generation "
    "jeopardy_answer_prediction prism_prompts prism_prompts_individual "
    "prism_individual_preferences netflix_individual_ratings "
    "netflix_individual_views lewidi_csc_sarcasm_detection_individual "
    "lewidi_mp_irony_detection_individual "
    "lewidi_par_paraphrase_detection_individual "
    "lewidi_par_paraphrase_detection_individual_categorical "
    "lewidi_varierrnli_nli_detection_individual "
    "lewidi_varierrnli_nli_detection_individual_categorical "
    "community_alignment_initial_prompt community_alignment_individual_reply "
    "community_alignment_individual_preferences community_alignment_response "
    "collective_alignment_individual").split()


def test_every_training_key_of_the_release_is_a_training_task():
  assert len(TRAIN_KEYS) == len(set(TRAIN_KEYS)) == 71
  if os.path.exists(KEYS_FILE):
    with open(KEYS_FILE, encoding="utf-8") as f:
      assert sorted(TRAIN_KEYS) == sorted(json.load(f)["train"])
  tasks = registry.all_tasks()
  assert [k for k in TRAIN_KEYS if k not in tasks] == []
  assert {tasks[k].suite_split for k in TRAIN_KEYS} == {"train"}
  assert {tasks[k].kind for k in TRAIN_KEYS} == {"icl"}


def test_every_task_with_raw_files_says_how_to_get_them():
  for spec in registry.all_tasks().values():
    for f in spec.raw_files:
      assert f.download is not None, (spec.name, f.path)


@pytest.fixture(scope="module")
def fixture_suite(tmp_path_factory):
  tasks = registry.all_tasks()
  names = [k for k in TRAIN_KEYS if tasks[k].raw_files and all(
      os.path.isfile(os.path.join(FIXTURES, f.path))
      for f in tasks[k].raw_files)]
  out = str(tmp_path_factory.mktemp("whole_suite"))
  errors = build.build(out, registry.select(tasks, names), seed=0,
                       raw_dir=FIXTURES, explicit=True)
  assert errors == []
  return out, names


def test_the_real_training_sources_build_from_their_fixtures(fixture_suite):
  out, names = fixture_suite
  # Every real training source has checked-in fixtures but OpinionQA (its
  # fixtures are written by tests/test_sources.py) and babynames (4 of the
  # 144 year files; tests/test_source_babynames.py builds from those).
  real = [k for k in TRAIN_KEYS if registry.all_tasks()[k].raw_files]
  assert sorted(set(real) - set(names)) == [
      "babynames", "opinionqa_individual", "opinionqa_questions"]
  suite = Suite(out)
  for name in names:
    split = "train"
    source = suite.source(name, split)
    plan = TaskPlan.make(source, seed=0)
    assert plan.num_episodes > 0, name
    messages = plan_messages(plan, plan.num_episodes - 1)
    assert any(m.role == "output" and m.content for m in messages), name
