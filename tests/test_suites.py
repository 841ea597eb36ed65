"""Tests of spectrax/evaluation/suites.py: the registry the runner calls, end to end."""

from __future__ import annotations

from eval_fakes import FakeSampler, FakeScorer, make_bundle
from spectrax.evaluation import report, suites

# Sizes that keep each suite short; the runner passes its flags the same way.
_SIZES = {
    "steerability": dict(num_episodes=3),
    "distributional": {},
    "diversity": dict(num_samples=4),
    "capabilities": dict(num_episodes=2),
}
_TASKS = {"diversity": ["rng_1_10"]}


def test_suite_results_render_in_report(eval_suite, tmp_path):
  assert list(suites.SUITES) == list(_SIZES)
  results = {}
  for name, preferred in (("base", "A"), ("tuned", "B")):
    bundle = make_bundle(FakeScorer(preferred=preferred), FakeSampler())
    results[name] = {
        suite_name: run(bundle, eval_suite, _TASKS.get(suite_name),
                        progress=False, **_SIZES[suite_name])
        for suite_name, run in suites.SUITES.items()}
  path = report.write_report(results, str(tmp_path))
  with open(path, encoding="utf-8") as f:
    page = f.read()
  for png in ("steerability_coins_test.png", "calibration.png",
              "distributional_js.png", "distributional_urn.png",
              "distributional_ratings_distributional.png"):
    assert f'src="{png}"' in page and (tmp_path / png).exists()
