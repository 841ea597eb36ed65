"""The jitted training step: accumulation, packing and sharding equivalences."""

import jax
import numpy as np
import pytest
from flax import nnx

from spectrax.parallel import sharding
from spectrax.models import ModelConfig, init_model
from spectrax.training.step import OptimizerConfig, Trainer, make_optimizer

CFG = ModelConfig.from_hf(dict(
    model_type="gemma3_text", hidden_size=32, intermediate_size=64,
    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    head_dim=8, vocab_size=128, sliding_window=8, sliding_window_pattern=2))
B, L = 8, 32


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  b = {"inputs": rng.integers(0, 128, (B, L)).astype(np.int32),
       "targets": rng.integers(0, 128, (B, L)).astype(np.int32),
       "loss_mask": (rng.random((B, L)) < 0.5).astype(np.float32)}
  # Two or three packed episodes per row, some padding at the end.
  seg = np.zeros((B, L), np.int32)
  pos = np.zeros((B, L), np.int32)
  for r in range(B):
    cuts = sorted(rng.choice(np.arange(4, L - 4), 2, replace=False))
    bounds = [0, cuts[0], cuts[1], L - r % 3]
    for s in range(3):
      seg[r, bounds[s]:bounds[s + 1]] = s + 1
      pos[r, bounds[s]:bounds[s + 1]] = np.arange(bounds[s + 1] - bounds[s])
  b["segment_ids"], b["positions"] = seg, pos
  b["loss_mask"] *= seg > 0
  return b


def _run(mesh_sizes, microbatches, batches, devices=None, steps=2):
  mesh = sharding.make_mesh(mesh_sizes, devices=devices)
  opt, _ = make_optimizer(OptimizerConfig(learning_rate=1e-2), 10)
  trainer = Trainer(CFG, opt, mesh, sharding.DEFAULT_RULES,
                    microbatches=microbatches)
  params = nnx.state(init_model(CFG, mesh=mesh, seed=0), nnx.Param)
  state = trainer.init_state(params)
  step = trainer.step_fn()
  losses = []
  for i in range(steps):
    gb = {k: jax.device_put(v, trainer.batch_sharding)
          for k, v in batches[i].items()}
    state, m = step(state, gb)
    losses.append((float(m["loss"]), float(m["grad_norm"])))
  flat = [np.asarray(x) for x in jax.tree.leaves(state["params"])]
  return losses, flat


@pytest.fixture(scope="module")
def single():
  return _run({"data": 1, "fsdp": 1, "tensor": 1}, 1, [_batch(0), _batch(1)],
              devices=jax.devices()[:1])


# Parameters after two AdamW steps at lr 1e-2 (updates ~1e-2 per element):
# atol 1e-5 is 0.1% of one update. Adam divides by sqrt(v), so a gradient
# element near zero turns float32 reduction-order noise into a visible but
# tiny update difference; a real accumulation or sharding bug changes losses
# and grad norms (compared at rtol 2e-5) and whole updates.
PARAM_ATOL = 1e-5


def test_gradient_accumulation_equals_large_batch(single):
  acc = _run({"data": 1, "fsdp": 1, "tensor": 1}, 4, [_batch(0), _batch(1)],
             devices=jax.devices()[:1])
  np.testing.assert_allclose(acc[0], single[0], rtol=2e-5)
  for a, b in zip(acc[1], single[1]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=PARAM_ATOL)


def test_sharded_step_equals_single_device(single):
  sharded = _run({"data": 2, "fsdp": 2, "tensor": 2}, 1, [_batch(0), _batch(1)])
  np.testing.assert_allclose(sharded[0], single[0], rtol=2e-5)
  for a, b in zip(sharded[1], single[1]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=PARAM_ATOL)


def test_data_rows_accumulating_apart_equal_single_device(single):
  # data=2: each data row accumulates its own gradient over the micro-batches
  # and the rows' gradients are summed once (Trainer._grouped_value_and_grad).
  grouped = _run({"data": 2, "fsdp": 2, "tensor": 2}, 2, [_batch(0), _batch(1)])
  np.testing.assert_allclose(grouped[0], single[0], rtol=2e-5)
  for a, b in zip(grouped[1], single[1]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=PARAM_ATOL)


def test_packed_loss_equals_unpacked_loss():
  """The loss of a packed batch is the loss-token mean over its episodes
  computed one episode per row (the authors' layout)."""
  mesh = sharding.make_mesh({"data": 1, "fsdp": 1, "tensor": 1},
                            devices=jax.devices()[:1])
  opt, _ = make_optimizer(OptimizerConfig(), 10)
  trainer = Trainer(CFG, opt, mesh, sharding.DEFAULT_RULES)
  params = nnx.state(init_model(CFG, mesh=mesh, seed=0), nnx.Param)
  ev = trainer.eval_fn()
  packed = _batch(3)
  nll, count = ev(params, packed)
  rows = {k: [] for k in packed}
  for r in range(B):
    seg = packed["segment_ids"][r]
    for s in np.unique(seg[seg > 0]):
      idx = np.where(seg == s)[0]
      for k in packed:
        row = np.zeros(L, packed[k].dtype)
        row[:len(idx)] = packed[k][r, idx]
        rows[k].append(row)
  unpacked = {k: np.stack(v) for k, v in rows.items()}
  unpacked["segment_ids"] = (unpacked["segment_ids"] > 0).astype(np.int32)
  nll_u, count_u = ev(params, unpacked)
  assert float(count) == float(count_u) == float(packed["loss_mask"].sum())
  np.testing.assert_allclose(float(nll) / float(count),
                             float(nll_u) / float(count_u), rtol=1e-5)


def test_nonfinite_step_is_skipped_when_configured():
  mesh = sharding.make_mesh({"data": 1, "fsdp": 1, "tensor": 1},
                            devices=jax.devices()[:1])
  opt, _ = make_optimizer(OptimizerConfig(learning_rate=1e-2), 10)
  trainer = Trainer(CFG, opt, mesh, sharding.DEFAULT_RULES,
                    skip_nonfinite=True)
  params = nnx.state(init_model(CFG, mesh=mesh, seed=0), nnx.Param)
  state = trainer.init_state(params)
  before = [np.asarray(x) for x in jax.tree.leaves(state["params"])]
  bad = _batch(0)
  bad["loss_mask"] = bad["loss_mask"] * np.float32("nan")
  state, m = trainer.step_fn()(state, bad)
  assert not bool(m["finite"])
  for a, b in zip(jax.tree.leaves(state["params"]), before):
    np.testing.assert_array_equal(np.asarray(a), b)
