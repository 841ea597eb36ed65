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
option exactly as ``prompt + option`` alone. Splash attention and cuDNN's
packed layout cannot express this mask; with ``prefix_segment_ids`` splash
falls back to ``xla`` and ``cudnn`` to its masked form.

Backends (``ModelConfig.attention_backend``):
  * ``dense``: einsum + float32 softmax in XLA. The reference; runs anywhere.
  * ``xla``: ``jax.nn.dot_product_attention`` with a boolean mask.
  * ``cudnn``: cuDNN's fused flash kernel (NVIDIA GPUs, bf16/fp16). From
    Hopper (sm90) on, packed rows go in cuDNN's packed layout: each episode is
    an (offset, length) pair (``packed_segments``), the kernel is causal and
    sliding-window within each episode and skips everything across episodes;
    no ``[batch, length, length]`` mask or bias exists, forward or backward.
    Before Hopper, and for shared prefixes, it takes the boolean mask
    (``sdpa_attention``). ``cudnn_layout`` rejects head sizes, dtypes and
    devices cuDNN cannot train, at the first call, with the fix.
  * ``splash``: the Pallas TPU splash-attention kernel with segment ids. Its
    multi-query form runs once per kv head over that head's group of query
    heads, so keys and values are read (and their gradients formed) per kv
    head, never repeated. The window is static per kernel, so a local and a
    global kernel are built and the per-layer flag picks one with
    ``lax.cond`` (so does ``cudnn``). On CPU it runs in interpret mode (slow;
    for tests).
"""

from __future__ import annotations

import functools
import logging
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from spectrax.parallel import sharding
from spectrax.models import remat
from spectrax.models.config import GLOBAL_WINDOW, ModelConfig
from spectrax.models.layers import RMSNorm, apply_rope, param, plain_project

# Finite, so that a fully masked row (a padding token) gives a uniform softmax
# rather than NaN; far below any real logit even after soft-capping.
_MASK_VALUE = -0.7 * float(jnp.finfo(jnp.float32).max)

# cuDNN's packed layout needs a static bound on episodes per row. The data
# pipeline packs at most `DataConfig.max_episodes_per_row` episodes in a row,
# by default seq_len // 8: the same bound, so default rows always fit.
_TOKENS_PER_SEGMENT_BOUND = 8


class AttentionBackendError(ValueError):
  """The configured attention backend cannot run this model on this device."""


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


def _windowed(run, is_local, local_window: int | None):
  """``run(window)`` for the static local window or the global one (None), by ``is_local``."""
  if local_window is None:
    return run(None)
  return jax.lax.cond(is_local, lambda: run(local_window), lambda: run(None))


@functools.lru_cache(maxsize=None)
def _splash_kernel(length: int, group: int, window: int | None, interpret: bool):
  """The multi-query splash kernel: ``[group, length, head_dim]`` queries, one kv head."""
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
  with jax.ensure_compile_time_eval():  # concrete mask tables, whatever trace builds it first
    return sk.make_splash_mqa(sm.MultiHeadMask([one] * group), block_sizes=sizes, head_shards=1,
                              q_seq_shards=1, interpret=interpret)


def splash_attention(q, k, v, segment_ids, is_local, scale: float, local_window: int | None,
                     interpret: bool):
  """Pallas splash attention; same contract as dense with the mask given by segment ids.

  Grouped-query attention runs natively: queries are regrouped to
  ``[batch, kv_heads, heads // kv_heads, length, head_dim]`` and the
  multi-query kernel is vmapped over batch and kv heads, so each kv head is
  read once per query group and its dK/dV accumulate inside the kernel.
  ``is_local`` (traced bool) selects the sliding-window kernel. Under a mesh
  the caller must shard batch/heads with ``shard_map`` (see ``Attention``).
  """
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as sk
  b, t, n, h = q.shape
  kv = k.shape[2]
  if t % 128:
    raise ValueError(f"splash attention needs length % 128 == 0, got length {t}; pad the batch "
                     "or use attention_backend='dense'")
  group = n // kv
  qg = jnp.moveaxis((q * jnp.asarray(scale, q.dtype)).reshape(b, t, kv, group, h), 1, 3)
  kt, vt = jnp.swapaxes(k, 1, 2), jnp.swapaxes(v, 1, 2)  # [b, kv, t, h]
  seg = sk.SegmentIds(q=segment_ids, kv=segment_ids)

  kernels = {w: _splash_kernel(t, group, w, interpret) for w in (None, local_window)}

  def run(window):
    kernel = kernels[window]
    per_kv_head = jax.vmap(lambda q, k, v, s: kernel(q, k, v, segment_ids=s),
                           in_axes=(0, 0, 0, None))
    return jax.vmap(per_kv_head)(qg, kt, vt, seg)  # [b, kv, group, t, h]

  out = _windowed(run, is_local, local_window)
  return jnp.moveaxis(out, 3, 1).reshape(b, t, n, h)


# -- cuDNN ---------------------------------------------------------------------------------------


def cudnn_layout(head_dim: int, dtype, compute_capability: str | None,
                 device: str = "this device") -> str:
  """How the ``cudnn`` backend runs a model: ``"packed"`` or ``"masked"``.

  The rules of cuDNN's flash kernel as JAX 0.10-0.11 drive it
  (``jax._src.cudnn.fused_attention_stablehlo.check_is_flash_attention``):
  bf16/fp16, head sizes a multiple of 8 up to 128 on Ampere/Ada (sm80-sm89)
  and up to 256 from Hopper (sm90) on; the packed layout needs Hopper.

  Args:
    head_dim: the model's head size.
    dtype: the compute dtype.
    compute_capability: the GPU's, e.g. ``"9.0"``; None off NVIDIA GPUs.
    device: how to name the device in errors.

  Raises:
    AttentionBackendError: naming the head size, dtype or device, and the fix.
  """
  fix = ("set model.attention_backend to 'xla' (XLA's attention, any device) or 'dense' "
         "(the einsum reference)")
  if compute_capability is None:
    raise AttentionBackendError(f"attention_backend='cudnn' needs an NVIDIA GPU with cuDNN, but "
                                f"this process runs on {device}; {fix}")
  cc = tuple(int(x) for x in compute_capability.split(".")[:2])
  if cc < (8, 0):
    raise AttentionBackendError(
        f"attention_backend='cudnn': cuDNN flash attention needs compute capability 8.0 (Ampere) "
        f"or newer; {device} has {compute_capability}; {fix}")
  if jnp.dtype(dtype) not in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)):
    raise AttentionBackendError(
        f"attention_backend='cudnn' computes in bfloat16 or float16, but the model computes in "
        f"{jnp.dtype(dtype).name}; set model.dtype='bfloat16', or {fix}")
  limit = 256 if cc >= (9, 0) else 128
  if head_dim > limit or head_dim % 8:
    raise AttentionBackendError(
        f"attention_backend='cudnn': cuDNN flash attention on {device} (compute capability "
        f"{compute_capability}) trains head sizes that are multiples of 8 up to {limit}, but this "
        f"model's head_dim is {head_dim}; {fix}")
  return "packed" if cc >= (9, 0) else "masked"


def _device_facts() -> tuple[str | None, str]:
  """The default device's CUDA compute capability (None off NVIDIA GPUs) and its name."""
  device = jax.devices()[0]
  cuda = device.platform == "gpu" and "cuda" in str(device.client.platform_version).lower()
  return (getattr(device, "compute_capability", None) if cuda else None,
          f"{device.device_kind} ({device.platform})")


class PackedSegments(NamedTuple):
  """A packed row's episodes as cuDNN's packed layout takes them.

  Attributes:
    offsets: ``[batch, max_segments + 1]`` int32, the index where each
      episode starts, -1 after the row's last one.
    lengths: ``[batch, max_segments]`` int32, each episode's token count,
      -1 after the row's last one.
    valid: ``[batch]`` bool: the row's episodes are each one contiguous run
      and there are at most ``max_segments`` of them.
  """
  offsets: jax.Array
  lengths: jax.Array
  valid: jax.Array


def packed_segments(segment_ids: jax.Array, max_segments: int) -> PackedSegments:
  """Segment ids ``[batch, length]`` (0 = padding) -> per-episode offsets and lengths.

  An episode is a maximal run of one nonzero id. Runs past ``max_segments``
  are left out (and the row marked invalid), as is a segment id that
  reappears after another (two runs, one segment: the mask would join them).
  """
  b, t = segment_ids.shape
  previous = jnp.pad(segment_ids[:, :-1], ((0, 0), (1, 0)))
  starts = (segment_ids != 0) & (segment_ids != previous)
  run = jnp.cumsum(starts, axis=1) - 1  # the run each token belongs to
  count = jnp.sum(starts, axis=1)
  rows = jnp.arange(b)[:, None]
  dropped = max_segments + 1  # out of bounds: `mode="drop"` ignores it
  slot = jnp.where(starts & (run < max_segments), run, dropped)
  index = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
  offsets = jnp.full((b, max_segments + 1), -1, jnp.int32).at[rows, slot].set(index, mode="drop")
  member = jnp.where((segment_ids != 0) & (run < max_segments), run, dropped)
  lengths = jnp.zeros((b, max_segments), jnp.int32).at[rows, member].add(1, mode="drop")
  lengths = jnp.where(jnp.arange(max_segments) < count[:, None], lengths, -1)
  ordered = jnp.sort(segment_ids, axis=1)
  new_id = (ordered != 0) & (ordered != jnp.pad(ordered[:, :-1], ((0, 0), (1, 0))))
  distinct = jnp.sum(new_id, axis=1)
  return PackedSegments(offsets, lengths, (count <= max_segments) & (count == distinct))


def max_segments_for(length: int) -> int:
  """The static episodes-per-row bound of the packed cuDNN path (at least 2: 1 is unpacked)."""
  return max(2, length // _TOKENS_PER_SEGMENT_BOUND)


@functools.lru_cache(maxsize=None)
def _packed_offsets_stride_kv_heads() -> bool:
  """Whether this JAX strides packed kv offsets by the kv head count.

  JAX 0.10.2 and 0.11.0 multiply the kv offsets by the *query* head count
  (``_fix_seqlen_offsets``; fixed upstream by jax-ml/jax PR #39521), which
  points grouped-query keys at the wrong tokens. Probed on the helper itself,
  so any version that carries the fix is recognised.
  """
  try:
    from jax._src.cudnn import fused_attention_stablehlo as fa  # pylint: disable=g-import-not-at-top
    with jax.ensure_compile_time_eval():
      lengths = np.ones((1, 2), np.int32)
      offsets = np.array([[0, 1, -1]], np.int32)
      # query: 2 heads, key: 1 head, head_dim 1: token 1 is at element 1 of the keys.
      *_, kv_offsets = fa._fix_seqlen_offsets(  # pylint: disable=protected-access
          lengths, lengths, offsets, offsets, jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 1, 1)))
      return int(kv_offsets[0, 1]) == 1
  except (ImportError, AttributeError, TypeError, ValueError):
    return False  # unknown: repeating kv heads is correct either way


def _cudnn_packed_kernel(q, k, v, segments: PackedSegments, scale: float, window: int | None):
  """cuDNN flash attention in the packed layout (JAX 0.10-0.11's semi-private entry point).

  Within each (offset, length) episode: causal, and with ``window`` keys at
  ``q - window < k <= q`` (cuDNN's ``sliding_window_length``, what
  ``jax.nn.dot_product_attention(local_window_size=(window - 1, 0))`` passes).
  Positions outside every episode are left undefined.
  """
  from jax._src.cudnn import fused_attention_stablehlo as fa  # pylint: disable=g-import-not-at-top
  return fa.dot_product_attention(
      q, k, v, None, None, segments.lengths, segments.lengths, segments.offsets, segments.offsets,
      scale=scale, mask_type=fa.MaskType.PADDING_CAUSAL, qkv_layout="BTNH",
      sliding_window_length=window)


def cudnn_attention(q, k, v, segment_ids, is_local, scale: float, local_window: int | None,
                    max_segments: int):
  """cuDNN flash attention on packed rows without a mask; same contract as dense.

  Each row's episodes become (offset, length) pairs (``packed_segments``), so
  cuDNN computes only within episodes: no ``[length, length]`` mask or bias,
  nothing across episodes. Padding positions come out 0 with 0 gradient
  (cuDNN leaves them undefined). A row ``packed_segments`` marks invalid (more
  than ``max_segments`` episodes, or a segment in two runs) comes out NaN, so
  a training step on it fails loudly rather than learning from wrong
  attention. ``is_local`` (traced bool) selects the sliding-window kernel.
  Under a mesh the caller shards batch/heads with ``shard_map``.
  """
  segments = packed_segments(segment_ids, max_segments)
  rep = q.shape[2] // k.shape[2]
  if rep > 1 and not _packed_offsets_stride_kv_heads():
    k, v = jnp.repeat(k, rep, axis=2), jnp.repeat(v, rep, axis=2)
  inside = (segment_ids != 0)[:, :, None, None]
  q, k, v = (jnp.where(inside, x, jnp.zeros((), x.dtype)) for x in (q, k, v))
  out = _windowed(lambda w: _cudnn_packed_kernel(q, k, v, segments, scale, w), is_local,
                  local_window)
  out = jnp.where(inside, out, jnp.zeros((), out.dtype))
  return jnp.where(segments.valid[:, None, None, None], out, jnp.asarray(jnp.nan, out.dtype))


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
    windows = {w for w in cfg.layer_windows if w is not None}
    local = max(windows) if windows else None
    kernel = self._segment_kernel(q.dtype, q.shape[1], prefix_segment_ids is not None)
    if kernel is not None:
      fn = functools.partial(kernel, scale=cfg.attn_scale, local_window=local)
      out = sharding.shard_batch_heads(fn, q, k, v, segment_ids, window < GLOBAL_WINDOW)
    else:
      mask = attention_mask(segment_ids, positions, window, prefix_segment_ids)
      if cfg.attention_backend == "dense":
        out = dense_attention(q, k, v, mask, cfg.attn_scale)
      else:
        implementation = "cudnn" if cfg.attention_backend == "cudnn" else "xla"
        out = sdpa_attention(q, k, v, mask, cfg.attn_scale, implementation)
    return self.output(out, lora)

  def _segment_kernel(self, dtype, length: int, shared_prefix: bool):
    """The per-device kernel that takes segment ids instead of a mask, or None to use the mask.

    Checks first that a ``cudnn`` backend can run here (``cudnn_layout``).
    """
    backend = self.cfg.attention_backend
    if backend == "cudnn":
      layout = cudnn_layout(self.cfg.head_dim, dtype, *_device_facts())
      if layout == "packed" and not shared_prefix:
        return functools.partial(cudnn_attention, max_segments=max_segments_for(length))
    if backend == "splash":
      if not shared_prefix:
        return functools.partial(splash_attention, interpret=jax.default_backend() != "tpu")
      logging.info("splash attention cannot mask shared prefixes; using the xla backend here")
    return None

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
