"""LoRA: adapters in the model, the LoRA trainer (frozen base, exact resume,
base identity), merge-on-load, PEFT and merged HF export, honest FLOPs."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import tiny_train_config
from spectrax.models import ModelConfig, init_model
from spectrax.models import lora as lora_lib
from spectrax.training import loop as train_lib
from spectrax.training import run_config

TINY = dict(model_type="gemma3_text", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=16, vocab_size=50,
            sliding_window=4, sliding_window_pattern=2, query_pre_attn_scalar=16,
            max_position_embeddings=64)


def _random_adapters(cfg, lora, seed=1):
  w = lora_lib.init_adapters(cfg, lora, jax.random.key(seed))
  return jax.tree.map(lambda x: x + 0.05 * jax.random.normal(jax.random.key(seed + 1), x.shape), w)


def test_adapters_apply_and_merge():
  cfg = ModelConfig.from_hf(TINY)
  model = init_model(cfg)
  lora = lora_lib.LoraConfig(rank=4, alpha=8.0)
  tokens = jnp.asarray(np.random.RandomState(0).randint(0, 50, (2, 12)), jnp.int32)
  base = model.logits(tokens)
  fresh = lora_lib.init_adapters(cfg, lora, jax.random.key(0))  # B = 0: no change
  np.testing.assert_allclose(
      model.logits_from_hidden(model(tokens, lora=lora_lib.Adapters(lora, fresh))), base, atol=1e-6)
  weights = _random_adapters(cfg, lora)
  adapted = model.logits_from_hidden(model(tokens, lora=lora_lib.Adapters(lora, weights)))
  assert float(jnp.abs(adapted - base).max()) > 1e-2
  merged = lora_lib.merge_into(nnx.state(init_model(cfg), nnx.Param), weights, lora)
  np.testing.assert_allclose(nnx.merge(nnx.graphdef(model), merged).logits(tokens), adapted,
                             atol=1e-5)


def test_adapters_shard_like_their_base():
  from spectrax.parallel import sharding
  cfg = ModelConfig.from_hf({**TINY, "num_attention_heads": 4, "num_key_value_heads": 2,
                             "intermediate_size": 64})
  mesh = sharding.make_mesh({"data": 1, "fsdp": 4, "tensor": 2})
  sh = lora_lib.adapter_shardings(cfg, lora_lib.LoraConfig(rank=4), mesh, sharding.DEFAULT_RULES)
  assert sh["q"]["a"].spec == jax.sharding.PartitionSpec(None, "fsdp", None)
  assert sh["q"]["b"].spec == jax.sharding.PartitionSpec(None, None, "tensor", None)
  assert sh["o"]["a"].spec == jax.sharding.PartitionSpec(None, "tensor", None, None)
  assert sh["down"]["a"].spec == jax.sharding.PartitionSpec(None, "tensor", None)
  assert sh["down"]["b"].spec == jax.sharding.PartitionSpec(None, None, "fsdp")


def test_lora_flops_count_no_base_weight_gradients():
  from spectrax.training import flops
  cfg = ModelConfig.from_hf(TINY)
  seg = np.ones((2, 16), np.int32)
  lora = lora_lib.LoraConfig(rank=4)
  full = flops.train_step_flops(cfg, seg)
  attn = flops.attention_flops(cfg, seg)
  mm = flops.matmul_flops_per_token(cfg) * 32
  adapters = 2 * lora_lib.num_adapter_params(cfg, lora) * 32
  assert full == 3 * (mm + attn)
  assert flops.train_step_flops(cfg, seg, lora=lora) == 2 * mm + 3 * attn + 3 * adapters
  est = flops.train_step_flops_estimate(cfg, 32, 16, lora=lora)
  assert est == pytest.approx(2 * mm + 3 * attn + 3 * adapters)


def _lora_config(suite, **train):
  c = tiny_train_config(suite, **train)
  c.lora.rank = 4
  c.lora.alpha = 8.0
  c.optimizer.learning_rate = 1e-2
  return c


@pytest.fixture(scope="module")
def lora_run(tiny_suite_dir, tmp_path_factory, request):
  """An uninterrupted 8-step LoRA run; the frozen base as it was given and after."""
  from spectrax.training import step as step_lib
  captured = {}
  real = step_lib.Trainer.set_frozen

  def capture(self, params):
    captured["before"] = jax.tree.map(lambda x: np.array(x), params)
    captured["live"] = params
    return real(self, params)
  mp = pytest.MonkeyPatch()
  mp.setattr(step_lib.Trainer, "set_frozen", capture)
  try:
    workdir = str(tmp_path_factory.mktemp("lora_run"))
    summary = train_lib.train(_lora_config(tiny_suite_dir), workdir)
  finally:
    mp.undo()
  return workdir, summary, captured


def _losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_lora_run_learns_with_the_base_bitwise_unchanged(lora_run):
  workdir, summary, captured = lora_run
  assert summary["final_eval_loss"] < summary["first_eval_loss"]
  before = jax.tree.leaves(captured["before"])
  after = jax.tree.leaves(captured["live"])
  assert len(before) == len(after) > 0
  for b, a in zip(before, after):
    np.testing.assert_array_equal(np.asarray(a), b)
  # Checkpoints hold adapters, their optimizer state and the step only.
  from spectrax.checkpoints.training_state import Checkpointer
  ckpt_dir = os.path.join(workdir, "checkpoints")
  with Checkpointer(ckpt_dir, read_only=True) as ckpt:
    config = ckpt.restore_config()
  assert config["lora_base"]["source"] == "init" and len(config["lora_base"]["fingerprint"]) == 64
  stored = os.listdir(os.path.join(ckpt_dir, "8", "state", "d")) and open(
      os.path.join(ckpt_dir, "8", "state", "_METADATA")).read()
  assert "params.q.a" in stored and "params.layers" not in stored
  info = json.load(open(os.path.join(workdir, "run.json")))
  assert info["lora"]["config"]["rank"] == 4
  assert info["lora"]["base"]["fingerprint"] == config["lora_base"]["fingerprint"]
