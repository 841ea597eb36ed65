"""Building blocks of the decoder: parameters with logical axes, RMSNorm, RoPE, MLP, soft-cap.

Every parameter is an ``nnx.Param`` whose ``out_sharding`` metadata holds
*logical* axis names (``embed``, ``heads``, ``mlp``...). Eager sharding is off:
the model never needs a mesh to be built, and ``spectrax.parallel.sharding`` maps the
names to mesh axes in one place.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from spectrax.models import remat

Initializer = jax.nn.initializers.Initializer


def param(rngs: nnx.Rngs, init: Initializer, shape: Sequence[int], axes: Sequence[str],
          dtype) -> nnx.Param:
  """An ``nnx.Param`` of ``shape`` annotated with logical ``axes`` (one per dim)."""
  if len(axes) != len(shape):
    raise ValueError(f"logical axes {tuple(axes)} do not match shape {tuple(shape)}")
  return nnx.Param(init(rngs.params(), tuple(shape), dtype), out_sharding=tuple(axes),
                   eager_sharding=False)


class RMSNorm(nnx.Module):
  """RMSNorm over the last axis, computed in float32.

  ``plus_one`` selects Gemma's ``x * (1 + w)`` (weights stored as HF stores
  them, zero-centred) instead of Llama's ``x * w``. Gemma multiplies before
  casting back; Llama casts then multiplies: in float32 both agree, and in
  bf16 we follow each family.
  """

  def __init__(self, dim: int, axis_name: str, *, eps: float, plus_one: bool, param_dtype,
               rngs: nnx.Rngs):
    init = jax.nn.initializers.zeros if plus_one else jax.nn.initializers.ones
    self.scale = param(rngs, init, (dim,), (axis_name,), param_dtype)
    self.eps = eps
    self.plus_one = plus_one

  def __call__(self, x: jax.Array) -> jax.Array:
    """x: ``[..., dim]`` any float dtype -> same shape and dtype."""
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    w = self.scale[...]
    if self.plus_one:
      return (normed * (1.0 + w.astype(jnp.float32))).astype(x.dtype)
    return w.astype(x.dtype) * normed.astype(x.dtype)


def softcap(logits: jax.Array, cap: float | None) -> jax.Array:
  """Final-logit soft-capping, ``cap * tanh(logits / cap)`` (Gemma); ``logits`` when ``cap`` is None.

  One definition for the full-logits path, the chunked loss and the scorer,
  so all three round the same way. Same shape and dtype as ``logits``.
  """
  if cap is None:
    return logits
  return jnp.tanh(logits / cap) * cap


def apply_rope(x: jax.Array, positions: jax.Array, inv_freq: jax.Array) -> jax.Array:
  """Rotary embedding in the "rotate half" layout transformers uses.

  Args:
    x: ``[batch, length, heads, head_dim]``.
    positions: ``[batch, length]`` int32 (restart at 0 in each packed segment).
    inv_freq: ``[head_dim // 2]`` float32.

  Returns:
    ``x`` rotated, same shape and dtype. Angles are computed in float32 and
    cos/sin cast to ``x.dtype`` before the product, as transformers does.
  """
  angles = positions.astype(jnp.float32)[..., None] * inv_freq.astype(jnp.float32)
  angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]
  cos, sin = jnp.cos(angles).astype(x.dtype), jnp.sin(angles).astype(x.dtype)
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
  return x * cos + rotated * sin


def project(x: jax.Array, w: jax.Array, contract: int = 1, **dot_kwargs) -> jax.Array:
  """``x[..., K]`` times ``w[K, N...]`` (``contract`` trailing/leading dims in ``K``).

  Equal to ``jnp.tensordot(x, w, contract)``. On CPU the leading dims are
  folded into rows first: XLA:CPU runs a 2-D GEMM (and its gradients) about
  twice as fast as the same product as a 3-D ``dot_general``. Elsewhere the
  einsum form is kept, which sharding propagation handles best.
  """
  if jax.default_backend() != "cpu":
    return jnp.tensordot(x, w, contract, **dot_kwargs)
  lead, inner = x.shape[:x.ndim - contract], w.shape[contract:]
  k = int(np.prod(w.shape[:contract]))
  out = jnp.matmul(x.reshape(-1, k), w.reshape(k, -1), **dot_kwargs)
  return out.reshape(*lead, *inner)


class Mlp(nnx.Module):
  """Gated MLP: ``down(act(gate(x)) * up(x))`` with GeGLU (tanh gelu) or SwiGLU."""

  def __init__(self, hidden: int, inner: int, activation: str, *, param_dtype, rngs: nnx.Rngs):
    init = jax.nn.initializers.normal(0.02)
    self.gate = param(rngs, init, (hidden, inner), ("embed", "mlp"), param_dtype)
    self.up = param(rngs, init, (hidden, inner), ("embed", "mlp"), param_dtype)
    self.down = param(rngs, init, (inner, hidden), ("mlp", "embed"), param_dtype)
    self.activation = activation

  def __call__(self, x: jax.Array, lora=None) -> jax.Array:
    """x: ``[batch, length, embed]`` compute dtype -> same.

    ``lora``: this layer's adapters (``spectrax.models.lora.LayerLora``) or None.
    """
    dt = x.dtype
    proj = lora.project if lora is not None else plain_project
    gate = checkpoint_name(proj("gate", x, self.gate[...].astype(dt)), remat.MLP_GATE)
    up = checkpoint_name(proj("up", x, self.up[...].astype(dt)), remat.MLP_UP)
    if self.activation == "gelu_tanh":
      act = jax.nn.gelu(gate, approximate=True)
    else:
      act = jax.nn.silu(gate)
    return checkpoint_name(proj("down", act * up, self.down[...].astype(dt)), remat.MLP_DOWN)


def plain_project(name: str, x: jax.Array, w: jax.Array, contract: int = 1) -> jax.Array:
  """``project`` under a target name (the signature adapters share)."""
  del name
  return project(x, w, contract)
