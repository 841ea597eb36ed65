"""Checksums of saved arrays: exact under any sharding, sensitive to one bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from spectrax.checkpoints import integrity


@pytest.fixture(scope="module")
def mesh():
  return Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("data", "model"))


def _state(mesh, spec):
  w = np.random.default_rng(0).standard_normal((64, 32), np.float32)
  return {"w": jax.device_put(w, NamedSharding(mesh, spec)),
          "b": jnp.arange(8, dtype=jnp.bfloat16), "n": jnp.int32(7),
          "python": 3}


def test_same_values_verify_under_another_sharding(mesh):
  recorded = integrity.record(_state(mesh, P("data", "model")))
  assert sorted(recorded["arrays"]) == ["b", "n", "w"]
  integrity.verify(_state(mesh, P("model", None)), recorded)
  integrity.verify(_state(mesh, P()), recorded)


def test_one_changed_bit_is_caught(mesh):
  state = _state(mesh, P("data", "model"))
  recorded = integrity.record(state)
  bits = np.asarray(state["w"]).view(np.uint32).copy()
  bits[17, 3] ^= 1  # The lowest mantissa bit: still finite, nearly equal.
  state["w"] = jnp.asarray(bits.view(np.float32))
  with pytest.raises(integrity.IntegrityError,
                     match="w does not match the checksum recorded"):
    integrity.verify(state, recorded)


def test_changes_that_cancel_in_the_sum_are_caught(mesh):
  state = _state(mesh, P())
  recorded = integrity.record(state)
  bits = np.asarray(state["w"]).view(np.uint32).copy()
  bits[0, 0] += 4
  bits[0, 1] -= 4
  state["w"] = jnp.asarray(bits.view(np.float32))
  with pytest.raises(integrity.IntegrityError, match="w does not match"):
    integrity.verify(state, recorded)


def test_nonfinite_is_caught_with_or_without_checksums(mesh):
  state = _state(mesh, P())
  state["b"] = state["b"].at[2].set(jnp.inf)
  for recorded in (None, integrity.record(_state(mesh, P()))):
    with pytest.raises(integrity.IntegrityError, match="b holds NaN or infinite"):
      integrity.verify(state, recorded)


def test_another_dtype_is_checked_for_finiteness_only(mesh):
  recorded = integrity.record(_state(mesh, P()))
  state = _state(mesh, P())
  state["w"] = state["w"].astype(jnp.bfloat16)  # a param_dtype override
  integrity.verify(state, recorded)
