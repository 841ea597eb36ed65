"""The workdir lock: one training per run directory, stale locks taken over."""

import json
import logging
import os
import socket
import subprocess

import pytest

from spectrax.checkpoints.workdir_lock import LOCK_FILE, WorkdirLock, WorkdirLockedError


def _write(tmp_path, **holder):
  with open(tmp_path / LOCK_FILE, "w") as f:
    json.dump(holder, f)


def test_acquire_release(tmp_path):
  with WorkdirLock(str(tmp_path)):
    holder = json.load(open(tmp_path / LOCK_FILE))
    assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
    with pytest.raises(WorkdirLockedError, match=rf"pid {os.getpid()}, started "):
      WorkdirLock(str(tmp_path)).acquire()
  assert os.listdir(tmp_path) == []


def test_live_holder_on_another_host_is_respected(tmp_path):
  _write(tmp_path, host="tpu-vm-7", pid=1, started="2026-12-02T10:00:00+00:00")
  with pytest.raises(WorkdirLockedError,
                     match=r"in use by another training \(host tpu-vm-7, pid 1, "
                           r"started 2026-12-02T10:00:00\+00:00\).*delete .*train.lock"):
    WorkdirLock(str(tmp_path)).acquire()


def test_dead_holder_on_this_host_is_taken_over(tmp_path, caplog):
  dead = subprocess.Popen(["true"])
  dead.wait()
  _write(tmp_path, host=socket.gethostname(), pid=dead.pid, started="x")
  lock = WorkdirLock(str(tmp_path))
  with caplog.at_level(logging.WARNING):
    lock.acquire()
  assert json.load(open(tmp_path / LOCK_FILE))["pid"] == os.getpid()
  assert [r.getMessage() for r in caplog.records
          if "taking over" in r.getMessage() and f"pid {dead.pid}" in r.getMessage()]
  lock.release()
  assert not (tmp_path / LOCK_FILE).exists()


def test_unreadable_lock_is_not_guessed_stale(tmp_path):
  (tmp_path / LOCK_FILE).write_text("{")
  with pytest.raises(WorkdirLockedError, match="holder unknown"):
    WorkdirLock(str(tmp_path)).acquire()


def test_a_lock_in_a_bucket(memory_bucket):
  from etils import epath  # pylint: disable=g-import-not-at-top
  workdir = f"{memory_bucket}/run"
  lock = WorkdirLock(workdir)
  lock.acquire()
  holder = json.loads(epath.Path(workdir, LOCK_FILE).read_text())
  assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
  with pytest.raises(WorkdirLockedError, match=rf"{workdir} is in use .*pid {os.getpid()}"):
    WorkdirLock(workdir).acquire()
  lock.release()
  assert not epath.Path(workdir, LOCK_FILE).exists()
