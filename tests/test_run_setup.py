"""run_setup: JAX's persistent compilation cache in the run directory."""

import os

import jax
import jax.numpy as jnp
import ml_collections

from spectrax.training import run_setup


def _config(on=True):
  return ml_collections.ConfigDict({"train": {"compilation_cache": on}})


def test_compilation_cache_in_the_workdir_while_the_run_lasts(tmp_path,
                                                             without_session_compilation_cache):
  """Each run's compilations go to its own WORKDIR/jax_cache, and none after it
  (JAX opens its cache once per process: run_setup reopens it)."""
  assert jax.config.jax_compilation_cache_dir is None
  min_time = jax.config.jax_persistent_cache_min_compile_time_secs
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  try:
    for i, run in enumerate(("one", "two")):
      workdir = str(tmp_path / run)
      with run_setup.compilation_cache(_config(), workdir) as path:
        assert path == os.path.join(workdir, "jax_cache")
        assert jax.config.jax_compilation_cache_dir == path
        jax.jit(lambda x, i=i: jnp.sin(x) * (3.25 + i))(jnp.arange(5.0)).block_until_ready()
        assert len(os.listdir(path)) >= 1
      assert jax.config.jax_compilation_cache_dir is None
    before = {run: sorted(os.listdir(tmp_path / run / "jax_cache")) for run in ("one", "two")}
    jax.jit(lambda x: jnp.cos(x) * 7.5)(jnp.arange(5.0)).block_until_ready()
    assert {run: sorted(os.listdir(tmp_path / run / "jax_cache"))
            for run in ("one", "two")} == before
  finally:
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_time)


def test_compilation_cache_off_or_chosen_elsewhere(tmp_path, without_session_compilation_cache):
  with run_setup.compilation_cache(_config(on=False), str(tmp_path)) as path:
    assert path is None and jax.config.jax_compilation_cache_dir is None
  chosen = str(tmp_path / "launcher_cache")  # JAX_COMPILATION_CACHE_DIR, as launch/*.sh set
  jax.config.update("jax_compilation_cache_dir", chosen)
  try:
    with run_setup.compilation_cache(_config(), str(tmp_path / "run")) as path:
      assert path == chosen == jax.config.jax_compilation_cache_dir
  finally:
    jax.config.update("jax_compilation_cache_dir", None)
