"""Attention masks and backends: dense reference, jax.nn.dot_product_attention, splash
(interpret mode), and the cuDNN packed path up to its kernel call."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from spectrax.models import (ModelConfig, abstract_model, attention, init_model,
                             param_shardings, reconfigure)
from spectrax.models.attention import (AttentionBackendError, PackedSegments, attention_mask,
                                       cudnn_attention, cudnn_layout, dense_attention,
                                       max_segments_for, packed_segments, sdpa_attention,
                                       splash_attention)
from spectrax.models.config import GLOBAL_WINDOW
from spectrax.parallel import sharding


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


def test_kernels_need_heads_and_kv_heads_split_alike():
  """Under shard_map a device's query heads must meet their own kv heads."""
  if jax.device_count() < 2:
    pytest.skip("needs 2 devices: run under tests/conftest.py")
  mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 2})
  rules = tuple((k, None) if k == "kv_heads" else (k, r) for k, r in sharding.DEFAULT_RULES)
  seg, _ = packed_batch()
  q, k, v = qkv()
  with sharding.axis_rules(mesh, rules):
    with pytest.raises(ValueError, match=r"heads -> tensor and kv_heads -> None"):
      sharding.shard_batch_heads(lambda *a: a[0], q, k, v, seg, jnp.asarray(False))


# -- cuDNN: everything but the kernel call runs here -------------------------------------------


@pytest.mark.parametrize("head_dim,dtype,capability,want", [
    (128, jnp.bfloat16, "9.0", "packed"),     # H100 / H200
    (256, jnp.bfloat16, "9.0", "packed"),     # Gemma 3 on Hopper
    (256, jnp.float16, "10.0", "packed"),     # Blackwell
    (128, jnp.bfloat16, "8.0", "masked"),     # A100: no packed layout
    (64, jnp.float16, "8.9", "masked"),       # L4 / Ada
    (256, jnp.bfloat16, "8.0", r"multiples of 8 up to 128, but this model's head_dim is 256"),
    (100, jnp.bfloat16, "9.0", r"multiples of 8 up to 256, but this model's head_dim is 100"),
    (128, jnp.float32, "9.0", r"computes in float32; set model.dtype='bfloat16'"),
    (128, jnp.bfloat16, "7.0", r"compute capability 8.0 \(Ampere\) or newer; gpu0 has 7.0"),
    (128, jnp.bfloat16, None, r"needs an NVIDIA GPU with cuDNN, but this process runs on gpu0"),
])
def test_cudnn_layout_rules(head_dim, dtype, capability, want):
  if want in ("packed", "masked"):
    assert cudnn_layout(head_dim, dtype, capability, "gpu0") == want
    return
  with pytest.raises(AttentionBackendError, match=want) as error:
    cudnn_layout(head_dim, dtype, capability, "gpu0")
  assert "attention_backend to 'xla'" in str(error.value)


def runs_of(row):
  """(start, length) of each maximal run of one nonzero id, by a plain loop."""
  runs, i = [], 0
  while i < len(row):
    j = i
    while j < len(row) and row[j] == row[i]:
      j += 1
    if row[i] != 0:
      runs.append((i, j - i))
    i = j
  return runs


def random_packed_rows(rng, rows, length, max_episode):
  """Rows of consecutive episodes (ids 1, 2, ...), with padding between and after some."""
  seg = np.zeros((rows, length), np.int32)
  pos = np.zeros((rows, length), np.int32)
  for r in range(rows):
    at, s = int(rng.integers(0, 3)), 1
    while at < length:
      n = min(int(rng.integers(1, max_episode + 1)), length - at)
      seg[r, at:at + n], pos[r, at:at + n] = s, np.arange(n)
      at, s = at + n + int(rng.integers(0, 3) == 0), s + 1
    if r == rows - 1:
      seg[r], pos[r] = 0, 0  # a drained shard's empty row
  return seg, pos


def test_packed_segments_are_the_runs():
  rng = np.random.default_rng(0)
  seg, _ = random_packed_rows(rng, 6, 64, 24)
  seg[0] = np.repeat(np.arange(1, 17), 4)  # 16 episodes: more than m
  seg[1, 40:] = seg[1, :24]  # a segment id that comes back: two runs of one segment
  m = 8
  got = packed_segments(jnp.asarray(seg), m)
  for r, row in enumerate(seg):
    runs = runs_of(row)
    want_offsets = [s for s, _ in runs[:m]] + [-1] * (m + 1 - min(m, len(runs)))
    want_lengths = [n for _, n in runs[:m]] + [-1] * (m - min(m, len(runs)))
    np.testing.assert_array_equal(np.asarray(got.offsets[r]), want_offsets)
    np.testing.assert_array_equal(np.asarray(got.lengths[r]), want_lengths)
    fits = len(runs) <= m and len(runs) == len(set(row.tolist()) - {0})
    assert bool(got.valid[r]) == fits, (r, len(runs))
  assert not got.valid[0] and not got.valid[1]  # too many episodes; a returning segment
  assert got.valid[2:].all()  # fitting rows, the empty row included


def mask_from_packed(segments: PackedSegments, length: int, window: int) -> np.ndarray:
  """The mask cuDNN's packed layout applies, built from offsets and lengths alone:
  same episode, causal, keys in (i - window, i]."""
  offsets, lengths = np.asarray(segments.offsets), np.asarray(segments.lengths)
  b = offsets.shape[0]
  slot = np.full((b, length), -1)
  for r in range(b):
    for m, n in enumerate(lengths[r]):
      if n >= 0:
        slot[r, offsets[r, m]:offsets[r, m] + n] = m
  i = np.arange(length)
  return ((slot[:, :, None] == slot[:, None, :]) & (slot[:, :, None] >= 0)
          & (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < window))


@pytest.mark.parametrize("window", [GLOBAL_WINDOW, 1, 5, 16])
def test_packed_segments_give_the_module_mask(window):
  """Offsets + lengths + cuDNN's causal sliding window == attention_mask, exactly."""
  seg, pos = random_packed_rows(np.random.default_rng(1), 6, 96, 20)
  segments = packed_segments(jnp.asarray(seg), max_segments_for(96))
  assert bool(jnp.all(segments.valid))
  want = np.asarray(attention_mask(jnp.asarray(seg), jnp.asarray(pos), window))
  np.testing.assert_array_equal(mask_from_packed(segments, 96, window), want)


@jax.custom_vjp
def nan_gradient_outside(x, covered):
  return x


def _nan_gradient_outside_fwd(x, covered):
  return x, covered


def _nan_gradient_outside_bwd(covered, g):
  return jnp.where(covered[:, :, None, None], g, jnp.nan), None


nan_gradient_outside.defvjp(_nan_gradient_outside_fwd, _nan_gradient_outside_bwd)


def packed_layout_reference(q, k, v, segments, scale, window, seen=None):
  """cuDNN's packed layout as JAX documents it (fused_attention_stablehlo.dot_product_attention,
  mask PADDING_CAUSAL, sliding_window_length): episode m of row b is the tokens
  [offsets[b, m], offsets[b, m] + lengths[b, m]), causal within it, keys in (i - window, i].
  Tokens outside every episode come out NaN with NaN gradients (cuDNN leaves them undefined),
  so the caller must mask them. Float32 einsums; grouped kv heads."""
  if seen is not None:
    seen.append((k.shape, window))
  b, t, n, h = q.shape
  kv = k.shape[2]
  idx = jnp.arange(t)
  slot = jnp.full((b, t), -1)
  for m in range(segments.lengths.shape[1]):
    start, count = segments.offsets[:, m:m + 1], segments.lengths[:, m:m + 1]
    slot = jnp.where((count >= 0) & (idx >= start) & (idx < start + count), m, slot)
  covered = slot >= 0
  q, k, v = (nan_gradient_outside(x, covered) for x in (q, k, v))
  near = (idx[:, None] - idx[None, :]) < (t if window is None else window)
  mask = ((slot[:, :, None] == slot[:, None, :]) & covered[:, :, None]
          & (idx[:, None] >= idx[None, :]) & near)
  qg = q.astype(jnp.float32).reshape(b, t, kv, n // kv, h)
  logits = jnp.einsum("btkgh,bskh->bkgts", qg, k.astype(jnp.float32)) * scale
  probs = jax.nn.softmax(jnp.where(mask[:, None, None], logits, -1e30), axis=-1)
  out = jnp.einsum("bkgts,bskh->btkgh", probs, v.astype(jnp.float32)).reshape(b, t, n, h)
  return jnp.where(covered[:, :, None, None], out, jnp.nan).astype(q.dtype)


@pytest.mark.parametrize("kv_stride_fixed", [False, True], ids=["jax-0.10", "fixed-jax"])
@pytest.mark.parametrize("heads,kv_heads,local", [(4, 2, True), (8, 2, False), (4, 1, True)],
                         ids=["gqa2-local", "gqa4-global", "mqa-local"])
def test_cudnn_attention_matches_dense(monkeypatch, heads, kv_heads, local, kv_stride_fixed):
  """The cuDNN path with the kernel replaced by the reference of its documented contract:
  the offsets, lengths, window, kv-head handling and padding guards it builds reproduce
  dense attention, forward and gradients (float32; 1e-5 forward, 1e-4 gradients), and
  padding comes out finite (0) although the kernel leaves it NaN."""
  seen = []
  monkeypatch.setattr(attention, "_cudnn_packed_kernel",
                      functools.partial(packed_layout_reference, seen=seen))
  monkeypatch.setattr(attention, "_packed_offsets_stride_kv_heads", lambda: kv_stride_fixed)
  seg, pos = packed_batch()
  q, k, v = qkv(heads=heads, kv_heads=kv_heads)
  window = 16 if local else GLOBAL_WINDOW
  weight = valid_rows_weight(seg)
  dense = lambda q, k, v: dense_attention(q, k, v, attention_mask(seg, pos, window), 0.3)  # noqa: E731
  cudnn = lambda q, k, v: cudnn_attention(q, k, v, seg, jnp.asarray(local), 0.3, 16, 4)  # noqa: E731
  want, want_grads = output_and_grads(dense, q, k, v, weight)
  got, got_grads = output_and_grads(cudnn, q, k, v, jnp.ones_like(weight))
  valid = np.asarray(seg) != 0
  np.testing.assert_allclose(np.asarray(got)[valid], np.asarray(want)[valid], atol=1e-5)
  np.testing.assert_array_equal(np.asarray(got)[~valid], 0)
  for g, w in zip(got_grads, want_grads):
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-4)
  kv_seen = kv_heads if kv_stride_fixed or heads == kv_heads else heads
  assert {shape[2] for shape, _ in seen} == {kv_seen}
  assert {w for _, w in seen} == {None, 16}  # both kernels built; cond picks one


def test_cudnn_attention_poisons_rows_it_cannot_express(monkeypatch):
  """More episodes than max_segments: that row comes out NaN, the others exact."""
  monkeypatch.setattr(attention, "_cudnn_packed_kernel", packed_layout_reference)
  seg, pos = packed_batch()  # row 0: two episodes, row 1: one
  q, k, v = qkv()
  got = np.asarray(cudnn_attention(q, k, v, seg, jnp.asarray(False), 0.3, None, 1))
  want = np.asarray(dense_attention(q, k, v, attention_mask(seg, pos, GLOBAL_WINDOW), 0.3))
  assert np.isnan(got[0]).all()
  np.testing.assert_allclose(got[1], want[1], atol=1e-5)


def test_packed_offsets_probe_sees_the_gqa_stride_bug_of_this_jax():
  """JAX 0.10.2 strides packed kv offsets by the query head count (jax-ml/jax #39521)."""
  if not jax.__version__.startswith("0.10."):
    pytest.skip(f"the bug's presence is known for JAX 0.10.x; this is {jax.__version__}")
  attention._packed_offsets_stride_kv_heads.cache_clear()
  assert attention._packed_offsets_stride_kv_heads() is False


def test_cudnn_kernel_call_traces_against_installed_jax(monkeypatch):
  """The packed-layout call, forward and backward, passes the installed JAX's argument checks
  and binds cuDNN's primitives with the mask, window and layout we mean (traced, not run:
  only the cuDNN version and compute-capability probes are faked)."""
  from jax._src.cudnn import fused_attention_stablehlo as fa
  monkeypatch.setattr(fa, "check_cudnn_version", lambda: 90800)
  monkeypatch.setattr(fa, "check_compute_capability", lambda capability: True)
  monkeypatch.setattr(fa, "is_cuda_compute_capability_equal", lambda capability: False)
  seg, _ = packed_batch()
  q, k, v = (x.astype(jnp.bfloat16) for x in qkv(heads=4, kv_heads=4))
  segments = packed_segments(seg, 4)

  def loss(q, k, v):
    out = attention._cudnn_packed_kernel(q, k, v, segments, 0.3, 16)
    return jnp.sum(out.astype(jnp.float32))

  jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v).jaxpr
  names = {}

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      if "dot_product_attention" in eqn.primitive.name:
        names[eqn.primitive.name] = eqn
      for param in eqn.params.values():
        for sub in param if isinstance(param, (list, tuple)) else [param]:
          if isinstance(sub, jax.extend.core.ClosedJaxpr):
            walk(sub.jaxpr)
          elif isinstance(sub, jax.extend.core.Jaxpr):
            walk(sub)
  walk(jaxpr)
  assert any("fwd" in n for n in names) and any("bwd" in n for n in names), sorted(names)
  for eqn in names.values():
    assert eqn.params["mask_type"] == fa.MaskType.PADDING_CAUSAL
    assert eqn.params["sliding_window_length"] == 16
    assert eqn.params["layout"] == fa.AttentionLayout.BTNH.value
    shapes = [tuple(x.aval.shape) for x in eqn.invars[:8]]
    assert shapes[4:] == [(2, 4), (2, 4), (2, 5), (2, 5)]  # lengths, lengths, offsets, offsets


def tiny_gemma(**overrides):
  """Two layers, local (window 4) then global; 4 query heads on 2 kv heads."""
  return ModelConfig.from_hf(dict(
      model_type="gemma3_text", vocab_size=128, hidden_size=32, intermediate_size=64,
      num_attention_heads=4, num_key_value_heads=2, head_dim=8, num_hidden_layers=2,
      sliding_window=4, layer_types=["sliding_attention", "full_attention"],
      query_pre_attn_scalar=8, max_position_embeddings=256), **overrides)


def sharpened(model, factor=15.0):
  """The model with its 0.02-scale initial weights made O(0.3), so that masks and windows
  visibly matter."""
  graphdef, state = nnx.split(model)
  return nnx.merge(graphdef, jax.jit(lambda s: jax.tree.map(lambda x: x * factor, s))(state))


@pytest.fixture(scope="module")
def gemma_bf16():
  return sharpened(init_model(tiny_gemma(dtype="bfloat16")))


def packed_model_batch():
  """4 rows of 64 tokens: episodes of 30 + 26 then padding; 64; 8 x 7 (the most a 64-token
  row holds, `max_segments_for(64)`, as the data pipeline's default) + 8 padding; empty."""
  seg, pos = np.zeros((4, 64), np.int32), np.zeros((4, 64), np.int32)
  for r, lengths in enumerate([[30, 26], [64], [7] * 8, []]):
    at = 0
    for s, n in enumerate(lengths, 1):
      seg[r, at:at + n], pos[r, at:at + n], at = s, np.arange(n), at + n
  tokens = np.random.default_rng(2).integers(0, 128, (4, 64)).astype(np.int32)
  return jnp.asarray(tokens), jnp.asarray(seg), jnp.asarray(pos)


def test_cudnn_backend_on_cpu_fails_at_first_call_with_the_fix():
  graphdef, state = abstract_model(tiny_gemma(dtype="bfloat16", attention_backend="cudnn"))
  tokens, seg, pos = packed_model_batch()
  with pytest.raises(AttentionBackendError, match=r"needs an NVIDIA GPU.*runs on .*cpu.*'xla'"):
    jax.eval_shape(lambda state: nnx.merge(graphdef, state).logits(tokens, pos, seg), state)


def test_cudnn_model_matches_dense_under_a_mesh(monkeypatch, gemma_bf16):
  """A Gemma-like model (local/global layers, GQA) on a faked Hopper GPU, batch
  and heads sharded (fsdp 4 x tensor 2 CPU devices): the packed cuDNN path (kernel replaced
  by its reference) gives the dense model's logits on real tokens. bf16 compute on both
  sides: within 2% of the largest logit."""
  if jax.device_count() < 8:
    pytest.skip("needs 8 devices: run under tests/conftest.py")
  monkeypatch.setattr(attention, "_device_facts", lambda: ("9.0", "a faked H100 (gpu)"))
  monkeypatch.setattr(attention, "_cudnn_packed_kernel", packed_layout_reference)
  attention._packed_offsets_stride_kv_heads.cache_clear()  # probe inside the traced scan
  mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 2})
  rules = sharding.DEFAULT_RULES
  dense = gemma_bf16
  cudnn = reconfigure(dense, attention_backend="cudnn")
  tokens, seg, pos = packed_model_batch()

  def logits(model):
    graphdef, state = nnx.split(model)
    state = jax.device_put(state, param_shardings(state, mesh, rules))

    @jax.jit
    def f(state):
      with sharding.axis_rules(mesh, rules):
        return nnx.merge(graphdef, state).logits(tokens, pos, seg)
    return np.asarray(f(state))

  want, got = logits(dense), logits(cudnn)
  valid = np.asarray(seg) != 0
  assert np.isfinite(got).all()
  np.testing.assert_allclose(got[valid], want[valid], atol=0.02 * np.abs(want[valid]).max())
  assert np.abs(got[valid] - want[valid]).max() < 0.1 * np.abs(got[valid] - want[valid][::-1]).max()


def test_cudnn_shared_prefix_takes_the_masked_kernel(monkeypatch, gemma_bf16):
  """Scoring rows (shared prefixes) cannot be packed: cudnn gets the mask, as before."""
  monkeypatch.setattr(attention, "_device_facts", lambda: ("9.0", "a faked H100 (gpu)"))
  implementations = []
  xla = attention.sdpa_attention

  def recorded(q, k, v, mask, scale, implementation):
    implementations.append(implementation)
    return xla(q, k, v, mask, scale, "xla")

  monkeypatch.setattr(attention, "sdpa_attention", recorded)
  model = gemma_bf16
  tokens, seg, pos = packed_model_batch()
  prefix = jnp.where(seg == 2, 1, 0)  # row 0's second episode also sees its first
  want = np.asarray(model(tokens, pos, seg, prefix_segment_ids=prefix))
  got = np.asarray(reconfigure(model, attention_backend="cudnn")(
      tokens, pos, seg, prefix_segment_ids=prefix))
  assert implementations and set(implementations) == {"cudnn"}
  valid = np.asarray(seg) != 0
  np.testing.assert_allclose(got[valid], want[valid], atol=0.02 * np.abs(want[valid]).max())
