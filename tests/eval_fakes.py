"""Test doubles for the evaluation suites' tests: a character tokenizer, a
scorer and a sampler with known outputs, and a small suite with one task of
each evaluation kind (built by the `eval_suite` fixture in conftest.py).

The fakes return known log-probabilities, greedy flags and samples, so every
aggregate has an exact expected value computed in the tests from the data.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from data_pipelines import build
from data_pipelines.schema import Instance, Row, TaskSpec
from data_pipelines.synthetic import diversity as diversity_data
from data_pipelines.synthetic import urn
from spectrax.data import templates
from spectrax.data.tokenizer import Tokenizer
from spectrax.evaluation.suite_inputs import ModelBundle


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
  for i in range(10):
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


def build_eval_suite(out: str) -> str:
  """Builds the suite into `out`: an ICL test task `coins_test`, capability
  sets `mmlu` (answers B), `arc` (answers A) and free-text `drop`, the
  distributional `urn` and `ratings_distributional`, and the diversity tasks."""
  specs = [
      TaskSpec(name="coins_test", suite_split="test", kind="icl",
               generate=_coins, mean_k=8, chunk_all_rows=True),
      TaskSpec(name="mmlu", suite_split="test", kind="icl",
               generate=functools.partial(_mc, "B"), fixed_k=5, chunk_all_rows=True),
      TaskSpec(name="arc", suite_split="test", kind="icl",
               generate=functools.partial(_mc, "A"), fixed_k=4, chunk_all_rows=True),
      TaskSpec(name="drop", suite_split="test", kind="icl",
               generate=_free_text, fixed_k=4, chunk_all_rows=True),
      TaskSpec(name="urn", suite_split="test", kind="distributional",
               generate=_urns),
      TaskSpec(name="ratings_distributional", suite_split="test",
               kind="distributional", generate=_ratings),
      dataclasses.replace(diversity_data.SPEC),
  ]
  errors = build.build(out, specs, seed=0, raw_dir=None)
  if errors:
    raise RuntimeError(f"building the evaluation test suite failed: {errors}")
  return out


def make_bundle(scorer=None, sampler=None, template="gemma") -> ModelBundle:
  """A model bundle of the fakes (a `FakeScorer` unless one is given)."""
  return ModelBundle("fake", template, TOKENIZER, scorer or FakeScorer(), sampler)
