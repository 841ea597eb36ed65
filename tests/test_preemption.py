"""PreemptionGuard: signals become a flag; previous handlers come back."""

import os
import signal
import threading

import pytest

from spectrax.training.preemption import PreemptionGuard


def _sentinel(signum, frame):
  del signum, frame
  raise AssertionError("the guard's handler should have run, not this one")


@pytest.fixture
def sentinel_handlers():
  """Python handlers the guard must replace and then restore."""
  old = {s: signal.signal(s, _sentinel) for s in (signal.SIGTERM,
                                                  signal.SIGINT)}
  yield
  for s, h in old.items():
    signal.signal(s, h)


def test_sigterm_sets_flag_and_handlers_are_restored(sentinel_handlers):
  with PreemptionGuard() as guard:
    assert not guard.requested and not guard.should_stop(0)
    assert signal.getsignal(signal.SIGINT) is _sentinel  # Not asked for.
    os.kill(os.getpid(), signal.SIGTERM)
    assert guard.requested and guard.signal_name == "SIGTERM"
    assert guard.should_stop(0)
    os.kill(os.getpid(), signal.SIGTERM)  # Repeats keep the flag, no exit.
    assert guard.requested
  assert signal.getsignal(signal.SIGTERM) is _sentinel
  assert signal.getsignal(signal.SIGINT) is _sentinel


def test_second_sigint_raises_keyboard_interrupt(sentinel_handlers):
  with PreemptionGuard(handle_sigint=True) as guard:
    os.kill(os.getpid(), signal.SIGINT)
    assert guard.requested and guard.signal_name == "SIGINT"
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
  assert signal.getsignal(signal.SIGINT) is _sentinel
  assert signal.getsignal(signal.SIGTERM) is _sentinel


def test_handlers_restored_when_the_body_raises(sentinel_handlers):
  with pytest.raises(ZeroDivisionError):
    with PreemptionGuard(handle_sigint=True):
      assert signal.getsignal(signal.SIGTERM) is not _sentinel
      _ = 1 / 0
  assert signal.getsignal(signal.SIGTERM) is _sentinel
  assert signal.getsignal(signal.SIGINT) is _sentinel


def test_entering_outside_the_main_thread_is_a_clear_error():
  errors = []

  def enter():
    try:
      with PreemptionGuard():
        pass
    except RuntimeError as e:
      errors.append(str(e))

  t = threading.Thread(target=enter)
  t.start()
  t.join()
  assert errors and "main thread" in errors[0]
