"""Named rematerialisation policies of the layer scan (``ModelConfig.remat_policy``).

The decoder layer tags its intermediate activations with
``jax.ad_checkpoint.checkpoint_name`` where they are produced (the base
projection and the LoRA path alike go through the same call sites in
``Attention.project`` / ``Attention.output`` and ``Mlp``). A policy names the
tags the backward pass keeps; everything else is recomputed from the layer's
input, which the scan always keeps. Tagged tensors per layer, shapes per row
of ``length`` tokens (``N`` heads, ``K`` kv heads, ``H`` head_dim, ``D``
hidden, ``F`` MLP width):

  query_proj / key_proj / value_proj   ``[length, N|K, H]`` raw projections
                                       (before QK-norm and rope, which are
                                       cheap to redo)
  attention_context                    ``[length, N, H]`` attention output,
                                       the out projection's input
  attention_out_proj                   ``[length, D]``
  mlp_gate_proj / mlp_up_proj          ``[length, F]``: the widest tensors
  mlp_down_proj                        ``[length, D]``

A name is only kept where the backward needs it (Llama's ``mlp_down_proj``
never is; Gemma 3's post-MLP norm needs it).

Usage::

    body = remat.apply(body, "save_qkv")   # jax.checkpoint(body, policy, prevent_cse=False)
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax

QUERY, KEY, VALUE = "query_proj", "key_proj", "value_proj"
CONTEXT = "attention_context"
ATTENTION_OUT = "attention_out_proj"
MLP_GATE, MLP_UP, MLP_DOWN = "mlp_gate_proj", "mlp_up_proj", "mlp_down_proj"
TAGS = (QUERY, KEY, VALUE, CONTEXT, ATTENTION_OUT, MLP_GATE, MLP_UP, MLP_DOWN)

_QKV = (QUERY, KEY, VALUE)
_cp = jax.checkpoint_policies


class Policy(NamedTuple):
  """One ``remat_policy`` value: what it means, the jax policy, what it offloads."""
  description: str
  jax_policy: Callable | None  # None with ``checkpoint``: save nothing
  offloaded: tuple[str, ...] = ()  # tags copied to pinned host memory
  checkpoint: bool = True  # False: no jax.checkpoint at all


# The single table of `model.remat_policy` values (config.py's REMAT_POLICIES),
# from most memory to least; one line each.
POLICIES = {
    "none": Policy("no remat: the backward keeps every intermediate (fastest, most memory)",
                   None, checkpoint=False),
    "dots": Policy("keep every matmul output, the [length, length] attention logits of "
                   "dense/xla attention included (jax's checkpoint_dots)",
                   _cp.checkpoint_dots),
    "dots_no_batch": Policy("keep every projection output, the wide MLP hidden ones included "
                            "(matmuls without batch dims)",
                            _cp.dots_with_no_batch_dims_saveable),
    "save_all_but_mlp_hidden": Policy(
        "keep every tagged tensor but the MLP's wide gate/up projections (recomputed, 2 of the "
        "7 matmuls)", _cp.save_any_names_but_these(MLP_GATE, MLP_UP)),
    "save_attention": Policy("keep q/k/v, the attention context and the out projection; "
                             "recompute the MLP", _cp.save_only_these_names(
                                 *_QKV, CONTEXT, ATTENTION_OUT)),
    "save_qkv": Policy("keep the q/k/v projections; recompute attention, its out projection "
                       "and the MLP", _cp.save_only_these_names(*_QKV)),
    "save_qkv_offloaded": Policy(
        "save_qkv with q/k/v copied to pinned host memory: device memory as full, FLOPs as "
        "save_qkv, host transfers in the step",
        _cp.save_and_offload_only_these_names(
            names_which_can_be_saved=[], names_which_can_be_offloaded=list(_QKV),
            offload_src="device", offload_dst="pinned_host"),
        offloaded=_QKV),
    "full": Policy("keep only each layer's input: the backward re-runs the whole forward "
                   "(+1 forward, about 4/3 of the FLOPs; least memory)", None),
}


def get(name: str) -> Policy:
  """The policy called ``name``; ValueError listing the valid names otherwise."""
  if name not in POLICIES:
    raise ValueError(f"remat_policy={name!r}; use one of {tuple(POLICIES)}")
  return POLICIES[name]


def apply(body: Callable, name: str) -> Callable:
  """``body`` under the named policy (unchanged for ``none``).

  ``prevent_cse=False``: the body runs inside ``lax.scan``, whose forward and
  backward are separate loops, so XLA cannot merge the recomputation away.
  """
  policy = get(name)
  if not policy.checkpoint:
    return body
  return jax.checkpoint(body, policy=policy.jax_policy, prevent_cse=False)
