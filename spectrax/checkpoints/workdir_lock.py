"""One training per run directory: `DIR/train.lock` names the holder.

Two trainings in one workdir would overwrite each other's checkpoints and
metrics. The lock file holds {host, pid, started} of the process that took
it; a second `python -m spectrax.train` stops with a message naming it. A
lock left by a process that died without releasing it (kill -9, a crash of
the machine) is taken over with a warning when it is from this host and its
pid is gone; from another host we cannot tell, so the message says how to
remove it. Readers (scoring, evaluation, export) never take the lock.

In a bucket (`gs://...`) the lock is one object, written only when none
exists: two trainings starting in the same instant could both see none
(object stores offer create-if-absent, but not through `etils.epath`), so
there it guards against the common mistake, a second run started later.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket

from etils import epath

from spectrax.checkpoints.run_dir import is_local

log = logging.getLogger(__name__)

LOCK_FILE = "train.lock"


class WorkdirLockedError(RuntimeError):
  """Another live training holds the run directory."""


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Someone else's process: alive.
    return True
  return True


class WorkdirLock:
  """The lock of one run directory; `acquire` then `release` (or `with`)."""

  def __init__(self, workdir: str | os.PathLike):
    self.path = os.path.join(os.fspath(workdir), LOCK_FILE)
    self.held = False

  def _holder(self) -> dict | None:
    """The lock file's contents; {} when unreadable; None when absent."""
    try:
      holder = json.loads(epath.Path(self.path).read_text())
      return holder if isinstance(holder, dict) else {}
    except FileNotFoundError:
      return None
    except (OSError, ValueError):
      return {}

  def _create(self) -> bool:
    """Writes our lock atomically: complete or absent, never half-written
    (written to a private file, then hard-linked, which fails if it exists)."""
    me = {"host": socket.gethostname(), "pid": os.getpid(),
          "started": datetime.datetime.now().astimezone().isoformat(
              timespec="seconds")}
    if not is_local(self.path):  # One object: complete or absent.
      lock = epath.Path(self.path)
      if lock.exists():
        return False
      lock.write_text(json.dumps(me))
      return True
    tmp = f"{self.path}.{me['host']}.{me['pid']}.tmp"
    with open(tmp, "w") as f:
      json.dump(me, f)
    try:
      os.link(tmp, self.path)
      return True
    except FileExistsError:
      return False
    finally:
      os.remove(tmp)

  def acquire(self) -> None:
    """Takes the lock, or raises WorkdirLockedError naming the holder."""
    for _ in range(3):  # Races with another starter or a stale holder.
      if self._create():
        self.held = True
        return
      holder = self._holder()
      if holder is None:
        continue  # Released meanwhile.
      if self._stale(holder):
        log.warning("taking over the lock %s of a training that is gone "
                    "(%s); resuming its run", self.path, _describe(holder))
        try:
          epath.Path(self.path).unlink()
        except FileNotFoundError:
          pass
        continue
      raise WorkdirLockedError(
          f"{os.path.dirname(self.path)} is in use by another training "
          f"({_describe(holder)}): two trainings in one workdir overwrite "
          "each other's checkpoints. Wait for it to end, stop it, or pass "
          f"another --workdir; if it is gone (e.g. its machine died), delete "
          f"{self.path}.")
    raise WorkdirLockedError(f"could not take the lock {self.path}: another "
                             "training keeps starting in this workdir.")

  @staticmethod
  def _stale(holder: dict) -> bool:
    """Only a lock of this host whose process is gone is provably stale."""
    pid = holder.get("pid")
    return (holder.get("host") == socket.gethostname()
            and isinstance(pid, int) and not _alive(pid))

  def release(self) -> None:
    """Removes the lock if this process holds it."""
    if self.held:
      holder = self._holder() or {}
      if holder.get("pid") == os.getpid():
        epath.Path(self.path).unlink()
      self.held = False

  def __enter__(self) -> "WorkdirLock":
    self.acquire()
    return self

  def __exit__(self, *exc) -> None:
    self.release()


def _describe(holder: dict) -> str:
  if not holder:
    return "holder unknown: the lock file is unreadable"
  return (f"host {holder.get('host')}, pid {holder.get('pid')}, started "
          f"{holder.get('started')}")
