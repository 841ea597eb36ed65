"""Chunked cross-entropy and per-position token statistics against full-logit references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from spectrax.models.loss import chunked_cross_entropy, chunked_token_stats
from spectrax.models import ModelConfig, Transformer


def arrays(batch=2, length=24, dim=16, vocab=64, seed=0):
  rng = np.random.RandomState(seed)
  hidden = jnp.asarray(rng.randn(batch, length, dim).astype(np.float32))
  head = jnp.asarray(rng.randn(dim, vocab).astype(np.float32))
  targets = jnp.asarray(rng.randint(0, vocab, (batch, length)).astype(np.int32))
  weights = jnp.asarray((rng.rand(batch, length) < 0.6).astype(np.float32))
  return hidden, head, targets, weights


def full_logprobs(hidden, head, targets, softcap=None):
  logits = hidden @ head
  if softcap:
    logits = jnp.tanh(logits / softcap) * softcap
  return jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], -1)[..., 0]


@pytest.mark.parametrize("chunk,softcap", [(8, None), (7, None), (24, 3.0), (100, None)])
def test_chunked_cross_entropy_matches_full_logits(chunk, softcap):
  hidden, head, targets, weights = arrays()
  nll, count = chunked_cross_entropy(hidden, head, targets, weights, softcap=softcap, chunk_size=chunk)
  want = -jnp.sum(full_logprobs(hidden, head, targets, softcap) * weights)
  np.testing.assert_allclose(nll, want, rtol=1e-5)
  assert count == weights.sum()


@pytest.mark.parametrize("softcap,shards", [(None, 1), (3.0, 2)])
def test_gradients_match_full_logits(softcap, shards):
  """The hand-written backward (hidden, head and loss weights; soft-cap
  included; batch split into shards) against autodiff of full logits."""
  hidden, head, targets, weights = arrays()
  chunked = lambda h, w, m: chunked_cross_entropy(  # noqa: E731
      h, w, targets, m, softcap=softcap, chunk_size=8, batch_shards=shards)[0]
  full = lambda h, w, m: -jnp.sum(full_logprobs(h, w, targets, softcap) * m)  # noqa: E731
  got = jax.grad(chunked, argnums=(0, 1, 2))(hidden, head, weights)
  want = jax.grad(full, argnums=(0, 1, 2))(hidden, head, weights)
  for g, w in zip(got, want):
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-5 * np.abs(w).max())


def test_never_materialises_full_logits():
  """The compiled loss+grad needs far less scratch than [batch, length, vocab] float32."""
  hidden, head, targets, weights = arrays(batch=2, length=256, dim=32, vocab=8192)
  full_bytes = 2 * 256 * 8192 * 4

  def temp_bytes(fn):
    compiled = jax.jit(jax.grad(fn, argnums=(0, 1))).lower(hidden, head).compile()
    return compiled.memory_analysis().temp_size_in_bytes

  chunked = temp_bytes(lambda h, w: chunked_cross_entropy(h, w, targets, weights, chunk_size=16)[0])
  full = temp_bytes(lambda h, w: -jnp.sum(full_logprobs(h, w, targets) * weights))
  assert full >= full_bytes  # the reference does hold the logits (the check can fail)
  assert chunked < full_bytes / 4, (chunked, full_bytes)


def test_token_stats_at_positions():
  hidden, head, targets, _ = arrays()
  indices = jnp.array([[0, 5, 5, 23], [3, 3, 3, 10]])
  picks = jnp.array([[1, 2, 3, 4], [0, 63, 7, 9]])
  got = chunked_token_stats(hidden, head, picks, indices=indices, chunk_size=3)
  assert set(got) == {"logprob"}
  logp = jnp.take_along_axis(jax.nn.log_softmax(hidden @ head), indices[..., None], 1)
  want = jnp.take_along_axis(logp, picks[..., None], 2)[..., 0]
  np.testing.assert_allclose(got["logprob"], want, rtol=1e-5, atol=1e-6)


def test_token_stats_argmax_with_softcap():
  hidden, head, targets, _ = arrays()
  logits = 3.0 * jnp.tanh((hidden @ head) / 3.0)
  targets = targets.at[:, ::2].set(jnp.argmax(logits, -1)[:, ::2])  # half of them greedy
  got = chunked_token_stats(hidden, head, targets, softcap=3.0, chunk_size=5, with_argmax=True)
  logp = jax.nn.log_softmax(logits)
  want = jnp.take_along_axis(logp, targets[..., None], -1)[..., 0]
  np.testing.assert_allclose(got["logprob"], want, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(got["greedy"], jnp.argmax(logits, -1) == targets)
  assert got["greedy"][:, ::2].all() and not got["greedy"].all()
  np.testing.assert_allclose(got["top_prob"], jnp.exp(logp.max(-1)), rtol=1e-5)


def test_packed_loss_equals_sum_of_episode_losses():
  cfg = ModelConfig.from_hf(dict(model_type="qwen3", vocab_size=96, hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                 head_dim=8))
  model = Transformer(cfg, rngs=nnx.Rngs(0))
  rng = np.random.RandomState(0)
  eps = [rng.randint(0, 96, n) for n in (9, 14)]
  masks = [(rng.rand(n) < 0.7).astype(np.int32) for n in (9, 14)]

  def loss(inputs, targets, mask, pos, seg):
    hidden = model(inputs, pos, seg)
    return chunked_cross_entropy(hidden, model.head(), targets, mask, chunk_size=8)

  # As the pipeline does: shift each episode (mask aligned to the target), then pack.
  shifted = [(ep[:-1], ep[1:], m[1:]) for ep, m in zip(eps, masks)]
  total, count = 0.0, 0.0
  for inputs, targets, m in shifted:
    n = len(inputs)
    nll, c = loss(*(jnp.asarray(x[None]) for x in (inputs, targets, m, np.arange(n), np.ones(n, np.int32))))
    total, count = total + nll, count + c
  L = 28
  inputs, targets, mask, pos, seg = (np.zeros((1, L), np.int32) for _ in range(5))
  for row, parts in zip((inputs, targets, mask), zip(*shifted)):
    row[0, :21] = np.concatenate(parts)
  pos[0, :21] = np.concatenate([np.arange(8), np.arange(13)])
  seg[0, :8], seg[0, 8:21] = 1, 2
  nll, c = loss(*map(jnp.asarray, (inputs, targets, mask, pos, seg)))
  np.testing.assert_allclose(nll, total, rtol=1e-5)
  assert c == count
