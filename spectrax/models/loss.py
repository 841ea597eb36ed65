"""Cross-entropy and per-position log-probabilities without full-vocabulary logits.

Gemma 3's vocabulary has 262k entries: ``[batch, length, vocab]`` float32
logits for 8 x 1024 tokens would take 8.6 GB. These functions scan over chunks
of positions, computing each chunk's logits (float32) and logsumexp and keeping
only the per-position log-probability; the chunk body is rematerialised in the
backward pass, so the gradient never holds more than one chunk of logits
either.

Alignment: ``hidden[:, i]`` predicts ``targets[:, i]``. ``next_token_targets``
builds ``targets`` and the weight mask from a packed batch whose loss mask is
aligned to the *target* token (the project's convention; see
``spectrax/episodes.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spectrax.models.layers import project


def next_token_targets(tokens: jax.Array, loss_mask: jax.Array,
                       segment_ids: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Shifts a packed batch into (targets, weights) aligned with the hidden states.

  Args:
    tokens: ``[batch, length]`` int32.
    loss_mask: ``[batch, length]``, nonzero where the token is a loss target.
    segment_ids: ``[batch, length]`` int32, 0 = padding.

  Returns:
    ``targets`` ``[batch, length]`` int32 (``tokens[:, i + 1]``, 0 at the end)
    and ``weights`` ``[batch, length]`` float32: ``loss_mask[:, i + 1]`` where
    position ``i + 1`` is in the same nonzero segment as ``i``, else 0, so no
    position predicts the first token of the next packed episode.
  """
  pad = lambda x: jnp.pad(x[:, 1:], ((0, 0), (0, 1)))  # noqa: E731
  targets = pad(tokens).astype(jnp.int32)
  next_seg = pad(segment_ids)
  same = (next_seg == segment_ids) & (segment_ids != 0)
  weights = jnp.where(same, pad(loss_mask).astype(jnp.float32), 0.0)
  return targets, weights


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


def _logprobs(hidden: jax.Array, head: jax.Array, targets: jax.Array, softcap: float | None,
              chunk: int) -> jax.Array:
  """``log p(targets)`` for ``hidden`` ``[batch, n, embed]``; float32 ``[batch, n]``."""
  hs, ts, merge = split_positions(hidden, targets, chunk)
  head = head.astype(hidden.dtype)

  @jax.checkpoint
  def one(h, t):
    logits = project(h, head, preferred_element_type=jnp.float32)
    if softcap is not None:
      logits = jnp.tanh(logits / softcap) * softcap
    picked = jnp.take_along_axis(logits, t[..., None], axis=-1)[..., 0]
    return picked - jax.nn.logsumexp(logits, axis=-1)

  _, out = jax.lax.scan(lambda c, x: (c, one(*x)), None, (hs, ts))
  return merge(out)


def chunked_cross_entropy(hidden: jax.Array, head: jax.Array, targets: jax.Array,
                          weights: jax.Array, *, softcap: float | None = None,
                          chunk_size: int = 256) -> tuple[jax.Array, jax.Array]:
  """Summed next-token NLL over weighted positions, without full logits.

  Args:
    hidden: ``[batch, length, embed]`` final hidden states (any float dtype).
    head: ``[embed, vocab]`` output projection (``model.head()``).
    targets: ``[batch, length]`` int32 token predicted at each position.
    weights: ``[batch, length]`` loss weights (the shifted loss mask).
    softcap: the model's final-logit soft-cap (``config.final_logit_softcap``).
    chunk_size: positions per chunk; peak logits memory is
      ``batch * chunk_size * vocab * 4`` bytes.

  Returns:
    ``(nll_sum, count)``: float32 scalars, ``sum(weights * -log p)`` and
    ``sum(weights)``. Divide the global sums (over devices and microbatches)
    to get the mean over loss tokens of the global batch.
  """
  logp = _logprobs(hidden, head, targets, softcap, chunk_size)
  w = weights.astype(jnp.float32)
  return -jnp.sum(logp * w), jnp.sum(w)


def token_logprobs_at(hidden: jax.Array, head: jax.Array, indices: jax.Array, targets: jax.Array,
                      *, softcap: float | None = None, chunk_size: int = 256) -> jax.Array:
  """Log-probabilities of chosen tokens at chosen positions.

  Args:
    hidden: ``[batch, length, embed]``.
    head: ``[embed, vocab]``.
    indices: ``[batch, n]`` int32 positions into ``length`` whose next-token
      distribution to read (repeat a position to score several tokens there).
    targets: ``[batch, n]`` int32 token ids.
    softcap, chunk_size: as in ``chunked_cross_entropy``.

  Returns:
    ``[batch, n]`` float32 ``log p(targets | hidden[indices])``.
  """
  gathered = jnp.take_along_axis(hidden, indices[..., None].astype(jnp.int32), axis=1)
  return _logprobs(gathered, head, targets.astype(jnp.int32), softcap, chunk_size)
