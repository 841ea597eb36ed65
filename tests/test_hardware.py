"""Peak FLOP/s: the device-kind table and the cached CPU measurement."""

import json
import math
import os
import types

import jax
import pytest

from spectrax.training import hardware


@pytest.mark.parametrize("kind, name, peak", [
    ("TPU v4", "TPU v4", 275e12),
    ("TPU v5 lite", "TPU v5e", 197e12),
    ("TPU v5e", "TPU v5e", 197e12),
    ("TPU v5", "TPU v5p", 459e12),
    ("TPU v5p", "TPU v5p", 459e12),
    ("TPU v6 lite", "TPU v6e", 918e12),
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 989e12),
    ("NVIDIA H100 PCIe", "H100 PCIe", 756e12),
    ("NVIDIA H100 NVL", "H100 NVL", 835e12),
    ("NVIDIA H200", "H200", 989e12),
    ("NVIDIA H200 NVL", "H200 NVL", 835e12),
    ("NVIDIA A100-SXM4-80GB", "A100", 312e12),
    ("NVIDIA A100-PCIE-40GB", "A100", 312e12),
])
def test_table(kind, name, peak):
  assert hardware.chip_name(kind) == name
  assert hardware.table_peak_flops(kind) == peak
  device = types.SimpleNamespace(platform="gpu" if "NVIDIA" in kind else "tpu", device_kind=kind)
  flops, source = hardware.peak_flops_per_device(device=device)
  assert flops == peak and name in source


@pytest.mark.parametrize("kind", ["TPU7x", "TPU v4 lite", "NVIDIA GeForce RTX 4090"])
def test_unknown_kind_is_nan_with_a_fix(kind):
  assert hardware.chip_name(kind) is None
  flops, source = hardware.peak_flops_per_device(
      device=types.SimpleNamespace(platform="gpu", device_kind=kind))
  assert math.isnan(flops) and "override" in source and kind in source


def test_override():
  assert hardware.peak_flops_per_device(123e12) == (123e12, "override")
  with pytest.raises(ValueError, match="must be > 0"):
    hardware.peak_flops_per_device(0.0)


def test_cpu_measured_once_then_cached(tmp_path, monkeypatch):
  flops, source = hardware.cpu_peak_flops(str(tmp_path), size=256)
  assert flops > 0 and source.startswith("measured")
  with open(tmp_path / "cpu_peak.json") as f:
    assert json.load(f)[hardware.cpu_key()]["flops"] == flops

  def no_measuring(*args, **kwargs):
    raise AssertionError("measured again despite the cache")
  monkeypatch.setattr(hardware, "measure_cpu_peak", no_measuring)
  again, source = hardware.cpu_peak_flops(str(tmp_path), size=256)
  assert again == flops and source.startswith("cached")


def test_cpu_devices_share_the_machine(tmp_path, monkeypatch):
  with open(tmp_path / "cpu_peak.json", "w") as f:
    json.dump({hardware.cpu_key(): {"flops": 8e9}}, f)
  monkeypatch.setenv("SPECTRAX_CACHE_DIR", str(tmp_path))
  assert hardware.cache_dir() == str(tmp_path)
  flops, source = hardware.peak_flops_per_device(device=jax.devices("cpu")[0])
  shared = len(jax.devices("cpu"))  # 8 under tests/conftest.py
  assert flops == 8e9 / shared
  assert source.startswith("cached") and (shared == 1 or f"shared by {shared}" in source)


def test_corrupt_cache_is_remeasured(tmp_path, monkeypatch):
  path = tmp_path / "cpu_peak.json"
  path.write_text("{not json")
  monkeypatch.setattr(hardware, "measure_cpu_peak", lambda size: 5e9)
  assert hardware.cpu_peak_flops(str(tmp_path))[0] == 5e9
  assert json.loads(path.read_text())[hardware.cpu_key()]["flops"] == 5e9
  assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
