"""Attention masks and backends: dense reference, jax.nn.dot_product_attention, splash (interpret)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectrax.models.attention import (attention_mask, dense_attention, sdpa_attention,
                                       splash_attention)
from spectrax.models.config import GLOBAL_WINDOW


def packed_batch(length=128):
  """Row 0: episodes of 50 and 70 tokens then 8 padding; row 1: one episode."""
  seg = np.zeros((2, length), np.int32)
  seg[0, :50], seg[0, 50:120], seg[1, :] = 1, 2, 1
  pos = np.zeros_like(seg)
  for b in range(2):
    for s in set(seg[b].tolist()) - {0}:
      idx = np.where(seg[b] == s)[0]
      pos[b, idx] = np.arange(len(idx))
  return jnp.asarray(seg), jnp.asarray(pos)


def qkv(length=128, heads=4, kv_heads=2, head_dim=32, seed=0):
  rng = np.random.RandomState(seed)
  shape = lambda n: (2, length, n, head_dim)  # noqa: E731
  return tuple(jnp.asarray(rng.randn(*shape(n)).astype(np.float32)) for n in (heads, kv_heads, kv_heads))


def test_mask_exact_small_example():
  seg = jnp.array([[1, 1, 1, 2, 2, 0]])
  pos = jnp.array([[0, 1, 2, 0, 1, 0]])
  want = np.array([
      [1, 0, 0, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [0, 1, 1, 0, 0, 0],  # window 2: position 2 no longer sees position 0
      [0, 0, 0, 1, 0, 0],  # new segment: nothing from segment 1
      [0, 0, 0, 1, 1, 0],
      [0, 0, 0, 0, 0, 0],  # padding attends nowhere
  ], bool)
  np.testing.assert_array_equal(np.asarray(attention_mask(seg, pos, 2))[0], want)
  full = np.asarray(attention_mask(seg, pos, GLOBAL_WINDOW))[0]
  assert full[2, 0] and not full[3, 2]


def reference_attention(q, k, v, seg, pos, window, scale):
  """Per-query numpy loop, written independently of the vectorised code."""
  q, k, v, seg, pos = map(np.asarray, (q, k, v, seg, pos))
  b, t, n, h = q.shape
  rep = n // k.shape[2]
  out = np.zeros_like(q)
  for bi in range(b):
    for i in range(t):
      if seg[bi, i] == 0:
        continue
      keys = [j for j in range(i + 1) if seg[bi, j] == seg[bi, i] and pos[bi, i] - pos[bi, j] < window]
      for head in range(n):
        logits = np.array([q[bi, i, head] @ k[bi, j, head // rep] for j in keys]) * scale
        p = np.exp(logits - logits.max())
        p /= p.sum()
        out[bi, i, head] = sum(pj * v[bi, j, head // rep] for pj, j in zip(p, keys))
  return out


@pytest.mark.parametrize("window", [GLOBAL_WINDOW, 16])
def test_dense_matches_loop_reference(window):
  seg, pos = packed_batch(length=40)
  seg = seg.at[0, 30:].set(0)
  q, k, v = qkv(length=40)
  got = np.asarray(dense_attention(q, k, v, attention_mask(seg, pos, window), 0.3))
  want = reference_attention(q, k, v, seg, pos, window, 0.3)
  valid = np.asarray(seg) != 0
  np.testing.assert_allclose(got[valid], want[valid], atol=2e-5)
  assert np.isfinite(got).all()


@pytest.mark.parametrize("window", [GLOBAL_WINDOW, 16])
def test_xla_dot_product_attention_matches_dense(window):
  seg, pos = packed_batch()
  q, k, v = qkv()
  mask = attention_mask(seg, pos, window)
  want = np.asarray(dense_attention(q, k, v, mask, 0.3))
  got = np.asarray(sdpa_attention(q, k, v, mask, 0.3, "xla"))
  valid = np.asarray(seg) != 0
  np.testing.assert_allclose(got[valid], want[valid], atol=1e-5)


# (num_heads, num_kv_heads): query heads per kv head 2 and 4, and multi-query.
GROUPS = [(4, 2), (8, 2), (4, 1)]
GROUP_IDS = ["gqa2", "gqa4", "mqa"]


def valid_rows_weight(seg):
  """Cotangent weights: real tokens only (backends may differ on padding rows, never used)."""
  return (seg != 0)[..., None, None].astype(jnp.float32)


def output_and_grads(fn, q, k, v, weight):
  """``fn(q, k, v)`` and the gradients of ``sum(fn(q, k, v)**2 * weight)`` w.r.t. q, k, v."""
  out, vjp = jax.vjp(fn, q, k, v)
  return out, vjp(2 * out * weight)


@pytest.mark.parametrize("heads,kv_heads,local", [(4, 2, True), (8, 2, True), (4, 1, True),
                                                  (4, 2, False)],
                         ids=["gqa2-local", "gqa4-local", "mqa-local", "gqa2-global"])
def test_splash_gqa_matches_dense(heads, kv_heads, local):
  """Forward and dQ/dK/dV of the multi-query splash kernel (interpret mode) against dense,
  float32, on packed rows (two episodes then padding; one full episode) with and without
  a 16-token window. Tolerances: 1e-5 forward, 1e-4 gradients (absolute; values are O(1))."""
  seg, pos = packed_batch()
  q, k, v = qkv(heads=heads, kv_heads=kv_heads)
  window = 16 if local else GLOBAL_WINDOW
  weight = valid_rows_weight(seg)
  dense = lambda q, k, v: dense_attention(q, k, v, attention_mask(seg, pos, window), 0.3)  # noqa: E731
  splash = lambda q, k, v: splash_attention(q, k, v, seg, jnp.asarray(local), 0.3, 16, True)  # noqa: E731
  want, want_grads = output_and_grads(dense, q, k, v, weight)
  got, got_grads = output_and_grads(splash, q, k, v, weight)
  valid = np.asarray(seg) != 0  # splash lets padding attend padding; those rows are unused
  np.testing.assert_allclose(np.asarray(got)[valid], np.asarray(want)[valid], atol=1e-5)
  for g, w in zip(got_grads, want_grads):
    assert g.shape == w.shape
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-4)


def pallas_calls(jaxpr):
  """Every ``pallas_call`` in a jaxpr and its sub-jaxprs: (operand shapes, result shapes)."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "pallas_call":
      found.append(([tuple(x.aval.shape) for x in eqn.invars],
                    [tuple(x.aval.shape) for x in eqn.outvars]))
    for param in eqn.params.values():
      for sub in param if isinstance(param, (list, tuple)) else [param]:
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          found += pallas_calls(sub.jaxpr)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          found += pallas_calls(sub)
  return found


def test_splash_reads_kv_heads_without_repeating_them():
  """Every splash kernel (forward, dQ, dK/dV; local and global) takes keys and values with
  num_kv_heads heads, and dK/dV come out per kv head: no copy of K/V at num_heads."""
  b, t, n, kv, h = 2, 128, 8, 2, 32
  seg, _ = packed_batch()
  q, k, v = qkv(heads=n, kv_heads=kv, head_dim=h)

  def loss(q, k, v):
    return jnp.sum(splash_attention(q, k, v, seg, jnp.asarray(True), 0.3, 16, True) ** 2)

  calls = pallas_calls(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v).jaxpr)
  assert len(calls) == 6  # forward, dQ and dK/dV, for each of the two windows
  for operands, results in calls:
    per_token = [s for s in operands + results if s[-2:] == (t, h)]
    assert (b, kv, t, h) in per_token  # keys / values / their gradients, per kv head
    assert all(s[:2] == (b, kv) for s in per_token), per_token  # queries grouped per kv head
    assert not any(n in s[:-2] for s in per_token), per_token


def test_splash_rejects_unaligned_length():
  seg, pos = packed_batch(length=40)
  q, k, v = qkv(length=40)
  with pytest.raises(ValueError, match="length % 128 == 0"):
    splash_attention(q, k, v, seg, jnp.asarray(False), 0.3, None, interpret=True)
