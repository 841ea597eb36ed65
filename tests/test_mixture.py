"""spectrax.data.mixture and `python -m spectrax.show_mixture`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data_pipelines import build, registry
from spectrax.data import episode_planning, mixture
from spectrax.data.episodes import tokenize_episode
from spectrax.data.suite_reader import Suite

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("suite"))
  specs = registry.select(registry.all_tasks(), ["cards", "coinflip", "urn"])
  assert build.build(out, specs, seed=0, raw_dir=None) == []
  return out


def test_rows_count_episodes_tokens_and_shares(suite_dir, sp_tokenizer):
  rows = mixture.suite_mixture(suite_dir, sample=8,
                               tokenizer_path=sp_tokenizer.name)
  by = {r.task: r for r in rows}
  assert sorted(by) == ["cards", "coinflip", "urn"]
  suite = Suite(suite_dir)
  for name in ("cards", "coinflip"):
    source = suite.source(name, "train")
    assert by[name].instances == len(source)
    assert by[name].episodes_per_epoch == episode_planning.TaskPlan.make(
        source, 0).num_episodes
    assert by[name].sampled == 8 and by[name].mean_tokens > 0
    assert by[name].training and by[name].split == "train"
  assert sum(by[n].token_share for n in ("cards", "coinflip")) == \
      pytest.approx(1.0)
  share = [by[n].episodes_per_epoch * by[n].mean_tokens for n in
           ("cards", "coinflip")]
  assert by["cards"].token_share == pytest.approx(share[0] / sum(share))
  # A test-suite distributional task: counted, no episodes, no share.
  urn = by["urn"]
  assert (urn.split, urn.instances, urn.episodes_per_epoch) == ("test", 1000, 0)
  assert urn.mean_tokens is None and urn.token_share is None
  assert not urn.training


def test_mean_tokens_is_exact_when_the_sample_covers_the_task(
    suite_dir, sp_tokenizer):
  rows = mixture.suite_mixture(suite_dir, sample=10_000, max_tokens=300,
                               tokenizer_path=sp_tokenizer.name)
  cards = next(r for r in rows if r.task == "cards")
  plan = episode_planning.TaskPlan.make(
      Suite(suite_dir).source("cards", "train"), 0)
  lengths = []
  for i in range(plan.num_episodes):
    ep = tokenize_episode(episode_planning.plan_messages(plan, i), "gemma",
                          sp_tokenizer, max_tokens=300)
    if ep.num_loss_tokens:
      lengths.append(len(ep.tokens))
  assert cards.sampled == plan.num_episodes
  assert cards.mean_tokens == pytest.approx(np.mean(lengths))
  assert max(lengths) <= 300


def test_sample_is_seeded(suite_dir, sp_tokenizer):
  a, b, c = (mixture.suite_mixture(suite_dir, sample=4, seed=seed,
                                   tokenizer_path=sp_tokenizer.name)
             for seed in (0, 0, 1))
  assert a == b
  assert [r.mean_tokens for r in a] != [r.mean_tokens for r in c]


def test_report_is_a_table_then_json_keyed_by_task(suite_dir, sp_tokenizer):
  rows = mixture.suite_mixture(suite_dir, sample=4,
                               tokenizer_path=sp_tokenizer.name)
  text = mixture.format_report(rows, sample=4, template="gemma",
                               max_tokens=1024)
  lines = text.splitlines()
  assert "* = estimated from a seeded sample of 4 episodes" in lines[0]
  assert lines[1].split()[:3] == ["task", "split", "kind"]
  assert lines[3].startswith("cards ") and lines[5].startswith("urn ")
  data = json.loads(lines[-1])
  assert sorted(data) == ["cards", "coinflip", "urn"]
  assert data["coinflip"]["episodes_per_epoch"] == rows[1].episodes_per_epoch
  assert data["urn"]["token_share"] is None


def test_sample_must_be_positive(suite_dir):
  with pytest.raises(ValueError, match="sample=0"):
    mixture.suite_mixture(suite_dir, sample=0)


def _mixture_cli(*args):
  return subprocess.run([sys.executable, "-m", "spectrax.show_mixture", *args],
                        cwd=REPO, capture_output=True, text=True, timeout=300)


def test_cli_mixture_trains_the_default_tokenizer_and_ends_in_json(
    tmp_path, suite_dir):
  import shutil  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "suite")
  shutil.copytree(suite_dir, out)
  result = _mixture_cli(f"--suite={out}", "--sample=4")
  assert result.returncode == 0, result.stderr
  data = json.loads(result.stdout.strip().splitlines()[-1])
  assert sorted(data) == ["cards", "coinflip", "urn"]
  assert data["cards"]["sampled"] == 4
  assert os.path.exists(os.path.join(out, "tokenizer.model"))
  assert "built" not in result.stdout  # Reports only.


def test_cli_mixture_without_a_suite_is_one_error_line(tmp_path):
  result = _mixture_cli(f"--suite={tmp_path}")
  assert result.returncode == 2
  assert result.stderr.strip().startswith("error:")
  assert len(result.stderr.strip().splitlines()) == 1
  assert "build the suite first" in result.stderr
