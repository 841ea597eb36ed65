"""The compiled train step's collectives on 8 simulated devices (fsdp=8): the output
head is gathered and reduced per micro-batch at most, never per loss chunk, and
weights are gathered in the compute dtype; on data=2 x fsdp=4, gradients cross
the data axis once per step."""

import math

import jax
import pytest

from benchmarks.collectives import compile_step, measure
from spectrax.training import hlo_stats

MICRO, CHUNKS = 2, 4


@pytest.fixture(scope="module")
def step():
  if jax.device_count() < 8:
    pytest.skip("needs 8 devices: run under tests/conftest.py (jax_num_cpu_devices=8)")
  # vocab 768 is no other dimension of this model (hidden 64, mlp 256, 16 x 64 tokens).
  compiled, trainer = compile_step(vocab=768, hidden=64, layers=2, seq=64, batch=16,
                                   microbatches=MICRO, chunk=64 // CHUNKS, fsdp=8,
                                   dtype="bfloat16")
  return compiled, trainer


def test_head_collectives_run_per_micro_batch_not_per_chunk(step):
  compiled, trainer = step
  result = measure(compiled, trainer.model_cfg, microbatches=MICRO)
  head = result["head"]
  assert result["loops_without_trip_count"] == 0
  # The loss gathers the head once for its forward and once for its
  # backward, and XLA hoists both out of the micro-batch loop; the old
  # checkpointed chunk loop gathered it twice per chunk of every micro-batch
  # (2 * MICRO * CHUNKS = 16).
  assert 1 <= head["all-gather"]["ops"] <= MICRO, head
  # Its gradient: one reduction per micro-batch (all-reduce on XLA:CPU,
  # reduce-scatter elsewhere), none per chunk.
  assert 1 <= head["all-reduce"]["ops"] + head["reduce-scatter"]["ops"] <= MICRO, head
  assert head["collective-permute"]["ops"] == head["all-to-all"]["ops"] == 0, head


def test_weights_are_gathered_in_the_compute_dtype(step):
  compiled, trainer = step
  matrices = set()
  for leaf in jax.tree.leaves(trainer.abstract_params):
    for shape in (leaf.shape, leaf.shape[1:]):  # stacked layers are gathered one layer at a time
      if len(shape) == 2:
        matrices |= {shape, shape[::-1]}
  ops, _ = hlo_stats.collectives(compiled.as_text())
  gathers = [o for o in ops if o.kind == "all-gather"
             and any(dims in matrices for _, dims in o.arrays)]
  assert len(gathers) >= 2 * trainer.model_cfg.num_layers  # the check can fail
  assert {o.dtypes for o in gathers} == {("bf16",)}, [(o.name, o.arrays) for o in gathers]


def _token_id_collectives(ops, seq):
  """`(kind, executions, bytes)` of the collectives whose payload holds
  integer [.., seq] arrays: the batch's token ids, targets, positions or
  segment ids."""
  return [(o.kind, o.executions, o.bytes) for o in ops
          if any(d.startswith("s") and seq in dims for d, dims in o.arrays)]


def test_the_micro_batch_split_moves_no_token_ids(step):
  # Each device splits its own rows into micro-batches, so the batch is never
  # re-sharded (contiguous micro-batches were, several gathers per step). The
  # one gather left is the embedding lookup's: each micro-batch's input ids
  # within the FSDP group (8 rows x 64 int32), so each device looks up the
  # rows of its own vocabulary shard.
  compiled, _ = step
  ops, _ = hlo_stats.collectives(compiled.as_text())
  assert _token_id_collectives(ops, seq=64) == [("all-gather", MICRO, 8 * 64 * 4)]


def test_data_axis_reduces_each_gradient_shard_once_per_step():
  # data=2 x fsdp=4 (two simulated nodes): each data row accumulates its own
  # gradient over the micro-batches; only the sum of the rows' gradient
  # shards crosses the data axis, once per step, not once per micro-batch.
  if jax.device_count() < 8:
    pytest.skip("needs 8 devices: run under tests/conftest.py (jax_num_cpu_devices=8)")
  compiled, trainer = compile_step(vocab=768, hidden=64, layers=1, seq=64, batch=16,
                                   microbatches=MICRO, chunk=16, fsdp=4, data=2,
                                   dtype="bfloat16")
  ops, _ = hlo_stats.collectives(compiled.as_text())
  # Token ids move only for the embedding lookup, within each data row.
  assert _token_id_collectives(ops, seq=64) == [("all-gather", MICRO, 4 * 64 * 4)]
  across = [o for o in ops if "data" in hlo_stats.mesh_axes(o, trainer.mesh.shape)]
  shard_bytes = sum(  # float32 gradient shard per device
      math.prod(s.shard_shape(x.shape)) * 4
      for x, s in zip(jax.tree.leaves(trainer.abstract_params),
                      jax.tree.leaves(trainer.param_shardings)))
  largest = max(across, key=lambda o: o.bytes * o.executions)
  assert (largest.kind, largest.executions, largest.bytes) == ("all-reduce", 1, shard_bytes)
  # Everything else that crosses (token ids, loss sums) is small.
  assert sum(o.bytes * o.executions for o in across) < 1.25 * shard_bytes, [
      (o.kind, o.arrays, o.executions) for o in across]
