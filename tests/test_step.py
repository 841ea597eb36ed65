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


def test_clipping_with_the_steps_norm_equals_optax_clip_by_global_norm():
  """The step's one gradient norm, given to the chain, clips as optax's own
  `clip_by_global_norm` does: norms above and below the threshold, a zero
  gradient (no division) and a NaN one; the state tree is optax's."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  cfg = OptimizerConfig(learning_rate=1e-2, weight_decay=0.1, grad_clip_norm=1.0)
  ours, schedule = make_optimizer(cfg, 10)
  reference = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm),
                          optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                                      weight_decay=cfg.weight_decay))
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
            "b": jnp.asarray(rng.normal(size=(3,)), jnp.float32)}
  assert (jax.tree.structure(ours.init(params))
          == jax.tree.structure(reference.init(params)))  # checkpoints keep their layout

  @jax.jit
  def both(grads, s_ours, s_ref):
    norm = optax.tree.norm(grads)
    u_ours, s_ours = ours.update(grads, s_ours, params, grad_norm=norm)
    u_ref, s_ref = reference.update(grads, s_ref, params)
    return u_ours, s_ours, u_ref, s_ref

  s_ours, s_ref = ours.init(params), reference.init(params)
  for scale in (10.0, 0.01, 0.0, 3.0, float("nan")):
    grads = jax.tree.map(lambda p: p * scale + scale, params)
    u_ours, s_ours, u_ref, s_ref = both(grads, s_ours, s_ref)
    for a, b in zip(jax.tree.leaves((u_ours, s_ours)), jax.tree.leaves((u_ref, s_ref))):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=0)
  assert np.isnan(np.asarray(u_ours["w"])).all()  # a NaN norm is not hidden
  # Without the step's norm it computes its own, as optax does.
  grads = jax.tree.map(lambda p: p * 5.0, params)
  alone, _ = ours.update(grads, ours.init(params), params)
  ref, _ = reference.update(grads, reference.init(params), params)
  for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(ref)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=0)


def test_the_step_reduces_over_the_gradients_once():
  """One global gradient norm per step: the metric's and the clipping's are
  the same reduction (a scalar square root in the compiled program; on a
  sharded mesh XLA does not merge two)."""
  import re  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from spectrax.training.step import BATCH_KEYS  # pylint: disable=g-import-not-at-top
  mesh = sharding.make_mesh({"data": 1, "fsdp": 2, "tensor": 1}, devices=jax.devices()[:2])
  opt, _ = make_optimizer(OptimizerConfig(grad_clip_norm=1.0), 10)
  trainer = Trainer(CFG, opt, mesh, sharding.DEFAULT_RULES)
  batch = {k: jax.ShapeDtypeStruct((B, L), jnp.float32 if k == "loss_mask" else jnp.int32,
                                   sharding=trainer.batch_sharding) for k in BATCH_KEYS}
  hlo = trainer.step_fn().lower(trainer.abstract_state(), batch).compile().as_text()
  assert len(re.findall(r"= f32\[\] sqrt\(", hlo)) == 1


def test_signals_are_agreed_in_the_step_and_a_drained_step_changes_nothing():
  """Each process's signals enter the step; "stop" is any process's, and
  "drained" (every process's data ran out) leaves the state bit for bit."""
  mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 1}, devices=jax.devices()[:4])
  opt, _ = make_optimizer(OptimizerConfig(learning_rate=1e-2), 10)
  trainer = Trainer(CFG, opt, mesh, sharding.DEFAULT_RULES)
  state = trainer.init_state(nnx.state(init_model(CFG, mesh=mesh, seed=0), nnx.Param))
  step = trainer.step_fn()
  copy = lambda s: jax.tree.map(np.asarray, s)  # noqa: E731  (the step donates its state)

  def signals(rows):  # as several processes would give them: some rows each
    return jax.device_put(np.asarray(rows, np.int32), trainer.signals_sharding)

  state, m = step(state, _batch(0))  # no signals: none drained, none stopping
  assert not bool(m["drained"]) and not bool(m["stop"])
  assert int(state["step"]) == 1
  some = [[1, 0]] * 4 + [[0, 1]] + [[0, 0]] * 3  # half drained, one row stopping
  after_one = copy(state)
  state, m = step(state, _batch(1), signals(some))
  assert not bool(m["drained"]) and bool(m["stop"])
  assert int(state["step"]) == 2
  assert any(not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(after_one["params"]), jax.tree.leaves(copy(state)["params"])))
  settled = copy(state)
  empty = {k: np.zeros_like(v) for k, v in _batch(2).items()}
  state, m = step(state, empty, trainer.signals(B, drained=True))
  assert bool(m["drained"]) and not bool(m["stop"])
  for a, b in zip(jax.tree.leaves(copy(state)), jax.tree.leaves(settled)):
    np.testing.assert_array_equal(a, b)
  # The same all-padding batch without the signal is an ordinary step: Adam's
  # moments move the weights even with zero gradients.
  state, _ = step(state, empty)
  assert int(state["step"]) == 3
  assert any(not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(copy(state)["params"]), jax.tree.leaves(settled["params"])))
