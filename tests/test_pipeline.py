"""The Grain pipeline: packing invariants, exact resume, process sharding."""

import collections

import numpy as np
import pytest

from spectrax.data.episode_planning import plan_messages
from spectrax.data.episodes import tokenize_episode
from spectrax.data.pipeline import (DataConfig, Pipeline, episode_index_dataset,
                               make_global_batch)


@pytest.fixture(scope="module")
def suite_dir(tiny_suite_dir):
  return tiny_suite_dir


def _config(suite_dir, **kw):
  base = dict(suite_dir=suite_dir, template="gemma", tasks=("coins", "sums"),
              seq_len=128, max_tokens=129, batch_size=4, seed=3)
  base.update(kw)
  return DataConfig(**base)


def _segments(batch):
  """Yields (targets where mask, positions) of every packed episode."""
  for r in range(batch["inputs"].shape[0]):
    seg = batch["segment_ids"][r]
    for s in np.unique(seg[seg > 0]):
      idx = np.where(seg == s)[0]
      yield batch, r, idx


def _loss_sequences_unpacked(pipeline):
  out = collections.Counter()
  for ep in pipeline.episodes():
    if ep is not None and len(ep["inputs"]):
      out[tuple(ep["targets"][ep["loss_mask"] > 0])] += 1
  return out


def _loss_sequences_packed(batches):
  out = collections.Counter()
  for batch in batches:
    for b, r, idx in _segments(batch):
      m = b["loss_mask"][r, idx] > 0
      out[tuple(b["targets"][r, idx][m])] += 1
  return out


@pytest.mark.parametrize("packing", ["retained_best_fit", "first_fit",
                                     "best_fit"])
def test_packing_invariants_and_no_loss_token_lost(suite_dir, packing):
  p = Pipeline(_config(suite_dir, packing=packing, num_packing_bins=8))
  batches = list(p.iterator())
  for batch in batches:
    assert set(batch) == {"inputs", "targets", "loss_mask", "segment_ids",
                          "positions"}
    for k in ("inputs", "targets", "segment_ids", "positions"):
      assert batch[k].shape == (4, 128) and batch[k].dtype == np.int32
    assert batch["loss_mask"].dtype == np.float32
    pad = batch["segment_ids"] == 0
    assert not batch["loss_mask"][pad].any() and not batch["inputs"][pad].any()
    for b, r, idx in _segments(batch):
      # One episode = one contiguous segment, positions restart at 0.
      assert np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx)))
      assert np.array_equal(b["positions"][r, idx], np.arange(len(idx)))
      # Each segment is exactly one episode: it starts with BOS.
      assert b["inputs"][r, idx[0]] == 1
      # Targets are the inputs shifted by one inside the episode.
      assert np.array_equal(b["targets"][r, idx[:-1]], b["inputs"][r, idx[1:]])
  assert _loss_sequences_packed(batches) == _loss_sequences_unpacked(p)


def test_stats_count_everything(suite_dir):
  p = Pipeline(_config(suite_dir, tasks=("coins", "sums", "long")))
  it = p.iterator()
  batches = list(it)
  s = it.stats
  assert s.episodes_seen == p.num_episodes
  # "long" has 3 rows of one ~400-token example, fixed_k=1: all dropped;
  # so is every one-example chunk (the loss skips an episode's first output).
  long_plan = p.plans[2]
  assert long_plan.num_episodes == 3
  no_loss = sum(
      tokenize_episode(plan_messages(plan, e), "gemma", p.tokenizer,
                       max_tokens=129).num_loss_tokens == 0
      for plan in p.plans[:2] for e in range(plan.num_episodes))
  assert no_loss > 0 and s.episodes_dropped == 3 + no_loss
  assert s.loss_tokens == sum(int(b["loss_mask"].sum()) for b in batches)
  assert s.episodes_truncated > 0 and s.tokenization_mismatches == 0
  assert s.nonpad_tokens == sum(int((b["segment_ids"] > 0).sum())
                                for b in batches)
  assert 0.5 < s.packing_efficiency <= 1.0


@pytest.mark.parametrize("packing,workers", [("retained_best_fit", 0),
                                             ("first_fit", 0),
                                             pytest.param("retained_best_fit", 2,
                                                          marks=pytest.mark.slow)])
def test_restored_iterator_yields_identical_batches(suite_dir, packing, workers):
  cfg = _config(suite_dir, packing=packing, num_packing_bins=8, num_epochs=None,
                worker_count=workers)
  p = Pipeline(cfg)
  it = p.iterator()
  for _ in range(7):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(6)]
  stats = it.stats.as_dict()
  it.close()
  fresh = p.iterator()
  fresh.set_state(state)
  got = [next(fresh) for _ in range(6)]
  fresh.close()
  for a, b in zip(expected, got):
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
  assert fresh.stats.as_dict() == stats


def test_processes_get_disjoint_data_covering_everything(suite_dir):
  cfg = _config(suite_dir, batch_size=4)
  whole = _loss_sequences_packed(Pipeline(cfg).iterator())
  parts = [_loss_sequences_packed(
      Pipeline(cfg, process_index=i, process_count=2).iterator())
           for i in range(2)]
  assert parts[0] + parts[1] == whole
  # Disjoint episodes, as (task, episode) ids, which are unique.
  single = Pipeline(cfg)
  order = list(episode_index_dataset(single.plans, cfg, single.task_names))
  halves = [set(order[i::2]) for i in range(2)]
  assert not halves[0] & halves[1]
  assert halves[0] | halves[1] == set(order) and len(order) == len(set(order))


def test_mixture_weights(suite_dir):
  cfg = _config(suite_dir, mixture={"coins": 3.0, "sums": 1.0}, num_epochs=1)
  p = Pipeline(cfg)
  order = list(episode_index_dataset(p.plans, cfg, p.task_names))
  assert len(order) == p.num_episodes
  counts = collections.Counter(t for t, _ in order)
  assert abs(counts[0] / counts[1] - 3) < 0.1
  with pytest.raises(ValueError, match="no weight for task"):
    Pipeline(_config(suite_dir, mixture={"coins": 1.0})).iterator()


def test_epochs_reshuffle(suite_dir):
  cfg = _config(suite_dir, num_epochs=2)
  p = Pipeline(cfg)
  order = list(episode_index_dataset(p.plans, cfg, p.task_names))
  n = p.num_episodes
  assert sorted(order[:n]) == sorted(order[n:]) and order[:n] != order[n:]


def test_config_errors(suite_dir):
  with pytest.raises(ValueError, match="unknown template 'gemma2'"):
    Pipeline(_config(suite_dir, template="gemma2"))
  with pytest.raises(ValueError, match="task 'nope' is not in the suite"):
    Pipeline(_config(suite_dir, tasks=("nope",)))
  with pytest.raises(ValueError, match=r"max_tokens <= 129 or raise seq_len"):
    Pipeline(_config(suite_dir, max_tokens=400))
  with pytest.raises(ValueError, match="data.packing='greedy'"):
    Pipeline(_config(suite_dir, packing="greedy"))
  with pytest.raises(ValueError, match="divisible by the process count"):
    Pipeline(_config(suite_dir, batch_size=3), process_count=2)
  # seq_len smaller than the shortest example of a task: a clear error.
  p = Pipeline(_config(suite_dir, tasks=("long",)))
  with pytest.raises(ValueError, match="task 'long': none of its first 3 "
                     "episodes has a whole example"):
    p.check_fits()


def test_eval_split_is_disjoint_from_train(suite_dir):
  train = Pipeline(_config(suite_dir, tasks=("coins",)))
  test = Pipeline(_config(suite_dir, tasks=("coins",), split="test"))
  train_ids = {train.plans[0].source[i].id for i in range(len(train.plans[0].source))}
  test_ids = {test.plans[0].source[i].id for i in range(len(test.plans[0].source))}
  assert len(test_ids) == 3 and not train_ids & test_ids


def test_global_batch_on_a_mesh(suite_dir):
  import jax
  from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
  mesh = Mesh(np.array(jax.devices()[:8]).reshape(4, 2), ("data", "fsdp"))
  sharding = NamedSharding(mesh, P(("data", "fsdp"), None))
  p = Pipeline(_config(suite_dir, batch_size=8))
  batch = next(p.iterator())
  arrays = make_global_batch(batch, sharding)
  assert arrays["inputs"].shape == (8, 128)
  assert arrays["inputs"].sharding == sharding
  np.testing.assert_array_equal(np.asarray(arrays["loss_mask"]),
                                batch["loss_mask"])
