"""Model FLOPs of one training step of the decoder, for MFU.

What is counted (forward pass; all counts in FLOPs, one multiply-add = 2):

* **Matmuls**: ``2 * matmul_params(cfg)`` per real token. ``matmul_params``
  is every weight that multiplies an activation: per layer the q, k, v, o
  projections (``d*h*(2*heads + 2*kv_heads)``) and the gated MLP (gate, up,
  down: ``3*d*f``), plus the output head (``d*vocab``, tied or not). The
  embedding *lookup* is a gather, not a matmul, and norms, rope, softmax and
  activations are elementwise, so none of them is counted.
* **Attention**: ``4 * heads * head_dim`` per layer per (query, key) pair
  that the mask allows (``2*h`` for q.k and ``2*h`` for p.v per head). Pairs
  are counted causally and per packed segment: a segment of ``s`` tokens
  holds ``s*(s+1)/2`` pairs (the diagonal included); on a sliding-window
  layer a query at in-segment position ``p`` sees ``min(window, p + 1)``
  keys, matching ``spectrax.models.attention.attention_mask``.
* **Training** = 3 x forward (backward costs twice the forward). Remat
  recomputation is NOT counted: MFU measures useful model FLOPs, so turning
  remat on lowers MFU rather than inflating it (MaxText's convention).

**LoRA** (``lora`` given): the base weights are frozen, so the backward pass
computes no weight gradients for them: each base matmul costs its forward
plus one backward-through-activations (``dx = dy W^T``), 2 x forward, not 3.
Attention has no weights and keeps 3 x forward; the adapters (``x A`` then
``(xA) B``, ``2 * rank * (in + out)`` FLOPs per token per target) are
trained, 3 x forward. (The first layer's input gradient, which only the
frozen embedding would use, is counted though XLA may skip it: at most one
layer's worth of base matmuls.)

Padding tokens (``segment_ids == 0``) are not counted: packing waste shows up
as lower MFU. The head is counted at every real token because the loss
computes logits at every position (``spectrax/loss.py``).

How this differs from peers, so numbers are compared like for like:
MaxText counts ``batch * max_length`` tokens (padding included) and causal
attention as ``length**2 / 2`` per row, ignoring packing (windows as
``length * window / 2``). levanter's ``lm_flops_per_token`` counts attention
over the whole ``seq_len`` row, ignoring packing, mostly as the full
non-causal square (recent versions halve only the q.k term), adds ~3 FLOPs
per score for mask and softmax, and takes ``head_dim = hidden / heads``; it
so reports more attention FLOPs (a higher MFU) than this module for the same
run, most visibly with short packed episodes.
Both also exclude remat and use 3 x forward.
"""

from __future__ import annotations

import collections

import numpy as np

from spectrax.models import lora as lora_lib
from spectrax.models.config import GLOBAL_WINDOW, ModelConfig

# Forward + backward (grads w.r.t. activations and weights, each ~1 forward).
TRAIN_MULTIPLIER = 3
# A frozen weight: forward + backward w.r.t. activations only.
FROZEN_MULTIPLIER = 2


def matmul_params(cfg: ModelConfig) -> int:
  """Weights that multiply each token's activations (head included, embedding lookup excluded)."""
  d, h = cfg.hidden_size, cfg.head_dim
  attn = d * h * (2 * cfg.num_heads + 2 * cfg.num_kv_heads)  # q, o: d*n*h; k, v: d*kv*h
  mlp = 3 * d * cfg.intermediate_size  # gate, up, down
  return cfg.num_layers * (attn + mlp) + d * cfg.vocab_size


def matmul_flops_per_token(cfg: ModelConfig) -> int:
  """Forward matmul FLOPs per real token: ``2 * matmul_params(cfg)``."""
  return 2 * matmul_params(cfg)


def attention_flops_per_pair(cfg: ModelConfig) -> int:
  """Forward FLOPs of one (query, key) pair in one layer: q.k and p.v over all heads."""
  return 4 * cfg.num_heads * cfg.head_dim


def segment_lengths(segment_ids) -> np.ndarray:
  """Lengths of the packed segments of a batch.

  Args:
    segment_ids: ``[batch, length]`` int, 0 = padding; each nonzero id must
      form one contiguous run within its row (what the packers emit).

  Returns:
    ``[num_segments]`` int64, in row-major order; padding runs are dropped.

  Raises:
    ValueError: for a wrong rank, or an id that appears in two separate runs
      of one row (the mask would then join them; the count would be wrong).
  """
  seg = np.asarray(segment_ids)
  if seg.ndim != 2:
    raise ValueError(f"segment_ids must be [batch, length], got shape {seg.shape}; "
                     "reshape a single row with segment_ids[None]")
  if seg.size == 0:
    return np.zeros((0,), np.int64)
  starts = np.ones(seg.shape, bool)
  starts[:, 1:] = seg[:, 1:] != seg[:, :-1]
  first = np.flatnonzero(starts.ravel())
  lengths = np.diff(np.append(first, seg.size)).astype(np.int64)
  ids, rows = seg.ravel()[first], first // seg.shape[1]
  real = ids != 0
  runs = np.stack([rows[real], ids[real]], axis=1)
  unique, counts = np.unique(runs, axis=0, return_counts=True)
  if np.any(counts > 1):
    row, sid = unique[np.argmax(counts > 1)]
    raise ValueError(f"segment id {sid} appears in two separate runs of row {row}; each packed "
                     "segment must be one contiguous run with positions restarting at 0")
  return lengths[real]


def _pairs(lengths, window: int | None):
  """Causal pairs of segments of ``lengths`` (int or float arrays) under ``window``."""
  if window is None or window >= GLOBAL_WINDOW:
    return lengths * (lengths + 1) / 2 if _is_float(lengths) else lengths * (lengths + 1) // 2
  # The first min(s, w) queries see p + 1 keys, every later one sees w.
  m = np.minimum(lengths, window)
  head = m * (m + 1) / 2 if _is_float(m) else m * (m + 1) // 2
  return head + (lengths - m) * window


def _is_float(x) -> bool:
  return np.issubdtype(np.asarray(x).dtype, np.floating)


def attention_pairs(segment_ids, window: int | None = None) -> int:
  """Exact number of (query, key) pairs the causal packed mask allows in one layer.

  Args:
    segment_ids: ``[batch, length]`` int, 0 = padding (see ``segment_lengths``).
    window: sliding-window size of the layer; None (or ``GLOBAL_WINDOW``)
      for a global layer.

  Returns:
    The sum over segments of ``s*(s+1)/2`` (global) or of
    ``sum_p min(window, p + 1)`` (local), as a Python int.
  """
  return int(np.sum(_pairs(segment_lengths(segment_ids), window)))


def _windows(cfg: ModelConfig) -> collections.Counter:
  """How many layers use each window (None = global)."""
  return collections.Counter(cfg.layer_windows)


def attention_flops(cfg: ModelConfig, segment_ids) -> int:
  """Exact forward attention FLOPs of a batch, summed over all layers.

  Args:
    cfg: the model.
    segment_ids: ``[batch, length]`` int, 0 = padding: the host-side batch.

  Returns:
    ``attention_flops_per_pair(cfg) * sum_layers attention_pairs(segment_ids, window)``.
  """
  lengths = segment_lengths(segment_ids)
  pairs = sum(n * int(np.sum(_pairs(lengths, w))) for w, n in _windows(cfg).items())
  return attention_flops_per_pair(cfg) * pairs


def attention_flops_estimate(cfg: ModelConfig, num_tokens: float, mean_segment_length: float) -> float:
  """Forward attention FLOPs assuming every segment has the mean length.

  Exact when all segments have equal length; otherwise an underestimate
  (pairs grow convexly with length), by ``var(s) / (2 * mean(s))`` pairs per
  token on a global layer.

  Args:
    cfg: the model.
    num_tokens: real (non-padding) tokens in the batch.
    mean_segment_length: tokens per packed segment, > 0.
  """
  if mean_segment_length <= 0:
    raise ValueError(f"mean_segment_length must be > 0 tokens, got {mean_segment_length}")
  s = np.float64(mean_segment_length)
  per_segment = sum(n * float(_pairs(s, w)) for w, n in _windows(cfg).items())
  return attention_flops_per_pair(cfg) * per_segment * float(num_tokens) / float(s)


def num_real_tokens(segment_ids) -> int:
  """Non-padding tokens (``segment_ids != 0``) in ``[batch, length]`` segment ids."""
  return int(np.count_nonzero(np.asarray(segment_ids)))


def forward_flops(cfg: ModelConfig, segment_ids) -> int:
  """Exact forward FLOPs of a batch: matmuls on real tokens plus causal packed attention."""
  return matmul_flops_per_token(cfg) * num_real_tokens(segment_ids) + attention_flops(cfg, segment_ids)


def _lora_train_flops(cfg: ModelConfig, lora: lora_lib.LoraConfig, num_tokens, attention):
  """A LoRA step: frozen base matmuls 2 x forward, attention and adapters 3 x."""
  adapters = 2 * lora_lib.num_adapter_params(cfg, lora) * num_tokens
  return (FROZEN_MULTIPLIER * matmul_flops_per_token(cfg) * num_tokens
          + TRAIN_MULTIPLIER * (attention + adapters))


def train_step_flops(cfg: ModelConfig, segment_ids,
                     lora: lora_lib.LoraConfig | None = None) -> int:
  """Model FLOPs of one training step on a batch (3 x forward; remat not counted).

  Args:
    cfg: the model.
    segment_ids: ``[batch, length]`` int, 0 = padding. Pass the batch this
      process feeds (a numpy array, before ``device_put``); with several
      processes sum the per-process counts, or multiply one by the process
      count when every process packs alike.

  Returns:
    FLOPs as a Python int; divide by step seconds and the number of devices,
    then by ``hardware.peak_flops_per_device()``, for MFU. With ``lora``, the
    frozen base's weight gradients are not counted (module docstring).
  """
  if lora is not None:
    return int(_lora_train_flops(cfg, lora, num_real_tokens(segment_ids),
                                 attention_flops(cfg, segment_ids)))
  return TRAIN_MULTIPLIER * forward_flops(cfg, segment_ids)


def train_step_flops_estimate(cfg: ModelConfig, num_tokens: float, mean_segment_length: float,
                              lora: lora_lib.LoraConfig | None = None) -> float:
  """``train_step_flops`` from token and segment statistics instead of a batch (for planning)."""
  if lora is not None:
    return float(_lora_train_flops(cfg, lora, float(num_tokens),
                                   attention_flops_estimate(cfg, num_tokens, mean_segment_length)))
  forward = (matmul_flops_per_token(cfg) * float(num_tokens)
             + attention_flops_estimate(cfg, num_tokens, mean_segment_length))
  return TRAIN_MULTIPLIER * forward
