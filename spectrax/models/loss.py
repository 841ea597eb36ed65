"""Per-position log-probabilities and cross-entropy without full-vocabulary logits.

Gemma 3's vocabulary has 262k entries: ``[batch, length, vocab]`` float32
logits for 8 x 1024 tokens would take 8.6 GB. ``chunked_token_stats`` scans
over chunks of positions, computing each chunk's logits (float32) and
logsumexp and keeping only per-position results; the chunk body is
rematerialised in the backward pass, so the gradient never holds more than one
chunk of logits either. The training loss and the scorer both read it.

Alignment: ``hidden[:, i]`` predicts ``targets[:, i]``; the data pipeline
shifts each episode before packing, so targets and loss mask are aligned to
the *target* token (``spectrax/data/episodes.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spectrax.models import layers


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
  head = head.astype(hidden.dtype)

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
                          chunk_size: int = 256) -> tuple[jax.Array, jax.Array]:
  """Summed next-token NLL over weighted positions, without full logits.

  Args:
    hidden, head, softcap, chunk_size: as in ``chunked_token_stats``.
    targets: ``[batch, length]`` int32 token predicted at each position.
    weights: ``[batch, length]`` loss weights (the shifted loss mask).

  Returns:
    ``(nll_sum, count)``: float32 scalars, ``sum(weights * -log p)`` and
    ``sum(weights)``. Divide the global sums (over devices and microbatches)
    to get the mean over loss tokens of the global batch.
  """
  logp = chunked_token_stats(hidden, head, targets, softcap=softcap,
                             chunk_size=chunk_size)["logprob"]
  w = weights.astype(jnp.float32)
  return -jnp.sum(logp * w), jnp.sum(w)
