"""Tests of the synthetic tasks (data_pipelines/synthetic): fast, CPU only."""

from __future__ import annotations

import ast
import itertools
import math
import re

import numpy as np
import pytest

from data_pipelines.schema import KINDS, BuildContext, Instance, Row
from data_pipelines.synthetic import TASKS, cards, coinflip, discrete, urn
from data_pipelines.synthetic.common import (fmt_float, gp, instance_rng,
                                             prob_dict)
from data_pipelines.synthetic.diversity import DATA_FILE

SEED = 0
CTX = BuildContext(seed=SEED, raw_dir=None)
SPECS = {spec.name: spec for spec in TASKS}
TRAIN = ("coinflip", "normal", "cards", "multinomial", "geometric", "poisson",
         "binomial", "negative_binomial", "categorical", "geometric_beta",
         "hypergeometric", "zipfian")
DISCRETE = tuple(n for n in TRAIN if n not in ("coinflip", "normal", "cards"))
RANDOM_TASKS = TRAIN + ("urn",)  # diversity is fixed data, not drawn.


@pytest.fixture(scope="module")
def built() -> dict[str, list[Instance]]:
  """Every synthetic task built once with SEED (a few seconds)."""
  return {name: list(spec.generate(CTX)) for name, spec in SPECS.items()}


def _first(name: str, seed: int, n: int = 8) -> list[Instance]:
  # Generators are lazy and seeded per instance, so a prefix is cheap.
  return list(itertools.islice(
      SPECS[name].generate(BuildContext(seed=seed, raw_dir=None)), n))


# --- the registry -----------------------------------------------------------


def test_registry_names_and_sampling_fields():
  assert list(SPECS) == list(dict.fromkeys(SPECS))  # unique names
  assert set(SPECS) == set(TRAIN) | {"flight", "urn", "diversity"}
  for name in TRAIN:
    spec = SPECS[name]
    assert (spec.suite_split, spec.kind) == ("train", "icl"), name
    assert spec.about, name
  # The release's rules: one episode per instance for every synthetic task.
  expected = {"coinflip": (128, None, 0.6), "normal": (128, None, 0.4),
              "cards": (None, 52, 0.6), "flight": (None, 20, 0.6)}
  expected.update({n: (None, None, 0.6) for n in DISCRETE})
  for name, fields in expected.items():
    spec = SPECS[name]
    assert (spec.mean_k, spec.fixed_k, spec.p_desc) == fields, name
    assert (spec.episodes_per_instance, spec.chunk_all_rows,
            spec.orderings) == (1, False, 1), name
  assert (SPECS["flight"].suite_split, SPECS["flight"].kind) == ("test", "icl")
  assert (SPECS["urn"].suite_split, SPECS["urn"].kind) == (
      "test", "distributional")
  assert (SPECS["diversity"].suite_split,
          SPECS["diversity"].kind) == ("test", "diversity")
  assert all(spec.kind in KINDS for spec in TASKS)


def test_instance_counts_ids_and_validate(built):
  counts = {"coinflip": 1000, "normal": 1000, "cards": 100, "urn": 1000,
            "diversity": 22, "flight": 200}
  counts.update({n: 500 for n in DISCRETE})
  for name, instances in built.items():
    assert len(instances) == counts[name], name
    ids = [inst.id for inst in instances]
    assert len(set(ids)) == len(ids), name
    for inst in instances:
      inst.validate(name)


# --- determinism and independence ---------------------------------------------


@pytest.mark.parametrize("name", RANDOM_TASKS + ("diversity",))
def test_same_seed_same_instances(name, built):
  assert _first(name, SEED) == built[name][:8]


@pytest.mark.parametrize("name", RANDOM_TASKS)
def test_other_seed_other_instances(name, built):
  other = _first(name, SEED + 1)
  assert all(a != b for a, b in zip(other, built[name][:8]))


def test_instance_seeding_is_per_task_and_index(built):
  # Instance 7 of poisson depends on (seed, "poisson", 7) only.
  rows, descriptions = discrete.poisson(instance_rng(SEED, "poisson", 7))
  assert built["poisson"][7].rows == rows
  assert built["poisson"][7].descriptions == descriptions
  # Same K and π would mean shared RNG state (the release's categorical and
  # multinomial); here the two tasks draw independently.
  assert (built["categorical"][0].descriptions[0].split("vector")[1]
          != built["multinomial"][0].descriptions[0].split("vector")[1])


@pytest.mark.parametrize("name", ["poisson", "geometric"])
def test_no_parameter_collapse(name, built):
  # The release gives 499 of 500 instances the same λ / p (docs/method.md#independent-parameters-per-instance).
  params = {inst.descriptions[0] for inst in built[name]}
  assert len(params) > 490


def test_every_random_instance_is_distinct(built):
  for name in RANDOM_TASKS:
    keys = {(tuple(i.descriptions), tuple(i.rows), tuple(i.target))
            for i in built[name]}
    if name == "urn":
      # Small urns (2 colours, few balls) legitimately repeat.
      assert len(keys) >= 950
    else:
      # Near-certain coins (p < 0.0005) can legitimately coincide.
      assert len(keys) >= len(built[name]) - 2, name


def test_instance_rng_rejects_bad_seed():
  with pytest.raises(ValueError):
    instance_rng(-1, "poisson", 0)
  with pytest.raises(ValueError):
    instance_rng(1.5, "poisson", 0)


def test_gp_mean():
  rng = np.random.default_rng(0)
  draws = [gp(rng, 128) for _ in range(4000)]
  assert min(draws) >= 1
  assert abs(np.mean(draws) - 128) < 5


# --- number formatting --------------------------------------------------------


@pytest.mark.parametrize("x, text", [
    (1803.3912837386433, "1803.39"),
    (0.8127938471, "0.812794"),
    (12345.678, "12345.7"),
    (1234567.89, "1234568"),
    (3e-7, "0.0000003"),
    (0.25, "0.25"),
    (0.1 + 0.2, "0.3"),
    (2.0, "2"),
    (0.0, "0"),
])
def test_fmt_float(x, text):
  assert fmt_float(x) == text


def test_prob_dict():
  assert prob_dict(np.array([0.20294, 0.79706])) == "{0: 0.2029, 1: 0.7971}"
  assert prob_dict([1e-9, 1.0]) == "{0: 0.0, 1: 1.0}"


def test_no_numpy_reprs_or_float_noise(built):
  # numpy reprs, or 7+ significant decimals (`61.199999999999996`).
  noise = re.compile(r"np\.|\.0*[1-9]\d{6,}")
  for name in TRAIN:
    for inst in built[name]:
      for text in inst.descriptions:
        assert not noise.search(text), (name, text)
      if name == "normal":
        continue  # normal draws legitimately carry up to ~10 decimals.
      for row in inst.rows[:50]:
        assert "np." not in row.output, (name, row.output)


# --- coinflip -----------------------------------------------------------------


def test_coin_descriptions_golden():
  assert coinflip.coin_descriptions(0.612) == [
      "['Heads', 'Tails']",
      "{'Heads': 0.612, 'Tails': 0.388}",
      "Bernoulli({'Heads': 0.612, 'Tails': 0.388})",
      "{'Heads': '61.2%', 'Tails': '38.8%'}",
      "Bernoulli({'Heads': '61.2%', 'Tails': '38.8%'})",
      "Options: ['Heads', 'Tails']\nHeads is more likely than Tails.",
      "Coin flip with Heads and Tails. It is potentially biased.",
  ]
  low = coinflip.coin_descriptions(0.0004)
  assert low[1] == "{'Heads': 0.0, 'Tails': 1.0}"
  assert low[3] == "{'Heads': '0.0%', 'Tails': '100.0%'}"
  assert low[5].endswith("Tails is more likely than Heads.")
  assert coinflip.coin_descriptions(0.5)[5].endswith(
      "Heads and Tails are equally likely.")


def test_coinflip_pools_match_stated_bias(built):
  errors = []
  for inst in built["coinflip"]:
    outputs = [row.output for row in inst.rows]
    assert len(outputs) == coinflip.POOL_SIZE
    assert set(outputs) <= {"Heads", "Tails"}
    p = ast.literal_eval(inst.descriptions[1])["Heads"]
    share = outputs.count("Heads") / len(outputs)
    sigma = math.sqrt(max(p * (1 - p), 1e-4) / len(outputs))
    assert abs(share - p) < 0.0005 + 5 * sigma, (inst.id, p, share)
    errors.append(abs(share - p))
  assert np.mean(errors) < 0.02


# --- normal -------------------------------------------------------------------


def test_normal_outputs_have_stated_decimals(built):
  for inst in built["normal"]:
    assert len(inst.descriptions) == 126
    decimals = int(inst.descriptions[0].split("Precision: ")[1])
    pattern = re.compile(rf"-?\d+\.\d{{{decimals}}}")
    for row in inst.rows[:64]:
      assert pattern.fullmatch(row.output), (inst.id, decimals, row.output)
    assert len(inst.rows) == 512


def test_normal_descriptions_shape(built):
  descriptions = built["normal"][0].descriptions
  free = [d for d in descriptions
          if d.split("\n")[0] in ("Normal distribution", "Floating point "
                                  "numbers", "Decimal numbers", "Numbers")]
  assert len(free) == 72  # 4/7 state no parameters, as in the release.
  assert not any(d.endswith("\n") for d in descriptions)
  assert descriptions[0].startswith("Normal distribution with mean ")


# --- cards --------------------------------------------------------------------


def test_cards_are_the_52_cards(built):
  expected = ("2♣ 3♣ 4♣ 5♣ 6♣ 7♣ 8♣ 9♣ 10♣ J♣ Q♣ K♣ A♣ "
              "2♦ 3♦ 4♦ 5♦ 6♦ 7♦ 8♦ 9♦ 10♦ J♦ Q♦ K♦ A♦ "
              "2♥ 3♥ 4♥ 5♥ 6♥ 7♥ 8♥ 9♥ 10♥ J♥ Q♥ K♥ A♥ "
              "2♠ 3♠ 4♠ 5♠ 6♠ 7♠ 8♠ 9♠ 10♠ J♠ Q♠ K♠ A♠").split()
  assert list(cards.DECK) == expected
  for inst in built["cards"]:
    outputs = [row.output for row in inst.rows]
    assert sorted(outputs) == sorted(expected)
    assert inst.descriptions == []
  assert SPECS["cards"].default_descriptions == (cards.DESCRIPTION,)


# --- the nine discrete generators ---------------------------------------------


@pytest.mark.parametrize("name", DISCRETE)
def test_discrete_pools(name, built):
  for inst in built[name]:
    assert len(inst.rows) >= 200, inst.id  # GP(1024): min ~470 in practice.
    assert len(inst.descriptions) in (2, 3)
    if name == "multinomial":
      continue
    values = [int(row.output) for row in inst.rows]
    assert all(row.output == str(v) for row, v in zip(inst.rows, values))
    assert min(values) >= (1 if name in ("geometric", "geometric_beta",
                                         "zipfian") else 0)


def test_binomial_and_hypergeometric_bounds(built):
  for inst in built["binomial"]:
    n = int(re.search(r"n=(\d+)", inst.descriptions[0]).group(1))
    assert max(int(r.output) for r in inst.rows) <= n
  for inst in built["hypergeometric"]:
    big_k, n = map(int, re.search(r"K=(\d+), number of draws n=(\d+)",
                                  inst.descriptions[0]).groups())
    assert max(int(r.output) for r in inst.rows) <= min(big_k, n)


def test_multinomial_output_golden():
  counts = np.array([[1, 4], [0, 5]], dtype=np.int64)
  assert discrete.multinomial_outputs(counts, as_dict=True) == [
      "{0: 1, 1: 4}", "{0: 0, 1: 5}"]
  assert discrete.multinomial_outputs(counts, as_dict=False) == [
      "['1', '4']", "['0', '5']"]


def test_multinomial_outputs_parse(built):
  formats = set()
  for inst in built["multinomial"]:
    k, trials = map(int, re.search(r"with (\d+) categories, (\d+) total",
                                   inst.descriptions[0]).groups())
    for row in inst.rows[:20]:
      assert "np." not in row.output
      value = ast.literal_eval(row.output)
      formats.add(type(value))
      counts = (list(value.values()) if isinstance(value, dict)
                else [int(c) for c in value])
      assert len(counts) == k and sum(counts) == trials
  assert formats == {dict, list}


def test_categorical_description_golden(built):
  inst = built["categorical"][0]
  k = int(re.search(r"with (\d+) categories", inst.descriptions[0]).group(1))
  probs = ast.literal_eval(inst.descriptions[0].split("vector ")[1][:-1])
  assert list(probs) == list(range(k))
  assert abs(sum(probs.values()) - 1) < 1e-3
  assert inst.descriptions[2].startswith(f"SingleVariableIID({k}, {{0: ")
  assert {int(r.output) for r in inst.rows} <= set(range(k))


# --- urn ----------------------------------------------------------------------


def test_urn_golden():
  counts = {"blue": 2, "black": 4, "brown": 1}
  assert urn.urn_description(counts) == (
      "There is an urn with the following balls shuffled together: "
      "2 blue balls, 4 black balls and 1 brown ball.")
  assert urn.urn_target(counts) == [2 / 7, 4 / 7, 1 / 7]
  inst = urn.urn_instance("u", counts)
  assert inst.options == ["blue", "black", "brown"]
  assert inst.question == ("Draw a ball at random, and tell me the color "
                           "(lowercase).")
  assert inst.rows == []
  assert urn.urn_description({"red": 1}) == (
      "There is an urn with the following balls shuffled together: "
      "1 red ball.")
  for bad in ({}, {"red": 0}, {"red": 1.5}):
    with pytest.raises(ValueError):
      urn.urn_description(bad)


def test_urn_instances(built):
  sizes = set()
  for inst in built["urn"]:
    assert 2 <= len(inst.options) <= 5
    assert len(set(inst.options)) == len(inst.options)
    assert set(inst.options) <= set(urn.COLOURS)
    listed = inst.descriptions[0].split(": ", 1)[1].rstrip(".")
    counts = [int(part.split()[0])
              for part in re.split(r", | and ", listed)]
    assert all(1 <= c <= 10 for c in counts)
    assert inst.descriptions == [urn.urn_description(
        dict(zip(inst.options, counts)))]
    assert inst.target == pytest.approx([c / sum(counts) for c in counts])
    sizes.add(len(inst.options))
  assert sizes == {2, 3, 4, 5}


# --- diversity ----------------------------------------------------------------


def test_diversity_instances(built):
  assert DATA_FILE.is_file()
  by_id = {inst.id: inst for inst in built["diversity"]}
  assert len(by_id) == 22
  sizes = {"us_states_full_names": 50, "us_states_abbreviations": 50,
           "us_states_any_format": 100, "rng_1_10": 10, "rng_1_100": 100,
           "element_symbols": 118, "element_names": 118,
           "small_prime_numbers": 25, "weekdays_full": 21,
           "weekdays_any_format": 49, "car_brand": 66,
           "basic_emails": 0, "prime_numbers": 0, "car_make_model": 0}
  for key, size in sizes.items():
    assert len(by_id[key].options) == size, key
  for inst in by_id.values():
    assert len(inst.rows) == 3 and all(r.input is None for r in inst.rows)
    assert len(inst.descriptions) == 1
    assert {"match", "max_new_tokens", "validity_rule",
            "task_class"} <= set(inst.extra)
    assert inst.target == []
  states = by_id["us_states_full_names"]
  assert states.descriptions == ["Name a US state"]
  assert states.rows == [Row("Kentucky"), Row("Utah"), Row("Oregon")]
  assert states.extra["match"] == "exact"
  assert by_id["element_symbols"].extra["max_new_tokens"] == 5
  assert len(by_id["car_make_model"].extra["reference_make_model_pairs"]) > 1000
