"""Checkpointer: sharded state, exact data resume, pruning, corruption fallback."""

import logging
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from data_pipelines import build
from data_pipelines.schema import Instance, Row, TaskSpec
from spectrax.checkpoints.training_state import (CheckpointRestoreError, Checkpointer,
                                 ProcessCountMismatchError)
from spectrax.data.pipeline import DataConfig, Pipeline

# A failed orbax restore leaves tensorstore futures and coroutines to a closed
# event loop; they surface at garbage collection, in whichever test runs then.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings(
        "ignore:coroutine .* was never awaited:RuntimeWarning"),
]

CONFIG = {"model": {"name": "tiny", "layers": 2}, "lr": 1e-3,
          "tasks": ["coins"]}


@pytest.fixture(scope="module")
def mesh():
  return Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("data", "model"))


def _train_state(mesh, scale=1.0):
  """Params, an AdamW state after one update, and an int step; sharded."""
  shardings = {"embed": NamedSharding(mesh, P("data", "model")),
               "kernel": NamedSharding(mesh, P("model", None)),
               "bias": NamedSharding(mesh, P())}
  params = {
      "embed": jnp.arange(64, dtype=jnp.float32).reshape(8, 8) * scale,
      "dense": {"kernel": jnp.linspace(-1, 1, 32).reshape(8, 4) * scale,
                "bias": jnp.full((4,), 0.5 * scale, jnp.bfloat16)}}
  params = {"embed": jax.device_put(params["embed"], shardings["embed"]),
            "dense": {"kernel": jax.device_put(params["dense"]["kernel"],
                                               shardings["kernel"]),
                      "bias": jax.device_put(params["dense"]["bias"],
                                             shardings["bias"])}}
  opt = optax.adamw(1e-2)
  opt_state = opt.init(params)
  grads = jax.tree.map(lambda p: jnp.ones_like(p) * 0.1, params)
  _, opt_state = opt.update(grads, opt_state, params)
  # optax's `count` leaves land on one device: give them the mesh.
  opt_state = jax.tree.map(
      lambda x: x if len(x.sharding.device_set) > 1
      else jax.device_put(x, NamedSharding(mesh, P())), opt_state)
  return {"params": params, "opt_state": opt_state, "step": 7}


def _abstract(state):
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
      if isinstance(x, jax.Array) else x, state)


def _assert_state_equal(got, want):
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    if isinstance(w, jax.Array):
      assert g.sharding == w.sharding and g.dtype == w.dtype
      np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    else:
      assert g == w


class _FakeIterator:
  """The `get_state() -> bytes` / `set_state(bytes)` protocol, no data."""

  def __init__(self, position=0):
    self.position = position

  def get_state(self):
    return str(self.position).encode()

  def set_state(self, state):
    self.position = int(state)

  def start_prefetch(self):
    pass


def _save_steps(directory, mesh, steps, **kw):
  """Saves step s with params scaled by s; returns the states."""
  states = {}
  with Checkpointer(directory, save_every=1, keep=kw.pop("keep", 5),
                    **kw) as ckpt:
    for s in steps:
      states[s] = _train_state(mesh, scale=s)
      assert ckpt.save(s, state=states[s], data_iterator=_FakeIterator(s),
                       config_dict={**CONFIG, "step": s})
  return states


def test_sharded_state_round_trip(tmp_path, mesh):
  state = _train_state(mesh)
  with Checkpointer(tmp_path, save_every=10, keep=2) as ckpt:
    assert ckpt.latest_step() is None
    assert ckpt.save(10, state=state, data_iterator=_FakeIterator(3),
                     config_dict=CONFIG)
    ckpt.wait()
  it = _FakeIterator()
  with Checkpointer(tmp_path, save_every=10, keep=2) as ckpt:
    assert ckpt.latest_step() == 10
    restored, step = ckpt.restore(_abstract(state), it)
    assert step == 10 and it.position == 3
    _assert_state_equal(restored, state)
    assert ckpt.restore_config() == CONFIG
    # Another layout than the one saved: arrays come back resharded.
    abstract = _abstract(state)
    other = NamedSharding(mesh, P("model", "data"))
    abstract["params"]["embed"] = jax.ShapeDtypeStruct((8, 8), jnp.float32,
                                                       sharding=other)
    restored, _ = ckpt.restore(abstract, None)
    assert restored["params"]["embed"].sharding == other
    np.testing.assert_array_equal(restored["params"]["embed"],
                                  state["params"]["embed"])


def test_save_schedule_pruning_and_latest_step(tmp_path, mesh):
  state = _train_state(mesh)
  with Checkpointer(tmp_path, save_every=2, keep=2) as ckpt:
    saved = [s for s in range(1, 8)
             if ckpt.save(s, state=state, data_iterator=_FakeIterator(s),
                          config_dict=CONFIG)]
    assert saved == [2, 4, 6]
    assert ckpt.save(7, state=state, data_iterator=_FakeIterator(7),
                     config_dict=CONFIG, force=True)
    # A forced final save right after a scheduled one is a no-op.
    assert not ckpt.save(7, state=state, data_iterator=_FakeIterator(7),
                         config_dict=CONFIG, force=True)
    ckpt.wait()
    assert ckpt.latest_step() == 7 and ckpt.all_steps() == [6, 7]
  assert sorted(n for n in os.listdir(tmp_path) if n.isdigit()) == ["6", "7"]


def test_config_errors(tmp_path, mesh):
  with pytest.raises(ValueError, match="save_every=0 must be >= 1"):
    Checkpointer(tmp_path, save_every=0, keep=2)
  with pytest.raises(ValueError, match="keep=0 must be >= 1"):
    Checkpointer(tmp_path, save_every=1, keep=0)
  with Checkpointer(tmp_path, save_every=1, keep=2) as ckpt:
    with pytest.raises(ValueError, match=r"not JSON-serialisable.*to_dict"):
      ckpt.save(1, state=_train_state(mesh), data_iterator=_FakeIterator(),
                config_dict={"f": object()})
    with pytest.raises(FileNotFoundError, match="no finalized checkpoint"):
      ckpt.restore({}, None)


# Corruption.


def _truncate(path):
  """Halves a file, or every file under a directory (a torn write)."""
  paths = ([os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs]
           if os.path.isdir(path) else [path])
  for f in paths:
    with open(f, "r+b") as fh:
      fh.truncate(os.path.getsize(f) // 2)


CORRUPTIONS = {
    "truncated array files": lambda d: _truncate(d / "state" / "d"),
    "truncated state metadata": lambda d: _truncate(d / "state" / "_METADATA"),
    "deleted array files": lambda d: shutil.rmtree(d / "state" / "d"),
    "missing state item": lambda d: shutil.rmtree(d / "state"),
    "missing iterator file": lambda d: os.remove(d / "data" /
                                                 "process_0-of-1.json"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_latest_falls_back_to_previous(tmp_path, mesh, caplog,
                                               corruption):
  states = _save_steps(tmp_path, mesh, [1, 2])
  CORRUPTIONS[corruption](tmp_path / "2")
  it = _FakeIterator()
  with Checkpointer(tmp_path, save_every=1, keep=5) as ckpt:
    assert ckpt.latest_step() == 2  # Listing does not read the arrays.
    with caplog.at_level(logging.WARNING, logger="spectrax.checkpoints.training_state"):
      restored, step = ckpt.restore(_abstract(states[1]), it)
    assert step == 1 and it.position == 1
    _assert_state_equal(restored, states[1])
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING]
    assert any(f"{tmp_path / '2'} is unreadable" in w
               and "trying the previous one" in w for w in warnings)
    # Step 2 is moved aside, so the resumed run can save it again.
    assert (tmp_path / "2.corrupt").is_dir()
    assert ckpt.latest_step() == 1
    assert ckpt.save(2, state=states[2], data_iterator=_FakeIterator(2),
                     config_dict=CONFIG)
    ckpt.wait()
    restored, step = ckpt.restore(_abstract(states[2]), it)
    assert step == 2 and it.position == 2
    _assert_state_equal(restored, states[2])


def test_interrupted_save_leaves_previous_checkpoint_latest(tmp_path, mesh):
  states = _save_steps(tmp_path, mesh, [1, 2])
  # What a crash between writing and orbax's final rename leaves behind.
  shutil.copytree(tmp_path / "2", tmp_path / "3.orbax-checkpoint-tmp")
  shutil.copytree(tmp_path / "2", tmp_path / "4.orbax-checkpoint-tmp-1764")
  with Checkpointer(tmp_path, save_every=1, keep=5) as ckpt:
    assert ckpt.latest_step() == 2 and ckpt.all_steps() == [1, 2]
    _, step = ckpt.restore(_abstract(states[2]), _FakeIterator())
    assert step == 2
    ckpt.wait()
  assert sorted(os.listdir(tmp_path)) == ["1", "2"]  # Tmp dirs cleaned up.


def test_nothing_restorable_lists_every_try(tmp_path, mesh):
  states = _save_steps(tmp_path, mesh, [1, 2])
  for s in ("1", "2"):
    _truncate(tmp_path / s / "state" / "d")
  with Checkpointer(tmp_path, save_every=1, keep=5) as ckpt:
    with pytest.raises(CheckpointRestoreError) as e:
      ckpt.restore(_abstract(states[1]), _FakeIterator())
    msg = str(e.value)
    assert f"step 2 ({tmp_path / '2'})" in msg
    assert f"step 1 ({tmp_path / '1'})" in msg
    # Nothing proven readable, so nothing is moved aside.
    assert ckpt.all_steps() == [1, 2]


def test_explicit_step_does_not_fall_back(tmp_path, mesh):
  states = _save_steps(tmp_path, mesh, [1, 2])
  _truncate(tmp_path / "2" / "state" / "d")
  with Checkpointer(tmp_path, save_every=1, keep=5) as ckpt:
    with pytest.raises(CheckpointRestoreError, match="step 2"):
      ckpt.restore(_abstract(states[2]), _FakeIterator(), step=2)
    with pytest.raises(FileNotFoundError, match=r"step 5 .* \[1, 2\]"):
      ckpt.restore(_abstract(states[2]), _FakeIterator(), step=5)
    _, step = ckpt.restore(_abstract(states[1]), _FakeIterator(), step=1)
    assert step == 1 and ckpt.all_steps() == [1, 2]


def test_mismatched_request_moves_nothing_aside(tmp_path, mesh):
  states = _save_steps(tmp_path, mesh, [1, 2])
  abstract = _abstract(states[2])
  abstract["params"]["embed"] = jax.ShapeDtypeStruct(
      (4, 4), jnp.float32, sharding=NamedSharding(mesh, P()))
  del abstract["params"]["dense"]
  with Checkpointer(tmp_path, save_every=1, keep=5) as ckpt:
    with pytest.raises(CheckpointRestoreError, match="does not match them"):
      ckpt.restore(abstract, _FakeIterator())
    assert ckpt.all_steps() == [1, 2]


def test_other_process_count_is_a_usage_error(tmp_path, mesh):
  states = _save_steps(tmp_path, mesh, [1])
  data = tmp_path / "1" / "data"
  os.rename(data / "process_0-of-1.json", data / "process_0-of-2.json")
  with Checkpointer(tmp_path, save_every=1, keep=5) as ckpt:
    with pytest.raises(ProcessCountMismatchError,
                       match="same number of processes"):
      ckpt.restore(_abstract(states[1]), _FakeIterator())
    restored, _ = ckpt.restore(_abstract(states[1]), None)
    _assert_state_equal(restored, states[1])


# The real data iterator.


def _coins(ctx):
  rng = np.random.default_rng([ctx.seed, 1])
  for i in range(20):
    p = rng.random()
    yield Instance(id=f"coin{i}", descriptions=[f"A coin with bias {p:.2f}."],
                   rows=[Row("Heads" if rng.random() < p else "Tails")
                         for _ in range(rng.integers(5, 40))])


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("suite"))
  specs = [TaskSpec(name="coins", suite_split="train", kind="icl",
                    generate=_coins, mean_k=8)]
  assert build.build(out, specs, seed=0, raw_dir=None) == []
  from spectrax.data import tokenizer_training  # pylint: disable=g-import-not-at-top
  tokenizer_training.train_default_tokenizer(out, vocab_size=400)
  return out


def test_data_iterator_resumes_exactly(tmp_path, mesh, suite_dir):
  pipeline = Pipeline(DataConfig(
      suite_dir=suite_dir, tasks=("coins",), seq_len=64, max_tokens=65,
      batch_size=2, seed=1, num_epochs=None, num_packing_bins=4))
  state = _train_state(mesh)
  it = pipeline.iterator()
  with Checkpointer(tmp_path, save_every=3, keep=2) as ckpt:
    for step in range(1, 4):
      next(it)
      ckpt.save(step, state=state, data_iterator=it, config_dict=CONFIG)
    # Advance while the asynchronous save may still be writing.
    expected = [next(it) for _ in range(3)]
    stats = it.stats.as_dict()
  it.close()
  fresh = pipeline.iterator()
  with Checkpointer(tmp_path, save_every=3, keep=2) as ckpt:
    _, step = ckpt.restore(_abstract(state), fresh)
  got = [next(fresh) for _ in range(3)]
  fresh.close()
  assert step == 3
  for want, have in zip(expected, got):
    assert set(want) == set(have)
    for k in want:
      np.testing.assert_array_equal(want[k], have[k])
  assert fresh.stats.as_dict() == stats


_CRASH_SCRIPT = """
import os, sys
import jax.numpy as jnp
from spectrax.checkpoints.training_state import Checkpointer

class It:
  def get_state(self):
    return b"0"

ckpt = Checkpointer(sys.argv[1], save_every=1, keep=3)
ckpt.save(1, state={"w": jnp.ones((4,))}, data_iterator=It(), config_dict={})
ckpt.wait()
# Big enough that writing outlasts save() returning; then die mid-save.
ckpt.save(2, state={"w": jnp.ones((4,)), "big": jnp.ones((4096, 4096))},
          data_iterator=It(), config_dict={})
os._exit(0)
"""


def test_crash_mid_async_save_restores_a_complete_checkpoint(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": repo}
  subprocess.run([sys.executable, "-c", _CRASH_SCRIPT, str(tmp_path)],
                 check=True, env=env, timeout=120)
  interrupted = not (tmp_path / "2").exists()
  with Checkpointer(tmp_path, save_every=1, keep=3) as ckpt:
    abstract = {"w": jax.ShapeDtypeStruct((4,), jnp.float32)}
    if not interrupted:  # The save won the race: step 2 must be whole.
      abstract["big"] = jax.ShapeDtypeStruct((4096, 4096), jnp.float32)
    restored, step = ckpt.restore(abstract, _FakeIterator())
    assert step == (1 if interrupted else 2)
    np.testing.assert_array_equal(restored["w"], np.ones(4))


# Corrupted bytes that still decode, and readers.


def flip_bytes(step_dir, item="state", every_file=False, spread=1):
  """Flips 16 bytes in the middle of the largest array data file of a step
  (or of each, with `every_file`): a bad disk or a partial copy. The files
  still decode, the values are wrong (orbax's b-tree files under `state/d`
  carry a CRC; the zstd-compressed chunks under `state/ocdbt.process_<i>/d`
  do not)."""
  files = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(step_dir, item))
           for f in fs if os.path.basename(r) == "d"
           and os.path.basename(os.path.dirname(r)).startswith("ocdbt.process_")]
  targets = files if every_file else [max(files, key=os.path.getsize)]
  for target in targets:
    size = os.path.getsize(target)
    # `spread` places: a reader reads the parameters only, so its tests must
    # hit them wherever the layout puts them, not only the file's middle.
    for offset in sorted({size * (2 * i + 1) // (2 * spread) for i in range(spread)}):
      with open(target, "r+b") as f:
        f.seek(offset)
        data = f.read(16)
        f.seek(-len(data), 1)
        f.write(bytes(b ^ 0xFF for b in data))
  return targets


def _tree_listing(root):
  """Every path under `root` with its size and mtime: "nothing changed"."""
  return sorted((os.path.relpath(os.path.join(r, f), root),
                 os.path.getsize(os.path.join(r, f)),
                 os.stat(os.path.join(r, f)).st_mtime_ns)
                for r, ds, fs in os.walk(root) for f in fs + ds)


def _big_states(directory, mesh, steps):
  """A 256x256 float32 weight per step: its compressed chunks dominate the
  array files, so `flip_bytes` hits array data, not orbax's index."""
  states = {}
  with Checkpointer(directory, save_every=1, keep=5) as ckpt:
    for s in steps:
      w = np.random.default_rng(s).standard_normal((256, 256), np.float32)
      states[s] = {"w": jax.device_put(w, NamedSharding(mesh, P("data", "model"))),
                   "step": s}
      ckpt.save(s, state=states[s], data_iterator=_FakeIterator(s),
                config_dict=CONFIG)
  return states


def test_flipped_bytes_are_caught_and_set_aside(tmp_path, mesh, caplog):
  states = _big_states(tmp_path, mesh, [1, 2])
  assert (tmp_path / "2" / "integrity").is_dir()
  flip_bytes(tmp_path / "2")
  it = _FakeIterator()
  with Checkpointer(tmp_path, save_every=1, keep=5) as ckpt:
    with caplog.at_level(logging.WARNING):
      restored, step = ckpt.restore(_abstract(states[2]), it)
    assert step == 1 and it.position == 1
    _assert_state_equal(restored, states[1])
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno >= logging.WARNING]
    # One warning for the bad step (and one for moving it), nothing of orbax's.
    assert len(warnings) == 2, warnings
    assert f"{tmp_path / '2'} is unreadable" in warnings[0]
    # The bytes still decoded (into NaN here; test_integrity.py has values
    # that stay finite).
    assert "IntegrityError: w " in warnings[0]
    assert (tmp_path / "2.corrupt").is_dir() and ckpt.all_steps() == [1]


def test_checkpoint_without_checksums_loads_and_is_checked_for_nan(tmp_path, mesh):
  states = _save_steps(tmp_path, mesh, [1, 2])
  for s in ("1", "2"):  # As written before checksums existed.
    shutil.rmtree(tmp_path / s / "integrity")
  with Checkpointer(tmp_path, read_only=True) as ckpt:
    restored, step = ckpt.restore(_abstract(states[2]), None)
  assert step == 2
  _assert_state_equal(restored, states[2])


def test_nonfinite_state_is_refused(tmp_path, mesh):
  state = _train_state(mesh)
  state["params"]["embed"] = state["params"]["embed"] * jnp.nan
  good = _train_state(mesh)
  with Checkpointer(tmp_path, save_every=1, keep=5) as ckpt:
    ckpt.save(1, state=good, data_iterator=_FakeIterator(1), config_dict=CONFIG)
    ckpt.save(2, state=state, data_iterator=_FakeIterator(2), config_dict=CONFIG)
    ckpt.wait()
    _, step = ckpt.restore(_abstract(good), None)
  assert step == 1


def test_reader_changes_nothing_and_skips_bad_steps(tmp_path, mesh, caplog):
  states = _big_states(tmp_path, mesh, [1, 2])
  flip_bytes(tmp_path / "2")
  # A save in progress by the training (orbax's unfinished step directory).
  shutil.copytree(tmp_path / "1", tmp_path / "3.orbax-checkpoint-tmp-1764")
  before = _tree_listing(tmp_path)
  abstract = {"w": _abstract(states[1])["w"]}
  with caplog.at_level(logging.WARNING):
    with Checkpointer(tmp_path, read_only=True) as ckpt:
      assert ckpt.all_steps() == [1, 2]
      params, step = ckpt.restore_params(abstract)
      with pytest.raises(ValueError, match="read-only"):
        ckpt.save(4, state=states[1], data_iterator=_FakeIterator(),
                  config_dict=CONFIG)
  assert step == 1
  np.testing.assert_array_equal(params["w"], states[1]["w"])
  assert _tree_listing(tmp_path) == before
  warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  assert len(warnings) == 1 and "left in place" in warnings[0], warnings


def test_reader_during_a_real_save_in_progress(tmp_path, mesh):
  """The issue's failure: a scorer opening the run while training saves
  deleted the unfinished save. The writer's save must finish intact."""
  big = jax.device_put(np.ones((2048, 2048), np.float32),
                       NamedSharding(mesh, P("data", "model")))
  small = _big_states(tmp_path, mesh, [1])[1]
  with Checkpointer(tmp_path, save_every=1, keep=5) as writer:
    writer.save(2, state={**small, "big": big}, data_iterator=_FakeIterator(2),
                config_dict=CONFIG)
    in_flight = [n for n in os.listdir(tmp_path) if "orbax-checkpoint-tmp" in n]
    with Checkpointer(tmp_path, read_only=True) as reader:
      params, step = reader.restore_params({"w": _abstract(small)["w"]})
      assert step == 1
    for name in in_flight:  # Untouched by the reader (if still writing).
      assert (tmp_path / name).exists() or (tmp_path / "2").exists()
    writer.wait()
  with Checkpointer(tmp_path, read_only=True) as reader:
    restored, step = reader.restore({**_abstract(small), "big": _abstract({"b": big})["b"]},
                                    None)
  assert step == 2
  np.testing.assert_array_equal(restored["big"], np.ones((2048, 2048), np.float32))
