"""KV-cache decoding: prefill left-padded prompts, then extend them a token at a time.

The cache holds every layer's keys and values, ``[layers, batch, max_len,
kv_heads, head_dim]`` in the compute dtype, so the layer ``lax.scan`` consumes
and returns it as scanned data (as ``Transformer.__call__`` scans weights).

Layout (left padding): row r's prompt fills slots ``[start[r], prompt_len)``
and the token generated at step t goes to slot ``prompt_len + t`` in every
row, so one ``dynamic_update_slice`` writes the whole batch and the last
prompt token sits at the same slot in every row. A slot's position is
``slot - start[r]``: positions continue per row from its own prompt length.
A query at slot c sees key slot s iff ``start[r] <= s <= c`` and
``c - s < window``; within a row slot distance is position distance, so local
(sliding-window) layers see exactly the keys of the full forward.

Every layer keeps a full-length cache (a ring buffer for local layers would
save memory but breaks the uniform shapes the layer scan needs). Attention
here is always the dense einsum (``attention.dense_attention``) whatever
``attention_backend`` says: a prefill of P tokens materialises
``[batch, heads, P, max_len]`` float32 logits per layer.

Usage::

    cache = init_cache(model.config, batch, max_len, start)
    hidden, cache = extend(model, prompts, cache, slot=0)        # prefill
    hidden, cache = extend(model, next_tokens, cache, slot=P)    # one step
    logits = model.logits_from_hidden(hidden[:, -1:])
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from spectrax.parallel import sharding
from spectrax.models.attention import dense_attention
from spectrax.models.config import ModelConfig

_CACHE_AXES = ("batch", "length", "kv_heads", "head_dim")


class KVCache(NamedTuple):
  """Keys/values of every layer and where each row's tokens start.

  Attributes:
    k, v: ``[layers, batch, max_len, kv_heads, head_dim]`` in the compute dtype.
    start: ``[batch]`` int32, the first non-padding slot of each row.
  """
  k: jax.Array
  v: jax.Array
  start: jax.Array


def init_cache(cfg: ModelConfig, batch: int, max_len: int, start: jax.Array) -> KVCache:
  """An empty cache for ``batch`` rows of ``max_len`` slots; ``start``: ``[batch]`` int32."""
  shape = (cfg.num_layers, batch, max_len, cfg.num_kv_heads, cfg.head_dim)
  zeros = jnp.zeros(shape, jnp.dtype(cfg.dtype))
  return KVCache(zeros, zeros, jnp.asarray(start, jnp.int32))


def extend(model, tokens: jax.Array, cache: KVCache, slot: jax.Array | int
           ) -> tuple[jax.Array, KVCache]:
  """Runs ``tokens`` at slots ``[slot, slot + length)`` and stores their keys/values.

  Args:
    model: a ``spectrax.models.Transformer``.
    tokens: ``[batch, length]`` int32 (the left-padded prompts at ``slot=0``,
      or one new token per row).
    cache: the cache; ``slot + length`` must not exceed its ``max_len``.
    slot: scalar int32 (may be traced), the slot of ``tokens[:, 0]``.

  Returns:
    ``([batch, length, hidden_size]`` final hidden states in ``cfg.dtype``,
    the updated cache).
  """
  cfg = model.config
  length, max_len = tokens.shape[1], cache.k.shape[2]
  q_slots = slot + jnp.arange(length, dtype=jnp.int32)  # [length]
  k_slots = jnp.arange(max_len, dtype=jnp.int32)  # [max_len]
  positions = q_slots[None, :] - cache.start[:, None]  # [batch, length]
  # [batch, length, max_len]: causal and not padding; the window is per layer.
  visible = (k_slots[None, None, :] <= q_slots[None, :, None]) & (
      k_slots[None, None, :] >= cache.start[:, None, None])
  distance = q_slots[:, None] - k_slots[None, :]  # [length, max_len]

  graphdef, state = nnx.split(model.layers)

  def body(x, per_layer):
    layer_state, k_cache, v_cache, window, inv_freq = per_layer
    layer = nnx.merge(graphdef, layer_state)
    stored = []

    def attend(h):
      attn = layer.attn
      q, k, v = attn.project(h, positions, inv_freq)
      k_all = sharding.constrain(
          jax.lax.dynamic_update_slice_in_dim(k_cache, k.astype(k_cache.dtype), slot, axis=1),
          _CACHE_AXES)
      v_all = sharding.constrain(
          jax.lax.dynamic_update_slice_in_dim(v_cache, v.astype(v_cache.dtype), slot, axis=1),
          _CACHE_AXES)
      stored.extend((k_all, v_all))
      mask = visible & (distance < window)[None]
      out = dense_attention(q, k_all.astype(q.dtype), v_all.astype(q.dtype), mask, cfg.attn_scale)
      return attn.output(out)

    x = layer.residual_block(x, attend)
    return x, tuple(stored)

  per_layer = (state, cache.k, cache.v, jnp.asarray(cfg.window_array()),
               jnp.asarray(cfg.inv_freq_array()))
  x, (k, v) = jax.lax.scan(body, model.embed_tokens(tokens), per_layer)
  return model.final_norm(x), KVCache(k, v, cache.start)
