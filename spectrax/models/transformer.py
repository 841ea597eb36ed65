"""The decoder: embeddings, a scanned stack of layers, the final norm and the output head.

One ``Transformer`` covers Gemma 3, Llama 3 and Qwen 3; ``ModelConfig`` flags
pick the norm style, sandwich norms, QK-norm, activation, rope and windows.
The layers are created with ``nnx.vmap`` (every layer parameter gets a leading
``layers`` axis) and applied with ``jax.lax.scan``, so compile time does not
grow with depth. What differs between layers (Gemma 3's local/global pattern:
window size and rope frequencies) is scanned *data*, not unrolled code.

Usage::

    model = Transformer(cfg, rngs=nnx.Rngs(0))
    hidden = model(tokens, positions, segment_ids)      # [B, L, D] cfg.dtype
    logits = model.logits(tokens, positions, segment_ids)  # [B, L, V] float32
    # For memory-lean losses (spectrax.models.loss): model.head() -> [D, V].
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from spectrax.parallel import sharding
from spectrax.models import lora as lora_lib
from spectrax.models import remat
from spectrax.models.attention import Attention
from spectrax.models.config import ModelConfig
from spectrax.models.layers import Mlp, RMSNorm, param, softcap

class DecoderLayer(nnx.Module):
  """Pre-norm block; with ``sandwich_norms`` (Gemma 3) also post-norms on both branches."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    norm = functools.partial(RMSNorm, cfg.hidden_size, "embed", eps=cfg.norm_eps,
                             plus_one=cfg.norm_plus_one, param_dtype=cfg.param_dtype, rngs=rngs)
    self.pre_attn_norm = norm()
    self.attn = Attention(cfg, rngs=rngs)
    self.pre_mlp_norm = norm()
    self.mlp = Mlp(cfg.hidden_size, cfg.intermediate_size, cfg.activation,
                   param_dtype=cfg.param_dtype, rngs=rngs)
    if cfg.sandwich_norms:
      self.post_attn_norm = norm()
      self.post_mlp_norm = norm()
    self.sandwich = cfg.sandwich_norms

  def __call__(self, x, positions, segment_ids, window, inv_freq, prefix_segment_ids=None,
               lora=None):
    """x: ``[batch, length, embed]`` -> same shape and dtype (``lora``: this layer's adapters)."""
    return self.residual_block(x, lambda h: self.attn(h, positions, segment_ids, window, inv_freq,
                                                       prefix_segment_ids, lora), lora)

  def residual_block(self, x, attend, lora=None):
    """The residual block around ``attend`` (normed ``x`` -> ``[batch, length, embed]``).

    ``__call__`` passes self-attention; ``decode.py`` passes attention over its KV cache.
    """
    h = attend(self.pre_attn_norm(x))
    if self.sandwich:
      h = self.post_attn_norm(h)
    x = x + h
    h = self.mlp(self.pre_mlp_norm(x), lora)
    if self.sandwich:
      h = self.post_mlp_norm(h)
    return sharding.constrain(x + h, ("batch", "length", "embed"))


class Transformer(nnx.Module):
  """Decoder-only language model. Parameters carry logical axis names only."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.config = cfg
    init = jax.nn.initializers.normal(0.02)
    self.embed = param(rngs, init, (cfg.vocab_size, cfg.hidden_size), ("vocab", "embed"),
                       cfg.param_dtype)

    @nnx.split_rngs(splits=cfg.num_layers)
    @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
    def make_layers(rngs):
      return DecoderLayer(cfg, rngs=rngs)

    self.layers = make_layers(rngs)
    self.final_norm = RMSNorm(cfg.hidden_size, "embed", eps=cfg.norm_eps,
                              plus_one=cfg.norm_plus_one, param_dtype=cfg.param_dtype, rngs=rngs)
    if not cfg.tie_embeddings:
      # [vocab, embed] like the embedding (and HF's lm_head), so import and
      # export never transpose the largest tensor; head() transposes in-graph.
      self.lm_head = param(rngs, init, (cfg.vocab_size, cfg.hidden_size), ("vocab", "embed"),
                           cfg.param_dtype)

  def __call__(self, tokens: jax.Array, positions: jax.Array | None = None,
               segment_ids: jax.Array | None = None,
               prefix_segment_ids: jax.Array | None = None,
               lora: "lora_lib.Adapters | None" = None) -> jax.Array:
    """Final hidden states (after the final norm).

    Args:
      tokens: ``[batch, length]`` int32.
      positions: ``[batch, length]`` int32, restarting at 0 in each packed
        segment; default ``arange(length)``.
      segment_ids: ``[batch, length]`` int32, 0 = padding; default all 1.
      prefix_segment_ids: optional ``[batch, length]`` int32: a segment each
        token may also attend (a prompt shared by several options; see
        ``spectrax/models/attention.py``), 0 = none.
      lora: low-rank adapters added to the targeted projections
        (``spectrax.models.lora``; their ``rng`` drives LoRA dropout), or None.

    Returns:
      ``[batch, length, hidden_size]`` in ``config.dtype``.
    """
    cfg = self.config
    if positions is None:
      positions = jnp.broadcast_to(jnp.arange(tokens.shape[1], dtype=jnp.int32), tokens.shape)
    if segment_ids is None:
      segment_ids = jnp.ones(tokens.shape, jnp.int32)
    x = self.embed_tokens(tokens)
    graphdef, state = nnx.split(self.layers)

    def body(x, per_layer):
      layer_state, window, inv_freq, adapters, index = per_layer
      layer = nnx.merge(graphdef, layer_state)
      layer_lora = None
      if lora is not None:
        rng = None if lora.rng is None else jax.random.fold_in(lora.rng, index)
        layer_lora = lora_lib.LayerLora(lora.config, adapters, rng)
      return layer(x, positions, segment_ids, window, inv_freq, prefix_segment_ids,
                   layer_lora), None

    body = remat.apply(body, cfg.remat_policy)
    per_layer = (state, jnp.asarray(cfg.window_array()), jnp.asarray(cfg.inv_freq_array()),
                 None if lora is None else lora.weights,
                 jnp.arange(cfg.num_layers, dtype=jnp.int32))
    x, _ = jax.lax.scan(body, x, per_layer)
    return self.final_norm(x)

  def embed_tokens(self, tokens: jax.Array) -> jax.Array:
    """``[batch, length]`` int32 -> ``[batch, length, hidden_size]`` ``config.dtype`` (Gemma: scaled)."""
    dt = jnp.dtype(self.config.dtype)
    # Looked up where the table's `embed` shard lives (every row of the batch,
    # that shard of each row) and cast there, so the move to the batch layout
    # below carries compute-dtype values within a data row. Left to sharding
    # propagation, the lookup moved float32 rows, and gathered them across
    # data rows when the step maps over them (spectrax/training/step.py).
    tokens = sharding.constrain(tokens, (None, "length"))
    x = sharding.constrain(jnp.take(self.embed[...], tokens, axis=0).astype(dt),
                           (None, "length", "embed"))
    if self.config.embed_scale:  # in the activation dtype, as transformers rounds it
      x = x * jnp.asarray(self.config.hidden_size**0.5, dt)
    return sharding.constrain(x, ("batch", "length", "embed"))

  def head(self) -> jax.Array:
    """The output projection ``[hidden_size, vocab]`` (the embedding transposed when tied)."""
    table = self.embed if self.config.tie_embeddings else self.lm_head
    return table[...].T

  def logits(self, tokens, positions=None, segment_ids=None) -> jax.Array:
    """Full logits ``[batch, length, vocab]`` float32 (soft-capped if configured). For tests and small vocabularies."""
    return self.logits_from_hidden(self(tokens, positions, segment_ids))

  def logits_from_hidden(self, hidden: jax.Array) -> jax.Array:
    """``[batch, length, hidden_size]`` -> ``[batch, length, vocab]`` float32, soft-capped."""
    logits = jnp.einsum("bld,dv->blv", hidden, self.head().astype(hidden.dtype),
                        preferred_element_type=jnp.float32)
    return softcap(logits, self.config.final_logit_softcap)


def reconfigure(model: Transformer, **changes) -> Transformer:
  """The same parameters under a changed config (e.g. ``attention_backend``, ``remat_policy``).

  Changes must keep every parameter's shape; the arrays are shared, not copied.
  """
  cfg = dataclasses.replace(model.config, **changes)
  graphdef, _ = nnx.split(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))))
  return nnx.merge(graphdef, nnx.state(model))


def abstract_model(cfg: ModelConfig) -> tuple[nnx.GraphDef, nnx.State]:
  """GraphDef and abstract state (ShapeDtypeStructs) of a model, without allocating it."""
  abstract = nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))
  return nnx.split(abstract)


def param_shardings(state: nnx.State, mesh: Mesh | None, rules) -> nnx.State:
  """NamedShardings for ``state`` (single device when ``mesh`` is None)."""
  if mesh is None:
    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    rules = [(name, None) for name, _ in sharding.DEFAULT_RULES]  # all replicated
  return sharding.shardings(state, mesh, rules)


def init_model(cfg: ModelConfig, *, mesh: Mesh | None = None, rules=sharding.DEFAULT_RULES,
               seed: int = 0) -> Transformer:
  """A freshly initialised model, each parameter created directly in its sharding."""
  graphdef, abstract = abstract_model(cfg)
  targets = param_shardings(abstract, mesh, rules)
  state = jax.jit(lambda: nnx.state(Transformer(cfg, rngs=nnx.Rngs(seed))), out_shardings=targets)()
  return nnx.merge(graphdef, state)
