"""Self-attention: packed-sequence masks, the attention module and its backends.

Mask semantics (shared by every backend): query i may attend key j iff
``j <= i`` (causal by index) and ``segment_ids[i] == segment_ids[j] != 0``
(same packed episode, never padding) and ``positions[i] - positions[j] <
window`` (the sliding window of local layers; global layers pass
``GLOBAL_WINDOW``). Positions restart at 0 in each segment, so inside a
segment the window by position equals the window by index, as in transformers.

Shared prefixes (scoring, ``spectrax/scorer.py``): with ``prefix_segment_ids``
given, query i may also attend key j (still ``j <= i`` and within the window)
when ``segment_ids[j] == prefix_segment_ids[i] != 0``. A prompt placed once in
a row with its options after it (each option its own segment pointing at the
prompt's segment, positions continuing from the prompt's end) then scores each
option exactly as ``prompt + option`` alone. Splash attention cannot express
this mask; with ``prefix_segment_ids`` it falls back to ``xla``.

Backends (``ModelConfig.attention_backend``):
  * ``dense``: einsum + float32 softmax in XLA. The reference; runs anywhere.
  * ``xla`` / ``cudnn``: ``jax.nn.dot_product_attention`` with a boolean
    mask (``cudnn`` is the fused flash kernel on NVIDIA GPUs, bf16/fp16 only).
  * ``splash``: the Pallas TPU splash-attention kernel with segment ids; the
    window is static per kernel, so a local and a global kernel are built and
    the per-layer flag picks one with ``lax.cond``. On CPU it runs in
    interpret mode (slow; for tests).
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from spectrax.parallel import sharding
from spectrax.models import remat
from spectrax.models.config import GLOBAL_WINDOW, ModelConfig
from spectrax.models.layers import RMSNorm, apply_rope, param, plain_project

# Finite, so that a fully masked row (a padding token) gives a uniform softmax
# rather than NaN; far below any real logit even after soft-capping.
_MASK_VALUE = -0.7 * float(jnp.finfo(jnp.float32).max)


def attention_mask(segment_ids: jax.Array, positions: jax.Array, window: jax.Array | int,
                   prefix_segment_ids: jax.Array | None = None) -> jax.Array:
  """Boolean mask ``[batch, length, length]`` (query, key) for packed rows.

  Args:
    segment_ids: ``[batch, length]`` int32, 0 = padding.
    positions: ``[batch, length]`` int32.
    window: scalar int (may be traced): keys with ``q_pos - k_pos >= window``
      are masked.
    prefix_segment_ids: optional ``[batch, length]`` int32: the segment each
      query may also attend (a shared prompt), 0 = none.
  """
  length = segment_ids.shape[1]
  idx = jnp.arange(length)
  causal = idx[:, None] >= idx[None, :]
  same = (segment_ids[:, :, None] == segment_ids[:, None, :]) & (segment_ids[:, :, None] != 0)
  if prefix_segment_ids is not None:
    same |= ((prefix_segment_ids[:, :, None] == segment_ids[:, None, :])
             & (prefix_segment_ids[:, :, None] != 0))
  near = (positions[:, :, None] - positions[:, None, :]) < window
  return causal[None] & same & near


def dense_attention(q, k, v, mask, scale: float):
  """Reference attention with grouped KV heads.

  Args:
    q: ``[batch, length, heads, head_dim]``.
    k, v: ``[batch, length, kv_heads, head_dim]``.
    mask: ``[batch, length, length]`` bool.
    scale: multiplies the logits.

  Returns:
    ``[batch, length, heads, head_dim]`` in ``q.dtype``; softmax in float32.
  """
  b, t, n, h = q.shape
  kv = k.shape[2]
  qg = q.reshape(b, t, kv, n // kv, h)
  logits = jnp.einsum("btkgh,bskh->bkgts", qg, k, preferred_element_type=jnp.float32) * scale
  logits = jnp.where(mask[:, None, None], logits, _MASK_VALUE)
  probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
  out = jnp.einsum("bkgts,bskh->btkgh", probs, v)
  return out.reshape(b, t, n, h)


def sdpa_attention(q, k, v, mask, scale: float, implementation: str):
  """``jax.nn.dot_product_attention`` (``implementation`` = ``xla`` or ``cudnn``); same contract as dense."""
  # is_causal lets cuDNN skip the upper triangle; the mask adds segments and window.
  return jax.nn.dot_product_attention(q, k, v, mask=mask[:, None], scale=scale, is_causal=True,
                                      implementation=implementation)


@functools.lru_cache(maxsize=None)
def _splash_kernel(length: int, heads: int, window: int | None, interpret: bool):
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as sk
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as sm
  if window is None:
    one = sm.CausalMask((length, length))
  else:  # keys at q - window < k <= q: `window - 1` to the left
    one = sm.LocalMask((length, length), window_size=(window - 1, 0), offset=0)
  block = min(512, length)
  sizes = sk.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block, block_q_dkv=block,
                        block_kv_dkv=block, block_kv_dkv_compute=block, block_q_dq=block,
                        block_kv_dq=block)
  return sk.make_splash_mha(sm.MultiHeadMask([one] * heads), block_sizes=sizes, head_shards=1,
                            q_seq_shards=1, interpret=interpret)


def splash_attention(q, k, v, segment_ids, is_local, scale: float, local_window: int | None,
                     interpret: bool):
  """Pallas splash attention; same contract as dense with the mask given by segment ids.

  ``is_local`` (traced bool) selects the sliding-window kernel. Under a mesh
  the caller must shard batch/heads with ``shard_map`` (see ``Attention``).
  """
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as sk
  b, t, n, h = q.shape
  if t % 128:
    raise ValueError(f"splash attention needs length % 128 == 0, got length {t}; pad the batch "
                     "or use attention_backend='dense'")
  rep = n // k.shape[2]
  # [b, n, t, h] layout; GQA by repeating kv heads (the kernel reads them per head).
  qt = jnp.swapaxes(q * jnp.asarray(scale, q.dtype), 1, 2)
  kt = jnp.swapaxes(jnp.repeat(k, rep, axis=2), 1, 2)
  vt = jnp.swapaxes(jnp.repeat(v, rep, axis=2), 1, 2)
  seg = sk.SegmentIds(q=segment_ids, kv=segment_ids)

  def run(kernel):
    return jax.vmap(kernel)(qt, kt, vt, segment_ids=seg)

  global_kernel = _splash_kernel(t, n, None, interpret)
  if local_window is None:
    out = run(global_kernel)
  else:
    local_kernel = _splash_kernel(t, n, local_window, interpret)
    out = jax.lax.cond(is_local, lambda: run(local_kernel), lambda: run(global_kernel))
  return jnp.swapaxes(out, 1, 2)


class Attention(nnx.Module):
  """Grouped-query self-attention with optional QK-norm and per-layer rope/window."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    d, n, kv, h = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    init, pdt = jax.nn.initializers.normal(0.02), cfg.param_dtype
    self.q = param(rngs, init, (d, n, h), ("embed", "heads", "head_dim"), pdt)
    self.k = param(rngs, init, (d, kv, h), ("embed", "kv_heads", "head_dim"), pdt)
    self.v = param(rngs, init, (d, kv, h), ("embed", "kv_heads", "head_dim"), pdt)
    self.o = param(rngs, init, (n, h, d), ("heads", "head_dim", "embed"), pdt)
    if cfg.qk_norm:
      norm = functools.partial(RMSNorm, h, "head_dim", eps=cfg.norm_eps, plus_one=cfg.norm_plus_one,
                               param_dtype=pdt, rngs=rngs)
      self.q_norm, self.k_norm = norm(), norm()
    self.cfg = cfg

  def __call__(self, x, positions, segment_ids, window, inv_freq, prefix_segment_ids=None,
               lora=None):
    """x: ``[batch, length, embed]``; window: scalar int32; inv_freq: ``[head_dim // 2]``.

    ``prefix_segment_ids`` (optional ``[batch, length]`` int32): see the module
    docstring. ``lora``: this layer's adapters (``spectrax.models.lora.LayerLora``)
    or None. Returns ``[batch, length, embed]`` in ``x.dtype``.
    """
    cfg = self.cfg
    q, k, v = self.project(x, positions, inv_freq, lora)
    backend = cfg.attention_backend
    if backend == "splash" and prefix_segment_ids is not None:
      logging.info("splash attention cannot mask shared prefixes; using the xla backend here")
      backend = "xla"
    if backend == "splash":
      windows = {w for w in cfg.layer_windows if w is not None}
      local = max(windows) if windows else None
      fn = functools.partial(splash_attention, scale=cfg.attn_scale, local_window=local,
                             interpret=jax.default_backend() != "tpu")
      out = sharding.shard_batch_heads(fn, q, k, v, segment_ids, window < GLOBAL_WINDOW)
    else:
      mask = attention_mask(segment_ids, positions, window, prefix_segment_ids)
      if backend == "dense":
        out = dense_attention(q, k, v, mask, cfg.attn_scale)
      else:
        out = sdpa_attention(q, k, v, mask, cfg.attn_scale, backend)
    return self.output(out, lora)

  def project(self, x, positions, inv_freq, lora=None):
    """Projects ``x`` ``[batch, length, embed]`` to queries, keys and values.

    Returns ``q`` ``[batch, length, heads, head_dim]`` and ``k``, ``v``
    ``[batch, length, kv_heads, head_dim]``, QK-normed and rotated, in
    ``x.dtype``. Shared with the KV-cache decoder (``decode.py``).
    """
    dt = x.dtype
    proj = lora.project if lora is not None else plain_project
    # Tagged for the remat policies (spectrax/models/remat.py) before QK-norm
    # and rope: redoing those is cheap, and the norm's backward needs its input.
    q = checkpoint_name(proj("q", x, self.q[...].astype(dt)), remat.QUERY)
    k = checkpoint_name(proj("k", x, self.k[...].astype(dt)), remat.KEY)
    v = checkpoint_name(proj("v", x, self.v[...].astype(dt)), remat.VALUE)
    if self.cfg.qk_norm:
      q, k = self.q_norm(q), self.k_norm(k)
    q = sharding.constrain(apply_rope(q, positions, inv_freq), ("batch", "length", "heads", "head_dim"))
    k = sharding.constrain(apply_rope(k, positions, inv_freq), ("batch", "length", "kv_heads", "head_dim"))
    v = sharding.constrain(v, ("batch", "length", "kv_heads", "head_dim"))
    return q, k, v

  def output(self, out, lora=None):
    """The output projection: ``[batch, length, heads, head_dim]`` -> ``[batch, length, embed]``."""
    out = checkpoint_name(sharding.constrain(out, ("batch", "length", "heads", "head_dim")),
                          remat.CONTEXT)
    proj = lora.project if lora is not None else plain_project
    return checkpoint_name(proj("o", out, self.o[...].astype(out.dtype), 2), remat.ATTENTION_OUT)
