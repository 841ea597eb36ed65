"""spectrax/training/planning.py and `python -m spectrax.plan`: memory and
step time from an AOT compile."""

import json

import pytest

from cli_runs import assert_one_error_line, run_cli
from configs import tiny
from spectrax.training import flops as flops_lib
from spectrax.training import planning as plan_lib
from spectrax.training import run_config


@pytest.fixture(scope="module")
def config():
  c = tiny.get_config()
  hf = c.model.hf_config
  hf.vocab_size, hf.hidden_size, hf.num_hidden_layers = 512, 64, 6
  c.data.seq_len, c.data.batch_size = 128, 16
  return c


def test_plan_counts_parameters_flops_and_activations(config):
  small = plan_lib.plan(config, 8, "v5p", 0.4)
  mem = small["per_device_gib"]
  cfg = run_config.model_config(config, 512)
  # Parameters are float32 and FSDP-sharded 8 ways where dims divide.
  full = cfg.num_params() * 4 / plan_lib.GIB
  assert full / 8 <= mem["parameters"] <= full
  # AdamW keeps two float32 moments per parameter (plus step counts).
  assert 0 <= mem["optimizer_state"] - 2 * mem["parameters"] < 1e-6
  assert mem["activations_and_temporaries"] > 0 and small["fits"]
  tokens = 16 * 128 * 0.96
  assert small["flops_per_step"] == pytest.approx(
      flops_lib.train_step_flops_estimate(cfg, tokens, 257))
  assert small["step_time_s_at_100pct_mfu"] == pytest.approx(
      small["flops_per_step"] / (8 * 459e12))
  # Twice the batch: more activation memory, same parameters.
  config.data.batch_size = 32
  big = plan_lib.plan(config, 8, "v5p", 0.4)
  config.data.batch_size = 16
  assert (big["per_device_gib"]["activations_and_temporaries"] >
          mem["activations_and_temporaries"])
  assert big["per_device_gib"]["parameters"] == mem["parameters"]
  lines = plan_lib.summary_lines(small, 0.4)
  assert lines[0] == (f"gemma3 {cfg.num_params() / 1e9:.2f}B parameters on 8 x v5p "
                      f"(mesh {small['mesh']})")
  assert f"{'fits':30s} True" in lines[6] and len(lines) == 8


def test_devices_and_accelerator_default_from_the_config(config):
  assert plan_lib.device_count(config, 16) == 16
  assert plan_lib.device_count(config) == 8  # fsdp: -1 -> at least 8
  assert plan_lib.accelerator_for(config) == "v5p"
  assert plan_lib.accelerator_for(config, "h200") == "h200"
  with pytest.raises(plan_lib.PlanError, match=r"--devices=-4: give a positive"):
    plan_lib.device_count(config, -4)
  with pytest.raises(plan_lib.PlanError, match=r"--accelerator='tpu': use one of"):
    plan_lib.accelerator_for(config, "tpu")
  with pytest.raises(plan_lib.PlanError, match=r"needs as many jax devices; this "
                     r"process has 8"):
    plan_lib.plan(config, 16, "v5p", 0.4)


def test_cli_prints_the_plan_and_rejects_bad_values():
  proc = run_cli("spectrax.plan", "--config=configs/tiny.py", "--devices=2",
                 "--remat_policies=save_qkv")
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout.splitlines()[-1])
  assert result["devices"] == 2 and result["mesh"]["fsdp"] == 2 and result["fits"]
  assert "parameters on 2 x v5p" in proc.stdout
  # The remat table: the asked policy and the config's own, in the table's order.
  assert list(result["remat"]) == ["none", "save_qkv"]
  assert (result["remat"]["none"]["total_compiled_gib"] ==
          result["per_device_gib"]["total_compiled"])
  assert proc.stdout.splitlines()[-3].startswith("  none (config) ")
  assert_one_error_line(run_cli("spectrax.plan", "--config=configs/tiny.py",
                                "--remat_policies=minimal"), "--remat_policies=minimal")
  assert_one_error_line(run_cli("spectrax.plan", "--config=configs/tiny.py", "--devices=-4"),
                        "--devices=-4")
  assert_one_error_line(run_cli("spectrax.plan", "--devices=8"), "--config is required")


def test_lora_plan_counts_a_frozen_base_and_adapters(config):
  """A LoRA config: the base in the compute dtype with no optimizer state, the
  float32 adapters with two moments, honest (no base weight-gradient) FLOPs."""
  from spectrax.models import lora as lora_lib  # pylint: disable=g-import-not-at-top
  c = config.copy_and_resolve_references()
  c.model.dtype = "bfloat16"
  c.lora.rank = 8
  result = plan_lib.plan(c, 1, "h100", 0.4)
  mem = result["per_device_gib"]
  cfg = run_config.model_config(c, 512)
  lora = run_config.lora_config(c)
  assert cfg.param_dtype == "bfloat16"
  assert mem["parameters"] == pytest.approx(cfg.num_params() * 2 / plan_lib.GIB)
  n = lora_lib.num_adapter_params(cfg, lora)
  assert result["lora"]["adapter_parameters"] == n
  assert mem["adapters"] == pytest.approx(n * 4 / plan_lib.GIB)
  assert 0 <= mem["optimizer_state"] - 2 * mem["adapters"] < 1e-6
  tokens = c.data.batch_size * c.data.seq_len * 0.96
  assert result["flops_per_step"] == pytest.approx(
      flops_lib.train_step_flops_estimate(cfg, tokens, 257, lora=lora))
  assert result["flops_per_step"] < flops_lib.train_step_flops_estimate(cfg, tokens, 257)
  lines = plan_lib.summary_lines(result, 0.4)
  assert lines[1].startswith("  LoRA rank 8 on q,k,v,o,gate,up,down:")
  assert any(line.strip().startswith("adapters") for line in lines)
