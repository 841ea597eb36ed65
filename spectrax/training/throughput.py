"""Tokens per second and MFU over the steps between two log lines."""

from __future__ import annotations

import contextlib
import time

import jax
from absl import logging

from spectrax.models import ModelConfig
from spectrax.parallel import distributed
from spectrax.training import flops as flops_lib
from spectrax.training import hardware


def peak_flops_total(configured_per_device: float) -> float:
  """Peak FLOP/s of all devices: the config's figure, else the chip's."""
  if configured_per_device:
    peak, source = configured_per_device, "config"
  else:
    peak, source = hardware.peak_flops_per_device()
  logging.info("peak %.3g FLOP/s per device (%s)", peak, source)
  return peak * jax.device_count()


class ThroughputWindow:
  """Counts the real tokens and model FLOPs of each batch until `close`.

  Each process counts its own rows; `close` sums every process's (a
  collective: all processes call it at the same steps).
  """

  def __init__(self, model_cfg: ModelConfig, peak_flops: float, lora=None):
    self.model_cfg = model_cfg
    self.lora = lora  # a LoraConfig: frozen-base FLOPs (flops.train_step_flops)
    self.peak_flops = peak_flops
    self._start = time.perf_counter()
    self._paused = 0.0  # seconds of the window spent outside training steps
    self._tokens = 0
    self._flops = 0.0

  @contextlib.contextmanager
  def paused(self):
    """Time inside is not training time: evaluation, in-training suites and
    checkpoint saves are left out of tokens/s and MFU."""
    start = time.perf_counter()
    try:
      yield
    finally:
      self._paused += time.perf_counter() - start

  def add(self, segment_ids) -> None:
    """Counts one local batch (`segment_ids` [rows, length], 0 = padding)."""
    self._tokens += flops_lib.num_real_tokens(segment_ids)
    self._flops += float(flops_lib.train_step_flops(self.model_cfg, segment_ids,
                                                       lora=self.lora))

  def close(self, data_stats: dict) -> dict:
    """Rates since the last close, with the data counters of every process.

    Returns `{"tokens_per_sec", "mfu", "data/<counter>"...,
    "data/packing_efficiency"}` and starts the next window.
    """
    now = time.perf_counter()
    elapsed = max(now - self._start - self._paused, 1e-9)
    self._start, self._paused = now, 0.0
    counters = {f"data/{k}": v for k, v in data_stats.items()
                if k != "packing_efficiency"}  # a ratio: recomputed below
    totals = distributed.sum_over_processes(
        {"tokens": int(self._tokens), "flops": self._flops, **counters})
    self._tokens, self._flops = 0, 0.0
    totals["data/packing_efficiency"] = (
        totals["data/nonpad_tokens"] / max(totals["data/tokens"], 1))
    return {"tokens_per_sec": totals.pop("tokens") / elapsed,
            "mfu": totals.pop("flops") / elapsed / self.peak_flops, **totals}
