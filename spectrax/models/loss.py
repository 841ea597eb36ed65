"""Per-position log-probabilities and cross-entropy without full-vocabulary logits.

Gemma 3's vocabulary has 262k entries: ``[batch, length, vocab]`` float32
logits for 8 x 1024 tokens would take 8.6 GB. ``chunked_token_stats`` scans
over chunks of positions, computing each chunk's logits (float32) and
logsumexp and keeping only per-position results; the chunk body is
rematerialised in the backward pass, so the gradient never holds more than one
chunk of logits either. The scorer reads it; the training loss
``chunked_cross_entropy`` is the same loop with a hand-written backward
(``_nll_sum``) so that, under FSDP, the head is gathered once per pass and its
gradient reduced once, not once per chunk.

Alignment: ``hidden[:, i]`` predicts ``targets[:, i]``; the data pipeline
shifts each episode before packing, so targets and loss mask are aligned to
the *target* token (``spectrax/data/episodes.py``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from spectrax.models import layers
from spectrax.parallel import sharding


def split_positions(hidden: jax.Array, targets: jax.Array, chunk: int):
  """Positions in chunks, for a ``lax.scan`` that holds one chunk's logits at a time.

  Args:
    hidden: ``[batch, n, embed]``; targets: ``[batch, n]``.
    chunk: positions per chunk (clipped to ``[1, n]``; the end is zero-padded).

  Returns:
    ``hs`` ``[chunks, batch, chunk, embed]``, ``ts`` ``[chunks, batch, chunk]``
    int32, and ``merge``: per-position results ``[chunks, batch, chunk]`` ->
    ``[batch, n]``.
  """
  b, n, d = hidden.shape
  chunk = max(1, min(chunk, n))
  padded = -(-n // chunk) * chunk
  targets = targets.astype(jnp.int32)
  if padded != n:
    hidden = jnp.pad(hidden, ((0, 0), (0, padded - n), (0, 0)))
    targets = jnp.pad(targets, ((0, 0), (0, padded - n)))
  hs = hidden.reshape(b, padded // chunk, chunk, d).swapaxes(0, 1)
  ts = targets.reshape(b, padded // chunk, chunk).swapaxes(0, 1)
  return hs, ts, lambda x: x.swapaxes(0, 1).reshape(b, padded)[:, :n]


def chunked_token_stats(hidden: jax.Array, head: jax.Array, targets: jax.Array, *,
                        indices: jax.Array | None = None, softcap: float | None = None,
                        chunk_size: int = 256, with_argmax: bool = False) -> dict[str, jax.Array]:
  """Statistics of the next-token distribution at each position, one chunk of logits at a time.

  Args:
    hidden: ``[batch, length, embed]`` final hidden states (any float dtype;
      the head is cast to it, logits accumulate in float32).
    head: ``[embed, vocab]`` output projection (``model.head()``).
    targets: ``[batch, n]`` int32 token read at each position (``n = length``
      without ``indices``).
    indices: ``[batch, n]`` int32 positions into ``length`` whose distribution
      to read (repeat a position to read several tokens there); None: all.
    softcap: the model's final-logit soft-cap (``config.final_logit_softcap``).
    chunk_size: positions per chunk; peak logits memory is
      ``batch * chunk_size * vocab * 4`` bytes.
    with_argmax: also return ``greedy`` and ``top_prob`` (the scorer's needs).

  Returns:
    ``logprob`` ``[batch, n]`` float32 ``log p(targets)``; with ``with_argmax``
    also ``greedy`` ``[batch, n]`` bool (``argmax == target``, first index on
    ties as in torch) and ``top_prob`` ``[batch, n]`` float32.
  """
  if indices is not None:
    hidden = jnp.take_along_axis(hidden, indices[..., None].astype(jnp.int32), axis=1)
  hs, ts, merge = split_positions(hidden, targets, chunk_size)
  head = _gathered(head, hidden.dtype)  # once, outside the chunk loop

  @jax.checkpoint
  def one(h, t):
    logits = layers.project(h, head, preferred_element_type=jnp.float32)
    logits = layers.softcap(logits, softcap)
    lse = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, t[..., None], axis=-1)[..., 0]
    out = {"logprob": picked - lse}
    if with_argmax:
      out["greedy"] = jnp.argmax(logits, axis=-1).astype(jnp.int32) == t
      out["top_prob"] = jnp.exp(jnp.max(logits, axis=-1) - lse)
    return out

  _, outs = jax.lax.scan(lambda c, x: (c, one(*x)), None, (hs, ts))
  return {k: merge(v) for k, v in outs.items()}


def chunked_cross_entropy(hidden: jax.Array, head: jax.Array, targets: jax.Array,
                          weights: jax.Array, *, softcap: float | None = None,
                          chunk_size: int = 256, batch_shards: int = 1
                          ) -> tuple[jax.Array, jax.Array]:
  """Summed next-token NLL over weighted positions, without full logits.

  Args:
    hidden, softcap, chunk_size: as in ``chunked_token_stats``.
    head: ``[embed, vocab]`` output projection in its master dtype (e.g.
      float32); it is cast to ``hidden.dtype`` before it is gathered, and its
      gradient comes back in the master dtype.
    targets: ``[batch, length]`` int32 token predicted at each position.
    weights: ``[batch, length]`` loss weights (the shifted loss mask).
    batch_shards: how many devices ``batch`` is split over (1 without a
      mesh); the head's gradient is summed per shard over all chunks and
      reduced across shards once, at the end (see ``_nll_sum``).

  Returns:
    ``(nll_sum, count)``: float32 scalars, ``sum(weights * -log p)`` and
    ``sum(weights)``. Divide the global sums (over devices and microbatches)
    to get the mean over loss tokens of the global batch.
  """
  w = weights.astype(jnp.float32)
  b = hidden.shape[0]
  shards = batch_shards if batch_shards > 0 and b % batch_shards == 0 else 1
  hs, ts, _ = split_positions(hidden, targets, chunk_size)
  ws, _, _ = split_positions(w[..., None], targets, chunk_size)
  # [chunks, shards, batch / shards, chunk, ...]: the shard axis carries the
  # batch sharding, so each device's partial head gradient has a place to live.
  def by_shard(x):
    x = x.reshape(x.shape[:1] + (shards, b // shards) + x.shape[2:])
    return sharding.constrain(x, (None, "batch", None, "length", None)[:x.ndim])

  nll = _nll_sum(by_shard(hs), by_shard(ts), by_shard(ws[..., 0]), head, softcap)
  return nll, jnp.sum(w)


def _gathered(head: jax.Array, dtype) -> jax.Array:
  """The head in the compute dtype, whole along ``embed``: cast first, so the gather moves ``dtype``.

  The cast is pinned to the head's own sharding; otherwise sharding
  propagation gives the cast the gathered layout and XLA gathers the
  float32 master before casting.
  """
  head = sharding.constrain(head.astype(dtype), ("embed", "vocab"))
  return sharding.constrain(head, (None, "vocab"))


def _chunk_logits(h, t, w_full, cap):
  """Raw and soft-capped logits ``[shards, rows, chunk, vocab]`` float32, logsumexp and log p(t)."""
  h = sharding.constrain(h, ("batch", None, "length", None))
  raw = layers.project(h, w_full, preferred_element_type=jnp.float32)
  logits = layers.softcap(raw, cap)
  lse = jax.nn.logsumexp(logits, axis=-1)
  picked = jnp.take_along_axis(logits, t[..., None], axis=-1)[..., 0]
  return raw, logits, lse, picked


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _nll_sum(hs, ts, ws, head, cap):
  """``sum(ws * -log p(ts))`` over ``[chunks, shards, rows, chunk]`` positions; float32 scalar.

  A custom VJP (as MaxText's vocabulary tiling) rather than a checkpointed
  scan: the head is gathered once for the forward and once for the backward
  (not per chunk and again per rematerialised chunk), and its gradient is
  accumulated in float32 per batch shard across chunks, then reduced to its
  ``embed`` shards once (one reduce-scatter) instead of once per chunk.
  """
  return _nll_fwd(hs, ts, ws, head, cap)[0]


def _nll_fwd(hs, ts, ws, head, cap):
  w_full = _gathered(head, hs.dtype)

  def body(total, x):
    h, t, wt = x
    _, _, lse, picked = _chunk_logits(h, t, w_full, cap)
    return total + jnp.sum(wt * (lse - picked)), None

  total, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), (hs, ts, ws))
  # The sharded master head, not the gathered one: the backward gathers again
  # rather than holding a gathered copy from forward to backward.
  return total, (hs, ts, ws, head)


def _nll_bwd(cap, res, g):
  hs, ts, ws, head = res
  w_full = _gathered(head, hs.dtype)
  partial_axes = ("batch", None, "vocab")

  def body(dhead, x):
    h, t, wt = x
    raw, logits, lse, picked = _chunk_logits(h, t, w_full, cap)
    scale = (g * wt)[..., None]
    dlogits = jnp.exp(logits - lse[..., None]) * scale
    dlogits = dlogits - jax.nn.one_hot(t, logits.shape[-1], dtype=jnp.float32) * scale
    if cap is not None:  # d(cap * tanh(raw / cap)) / d raw
      dlogits = dlogits * (1.0 - jnp.square(jnp.tanh(raw / cap)))
    # Products in the compute dtype (as autodiff of a bfloat16 matmul would
    # take them), sums in float32.
    dh = jnp.einsum("srcv,dv->srcd", dlogits.astype(w_full.dtype), w_full,
                    preferred_element_type=jnp.float32)
    dhead = dhead + jnp.einsum("srcd,srcv->sdv", h, dlogits.astype(h.dtype),
                               preferred_element_type=jnp.float32)
    return sharding.constrain(dhead, partial_axes), (dh.astype(hs.dtype), g * (lse - picked))

  shards = hs.shape[1]
  zeros = sharding.constrain(jnp.zeros((shards,) + head.shape, jnp.float32), partial_axes)
  dhead, (dhs, dws) = jax.lax.scan(body, zeros, (hs, ts, ws))
  dhead = sharding.constrain(jnp.sum(dhead, axis=0), ("embed", "vocab")).astype(head.dtype)
  return dhs, None, dws.astype(ws.dtype), dhead


_nll_sum.defvjp(_nll_fwd, _nll_bwd)
