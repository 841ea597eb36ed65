"""FLOP counts against brute force: enumerated masks and the model's own parameter shapes."""

import jax
import numpy as np
import pytest

from spectrax.training import flops
from spectrax.models import ModelConfig, abstract_model
from spectrax.models.attention import attention_mask

TINY = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, max_position_embeddings=256)


def gemma_config():
  """3 layers: local (window 4), global, local; tied embeddings."""
  return ModelConfig.from_hf(dict(
      TINY, model_type="gemma3_text", num_hidden_layers=3, sliding_window=4, query_pre_attn_scalar=8,
      layer_types=["sliding_attention", "full_attention", "sliding_attention"]))


def llama_config():
  """2 global layers, untied head."""
  return ModelConfig.from_hf(dict(TINY, model_type="llama", num_hidden_layers=2))


def positions_of(segment_ids):
  """In-segment positions: restart at 0 wherever the id changes (what the packers emit)."""
  pos = np.zeros(segment_ids.shape, np.int64)
  for r, row in enumerate(segment_ids):
    for i in range(1, len(row)):
      pos[r, i] = pos[r, i - 1] + 1 if row[i] == row[i - 1] else 0
  return pos


def brute_pairs(segment_ids, window=None):
  """Counts allowed (query, key) pairs by enumerating every one."""
  pos = positions_of(segment_ids)
  count = 0
  for r, row in enumerate(segment_ids):
    for q in range(len(row)):
      for k in range(q + 1):
        near = window is None or pos[r, q] - pos[r, k] < window
        count += bool(row[q] == row[k] != 0 and near)
  return count


def random_packed(rng, batch, length, max_segment):
  """Rows of random-length segments (ids 1, 2, ...) followed by padding."""
  seg = np.zeros((batch, length), np.int32)
  for r in range(batch):
    start, sid = 0, 1
    while start < length and rng.random() < 0.9:
      n = min(int(rng.integers(1, max_segment + 1)), length - start)
      seg[r, start:start + n] = sid
      start, sid = start + n, sid + 1
  return seg


@pytest.mark.parametrize("window", [None, 1, 3, 4, 7, 100])
def test_pairs_match_enumeration(window):
  rng = np.random.default_rng(0)
  for _ in range(5):
    seg = random_packed(rng, batch=3, length=24, max_segment=11)
    assert flops.attention_pairs(seg, window) == brute_pairs(seg, window)


def test_pairs_match_model_mask():
  """The count agrees with the mask the model applies, layer by layer."""
  cfg = gemma_config()
  seg = random_packed(np.random.default_rng(1), batch=4, length=32, max_segment=13)
  pos = positions_of(seg)
  for window in cfg.window_array():
    mask = attention_mask(jax.numpy.asarray(seg), jax.numpy.asarray(pos), int(window))
    assert flops.attention_pairs(seg, int(window)) == int(mask.sum())


def test_segment_lengths():
  seg = np.array([[1, 1, 1, 2, 2, 0, 0], [5, 5, 5, 5, 5, 5, 5], [0, 0, 0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(flops.segment_lengths(seg), [3, 2, 7])
  assert flops.num_real_tokens(seg) == 12


def test_split_segment_is_refused():
  with pytest.raises(ValueError, match="segment id 1 appears in two separate runs of row 0"):
    flops.segment_lengths(np.array([[1, 1, 2, 1]]))
  with pytest.raises(ValueError, match=r"\[batch, length\]"):
    flops.segment_lengths(np.array([1, 1, 2]))


def brute_matmul_params(cfg):
  """Sums the model's own parameter shapes: all but norms and the embedding lookup."""
  _, state = abstract_model(cfg)
  total = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(state):
    name = jax.tree_util.keystr(path)
    if "norm" in name:
      continue  # elementwise scales
    if name.startswith("['embed']") and not cfg.tie_embeddings:
      continue  # a gather; the untied head is lm_head
    total += int(np.prod(leaf.shape))
  return total


@pytest.mark.parametrize("make", [gemma_config, llama_config])
def test_matmul_params_match_model(make):
  cfg = make()
  assert flops.matmul_params(cfg) == brute_matmul_params(cfg)


def test_hand_computed_counts():
  # Per layer: q, o 32*4*8 + k, v 32*2*8 = 3072; MLP 3*32*64 = 6144; head 128*32 = 4096.
  assert flops.matmul_flops_per_token(llama_config()) == 2 * (2 * (3072 + 6144) + 4096) == 45056
  cfg = gemma_config()
  assert flops.matmul_flops_per_token(cfg) == 2 * (3 * (3072 + 6144) + 4096) == 63488
  assert flops.attention_flops_per_pair(cfg) == 4 * 4 * 8 == 128
  seg = np.array([[1] * 6 + [2] * 3 + [0] * 3])
  # Global: 6*7/2 + 3*4/2 = 27 pairs. Window 4: 10 + 2*4 for the 6-token segment, 6 for the other.
  assert flops.attention_flops(cfg, seg) == 128 * (27 + 2 * 24) == 9600
  assert flops.forward_flops(cfg, seg) == 9 * 63488 + 9600 == 580992
  assert flops.train_step_flops(cfg, seg) == 3 * 580992


def test_estimate_is_exact_for_equal_segments():
  cfg = gemma_config()
  seg = np.repeat(np.arange(1, 5), 6)[None].repeat(2, axis=0)  # 2 rows of 4 segments of 6
  assert flops.attention_flops_estimate(cfg, 48, 6.0) == flops.attention_flops(cfg, seg)
  assert flops.train_step_flops_estimate(cfg, 48, 6.0) == flops.train_step_flops(cfg, seg)


def test_estimate_misses_variance():
  """Unequal segments: the mean-length estimate is low by var / (2 mean) pairs per token."""
  cfg = llama_config()  # global layers only
  seg = np.array([[1] * 2 + [2] * 10])  # mean 6, population variance 16
  exact = flops.attention_flops(cfg, seg)
  estimate = flops.attention_flops_estimate(cfg, 12, 6.0)
  per_pair = flops.attention_flops_per_pair(cfg) * cfg.num_layers
  assert exact - estimate == per_pair * 12 * 16 / (2 * 6)
  with pytest.raises(ValueError, match="mean_segment_length must be > 0"):
    flops.attention_flops_estimate(cfg, 12, 0)
