"""Everything a training run needs before it has a train state.

`set_up` makes sure the suite exists, opens this process's data shards,
checks a restart against the run it continues, builds the mesh and decides
the number of steps. Mistakes in the config surface here as
`run_config.ConfigError` (or `RunDirError`), before anything is compiled and
before anything in the run directory changes: `write_run_files` writes
config.json, run.json and the tokenizer copy once the run has really started
(its state restored or initialised). `compilation_cache` keeps JAX's
compiled programs in the run directory while the run lasts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os

import jax
import numpy as np
from jax.sharding import Mesh

from data_pipelines.schema import MANIFEST
from spectrax.checkpoints.run_dir import RunDir, RunInfo, is_local
from spectrax.data import tokenizer_training
from spectrax.data.pipeline import DataConfig, Pipeline, shard_pipelines
from spectrax.data.suite_reader import Suite
from spectrax.data.tokenizer import snapshot_tokenizer
from spectrax.models import ModelConfig
from spectrax.parallel import distributed
from spectrax.parallel import sharding
from spectrax.training import run_config


def say(message: str) -> None:
  """Console output of the run: process 0 only."""
  if distributed.is_primary():
    print(message, flush=True)


@dataclasses.dataclass(frozen=True)
class RunSetup:
  """What a run is made of, decided before any train state exists."""
  run_dir: RunDir
  tokenizer: str | None  # the config's choice; None: the suite's
  data_cfg: DataConfig
  pipelines: list[Pipeline]  # this process's shards
  model_cfg: ModelConfig
  mesh: Mesh
  rules: tuple
  num_steps: int


def set_up(c, workdir: str) -> RunSetup:
  """Builds the suite if asked, opens the data, checks a restart against the
  existing run, builds the mesh; writes nothing in the run directory."""
  ensure_suite(c)
  run_dir = RunDir(workdir)
  tokenizer = run_config.tokenizer_path(c)
  data_cfg = run_config.data_config(c, tokenizer=tokenizer)
  try:
    pipelines = shard_pipelines(data_cfg, c.data.shards, jax.process_index(),
                                jax.process_count())
  except ValueError as e:
    raise run_config.ConfigError(str(e)) from e
  pipeline = pipelines[0]
  pipeline.check_fits()
  model_cfg = run_config.model_config(c, pipeline.tokenizer.vocab_size)
  run_dir.check_resumable(model_cfg)
  try:
    mesh = sharding.make_mesh(c.mesh.to_dict())
  except ValueError as e:
    raise run_config.ConfigError(f"mesh: {e} (--config.mesh.fsdp=-1 takes "
                                 "all remaining devices).") from e
  run_config.check_mesh(c, mesh)
  return RunSetup(run_dir, tokenizer, data_cfg, pipelines, model_cfg, mesh,
                  tuple(tuple(r) for r in c.sharding_rules),
                  _num_steps(c, pipeline, data_cfg))


def write_run_files(c, setup: RunSetup, lora: dict | None = None) -> None:
  """config.json, run.json and the tokenizer copy (process 0), atomically.

  `lora`: run.json's LoRA entry (adapter config and base identity), if any.

  Called once the state is restored or initialised: a start that fails
  before that (a changed model, an unreadable checkpoint) changes nothing.
  """
  if not distributed.is_primary():
    return
  run_dir, pipeline = setup.run_dir, setup.pipelines[0]
  run_dir.write_config(c.to_json_best_effort(indent=1))
  # The run directory carries its tokenizer: it can be moved or copied
  # (from a pod to a workstation) and still load (spectrax.load_model).
  copy = snapshot_tokenizer(pipeline.tokenizer_path, run_dir.tokenizer_dir)
  source = pipeline.tokenizer_path
  run_dir.write_run_info(RunInfo(
      template=c.data.template, tokenizer=run_dir.relative(copy),
      tokenizer_source=os.path.abspath(source) if is_local(source) else source,
      model_config=setup.model_cfg, lora=lora))


@contextlib.contextmanager
def compilation_cache(c, workdir: str | os.PathLike):
  """JAX's persistent compilation cache in `RunDir.compilation_cache`
  (WORKDIR/jax_cache) while the run lasts, so a restart (preemption,
  `stop_after`) loads the compiled step instead of compiling it again.

  Off with `train.compilation_cache=False`. A cache directory chosen already
  (`JAX_COMPILATION_CACHE_DIR`, which the launch scripts set, or
  `jax.config`) is kept. Yields the directory in use, or None.
  """
  chosen = jax.config.jax_compilation_cache_dir
  if chosen or not c.train.get("compilation_cache", True):
    yield chosen or None
    return
  path = RunDir(workdir).compilation_cache
  use_compilation_cache(path)
  try:
    yield path
  finally:
    use_compilation_cache(None)


def use_compilation_cache(path: str | None) -> None:
  """Points JAX's persistent compilation cache at `path` (None: off), now."""
  jax.config.update("jax_compilation_cache_dir", path)
  # JAX opens its cache once, at the first compilation after start-up: a
  # process that has compiled before (a test, a notebook) must reopen it.
  from jax.experimental.compilation_cache import compilation_cache as cache  # pylint: disable=g-import-not-at-top
  cache.reset_cache()


def _num_steps(c, pipeline: Pipeline, data_cfg: DataConfig) -> int:
  """`train.num_steps`, or (when 0) the steps of `data.num_epochs` passes."""
  if c.train.num_steps:
    return c.train.num_steps
  num_steps, mean_len = estimate_steps(pipeline, data_cfg.batch_size,
                                       data_cfg.seq_len, c.data.num_epochs)
  say(f"one pass of {c.data.num_epochs} epoch(s) ~ {num_steps} steps "
      f"({pipeline.num_episodes} episodes, mean {mean_len:.0f} tokens)")
  return num_steps


def ensure_suite(c) -> None:
  """Builds the synthetic suite when the config asks and it is missing."""
  if jax.process_count() > 1:  # Process 0 builds; the others wait for it.
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    if jax.process_index() == 0:
      _ensure_suite(c)
    multihost_utils.sync_global_devices("spectrax.train: suite ready")
    if not os.path.exists(os.path.join(c.suite_dir, MANIFEST)):
      raise run_config.ConfigError(
          f"process {jax.process_index()} cannot see the suite at "
          f"suite_dir={c.suite_dir!r} that process 0 has: every host needs "
          "it (a shared filesystem, or build it on each host).")
    return
  _ensure_suite(c)


def _ensure_suite(c) -> None:
  if not os.path.exists(os.path.join(c.suite_dir, MANIFEST)):
    if not c.build_suite_if_missing:
      raise run_config.ConfigError(
          f"no suite at suite_dir={c.suite_dir!r}: build it with `python -m "
          f"data_pipelines.build --out={c.suite_dir}` or set "
          "--config.build_suite_if_missing=true.")
    from data_pipelines import build, registry  # pylint: disable=g-import-not-at-top
    print(f"building the synthetic Spectrum Suite into {c.suite_dir} ...",
          flush=True)
    names = registry.synthetic_task_names()
    build.build(c.suite_dir, registry.select(registry.all_tasks(), names),
                seed=0, raw_dir=None)
  if run_config.tokenizer_path(c) is None and Suite(c.suite_dir).tokenizer_path is None:
    print(f"training the suite's default tokenizer into {c.suite_dir} ...",
          flush=True)
    tokenizer_training.train_default_tokenizer(c.suite_dir)


def estimate_steps(pipeline: Pipeline, batch_size: int, seq_len: int,
                   epochs: int) -> tuple[int, float]:
  """Steps for `epochs` passes, from the mean length of sampled episodes."""
  episodes = pipeline.episodes()
  n = min(256, len(episodes))
  idx = np.linspace(0, len(episodes) - 1, n).astype(int)
  lengths = [len(episodes[int(i)]["inputs"]) for i in idx]
  mean_len = float(np.mean(lengths))
  tokens = pipeline.num_episodes * mean_len * epochs
  return max(1, math.ceil(tokens / 0.96 / (batch_size * seq_len))), mean_len
