"""Tests of the synthetic `flight` task (data_pipelines/synthetic/flight.py)."""

from __future__ import annotations

import collections
import itertools
import re
from datetime import datetime

import numpy as np
import pytest

from data_pipelines.schema import BuildContext
from data_pipelines.synthetic import flight

CTX = BuildContext(seed=0, raw_dir=None)
_FLIGHT = re.compile(
    r"Flight (\d):\nDeparture Time: (\d\d):(\d\d) (AM|PM), Duration: (\d+) hr "
    r"(\d+) min, Number of Stops: ([012]), Price: \$(\d+)\.00")


@pytest.fixture(scope="module")
def built():
  instances = list(flight.SPEC.generate(CTX))
  for inst in instances:
    inst.validate(flight.NAME)
  return instances


def test_spec_matches_the_release():
  spec = flight.SPEC
  assert (spec.name, spec.suite_split, spec.kind) == ("flight", "test", "icl")
  # n_iter=20 with the default n_per=1: one episode of exactly 20 examples.
  assert (spec.fixed_k, spec.mean_k, spec.episodes_per_instance,
          spec.chunk_all_rows, spec.orderings, spec.max_episodes,
          spec.p_desc) == (20, None, 1, False, 1, None, 0.6)
  assert spec.default_descriptions == (
      "The following express flight preferences for the same individual "
      "among a set of flights. Predict which flight the indvidual prefers.",)
  assert spec.raw_files == ()


def test_one_flight_rendered_by_hand():
  # departure j=50: 05:00 + 50/99 * 19 h = 14:35:45 -> 02:35 PM;
  # duration j=10: 0:45 + 10/99 * 915 min = 2:17:25 -> 2 hr 17 min;
  # price j=70: 10 * (50 + floor(145 * 70 / 99)) = 10 * (50 + 102).
  assert flight.flight_text(2, (50, 10, 70, 1)) == (
      "Flight 2:\nDeparture Time: 02:35 PM, Duration: 2 hr 17 min, Number "
      "of Stops: 1, Price: $1520.00")
  flights = np.array([[0, 0, 0, 0], [99, 99, 99, 2], [33, 66, 1, 1]])
  assert flight.flights_text(flights) == (
      "Flight 1:\nDeparture Time: 05:00 AM, Duration: 0 hr 45 min, Number "
      "of Stops: 0, Price: $500.00\n"
      "Flight 2:\nDeparture Time: 12:00 AM, Duration: 16 hr 0 min, Number "
      "of Stops: 2, Price: $1950.00\n"
      "Flight 3:\nDeparture Time: 11:20 AM, Duration: 10 hr 55 min, Number "
      "of Stops: 1, Price: $510.00")


def _release_fields(f0, f1, f2):
  """The release's float arithmetic for one flight (datetime, floor-divide)."""
  start, end = datetime(2025, 1, 1, 5), datetime(2025, 1, 2)
  depart = datetime.strftime(start + (end - start) * f0, "%I:%M %p")
  lo = datetime.strptime("00:45", "%H:%M")
  d = lo + (datetime.strptime("16:00", "%H:%M") - lo) * f1
  cost = 10 * (50 + (1500 - 50) * f2 // 10)
  return depart, f"{d.hour} hr {d.minute} min", f"{cost:.2f}"


def test_integer_grid_prints_what_the_release_prints():
  grid = np.linspace(0, 1, 100)
  for j in range(100):
    assert (flight.departure_time(j), flight.duration(j),
            f"{flight.price(j)}.00") == _release_fields(*[grid[j]] * 3), j


def test_prices_span_the_release_range():
  # docs/method.md#flight: $500-$1950 as released, not the $50-$1500 the
  # release's comments intend.
  prices = [flight.price(j) for j in range(100)]
  assert (min(prices), max(prices)) == (500, 1950)
  assert all(p % 10 == 0 for p in prices)


def test_best_flight_first_on_ties():
  flights = np.array([[10, 20, 30, 1], [10, 20, 30, 1], [0, 0, 0, 0]])
  # Only stops matter, weight +0.5: flights 1 and 2 tie above flight 3.
  assert flight.best_flight(flights, (0, 0, 0, 1)) == 1
  # Price weight -1: the cheapest (flight 3) wins.
  assert flight.best_flight(flights, (0, 0, -2, 0)) == 3
  # 0.5*f0 - 0.5*f1: (99-0) beats (50-0) beats (10-20).
  flights = np.array([[10, 20, 0, 0], [50, 0, 0, 0], [99, 0, 0, 2]])
  assert flight.best_flight(flights, (1, -1, 0, 0)) == 3
  # Exact ties across features: 0.5*(99/99) + 0 == 0 + 0.5*(2/2).
  flights = np.array([[0, 0, 0, 0], [99, 0, 0, 0], [0, 0, 0, 2]])
  assert flight.best_flight(flights, (1, 0, 0, 1)) == 2
  # 0.5*(60-27)/99 == 0.5*(40-7)/99 exactly, though floats may disagree.
  flights = np.array([[0, 50, 0, 0], [60, 27, 0, 0], [40, 7, 0, 0]])
  assert flight.best_flight(flights, (1, -1, 0, 0)) == 2
  assert flight.best_flight(flights[[0, 2, 1]], (1, -1, 0, 0)) == 2


def test_weights_never_all_zero_and_in_range():
  rng = np.random.default_rng(0)
  seen = collections.Counter()
  for _ in range(2000):
    halves = flight.draw_weights(rng)
    assert halves.any() and set(halves.tolist()) <= {-2, -1, 0, 1}
    seen.update(halves.tolist())
  assert set(seen) == {-2, -1, 0, 1}


def test_build(built):
  assert len(built) == 200
  assert [i.id for i in built[:2]] == ["flight_000", "flight_001"]
  assert len({i.id for i in built}) == 200
  labels = collections.Counter()
  for inst in built:
    assert len(inst.rows) == 20
    assert inst.descriptions == []  # the task-wide description applies.
    halves = [int(2 * w) for w in inst.extra["weights"]]
    assert any(halves) and set(halves) <= {-2, -1, 0, 1}
    for row in inst.rows:
      parsed = _FLIGHT.findall(row.input)
      assert [p[0] for p in parsed] == ["1", "2", "3"], row.input
      assert row.input == "\n".join(m.group(0) for m in _FLIGHT.finditer(
          row.input))
      for p in parsed:
        assert 500 <= int(p[7]) <= 1950
      labels[row.output] += 1
  assert set(labels) == {"1", "2", "3"}
  # Roughly uniform (release: 1252/1330/1418 of 4000).
  assert all(1100 < n < 1600 for n in labels.values()), labels


def test_labels_follow_the_weights(built):
  """Re-derive each label from the printed flights and the stored weights."""
  for inst in built[:50]:
    w = inst.extra["weights"]
    for row in inst.rows:
      utilities = []
      for p in _FLIGHT.findall(row.input):
        hour, minute = int(p[1]) % 12 + (12 if p[3] == "PM" else 0), int(p[2])
        dep = (hour * 60 + minute - 300) % 1440 / 1140
        dur = (int(p[4]) * 60 + int(p[5]) - 45) / 915
        cost = (int(p[7]) / 10 - 50) / 145
        utilities.append(w[0] * dep + w[1] * dur + w[2] * cost
                         + w[3] * int(p[6]) / 2)
      # Printed values are truncated, so only a clear winner is checked.
      ranked = sorted(utilities, reverse=True)
      if ranked[0] - ranked[1] > 0.02:
        assert row.output == str(utilities.index(ranked[0]) + 1)


def test_seeded_and_independent_per_individual(built):
  again = list(itertools.islice(flight.SPEC.generate(CTX), 3))
  assert again == built[:3]
  other = list(itertools.islice(
      flight.SPEC.generate(BuildContext(seed=1, raw_dir=None)), 3))
  assert [i.rows for i in other] != [i.rows for i in built[:3]]
  assert len({tuple(r.input for r in i.rows) for i in built}) == 200
