"""Checkpoints of a run: train state, data iterator and config, with fallback.

One step directory per checkpoint, written by orbax's `CheckpointManager`:

  <directory>/<step>/state/   params, optimizer state, step (sharded arrays)
  <directory>/<step>/data/    process_<i>-of-<n>.json: each process's iterator
  <directory>/<step>/config/  the run's config as JSON

Orbax writes a step into `<step>.orbax-checkpoint-tmp*` and renames it when
every item is committed (on GCS it writes `commit_success.txt` instead), so a
crash mid-save leaves no step directory and the previous checkpoint stays the
latest; leftover tmp directories are deleted when a writing `Checkpointer`
opens (the workdir lock makes it the only writer).

  <directory>/<step>/integrity/  checksums of the state's arrays (integrity.py)

A finalized checkpoint can still be unreadable (a truncated file, a deleted
item, a disk error) or hold corrupted bytes that still decode (caught by the
checksums and a finiteness check). `restore` then warns once, falls back to
the next older one, and moves the bad newer ones aside (`<step>.corrupt`) so
training resumed from the older step can checkpoint those steps again.

A `read_only` Checkpointer (scoring, evaluation, export reading a run that may
be training right now) creates, deletes and renames nothing: it ignores
unfinished saves and skips bad steps without moving them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import grain
import jax
import orbax.checkpoint as ocp
from etils import epath

from spectrax.checkpoints import integrity
from spectrax.parallel import distributed

log = logging.getLogger(__name__)

STATE, DATA, CONFIG, INTEGRITY = "state", "data", "config", "integrity"
CORRUPT_SUFFIX = ".corrupt"

T = TypeVar("T")


class CheckpointRestoreError(RuntimeError):
  """No requested checkpoint could be restored; the message lists each try."""


class ProcessCountMismatchError(ValueError):
  """The checkpoint's iterator state was written by another process count."""


class _IteratorSnapshot:
  """An iterator's state frozen when `save` is called.

  Grain's orbax handler calls `get_state().decode()` on items that are not
  Grain `DatasetIterator`s. Orbax runs it before `save` returns today, but a
  snapshot keeps the saved state exact even if a later orbax version runs
  sync handlers in its background thread while the loop advances the iterator.
  """

  def __init__(self, state: bytes):
    self._state = state

  def get_state(self) -> bytes:
    return self._state


class Checkpointer:
  """Saves and restores {state, data iterator, config} every `save_every` steps.

  Saves are asynchronous by default: `save` returns once device arrays are
  copied to host and the rest is written in a background thread. Call `wait()`
  before reading checkpoints back, and `close()` (or use `with`) before the
  process exits, or the last save is lost (left as a tmp directory).
  """

  def __init__(self, directory: str | epath.PathLike, *, save_every: int = 1,
               keep: int = 2, async_save: bool = True, read_only: bool = False):
    if save_every < 1:
      raise ValueError(f"checkpoint save_every={save_every} must be >= 1 "
                       "(steps between checkpoints).")
    if keep < 1:
      raise ValueError(f"checkpoint keep={keep} must be >= 1 (checkpoints "
                       "kept on disk); keep at least 2 so a corrupt latest "
                       "one has a fallback.")
    if "://" not in str(directory):  # orbax wants absolute local paths
      directory = os.path.abspath(directory)
    self.directory = epath.Path(directory)
    self.save_every = save_every
    self.keep = keep
    self.read_only = read_only
    if read_only and not self.directory.exists():
      raise FileNotFoundError(
          f"no checkpoint directory {self.directory}; point to the "
          "checkpoints of a `python -m spectrax.train` run.")
    # A reader's manager warns that it is read-only: noise, we asked for it.
    with _quiet_orbax() if read_only else contextlib.nullcontext():
      self._manager = self._open_manager(async_save)

  def _open_manager(self, async_save: bool) -> ocp.CheckpointManager:
    read_only = self.read_only
    return ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            create=not read_only,
            # Interrupted saves of earlier runs: never listed, so just litter.
            # A reader must leave them: one may be a save in progress.
            cleanup_tmp_directories=not read_only,
            read_only=read_only,
            save_root_metadata=not read_only,
            enable_async_checkpointing=async_save,
            preservation_policy=ocp.checkpoint_managers.LatestN(n=self.keep)))

  # Saving.

  def save(self, step: int, *, state: Any, data_iterator: Any,
           config_dict: Mapping[str, Any], force: bool = False) -> bool:
    """Saves a checkpoint when `step % save_every == 0` or `force`.

    Args:
      step: the train step the state is at (its directory name).
      state: a pytree of `jax.Array`s (params, optimizer state, step), sharded
        or not; Python scalars are allowed.
      data_iterator: an iterator with `get_state() -> bytes` (e.g.
        `spectrax.data.pipeline.BatchIterator`); its state is read now.
      config_dict: the run's config as plain JSON-able data (for an
        `ml_collections.ConfigDict`, pass `config.to_dict()`).
      force: save even off the `save_every` schedule (preemption, last step).

    Returns:
      True if a save was started; False when off schedule or `step` is
      already saved (a forced final save right after a scheduled one).
    """
    if self.read_only:
      raise ValueError(f"this Checkpointer of {self.directory} is read-only; "
                       "open it with read_only=False to save.")
    if not force and step % self.save_every:
      return False
    if step in self._manager.all_steps():
      return False
    try:
      json.dumps(config_dict)
    except (TypeError, ValueError) as e:
      raise ValueError(
          f"config_dict for checkpoint step {step} is not JSON-serialisable "
          f"({e}); pass plain dicts/lists/str/numbers, e.g. "
          "config.to_dict() for an ml_collections.ConfigDict.") from e
    args = ocp.args.Composite(**{
        STATE: ocp.args.StandardSave(state),
        DATA: grain.checkpoint.CheckpointSave(
            _IteratorSnapshot(data_iterator.get_state())),
        CONFIG: ocp.args.JsonSave(dict(config_dict)),
        # Saved inside the same step directory, so it is finalized with it.
        INTEGRITY: ocp.args.JsonSave(integrity.record(state)),
    })
    # Our schedule decided; orbax's own policy would skip steps at or below
    # its cached latest step.
    return self._manager.save(step, args=args, force=True)

  def wait(self) -> None:
    """Blocks until a pending asynchronous save is finalized (or raises its
    error)."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves and releases orbax's threads."""
    self._manager.close()

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  # Reading.

  def all_steps(self) -> list[int]:
    """Steps of finalized checkpoints on disk, plus one in flight, ascending."""
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    """The newest checkpoint's step, or None when there is none.

    Includes an asynchronous save still in flight; call `wait()` first for
    only finalized ones. Does not check that it is readable (`restore` does).
    """
    return self._manager.latest_step()

  def restore(self, abstract_state: Any, data_iterator: Any | None,
              step: int | None = None) -> tuple[Any, int]:
    """Restores the state and, in place, the data iterator.

    Args:
      abstract_state: the state's pytree of `jax.ShapeDtypeStruct`s with
        `sharding`s (e.g. from `jax.eval_shape` plus shardings); arrays come
        back with those shardings. Python scalars stand for themselves.
      data_iterator: the iterator to `set_state` (a fresh one from the same
        `DataConfig`, same process count); None skips the data (evaluation).
      step: the checkpoint to restore; None means the newest readable one,
        falling back past unreadable ones (which are then moved aside, unless
        read-only). Readable means: orbax restores it, every array matches
        the checksum recorded when it was saved, and every float is finite.

    Returns:
      (state, step restored).

    Raises:
      FileNotFoundError: no checkpoint (or not `step`) in the directory.
      CheckpointRestoreError: none of the candidates could be restored.
    """

    def load(s: int):
      args = {STATE: ocp.args.StandardRestore(abstract_state)}
      if data_iterator is not None:
        self._check_data_files(s)
        args[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
      state = self._manager.restore(s, args=ocp.args.Composite(**args))[STATE]
      integrity.verify(state, self._recorded_checksums(s))
      return state

    return self._restore_with_fallback(step, load, "state and data",
                                       set_aside=not self.read_only)

  def restore_params(self, abstract_params: dict[str, Any],
                     step: int | None = None) -> tuple[dict[str, Any], int]:
    """Restores only some state leaves (e.g. `params.*`), reading nothing else.

    For evaluation and export: the optimizer state (twice the parameters
    for AdamW) is never read. `abstract_params` maps flat state names to
    `jax.ShapeDtypeStruct`s with shardings. Falls back past unreadable
    checkpoints like `restore` (without moving them aside).
    """
    restore_args = ocp.checkpoint_utils.construct_restore_args(abstract_params)

    def load(s: int):
      args = ocp.args.PyTreeRestore(item=abstract_params, restore_args=restore_args,
                                    partial_restore=True)
      params = self._manager.restore(s, args=ocp.args.Composite(**{STATE: args}))[STATE]
      integrity.verify(params, self._recorded_checksums(s))
      return params

    return self._restore_with_fallback(step, load, "parameters", set_aside=False)

  def restore_config(self, step: int | None = None) -> dict:
    """The config saved with `step` (None: the newest readable checkpoint)."""

    def load(s: int):
      args = ocp.args.Composite(**{CONFIG: ocp.args.JsonRestore()})
      return self._manager.restore(s, args=args)[CONFIG]

    return self._restore_with_fallback(step, load, "config",
                                       set_aside=False)[0]

  def _recorded_checksums(self, step: int) -> dict | None:
    """The checksums saved with `step`; None for checkpoints written before
    spectrax recorded them (those get the finiteness check only)."""
    if not (self.directory / str(step) / INTEGRITY).exists():
      return None
    args = ocp.args.Composite(**{INTEGRITY: ocp.args.JsonRestore()})
    return self._manager.restore(step, args=args)[INTEGRITY]

  # Fallback machinery.

  def _restore_with_fallback(self, step: int | None, load: Callable[[int], T],
                             what: str, *, set_aside: bool) -> tuple[T, int]:
    self.wait()
    # Another process (or a previous run) may have changed the directory.
    self._manager.reload()
    steps = self.all_steps()
    if not steps:
      raise FileNotFoundError(
          f"no finalized checkpoint in {self.directory}; start from scratch "
          "(check latest_step() is None) or point to another directory.")
    if step is not None and step not in steps:
      raise FileNotFoundError(
          f"no finalized checkpoint for step {step} in {self.directory}; "
          f"finalized steps: {steps}.")
    candidates = [step] if step is not None else steps[::-1]
    failures: list[tuple[int, str]] = []
    for s in candidates:
      with _quiet_orbax():
        result, error = _attempt(lambda: load(s))  # pylint: disable=cell-var-from-loop
      # Every process restores the same step (best effort across hosts: orbax
      # ends a restore with a barrier, so a process whose read fails can leave
      # the others waiting there until it times out).
      if distributed.all_processes(error is None):
        if failures and set_aside:
          self._set_aside([f for f, _ in failures])
        return result, s
      error = error or "failed on another process"
      log.warning("checkpoint %s is unreadable (restoring its %s failed): %s%s",
                  self.directory / str(s), what, error,
                  ("; trying the previous one" if s != candidates[-1] else "")
                  + (" (left in place: this reader changes nothing)"
                     if self.read_only else ""))
      failures.append((s, error))
    tried = "\n".join(f"  step {s} ({self.directory / str(s)}): {e}"
                      for s, e in failures)
    raise CheckpointRestoreError(
        f"could not restore the {what} from any checkpoint in "
        f"{self.directory}. Tried:\n{tried}\nIf every step fails the same "
        "way, the checkpoints are fine but the request does not match them "
        "(a changed model/optimizer config or abstract state, or another "
        "process count); otherwise restore from a copy or start over.")

  def _check_data_files(self, step: int) -> None:
    """Raises a clear error when the iterator files were written by another
    process count (Grain restores only with the same count)."""
    data_dir = self.directory / str(step) / DATA
    if not data_dir.exists():
      return  # Missing item: orbax raises, and that step counts as corrupt.
    index, count = jax.process_index(), jax.process_count()
    mine = data_dir / f"process_{index}-of-{count}.json"
    others = sorted(p.name for p in data_dir.glob("process_*-of-*.json"))
    if not mine.exists() and others and not any(
        n.endswith(f"-of-{count}.json") for n in others):
      raise ProcessCountMismatchError(
          f"checkpoint {self.directory / str(step)} holds data-iterator state "
          f"for another process count ({others[0]}, ...), but this run has "
          f"{count}; restore with the same number of processes, or pass "
          "data_iterator=None and start the data afresh.")

  def _set_aside(self, steps: Sequence[int]) -> None:
    """Renames unreadable newer steps out of the manager's sight.

    Otherwise the resumed run could not save those steps again (`save` skips
    existing steps) and pruning would keep the unreadable one as the newest.
    Renaming keeps it for inspection; where the store cannot rename a
    directory, it is deleted.
    """
    if distributed.is_primary():
      for s in steps:
        src = self.directory / str(s)
        dst = self.directory / f"{s}{CORRUPT_SUFFIX}"
        n = 1
        while dst.exists():
          dst = self.directory / f"{s}{CORRUPT_SUFFIX}{n}"
          n += 1
        try:
          src.rename(dst)
          log.warning("moved unreadable checkpoint %s aside to %s", src, dst)
        except OSError as e:
          log.warning("could not rename unreadable checkpoint %s (%s); "
                      "deleting it", src, e)
          src.rmtree()
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices("spectrax_checkpoint_set_aside")
    self._manager.reload()


@contextlib.contextmanager
def _quiet_orbax():
  """Silences orbax's (absl) and tensorstore's own logging during one restore
  attempt: a failed attempt makes them log hundreds of lines and tracebacks
  that bury the one warning `_restore_with_fallback` gives per bad step."""
  loggers = [logging.getLogger(n)
             for n in ("absl", "orbax", "tensorstore", "asyncio")]
  levels = [l.level for l in loggers]
  for l in loggers:
    l.setLevel(logging.CRITICAL + 1)
  try:
    yield
  finally:
    # A failed tensorstore read leaves futures whose errors asyncio logs when
    # they are collected: collect them now, while the loggers are quiet.
    gc.collect()
    for l, level in zip(loggers, levels):
      l.setLevel(level)


def _attempt(fn: Callable[[], T]) -> tuple[T | None, str | None]:
  """(fn(), None), or (None, the error) for any exception: corruption shows up
  as ValueError, KeyError, OSError, JSONDecodeError, ... from tensorstore,
  orbax or grain."""
  try:
    return fn(), None
  except ProcessCountMismatchError:
    raise  # A usage error, not corruption: older steps would fail alike.
  except Exception as e:  # pylint: disable=broad-exception-caught
    return None, f"{type(e).__name__}: {_first_line(e)}"


def _first_line(e: BaseException, limit: int = 300) -> str:
  text = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
  return text if len(text) <= limit else text[:limit] + "..."


