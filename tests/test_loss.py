"""Chunked cross-entropy and per-position log-probs against full-logit references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from spectrax.models.loss import chunked_cross_entropy, next_token_targets, token_logprobs_at
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


def test_gradients_match_full_logits():
  hidden, head, targets, weights = arrays()
  chunked = lambda h, w: chunked_cross_entropy(h, w, targets, weights, chunk_size=8)[0]  # noqa: E731
  full = lambda h, w: -jnp.sum(full_logprobs(h, w, targets) * weights)  # noqa: E731
  got = jax.grad(chunked, argnums=(0, 1))(hidden, head)
  want = jax.grad(full, argnums=(0, 1))(hidden, head)
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


def test_token_logprobs_at_positions():
  hidden, head, targets, _ = arrays()
  indices = jnp.array([[0, 5, 5, 23], [3, 3, 3, 10]])
  picks = jnp.array([[1, 2, 3, 4], [0, 63, 7, 9]])
  got = token_logprobs_at(hidden, head, indices, picks, chunk_size=3)
  logp = jax.nn.log_softmax(hidden @ head)
  want = jnp.take_along_axis(jnp.take_along_axis(logp, indices[..., None], 1), picks[..., None], 2)[..., 0]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_next_token_targets_stop_at_segment_edges():
  tokens = jnp.array([[5, 6, 7, 8, 9, 0]])
  mask = jnp.array([[0, 1, 1, 0, 1, 0]])
  seg = jnp.array([[1, 1, 1, 2, 2, 0]])
  targets, weights = next_token_targets(tokens, mask, seg)
  np.testing.assert_array_equal(targets, [[6, 7, 8, 9, 0, 0]])
  # Position 2 would predict segment 2's first token: zero weight.
  np.testing.assert_array_equal(weights, [[1, 1, 0, 1, 0, 0]])


def test_packed_loss_equals_sum_of_episode_losses():
  cfg = ModelConfig.from_hf(dict(model_type="qwen3", vocab_size=96, hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                 head_dim=8))
  model = Transformer(cfg, rngs=nnx.Rngs(0))
  rng = np.random.RandomState(0)
  eps = [rng.randint(0, 96, n) for n in (9, 14)]
  masks = [(rng.rand(n) < 0.7).astype(np.int32) for n in (9, 14)]

  def loss(tokens, mask, pos, seg):
    hidden = model(tokens, pos, seg)
    targets, weights = next_token_targets(tokens, mask, seg)
    return chunked_cross_entropy(hidden, model.head(), targets, weights, chunk_size=8)

  total, count = 0.0, 0.0
  for ep, m in zip(eps, masks):
    n = len(ep)
    nll, c = loss(jnp.asarray(ep[None]), jnp.asarray(m[None]), jnp.arange(n)[None], jnp.ones((1, n), jnp.int32))
    total, count = total + nll, count + c
  L = 28
  tokens, mask, pos, seg = (np.zeros((1, L), np.int32) for _ in range(4))
  tokens[0, :23] = np.concatenate(eps)
  mask[0, :23] = np.concatenate(masks)
  pos[0, :23] = np.concatenate([np.arange(9), np.arange(14)])
  seg[0, :9], seg[0, 9:23] = 1, 2
  nll, c = loss(*map(jnp.asarray, (tokens, mask, pos, seg)))
  np.testing.assert_allclose(nll, total, rtol=1e-5)
  assert c == count
