"""Tests of spectrax/evaluation/suites.py with fake scorers and samplers.

The fakes return known log-probabilities, greedy flags and samples, so every
aggregate has an exact expected value computed here from the data.
"""

import dataclasses
import functools
import math

import numpy as np
import pytest

from data_pipelines import build
from data_pipelines.schema import Instance, Row, TaskSpec
from data_pipelines.synthetic import diversity as diversity_data
from data_pipelines.synthetic import urn
from spectrax.data import templates
from spectrax.evaluation import metrics, suites
from spectrax.data.suite_reader import Suite
from spectrax.data.tokenizer import Tokenizer


class CharTokenizer(Tokenizer):
  """One id per character; template special tokens are single ids."""

  SPECIALS = templates.all_special_tokens()
  BOS, EOS, OFFSET = 1, 2, 100

  @property
  def vocab_size(self):
    return 100_000

  @property
  def bos_id(self):
    return self.BOS

  @property
  def eos_id(self):
    return self.EOS

  def _encode(self, text):
    ids, i = [], 0
    while i < len(text):
      for j, s in enumerate(self.SPECIALS):
        if text.startswith(s, i):
          ids.append(3 + j)
          i += len(s)
          break
      else:
        ids.append(self.OFFSET + ord(text[i]))
        i += 1
    return ids

  def id_to_piece(self, token_id):
    if 3 <= token_id < 3 + len(self.SPECIALS):
      return self.SPECIALS[token_id - 3]
    return chr(token_id - self.OFFSET) if token_id >= self.OFFSET else ""

  def piece_to_id(self, piece):
    ids = self._encode(piece)
    return ids[0] if len(ids) == 1 else None

  def decode(self, ids):
    return "".join(self.id_to_piece(i) for i in ids)


TOKENIZER = CharTokenizer()
END_OF_TURN = TOKENIZER.piece_to_id("<end_of_turn>")


@dataclasses.dataclass
class FakeResult:
  id: str
  logprobs: list
  num_tokens: list
  greedy: list
  boundary_mismatch: list
  truncated: bool


class FakeScorer:
  """Every token: log-prob −1 and top-1 prob 0.75; greedy is wrong exactly
  at `<end_of_turn>`. Options: −1 for `preferred`, −3 for the others, or
  `option_logprobs(request)` when given."""

  def __init__(self, preferred=None, option_logprobs=None):
    self.preferred = preferred
    self.option_logprobs = option_logprobs
    self.requests = []
    self.episode_calls = []

  def score_episodes(self, token_lists):
    self.episode_calls.append(len(token_lists))
    out = []
    for tokens in token_lists:
      tokens = np.asarray(tokens)[1:]
      out.append({"logprob": np.full(len(tokens), -1.0, np.float32),
                  "greedy": tokens != END_OF_TURN,
                  "top_prob": np.full(len(tokens), 0.75, np.float32)})
    return out

  def score(self, requests):
    for r in requests:
      self.requests.append(r)
      if self.option_logprobs is not None:
        lps = self.option_logprobs(r)
      else:
        lps = [-1.0 if o == self.preferred else -3.0 for o in r.options]
      yield FakeResult(r.id, lps, [1] * len(r.options), [False] * len(lps),
                       [False] * len(lps), False)


class FakeSampler:
  RAW = ["  Utah\nmore", "Utah<end_of_turn>", "Ohio", "Narnia", "\nTexas",
         "<pad>7"]

  def __init__(self):
    self.calls = []

  def sample(self, prompts, **kwargs):
    self.calls.append((list(prompts), kwargs))
    n = kwargs["num_samples"]
    return [[self.RAW[i % len(self.RAW)] for i in range(n)] for _ in prompts]


def _coins(ctx):
  del ctx
  rng = np.random.default_rng(3)
  for i in range(6):
    yield Instance(id=f"c{i}", descriptions=[f"Coin {i}."],
                   rows=[Row("Heads" if rng.random() < 0.5 else "Tails")
                         for _ in range(int(rng.integers(3, 12)))])


def _mc(answer, ctx):
  del ctx
  rows = [Row(input=f"Question: q{i}?\nA. one\nB. two\nC. three",
              output=answer) for i in range(12)]
  yield Instance(id="all", rows=rows, descriptions=["Answer with a letter."])


def _free_text(ctx):
  del ctx
  yield Instance(id="all", rows=[Row(input=f"Passage: p{i}", output=f"a{i}")
                                 for i in range(8)])


def _urns(ctx):
  del ctx
  for i, counts in enumerate([{"red": 1, "blue": 3}, {"green": 2, "white": 2,
                                                      "black": 4}]):
    yield urn.urn_instance(f"urn_{i}", counts)


def _ratings(ctx):
  del ctx
  yield Instance(id="r0", descriptions=["Rate it."], question="How good?",
                 options=["1", "2", "3"], target=[0.5, 0.5, 0.0])


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
  specs = [
      TaskSpec(name="coins_test", suite_split="test", kind="icl",
               generate=_coins, mean_k=8),
      TaskSpec(name="mmlu", suite_split="test", kind="icl",
               generate=functools.partial(_mc, "B"), fixed_k=5),
      TaskSpec(name="arc", suite_split="test", kind="icl",
               generate=functools.partial(_mc, "A"), fixed_k=4),
      TaskSpec(name="drop", suite_split="test", kind="icl",
               generate=_free_text, fixed_k=4),
      TaskSpec(name="urn", suite_split="test", kind="distributional",
               generate=_urns),
      TaskSpec(name="ratings_distributional", suite_split="test",
               kind="distributional", generate=_ratings),
      dataclasses.replace(diversity_data.SPEC),
  ]
  out = str(tmp_path_factory.mktemp("eval_suite"))
  assert build.build(out, specs, seed=0, raw_dir=None) == []
  return Suite(out)


def _bundle(scorer=None, sampler=None, template="gemma"):
  return suites.ModelBundle("fake", template, TOKENIZER,
                            scorer or FakeScorer(), sampler)


def test_split_outputs_on_a_hand_made_sequence():
  # tokens:   BOS c  c  L  L  c  L  L  L
  mask = np.array([0, 0, 0, 1, 1, 0, 1, 1, 1], bool)
  scores = {  # for tokens 1..8
      "logprob": np.array([-9, -9, -0.5, -1.5, -9, -0.25, -0.25, -2.0]),
      "greedy": np.array([0, 0, 1, 0, 0, 1, 1, 1], bool),
      "top_prob": np.array([.1, .1, .9, .2, .1, .6, .3, .3]),
  }
  out = suites.split_outputs(mask, scores, first_index=1)
  assert out == [
      {"example_index": 1, "loss": 2.0, "all_acc": 0.0, "first_acc": 1.0,
       "confidence": pytest.approx(0.9), "num_tokens": 2},
      {"example_index": 2, "loss": 2.5, "all_acc": 1.0, "first_acc": 1.0,
       "confidence": pytest.approx(0.6), "num_tokens": 3},
  ]
  with pytest.raises(ValueError, match="expected 8"):
    suites.split_outputs(mask, {k: v[:-1] for k, v in scores.items()}, 0)


def test_steerability_exact_aggregates(suite):
  scorer = FakeScorer()
  result = suites.steerability(_bundle(scorer), suite, ["coins_test"],
                               num_episodes=5, max_tokens=4096, batch=2,
                               progress=False)
  task = result["tasks"]["coins_test"]
  episodes = suites.task_episodes(suite, "coins_test", 5, seed=0)
  assert task["episodes"] == 5 and task["dropped"] == 0
  assert scorer.episode_calls == [2, 2, 1]
  later, first_index_zero = 0, 0
  last_indices = []
  for _, messages in episodes:
    n_out = sum(m.role == "output" for m in messages)
    later += n_out - 1
    first_index_zero += messages[0].role == "description"
    last_indices.append(n_out - 1)
  # Each output "Heads"/"Tails" + <end_of_turn>: 6 loss tokens at −1 each;
  # greedy misses the terminal, so all_acc 0 and first_acc 1; ECE |1 − .75|.
  assert task["loss"] == pytest.approx(6.0)
  assert task["all_acc"] == 0.0 and task["first_acc"] == 1.0
  assert task["ece"] == pytest.approx(0.25)
  assert task["num_outputs"] == later
  curve = task["curve"]
  assert curve["example_index"][0] == (0 if first_index_zero else 1)
  assert curve["loss"] == pytest.approx([6.0] * len(curve["loss"]))
  assert sum(curve["count"]) == later + first_index_zero
  k = metrics.choose_k(last_indices)
  assert task["k"] == k
  assert task["at_k"]["num_episodes"] == sum(m >= k for m in last_indices)
  assert task["at_k"]["num_outputs"] == k * task["at_k"]["num_episodes"]
  assert task["calibration"]["count"][7] == later  # 0.75 is in [0.7, 0.8)
  assert result["summary"]["pooled_ece"] == pytest.approx(0.25)


def test_steerability_default_tasks_skip_capability_sets(suite):
  assert suites.default_icl_tasks(suite) == ["coins_test"]


def test_distributional_known_js(suite):
  uniform = lambda r: [math.log(0.2)] * len(r.options)
  scorer = FakeScorer(option_logprobs=uniform)
  result = suites.distributional(_bundle(scorer, template="colon"), suite,
                                 num_examples=1, progress=False)
  urn_result = result["tasks"]["urn"]
  targets = [[0.25, 0.75], [0.25, 0.25, 0.5]]
  expected_js = []
  for t in targets:
    u = [1 / len(t)] * len(t)
    expected_js.append(metrics.js_divergence(t, u))
  assert urn_result["num_questions"] == 2
  assert urn_result["metrics"]["js_divergence"] == pytest.approx(
      np.mean(expected_js), rel=1e-9)
  assert urn_result["metrics"]["coverage"] == pytest.approx(
      np.mean([0.4, 0.6]))
  assert "wasserstein" not in urn_result["metrics"]
  ratings = result["tasks"]["ratings_distributional"]["metrics"]
  assert ratings["wasserstein"] == pytest.approx(
      metrics.wasserstein([0.5, 0.5, 0], [1 / 3] * 3))
  [req] = [r for r in scorer.requests if r.id == "urn/urn_0"]
  # Colon: the release's prompt with the output named (SOURCES §6).
  assert req.options == [" red", " blue"]
  assert req.prompt == suites.distributional_request(
      "urn/urn_0", urn.urn_instance("urn_0", {"red": 1, "blue": 3}), "colon").prompt
  assert req.prompt.startswith("Description: " + urn.urn_description({"red": 1, "blue": 3}))
  assert req.prompt.endswith(urn.QUESTION + "\n" + urn.OUTPUT_NAME + ":")
  assert req.target == pytest.approx([0.25, 0.75])
  [example] = urn_result["examples"]
  assert example["model"] == pytest.approx([1 / len(example["options"])]
                                           * len(example["options"]))


def test_is_ordinal():
  assert suites.is_ordinal(["1", "2", "3"])
  assert not suites.is_ordinal(["3", "1"])
  assert not suites.is_ordinal(["red", "blue"])


def test_diversity_prompts_and_metrics(suite):
  sampler = FakeSampler()
  result = suites.diversity(
      _bundle(sampler=sampler), suite, ["us_states_full_names"],
      num_samples=6, seed=5, progress=False)
  [(prompts, kwargs)] = sampler.calls
  assert prompts[2] == (
      "<start_of_turn>description\nName a US state<end_of_turn>\n"
      "<start_of_turn>output\nKentucky<end_of_turn>\n"
      "<start_of_turn>output\nUtah<end_of_turn>\n"
      "<start_of_turn>output\nOregon<end_of_turn>\n<start_of_turn>output\n")
  assert prompts[0] == ("<start_of_turn>description\nName a US state"
                        "<end_of_turn>\n<start_of_turn>output\n")
  assert kwargs == {"num_samples": 6, "max_new_tokens": 15,
                    "temperature": 1.0, "top_p": 1.0, "top_k": 0,
                    "stop_strings": suites.SAMPLING_STOPS,
                    "stop_token_ids": (CharTokenizer.EOS,), "seed": 5}
  # Cleaned: Utah Utah Ohio Narnia Texas 7 -> valid Utah Utah Ohio Texas.
  out = result["tasks"]["us_states_full_names"]["both"]
  assert {k: v for k, v in out.items() if k != "top"} == {
      "percent_valid": 4 / 6, "yield": 3, "unique_gens_pct": 3 / 4,
      "usable_unique": 3 / 6, "raw_unique": 5 / 6,
      "pairwise_collision": 1 / 6, "coverage": 3 / 50}
  assert out["top"][0] == {"text": "Utah", "count": 2, "valid": True}
  assert result["summary"]["examples"]["yield"] == 3


def test_clean_generation():
  assert suites.clean_generation("\n\n Utah \nOhio") == "Utah"
  assert suites.clean_generation("Ohio<|eot_id|>x") == "Ohio"
  assert suites.clean_generation("<pad> 13<|endoftext|>") == "13"
  assert suites.clean_generation("  ") == ""


def test_capabilities_accuracy(suite):
  scorer = FakeScorer(preferred="B")
  result = suites.capabilities(_bundle(scorer), suite, num_episodes=3,
                               progress=False)
  assert result["tasks"]["mmlu"]["mode"] == "option_loglik"
  assert result["tasks"]["mmlu"]["accuracy"] == 1.0
  # 12 rows, 5 an episode: the plan has round(12 / 5) = 2 episodes.
  assert len(suites.task_episodes(suite, "mmlu", 3, seed=0)) == 2
  assert result["tasks"]["mmlu"]["num_questions"] == 2 * 5
  assert result["tasks"]["arc"]["accuracy"] == 0.0  # answers are all A
  # DROP-like free text: greedy exact match; the fake misses <end_of_turn>.
  assert result["tasks"]["drop"]["mode"] == "greedy_exact_match"
  assert result["tasks"]["drop"]["accuracy"] == 0.0
  mmlu = [r for r in scorer.requests if r.id.startswith("mmlu/")]
  assert {tuple(r.options) for r in mmlu} == {("A", "B", "C")}
  # Question j of an episode sees the j earlier questions and answers.
  first = [r for r in mmlu if r.id.endswith("/2")][0]
  assert [m["role"] for m in first.messages][-5:] == [
      "input", "output", "input", "output", "input"]
  assert result["summary"]["accuracy"] == pytest.approx(1 / 3)


def test_capability_option_labels():
  assert suites.option_labels("Question: x\nA. a\nB. b\n1. c") == ["A", "B"]
  assert suites.option_labels("Passage: A. b") == []
  # MMLU statement lists and numbered lists before the options are not options.
  assert suites.option_labels("I. p\nII. q\nWhich are true?\nA. I\nB. II\nC. both\nD. none"
                              ) == ["A", "B", "C", "D"]
  assert suites.option_labels("Steps:\n1. mix\n2. bake\nA. yes\nB. no") == ["A", "B"]
  assert suites.option_labels("Rate it\n1. bad\n2. ok\n3. good") == ["1", "2", "3"]
  assert suites.option_labels("A. a\nC. c") == []


def test_colon_distributional_prompt_names_the_output():
  inst = urn.urn_instance("u", {"red": 1, "blue": 3})
  req = suites.distributional_request("urn/u", inst, "colon")
  assert req.prompt == (
      "Description: There is an urn with the following balls shuffled together: 1 red ball "
      "and 3 blue balls.\n\nInput: Draw a ball at random, and tell me the color "
      "(lowercase).\nResponse (color):")
  assert req.options == [" red", " blue"] and req.messages is None
  chat = suites.distributional_request("urn/u", inst, "gemma")
  assert chat.prompt is None and chat.template == "gemma" and chat.options == ["red", "blue"]


def test_suite_results_render_in_report(suite, tmp_path):
  from spectrax.evaluation import report  # pylint: disable=g-import-not-at-top
  results = {}
  for name, preferred in (("base", "A"), ("tuned", "B")):
    bundle = _bundle(FakeScorer(preferred=preferred), FakeSampler())
    results[name] = {
        "steerability": suites.steerability(bundle, suite, num_episodes=3,
                                            progress=False),
        "distributional": suites.distributional(bundle, suite,
                                                progress=False),
        "diversity": suites.diversity(bundle, suite, ["rng_1_10"],
                                      num_samples=4, progress=False),
        "capabilities": suites.capabilities(bundle, suite, num_episodes=2,
                                            progress=False),
    }
  path = report.write_report(results, str(tmp_path))
  with open(path, encoding="utf-8") as f:
    page = f.read()
  for png in ("steerability_coins_test.png", "calibration.png",
              "distributional_js.png", "distributional_urn.png",
              "distributional_ratings_distributional.png"):
    assert f'src="{png}"' in page and (tmp_path / png).exists()


def test_default_tasks_of_a_synthetic_only_suite(tiny_suite_dir):
  # No test-suite ICL task: the held-out instances of train-suite tasks,
  # except `long`, which holds none out.
  assert suites.default_icl_tasks(Suite(tiny_suite_dir)) == ["coins", "sums"]


def test_steerability_counts_truncated_and_dropped_episodes(suite):
  from spectrax.data.episodes import tokenize_episode  # pylint: disable=g-import-not-at-top
  max_tokens = 40
  result = suites.steerability(_bundle(), suite, ["coins_test"],
                               num_episodes=6, max_tokens=max_tokens,
                               progress=False)
  task = result["tasks"]["coins_test"]
  kept = [tokenize_episode(m, "gemma", TOKENIZER, max_tokens=max_tokens)
          for _, m in suites.task_episodes(suite, "coins_test", 6, seed=0)]
  assert task["truncated"] == sum(e.truncated for e in kept) > 0
  assert task["dropped"] == sum(e.num_loss_tokens == 0 for e in kept)
  assert task["episodes"] + task["dropped"] == len(kept)
  assert task["loss"] == pytest.approx(6.0)


def test_steerability_k_and_episodes_do_not_depend_on_the_template(suite):
  """SPEC §7a: k and the episodes kept at k are chosen once (reference
  tokenisation), so models with other formats are compared on the same
  examples; a format too long for an episode re-scores it cut after k."""
  results = {}
  for template in ("gemma", "colon"):
    scorer = FakeScorer()
    results[template] = suites.steerability(
        _bundle(scorer, template=template), suite, ["coins_test"], num_episodes=6,
        max_tokens=60, progress=False)["tasks"]["coins_test"]
  gemma, colon = results["gemma"], results["colon"]
  assert gemma["k"] == colon["k"] >= 1
  assert gemma["at_k"]["num_episodes"] == colon["at_k"]["num_episodes"] >= 1
  for task in (gemma, colon):
    assert task["at_k"]["num_outputs"] == task["k"] * task["at_k"]["num_episodes"]


def test_at_k_rescores_an_episode_the_model_truncated_before_k(suite):
  episodes = suites.task_episodes(suite, "coins_test", 4, seed=0)
  scorer = FakeScorer()
  bundle = _bundle(scorer)
  full, _ = suites._score_outputs(bundle, episodes, None, 8, "t", False)  # pylint: disable=protected-access
  k, at_k, kept = suites._at_k(bundle, episodes, full, TOKENIZER, 4096, 8, "t", False)  # pylint: disable=protected-access
  assert scorer.episode_calls == [len(episodes)] and kept >= 1
  # This model's own pass lost every example after the first (a short cap):
  short = [o for o in full if o["example_index"] < 1]
  k2, at_k2, kept2 = suites._at_k(bundle, episodes, short, TOKENIZER, 4096, 8, "t", False)  # pylint: disable=protected-access
  assert (k2, kept2) == (k, kept)
  assert scorer.episode_calls[-1] == kept  # the kept episodes, re-scored cut after k
  def key(outputs):
    return sorted((o["episode"], o["example_index"], o["loss"]) for o in outputs
                  if 1 <= o["example_index"] <= k)
  assert key(at_k2) == key(at_k) and len(key(at_k)) == k * kept


def test_cut_after_example():
  from spectrax.data.episodes import Message  # pylint: disable=g-import-not-at-top
  msgs = [Message("description", "d"), Message("output", "a"), Message("input", "i"),
          Message("output", "b"), Message("output", "c")]
  assert suites.cut_after_example(msgs, 1) == msgs[:4]
  assert suites.cut_after_example(msgs, 0) == msgs[:2]
  assert suites.cut_after_example(msgs, 5) == msgs
