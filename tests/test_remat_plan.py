"""spectrax/training/remat_plan.py: the per-policy memory and recomputation table of the plan."""

import pytest

from configs import tiny
from spectrax.models import remat
from spectrax.training import planning
from spectrax.training import remat_plan
from spectrax.training import run_config
from test_models import tiny_config

LENGTH = 16


def forward_matmul_flops(cfg, length):
  """One layer's forward matmul FLOPs for a row, written out: four attention
  projections, three MLP projections, and dense attention's two [length, length]
  products (every pair, as the dense backend computes them)."""
  d, n, k, h, f = (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim,
                   cfg.intermediate_size)
  per_token = {"qkv": 2 * d * (n + 2 * k) * h, "out": 2 * n * h * d,
               "attention": 2 * 2 * length * n * h, "gate_up": 2 * 2 * d * f, "down": 2 * f * d}
  return {part: flops * length for part, flops in per_token.items()}


@pytest.mark.parametrize("family", ["gemma3", "llama"])
def test_layer_costs_count_exactly_what_the_backward_recomputes(family):
  cfg = tiny_config(family)
  fwd = forward_matmul_flops(cfg, LENGTH)
  forward = sum(fwd.values())
  costs = {p: remat_plan.layer_costs(cfg, p, LENGTH)[0] for p in remat.POLICIES}
  # No remat: forward, and a backward of twice the forward (input and weight gradients).
  assert costs["none"] == 3 * forward
  # The backward needs the down projection's output only for Gemma 3's post-MLP norm.
  needs_down = family == "gemma3"
  mlp_redone = fwd["gate_up"] + (fwd["down"] if needs_down else 0)
  assert costs["full"] == 3 * forward + forward - (0 if needs_down else fwd["down"])
  assert costs["save_qkv"] == 3 * forward + fwd["attention"] + fwd["out"] + mlp_redone
  assert costs["save_qkv_offloaded"] == costs["save_qkv"]
  # Keeping the context still leaves dense attention's logits product to redo.
  logits = fwd["attention"] // 2
  assert costs["save_attention"] == 3 * forward + logits + mlp_redone
  assert costs["save_all_but_mlp_hidden"] == 3 * forward + logits + fwd["gate_up"]
  if family == "gemma3":
    assert costs["full"] / costs["none"] == pytest.approx(4 / 3)


def test_layer_costs_give_tagged_and_kept_bytes():
  cfg = tiny_config("llama", dtype="bfloat16")  # heads 4, kv heads 2, head_dim 8, mlp 64
  costs = {p: remat_plan.layer_costs(cfg, p, LENGTH) for p in remat.POLICIES}
  row = 2 * LENGTH  # bf16
  tags = {remat.QUERY: row * 32, remat.KEY: row * 16, remat.VALUE: row * 16,
          remat.CONTEXT: row * 32, remat.ATTENTION_OUT: row * 32,
          remat.MLP_GATE: row * 64, remat.MLP_UP: row * 64, remat.MLP_DOWN: row * 32}
  assert costs["none"].tag_bytes == tags
  # Kept beyond full remat (whose residuals are the weights and the input): the
  # named tensors exactly (offloaded ones too: the table moves them to the host).
  kept = {p: c.residual_bytes - costs["full"].residual_bytes for p, c in costs.items()}
  qkv = tags[remat.QUERY] + tags[remat.KEY] + tags[remat.VALUE]
  assert kept["save_qkv"] == kept["save_qkv_offloaded"] == qkv
  assert kept["save_attention"] == qkv + tags[remat.CONTEXT] + tags[remat.ATTENTION_OUT]
  assert kept["save_all_but_mlp_hidden"] == kept["save_attention"]  # Llama: no down
  # Every projection output (the context comes from a batched product), and more.
  assert kept["dots_no_batch"] == sum(tags.values()) - tags[remat.CONTEXT] - tags[remat.MLP_DOWN]
  assert kept["none"] > kept["dots"] > kept["dots_no_batch"]


def test_lora_costs_leave_out_the_frozen_base_weight_gradients():
  from spectrax.models import lora as lora_lib  # pylint: disable=g-import-not-at-top
  cfg = tiny_config("gemma3")
  lora = lora_lib.LoraConfig(rank=2, targets=("q",))
  parts = forward_matmul_flops(cfg, LENGTH)
  fwd = sum(parts.values())
  adapter = 2 * LENGTH * 2 * (cfg.hidden_size + cfg.num_heads * cfg.head_dim)  # x A, (x A) B
  # Forward, the input gradient of every projection, both gradients of the attention
  # products (activations on both sides), both of the adapters'.
  none = remat_plan.layer_costs(cfg, "none", LENGTH, lora)[0]
  assert none == 2 * fwd + parts["attention"] + 3 * adapter
  assert remat_plan.layer_costs(cfg, "full", LENGTH, lora)[0] == none + fwd + adapter


def test_parse_policies():
  assert remat_plan.parse_policies("all") == tuple(remat.POLICIES)
  assert remat_plan.parse_policies("") == ()
  assert remat_plan.parse_policies(" save_qkv, full ") == ("save_qkv", "full")
  with pytest.raises(planning.PlanError,
                     match=r"--remat_policies=full,minimal: unknown minimal; use all, or "
                           r"some of none, dots, "):
    remat_plan.parse_policies("full,minimal")


@pytest.mark.slow  # four compiles
def test_table_moves_offloaded_tensors_to_the_host():
  """Offloaded q/k/v leave the device (its memory is full remat's, as compiled)
  and are counted on the host, exactly their bytes per device."""
  c = tiny.get_config()
  hf = c.model.hf_config
  hf.vocab_size, hf.hidden_size, hf.num_hidden_layers = 512, 64, 4
  c.data.seq_len, c.data.batch_size, c.train.microbatches = 32, 8, 2
  cfg = run_config.model_config(c, 512)
  per_device = 4 * 4 / 4  # layers x rows per micro-batch / devices
  # The config's own policy ("none") comes planned already, as plan.py passes it.
  known = {"none": ({"per_device_gib": {"activations_and_temporaries": 2.0,
                                        "total_compiled": 3.0}}, 5.0)}
  rows = remat_plan.table(c, 4, "h100", 0.4, ("save_qkv_offloaded", "full", "none"), known)
  assert list(rows) == ["none", "save_qkv_offloaded", "full"]  # the table's order
  off, full, none = rows["save_qkv_offloaded"], rows["full"], rows["none"]
  saved = per_device / planning.GIB * (remat_plan.layer_costs(cfg, "none", 32).residual_bytes
                                       - remat_plan.layer_costs(cfg, "full", 32).residual_bytes)
  assert none == {"activations_and_temporaries_gib": 2.0, "saved_residuals_gib": saved,
                  "host_offload_gib": 0.0, "total_compiled_gib": 3.0, "fits": True,
                  "layer_flops_factor": 1.0, "compile_s": 5.0}
  qkv_bytes = 4 * 32 * (cfg.num_heads + 2 * cfg.num_kv_heads) * cfg.head_dim  # f32, a row
  assert off["host_offload_gib"] * planning.GIB == pytest.approx(per_device * qkv_bytes)
  assert off["activations_and_temporaries_gib"] == pytest.approx(
      full["activations_and_temporaries_gib"], rel=1e-2)  # to buffer packing
  assert off["host_offload_gib"] > 0.05 * full["activations_and_temporaries_gib"]
  assert off["saved_residuals_gib"] == full["saved_residuals_gib"] == 0
  assert full["host_offload_gib"] == 0 and off["fits"] and full["fits"]
  assert off["compile_s"] > 0 and full["compile_s"] > 0
  assert full["layer_flops_factor"] == pytest.approx(4 / 3)
  lines = remat_plan.table_lines(rows, "full")
  assert lines[2].split() == ["none", "2.00", f"{saved:.2f}", "-", "3.00", "yes", "1.00x", "5s"]
  assert lines[3].split()[3] == f"{off['host_offload_gib']:.2f}"
  assert lines[4].startswith("  full (config) ") and len(lines) == 5
