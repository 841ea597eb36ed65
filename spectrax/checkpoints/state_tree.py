"""Train state ⇄ a flat dict of arrays with plain names, for orbax.

The state holds nnx.State and optax namedtuples; a flat `{name: array}` dict
is the most portable thing to checkpoint, and its names read well on disk
(`params.layers.attn.q`, `opt_state.1.0.mu.embed`).
"""

from __future__ import annotations

from typing import Any

import jax


def _part(key) -> str:
  for attr in ("key", "idx", "name"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def leaf_name(path) -> str:
  parts = [_part(k) for k in path]
  if parts and parts[-1] == "value":  # nnx.Variable's payload.
    parts = parts[:-1]
  return ".".join(parts)


def flatten_state(tree) -> dict[str, Any]:
  flat = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    name = leaf_name(path)
    if name in flat:
      raise ValueError(f"two state leaves are both named {name!r}.")
    flat[name] = leaf
  return flat


def unflatten_state(flat: dict[str, Any], like):
  """`flat` arranged like `like` (a tree with the same leaf names)."""
  paths, treedef = jax.tree_util.tree_flatten_with_path(like)
  missing = [leaf_name(p) for p, _ in paths if leaf_name(p) not in flat]
  if missing:
    raise ValueError(f"the checkpoint lacks state leaves {missing[:5]} "
                     f"({len(missing)} in all): was it written by another "
                     "model or optimizer config?")
  return treedef.unflatten([flat[leaf_name(p)] for p, _ in paths])
