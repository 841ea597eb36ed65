"""Tests of spectrax/evaluation/validity.py on the 22 tasks' own data."""

import types

import pytest

from data_pipelines.synthetic import diversity as diversity_data
from spectrax.evaluation import validity
from spectrax.evaluation.metrics import diversity_metrics

TASKS = diversity_data.load_tasks()
# docs/method.md#release-quirks-kept-on-purpose: this prompt example fails its own task's rule.
KNOWN_BAD_EXAMPLES = {("us_phone_numbers", "646 562-1938")}

INVALID = {
    "basic_emails": ["not an email", "a@@b.com", ".a@b.com", "a..b@c.com",
                     "a@b", "a@b.c"],
    "professional_emails": ["a@b.net", "a@b.io", "nope"],
    "car_make_model": ["Ford", "Mustang", "Banana Split"],
    "car_brand": ["Banana", "Fordd", ""],
    "claude_gerunds": ["think", "Thinkingz", ""],
    "color_normal_ex": ["qwertyuiop", ""],
    "color_interesting_ex": ["zzzz not a colour", ""],
    "element_symbols": ["sb", " He", "Xx", "He "],
    "element_names": ["Niobiumm", " Iodine", "Aluminium"],
    "us_phone_numbers": ["2103460967", "(210)346-0967", "210-346-096",
                         "646 562-1938"],
    "international_phone_numbers": ["413-121-2591", "+1 2", "+12345678901234567",
                                    "+1 2-3-4-5-6-7-8", "+abc 123 4567"],
    "prime_numbers": ["4", "1", "017", " 13", "13 ", "abc", "1000000000000"],
    "small_prime_numbers": ["101", "91", "1", "07"],
    "random_seed": ["-1", "4294967296", "seed", "1.5"],
    "rng_1_10": ["0", "11", " 3", "3 ", "three"],
    "rng_1_100": ["0", "101", "007", " 35"],
    "us_states_full_names": ["kentucky", "Kentucky ", "Narnia"],
    "us_states_abbreviations": ["ky", "XX", "KY "],
    "us_states_any_format": ["ut", "Narnia"],
    "weekdays_full": ["Thurs", "thUrsday", "Funday"],
    "weekdays_abbreviated": ["Thursday", "Thx", "tHU"],
    "weekdays_any_format": ["Mo", "Funday"],
}


def _record(key):
  task = TASKS[key]
  inst = diversity_data.task_instance(key, task)
  return types.SimpleNamespace(id=key, options=inst.options, extra=inst.extra)


def test_every_task_has_a_check_and_invalid_cases():
  assert len(TASKS) == 22
  assert set(INVALID) == set(TASKS)


@pytest.mark.parametrize("key", sorted(TASKS))
def test_task_accepts_its_examples_and_rejects_invalid(key):
  check = validity.check_for_record(_record(key))
  for example in TASKS[key]["examples"]:
    expected = (key, example) not in KNOWN_BAD_EXAMPLES
    assert check(example) is expected, (key, example)
  for text in INVALID[key]:
    assert not check(text), (key, text)


def test_function_rules_follow_the_released_parsing():
  check = validity.check_for_record(_record("prime_numbers"))
  assert check("1000000007") and check("+7") and check("2")
  assert check("170141183460469231731687303715884105727")  # 2^127 - 1
  assert not check("170141183460469231731687303715884105729")
  seed = validity.check_for_record(_record("random_seed"))
  assert seed(" 42 ") and seed("0") and seed("4294967295")
  intl = validity.check_for_record(_record("international_phone_numbers"))
  assert intl(" +44 20 7946 0958 ")
  cars = validity.check_for_record(_record("car_make_model"))
  assert cars("my ford mustang gt") and cars("TESLA MODEL 3")


def test_membership_modes_and_coverage_canonicalisation():
  brand = validity.check_for_record(_record("car_brand"))
  assert brand(" ford ") and brand("BMW") and brand("bmw")
  assert brand.canonical(" ford ") == "Ford"
  names = validity.check_for_record(_record("element_names"))
  assert names("niobium") and names("NIOBIUM")
  # Exact-string uniqueness, but "Ford" and "ford" hit one valid make.
  out = diversity_metrics(["Ford", "ford", "Tesla", "Banana"], brand)
  assert out["yield"] == 3
  assert out["coverage"] == pytest.approx(2 / 66)
  rng = validity.check_for_record(_record("rng_1_100"))
  assert rng("+5") and rng.canonical("+5") == "5"
  assert validity.check_for_record(_record("prime_numbers")).valid_set is None


def test_bad_task_data_is_reported():
  with pytest.raises(ValueError, match="extra\\['match'\\]='regex'"):
    validity.ValidityCheck("x", "regex", ["a"], {})
  with pytest.raises(ValueError, match="no rule is known"):
    validity.ValidityCheck("new_task", "function", [], {})
  with pytest.raises(ValueError, match="reference_make_model_pairs"):
    validity.ValidityCheck("car_make_model", "function", [], {})
  with pytest.raises(ValueError, match="needs the valid set"):
    validity.ValidityCheck("rng_1_10", "exact", [], {})
