"""The training step: one pure, jitted, sharded function of (state, batch).

Loss = mean cross-entropy over the loss tokens of the *global* batch: the
gradient of the summed NLL of every micro-batch is accumulated inside the
step (`lax.scan`) and divided once by the global loss-token count, so packed
and unpacked batches, and one or many micro-batches, give the same update.
Logits exist one chunk of positions at a time (`spectrax.models.loss`).

On a mesh with a data axis (several nodes or slices, `mesh.dcn_data`), each
data row accumulates its own gradient, reduced only over its FSDP shards,
and the rows' gradients are summed once per step: one all-reduce of a
gradient shard crosses the slow network per step, not one per micro-batch
(`Trainer._grouped_value_and_grad`).

Besides the batch, the step takes each process's *signals* (`Trainer.signals`):
whether its data ran out and whether it was asked to stop. The step reduces
them over all processes, so the training loop learns what every process
agreed from the step's outputs, without a collective of its own
(spectrax/training/loop.py). A step whose every process has run out has no
rows at all and changes nothing in the state.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from spectrax.parallel import sharding
from spectrax.models import lora as lora_lib
from spectrax.models.loss import chunked_cross_entropy
from spectrax.models import ModelConfig, Transformer

BATCH_KEYS = ("inputs", "targets", "loss_mask", "segment_ids", "positions")
DATA_AXIS = "data"  # the mesh axis of data parallelism (across nodes / slices)
# The columns of the step's signals, int32 [batch, 2] (`Trainer.signals`).
DRAINED, STOP = 0, 1


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  learning_rate: float = 3e-6
  schedule: str = "linear"  # "linear" | "cosine" | "constant" (after warmup)
  warmup_steps: int = 0
  end_learning_rate_fraction: float = 0.0
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8
  weight_decay: float = 0.0
  grad_clip_norm: float = 1.0  # 0 disables clipping.
  mu_dtype: str = "float32"


def learning_rate_schedule(cfg: OptimizerConfig, num_steps: int) -> optax.Schedule:
  peak, end = cfg.learning_rate, cfg.learning_rate * cfg.end_learning_rate_fraction
  decay_steps = max(1, num_steps - cfg.warmup_steps)
  if cfg.schedule == "linear":
    decay = optax.linear_schedule(peak, end, decay_steps)
  elif cfg.schedule == "cosine":
    decay = optax.cosine_decay_schedule(peak, decay_steps,
                                        alpha=cfg.end_learning_rate_fraction)
  elif cfg.schedule == "constant":
    decay = optax.constant_schedule(peak)
  else:
    raise ValueError(f"optimizer.schedule={cfg.schedule!r}: use 'linear', "
                     "'cosine' or 'constant'.")
  if cfg.warmup_steps <= 0:
    return decay
  warmup = optax.linear_schedule(0.0, peak, cfg.warmup_steps)
  return optax.join_schedules([warmup, decay], [cfg.warmup_steps])


GRAD_NORM = "grad_norm"  # the extra argument of `update` that carries it


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformationExtraArgs:
  """`optax.clip_by_global_norm` that reuses a global norm already computed.

  The step computes the gradient norm once, for its metrics, and passes it
  as `update(..., grad_norm=norm)`; optax's own transformation would reduce
  over every gradient again (on a sharded mesh XLA does not merge the two).
  Without the argument it computes the norm itself. The arithmetic is
  optax's: below `max_norm` the updates pass unchanged (so a zero norm
  divides nothing), above it each leaf is `(t / norm) * max_norm`, and a
  NaN norm gives NaN updates (the step's finiteness check sees them). The
  state is optax's empty state, so checkpoints keep their layout.
  """

  def update_fn(updates, state, params=None, **extra_args):
    del params
    g_norm = extra_args.get(GRAD_NORM)
    if g_norm is None:
      g_norm = optax.tree.norm(updates)
    trigger = jnp.squeeze(g_norm < max_norm)

    def clip(t):
      return jax.lax.select(trigger, t, (t / g_norm.astype(t.dtype)) * max_norm)
    return jax.tree.map(clip, updates), state

  return optax.GradientTransformationExtraArgs(optax.init_empty_state, update_fn)


def make_optimizer(cfg: OptimizerConfig, num_steps: int
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """AdamW after global-norm clipping (`clip_by_global_norm`: give `update`
  the gradient norm as `grad_norm=` to clip with it), and its schedule."""
  schedule = learning_rate_schedule(cfg, num_steps)
  parts = []
  if cfg.grad_clip_norm > 0:
    parts.append(clip_by_global_norm(cfg.grad_clip_norm))
  parts.append(optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                           weight_decay=cfg.weight_decay,
                           mu_dtype=jnp.dtype(cfg.mu_dtype)))
  return optax.chain(*parts), schedule


def cast_to_compute_dtype(path, p) -> bool:
  """Whether the step casts parameter `p` (at key path `path` of the params)
  to the compute dtype where it is stored (`Trainer._loss`): weight
  matrices, whose gathers and gradients then move compute-dtype bytes; not
  vectors, nor the embedding table."""
  return p.ndim >= 2 and jnp.issubdtype(p.dtype, jnp.floating) and path[0].key != "embed"


def batch_sharding(mesh: Mesh, rules) -> NamedSharding:
  return NamedSharding(mesh, sharding.logical_to_spec(("batch", "length"),
                                                      rules, mesh))


class Trainer:
  """Owns the jitted step and the shardings of the train state.

  The state is a dict `{"step": int32[], "params": nnx.State,
  "opt_state": optax state}`; params are float32 master weights by default
  (`model.param_dtype`), compute runs in `model.dtype`.

  With `lora` (a `LoraConfig`), "params" are the float32 adapters
  (`spectrax.models.lora`) and the optimizer sees only them; the model's own
  weights are the frozen base, given once with `set_frozen` (held in the
  compute dtype: `model_cfg.param_dtype` should equal `model_cfg.dtype`) and
  passed to the jitted step as a separate, never donated, never
  differentiated argument. Checkpoints of the state then hold only adapters.
  """

  def __init__(self, model_cfg: ModelConfig, optimizer: optax.GradientTransformation,
               mesh: Mesh, rules, *, microbatches: int = 1, chunk_size: int = 256,
               skip_nonfinite: bool = False, lora: lora_lib.LoraConfig | None = None,
               seed: int = 0):
    self.model_cfg = model_cfg
    # Extra arguments (the step's `grad_norm`) reach the transformations
    # that take them; any other optimizer ignores them.
    self.optimizer = optax.with_extra_args_support(optimizer)
    self.mesh = mesh
    self.rules = tuple(tuple(r) for r in rules)
    self.microbatches = microbatches
    self.chunk_size = chunk_size
    self.skip_nonfinite = skip_nonfinite
    self.lora = lora
    self.seed = seed
    abstract = nnx.eval_shape(lambda: Transformer(model_cfg, rngs=nnx.Rngs(0)))
    self.graphdef, abstract_params = nnx.split(abstract, nnx.Param)
    # A State whose leaves are NamedShardings (a pytree prefix for jit).
    base_shardings = sharding.shardings(abstract_params, mesh, self.rules)
    if lora is None:
      self.abstract_params = abstract_params
      self.param_shardings = base_shardings
      self.frozen_shardings = None
    else:
      self.abstract_params = lora_lib.abstract_adapters(model_cfg, lora)
      self.param_shardings = lora_lib.adapter_shardings(model_cfg, lora, mesh, self.rules)
      self.abstract_frozen = abstract_params
      self.frozen_shardings = base_shardings
    self.frozen = None  # the base params of a LoRA run (set_frozen)
    self.batch_sharding = batch_sharding(mesh, self.rules)
    spec = self.batch_sharding.spec
    # The signals' rows are laid out as the batch's: each process owns its own.
    self.signals_sharding = NamedSharding(
        mesh, PartitionSpec(spec[0] if len(spec) else None, None))
    self._signals = {}
    batch_axes = jax.tree.leaves(tuple(self.batch_sharding.spec[:1]))
    self.batch_shards = math.prod(mesh.shape[a] for a in batch_axes)
    # Data rows that accumulate gradients apart (see _grouped_value_and_grad).
    # Not for LoRA: its adapters' gradients are small, and dropout masks drawn
    # per row group would depend on the mesh.
    self.data_groups = (mesh.shape[DATA_AXIS] if DATA_AXIS in batch_axes and lora is None
                        else 1)
    self._step_fn = None

  # -- state ---------------------------------------------------------------

  def state_shardings(self) -> dict:
    """Shardings of the train state: moments like their parameters."""
    abstract_opt = jax.eval_shape(self.optimizer.init, self.abstract_params)
    params = [(jax.tree_util.keystr(path), leaf.shape, s) for (path, leaf), s in
              zip(jax.tree_util.tree_flatten_with_path(self.abstract_params)[0],
                  jax.tree.leaves(self.param_shardings))]
    replicated = NamedSharding(self.mesh, PartitionSpec())

    def like_param(path, leaf):
      key = jax.tree_util.keystr(path)
      for pkey, shape, s in params:
        if key.endswith(pkey) and leaf.shape == shape:
          return s
      return replicated  # Step counts and other scalars.
    return {"step": replicated, "params": self.param_shardings,
            "opt_state": jax.tree_util.tree_map_with_path(like_param,
                                                          abstract_opt)}

  def init_adapters(self):
    """Fresh adapters of a LoRA run (from `seed`), in their shardings."""
    key = jax.random.key(self.seed)
    init = jax.jit(lambda: lora_lib.init_adapters(self.model_cfg, self.lora, key),
                   out_shardings=self.param_shardings)
    return init()

  def set_frozen(self, base_params) -> None:
    """The frozen base of a LoRA run: the model's `nnx.Param` state, placed
    per the rules (as `load_hf` / `init_model` place it)."""
    if self.lora is None:
      raise ValueError("set_frozen is for LoRA runs (Trainer(..., lora=...)).")
    self.frozen = base_params

  def abstract_frozen_state(self):
    """The frozen base as sharded ShapeDtypeStructs (for planning)."""
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
        self.abstract_frozen, self.frozen_shardings)

  def init_state(self, params) -> dict:
    """A train state from model params (already sharded)."""
    shardings = self.state_shardings()
    init = jax.jit(lambda p: {"step": jnp.zeros((), jnp.int32), "params": p,
                              "opt_state": self.optimizer.init(p)},
                   out_shardings=shardings)
    with jax.set_mesh(self.mesh):
      return init(params)

  def abstract_state(self) -> dict:
    """ShapeDtypeStructs with shardings, for orbax restore and planning."""
    shardings = self.state_shardings()
    shapes = jax.eval_shape(
        lambda p: {"step": jnp.zeros((), jnp.int32), "params": p,
                   "opt_state": self.optimizer.init(p)}, self.abstract_params)
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
        shapes, shardings)

  # -- the step ------------------------------------------------------------

  def signals(self, rows: int, *, drained: bool = False, stop: bool = False,
              abstract: bool = False):
    """This process's signals as the step's global int32 [rows, 2] input.

    `rows` is the global batch size; column DRAINED is 1 where this
    process's data ran out (its rows are empty), column STOP 1 where it was
    asked to stop (a signal). Every process fills only its own rows, so
    making it communicates nothing; the few distinct arrays are made once.
    `abstract`: a ShapeDtypeStruct, for lowering.
    """
    if abstract:
      return jax.ShapeDtypeStruct((rows, 2), jnp.int32, sharding=self.signals_sharding)
    key = (rows, bool(drained), bool(stop))
    if key not in self._signals:
      full = np.broadcast_to(np.array([drained, stop], np.int32), (rows, 2))
      self._signals[key] = jax.make_array_from_callback(
          (rows, 2), self.signals_sharding, lambda index: full[index])
    return self._signals[key]

  def _loss(self, params, batch, frozen=None, rng=None, batch_shards=None):
    # Weight matrices are cast to the compute dtype here, pinned to their
    # FSDP shards, so every all-gather moves compute-dtype bytes (a cast at
    # each use leaves it to sharding propagation whether the cast comes before
    # or after the gather; for the head it came after). Kept in the master
    # dtype: vectors (norm scales: small, and the norms compute in float32)
    # and the embedding table, whose lookup gathers rows, not the table, and
    # whose gradient, a scatter-add over every token of the batch, should sum
    # in float32. The head enters the loss as the master weight: the loss
    # casts it before its one gather and returns its gradient in float32.
    dtype = jnp.dtype(self.model_cfg.dtype)

    def cast(path, p, s):
      if not cast_to_compute_dtype(path, p):
        return p
      return jax.lax.with_sharding_constraint(p.astype(dtype), s)

    if self.lora is None:
      base, adapters = params, None
      compute = jax.tree_util.tree_map_with_path(cast, base, self.param_shardings)
    else:
      # The frozen base is held in the compute dtype: used as it is (a cast
      # or a sharding constraint here would make XLA copy the whole base).
      base = compute = frozen
      adapters = lora_lib.Adapters(self.lora, params, rng)
    hidden = nnx.merge(self.graphdef, compute)(
        batch["inputs"], batch["positions"], batch["segment_ids"], lora=adapters)
    return chunked_cross_entropy(
        hidden, nnx.merge(self.graphdef, base).head(), batch["targets"],
        batch["loss_mask"], softcap=self.model_cfg.final_logit_softcap,
        chunk_size=self.chunk_size, batch_shards=batch_shards or self.batch_shards)

  def _grouped_value_and_grad(self, params, mb):
    """`((nll, count), grads)` of each data row's part of micro-batch `mb`,
    each with a leading `[data_groups]` axis sharded over the data axis.

    `jax.vmap(..., spmd_axis_name="data")` maps the rows' parts over the
    data axis, under rules without it, so each row's weight gradient is
    reduced only within the row (over FSDP) and stays apart from the other
    rows'. Summed after the micro-batch loop, it is one data-axis
    all-reduce of each device's gradient shard per step; the single
    `value_and_grad` of the whole micro-batch makes XLA reduce over data
    and FSDP together in every micro-batch.
    """
    groups = self.data_groups
    parts = jax.tree.map(
        lambda x: x.reshape((groups, x.shape[0] // groups) + x.shape[1:]), mb)
    rules = sharding.without_axis(self.rules, DATA_AXIS)

    def one(part):
      with sharding.axis_rules(self.mesh, rules):
        return jax.value_and_grad(self._loss, has_aux=True)(
            params, part, batch_shards=self.batch_shards // groups)
    return jax.vmap(one, spmd_axis_name=DATA_AXIS)(parts)

  def _step(self, state, batch, signals, frozen=None):
    params = state["params"]
    n = self.microbatches
    # Micro-batch i is rows i, i+n, i+2n, ...: each device's contiguous rows
    # split into n equal parts locally, so the split moves nothing between
    # devices (contiguous micro-batches put micro-batch i on a few devices, and
    # XLA replicated the whole batch to re-shard each one).
    micro = jax.tree.map(
        lambda x: x.reshape((x.shape[0] // n, n) + x.shape[1:]).swapaxes(0, 1), batch)
    # LoRA dropout: a key per step and micro-batch, a pure function of the
    # step, so a resumed run draws the same masks.
    dropout = self.lora is not None and self.lora.dropout > 0
    step_key = (jax.random.fold_in(jax.random.key(self.seed + 1), state["step"])
                if dropout else None)

    groups = self.data_groups

    def by_group(g, s):  # a [groups, ...] gradient stack: one per data row
      return jax.lax.with_sharding_constraint(
          g, NamedSharding(self.mesh, PartitionSpec(DATA_AXIS, *s.spec)))

    def accumulate(carry, xs):
      grads, nll, count = carry
      mb, index = xs
      rng = None if step_key is None else jax.random.fold_in(step_key, index)
      args = (params, mb) if self.lora is None else (params, mb, frozen, rng)
      if groups > 1:
        (mb_nll, mb_count), g = self._grouped_value_and_grad(params, mb)
        mb_nll, mb_count = jnp.sum(mb_nll), jnp.sum(mb_count)
        g = jax.tree.map(by_group, g, self.param_shardings)
      else:
        (mb_nll, mb_count), g = jax.value_and_grad(self._loss, has_aux=True)(*args)
      return (jax.tree.map(jnp.add, grads, g), nll + mb_nll,
              count + mb_count), None

    if groups > 1:
      zeros = jax.tree.map(lambda p, s: by_group(jnp.zeros((groups,) + p.shape, p.dtype), s),
                           params, self.param_shardings)
    else:
      zeros = jax.tree.map(jnp.zeros_like, params)
    (grads, nll, count), _ = jax.lax.scan(
        accumulate, (zeros, jnp.zeros((), jnp.float32),
                     jnp.zeros((), jnp.float32)), (micro, jnp.arange(n)))
    if groups > 1:
      grads = jax.tree.map(lambda g: jnp.sum(g, axis=0), grads)
    denom = jnp.maximum(count, 1.0)
    grads = jax.tree.map(lambda g: g / denom, grads)
    loss = nll / denom
    # The one reduction over the gradients: metrics and clipping share it.
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    # Every process ran out: the batch is all padding, and the step must
    # leave the state exactly as it was (the loop learns of it a step late).
    drained = jnp.all(signals[:, DRAINED] > 0)
    keep = drained | ~finite if self.skip_nonfinite else drained

    def update(operands):
      params, opt_state = operands
      updates, opt_state = self.optimizer.update(grads, opt_state, params,
                                                 **{GRAD_NORM: grad_norm})
      return optax.apply_updates(params, updates), opt_state

    # A conditional, not a select of old and new state: XLA then needs no
    # second copy of the updated state (a select cost ~40% of the state in
    # temporaries on CPU; this costs nothing).
    new_params, opt_state = jax.lax.cond(keep, lambda operands: operands, update,
                                         (params, state["opt_state"]))
    new_state = {"step": state["step"] + (~drained).astype(state["step"].dtype),
                 "params": new_params, "opt_state": opt_state}
    metrics = {"loss": loss, "grad_norm": grad_norm, "loss_tokens": count,
               "finite": finite, "drained": drained,
               "stop": jnp.any(signals[:, STOP] > 0)}
    return new_state, metrics

  def step_fn(self):
    """`(state, batch[, signals]) -> (state, metrics)`, jitted with donated state.

    `signals` (`signals()`) defaults to no process drained or stopping;
    metrics "drained" and "stop" are their agreement over all processes.
    For a LoRA run the frozen base (`set_frozen`) is passed along as a
    further, not donated, argument; `.lower(state, batch)` works for both.
    """
    if self._step_fn is None:
      state_sh = self.state_shardings()
      batch_sh = {k: self.batch_sharding for k in BATCH_KEYS}
      replicated = NamedSharding(self.mesh, PartitionSpec())
      in_sh = (state_sh, batch_sh, self.signals_sharding)
      if self.lora is not None:
        in_sh += (self.frozen_shardings,)
      self._step_fn = _Step(self, jax.jit(
          self._traced_step, in_shardings=in_sh,
          out_shardings=(state_sh, replicated), donate_argnums=0))
    return self._step_fn

  def _traced_step(self, state, batch, signals, frozen=None):
    with sharding.axis_rules(self.mesh, self.rules):
      return self._step(state, batch, signals, frozen)

  def eval_fn(self):
    """`(params, batch) -> (nll_sum, count)`, jitted (LoRA: params are the adapters)."""
    def ev(params, batch, frozen=None):
      with sharding.axis_rules(self.mesh, self.rules):
        if self.lora is None:
          return self._loss(params, batch)
        return self._loss(params, batch, frozen)
    fn = jax.jit(ev)
    return fn if self.lora is None else _WithFrozen(self, fn)


def _frozen(trainer: Trainer, lowering: bool):
  """A LoRA trainer's frozen base (its abstract form when lowering before
  `set_frozen`)."""
  if trainer.frozen is not None:
    return trainer.frozen
  if lowering:
    return trainer.abstract_frozen_state()
  raise ValueError("a LoRA Trainer needs its frozen base: call set_frozen(params) first.")


class _WithFrozen:
  """A jitted `(x, batch, frozen)` called as `(x, batch)`: the trainer's frozen
  base is the third argument."""

  def __init__(self, trainer: Trainer, fn):
    self.trainer, self.fn = trainer, fn

  def __call__(self, x, batch):
    return self.fn(x, batch, _frozen(self.trainer, lowering=False))

  def lower(self, x, batch):
    return self.fn.lower(x, batch, _frozen(self.trainer, lowering=True))


class _Step:
  """The jitted `(state, batch, signals[, frozen])` called as
  `(state, batch[, signals])`: no signals means no process drained or
  stopping; a LoRA run's frozen base comes from the trainer."""

  def __init__(self, trainer: Trainer, fn):
    self.trainer, self.fn = trainer, fn

  def _rest(self, batch, signals, lowering: bool) -> tuple:
    t = self.trainer
    if signals is None:
      signals = t.signals(batch["inputs"].shape[0], abstract=lowering)
    return (signals,) if t.lora is None else (signals, _frozen(t, lowering))

  def __call__(self, state, batch, signals=None):
    return self.fn(state, batch, *self._rest(batch, signals, lowering=False))

  def lower(self, state, batch, signals=None):
    return self.fn.lower(state, batch, *self._rest(batch, signals, lowering=True))
