"""Tests of spectrax/training/throughput.py: rates over training time only."""

from __future__ import annotations

import numpy as np

from spectrax.training import flops as flops_lib
from spectrax.training import throughput
from test_flops import gemma_config


class _Clock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def test_paused_time_is_left_out_of_tokens_per_sec_and_mfu(monkeypatch):
  clock = _Clock()
  monkeypatch.setattr(throughput.time, "perf_counter", clock)
  cfg = gemma_config()
  window = throughput.ThroughputWindow(cfg, peak_flops=1e12)
  segments = np.array([[1, 1, 1, 2, 2, 0, 0, 0]], np.int32)
  window.add(segments)
  clock.now += 2.0  # the step
  with window.paused():  # evaluation and a checkpoint save
    clock.now += 30.0
  window.add(segments)
  clock.now += 2.0
  rates = window.close({"tokens": 16, "nonpad_tokens": 10})
  assert rates["tokens_per_sec"] == 10 / 4.0
  expected = 2 * flops_lib.train_step_flops(cfg, segments) / 4.0 / 1e12
  assert np.isclose(rates["mfu"], expected)
  # The next window starts clean.
  window.add(segments)
  clock.now += 1.0
  assert window.close({"tokens": 8, "nonpad_tokens": 5})["tokens_per_sec"] == 5.0
