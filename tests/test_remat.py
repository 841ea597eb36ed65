"""spectrax/models/remat.py: the named remat policies keep the maths and save what they say."""

import contextlib
import io
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.ad_checkpoint import print_saved_residuals

from spectrax.models import lora as lora_lib
from spectrax.models import remat, reconfigure
from spectrax.models.config import GLOBAL_WINDOW, REMAT_POLICIES
from spectrax.models.transformer import DecoderLayer
from test_models import random_model, tiny_config

TOKENS = np.random.RandomState(2).randint(0, 128, (2, 16))
LORA = lora_lib.LoraConfig(rank=2, alpha=4.0)


def random_adapters(cfg):
  """Adapters with B != 0, so that every adapter weight gets a gradient."""
  weights = lora_lib.init_adapters(cfg, LORA, jax.random.key(3))
  return jax.tree.map(lambda w: w + 0.1 * jax.random.normal(jax.random.key(4), w.shape), weights)


def loss_and_grads(model, adapters=None):
  """Mean squared logits and their gradients (w.r.t. the adapters when given)."""
  graphdef, params = nnx.split(model, nnx.Param)
  tokens = jnp.asarray(TOKENS)

  def loss(params, adapters):
    m = nnx.merge(graphdef, params)
    lora = None if adapters is None else lora_lib.Adapters(LORA, adapters)
    hidden = m(tokens, lora=lora)
    return jnp.mean(m.logits_from_hidden(hidden) ** 2)
  argnums = 0 if adapters is None else 1
  return jax.jit(jax.value_and_grad(loss, argnums=argnums))(params, adapters)


@pytest.fixture(scope="module")
def gemma_reference():
  """Gemma 3 (sandwich norms, QK-norm, local layers): the richest layer."""
  model = random_model(tiny_config("gemma3"))
  adapters = random_adapters(model.config)
  return model, adapters, loss_and_grads(model), loss_and_grads(model, adapters)


def assert_same(got, want):
  (l1, g1), (l0, g0) = got, want
  np.testing.assert_allclose(l1, l0, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0), strict=True):
    # Recomputation may reorder float32 sums: equal up to rounding.
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5 * np.abs(b).max())


@pytest.mark.parametrize("policy", [p for p in remat.POLICIES if p != "none"])
def test_every_policy_keeps_loss_and_gradients(gemma_reference, policy):
  """Float32: the same loss and gradients as without remat, for the full model
  and for LoRA adapters (the host-offloading policy runs on CPU too)."""
  model, adapters, want, want_lora = gemma_reference
  remodel = reconfigure(model, remat_policy=policy)
  assert_same(loss_and_grads(remodel), want)
  assert_same(loss_and_grads(remodel, adapters), want_lora)


def saved_residuals(cfg, policy, lora=None):
  """One decoder layer's residuals under ``policy``: [(dtype, memory, shape, what)].

  From ``jax.ad_checkpoint.print_saved_residuals`` (arguments and constants
  left out: the layer input and weights are kept under every policy).
  """
  graphdef, state = nnx.split(DecoderLayer(cfg, rngs=nnx.Rngs(0)))
  length = 16
  positions = jnp.arange(length)[None]
  segment_ids = jnp.ones((1, length), jnp.int32)
  inv_freq = jnp.asarray(cfg.inv_freq_array()[0])
  x = jnp.ones((1, length, cfg.hidden_size))
  layer_lora = None if lora is None else lora_lib.LayerLora(
      LORA, jax.tree.map(lambda w: w[0], lora), None)

  def layer(state, x):
    return nnx.merge(graphdef, state)(x, positions, segment_ids, GLOBAL_WINDOW, inv_freq,
                                      lora=layer_lora)
  body = remat.apply(layer, policy)
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    print_saved_residuals(lambda s, x: body(s, x).sum(), state, x)
  found = []
  for line in out.getvalue().splitlines():
    if "from the argument" in line or "from a constant" in line or "from a literal" in line:
      continue
    dtype, memory, shape, what = re.match(r"(\w+)(<\w+>)?\[([\d,]*)\] (.*)", line).groups()
    found.append((dtype, memory or "", tuple(int(d) for d in shape.split(",") if d), what))
  return found


def named(residuals):
  return sorted(re.search(r"named '(\w+)'", r[3]).group(1) for r in residuals)


def device_bytes(residuals):
  return sum(4 * np.prod(shape) for _, memory, shape, _ in residuals if memory != "<host>")


ATTENTION = [remat.QUERY, remat.KEY, remat.VALUE, remat.CONTEXT, remat.ATTENTION_OUT]


@pytest.mark.parametrize("family, policy, names", [
    ("gemma3", "full", []),
    ("gemma3", "save_qkv", [remat.QUERY, remat.KEY, remat.VALUE]),
    ("gemma3", "save_attention", ATTENTION),
    # Gemma 3's post-MLP norm needs the down projection's output ...
    ("gemma3", "save_all_but_mlp_hidden", ATTENTION + [remat.MLP_DOWN]),
    # ... Llama's backward never does, so it is not kept.
    ("llama", "save_all_but_mlp_hidden", ATTENTION),
])
def test_policies_save_exactly_their_tagged_tensors(family, policy, names):
  """Per layer: only the named tensors are kept (nothing untagged, never the MLP's
  wide gate/up); the LoRA path tags the same tensors."""
  cfg = tiny_config(family)
  for lora in (None, random_adapters(cfg)):
    assert named(saved_residuals(cfg, policy, lora)) == sorted(names)


def test_offloaded_policy_moves_qkv_to_host_and_keeps_nothing_on_device():
  cfg = tiny_config("gemma3")  # heads 4, kv heads 2, head_dim 8
  residuals = saved_residuals(cfg, "save_qkv_offloaded")
  assert sorted((m, s) for _, m, s, _ in residuals) == [
      ("<host>", (1, 16, 2, 8)), ("<host>", (1, 16, 2, 8)), ("<host>", (1, 16, 4, 8))]
  assert device_bytes(residuals) == 0
  assert remat.get("save_qkv_offloaded").offloaded == (remat.QUERY, remat.KEY, remat.VALUE)


def test_policies_are_ordered_from_most_to_least_device_memory():
  """The table's order is its memory order (per layer, Gemma 3), and no remat keeps
  the wide MLP activations that every named policy drops."""
  cfg = tiny_config("gemma3")
  sizes = {p: device_bytes(saved_residuals(cfg, p)) for p in remat.POLICIES}
  order = [p for p in remat.POLICIES if p != "save_qkv_offloaded"]
  assert [sizes[p] for p in order] == sorted((sizes[p] for p in order), reverse=True)
  assert len(set(sizes[p] for p in order)) == len(order)  # strictly decreasing
  assert sizes["save_qkv_offloaded"] == sizes["full"] == 0
  wide = [r for r in saved_residuals(cfg, "none") if r[2][-1] == cfg.intermediate_size]
  assert len(wide) >= 2


def test_unknown_policy_names_the_valid_ones():
  assert REMAT_POLICIES == tuple(remat.POLICIES)
  with pytest.raises(ValueError, match=r"remat_policy='minimal'; use one of \('none', "):
    remat.get("minimal")
  with pytest.raises(ValueError, match=r"save_qkv_offloaded"):
    tiny_config("llama", remat_policy="save_qvk")
  assert remat.apply(len, "none") is len
