"""Turns SIGTERM (preemption, `kill`, Kubernetes/Slurm shutdown) into a flag.

The train loop polls the flag, saves a checkpoint and exits 0, instead of
dying mid-step:

  with PreemptionGuard() as guard:
    for step in ...:
      state, out = train_step(state, batch, signals(stop=guard.requested))
      if guard.should_stop(step, agreed=bool(out["stop"])):
        checkpointer.save(step, ..., force=True)
        break
  checkpointer.close()  # waits for the asynchronous save

Multi-host: each host gets its own signal (or none), and hosts that stop at
different steps deadlock in the next collective, so all must agree. They do
without a collective of their own: the loop gives each step this process's
`requested` flag, the step returns whether any process's was set (step.py's
signals), and the loop passes that, read a step late, to `should_stop` as
`agreed`. `should_stop` is also true when JAX's preemption service
(`jax.distributed` on Cloud TPU, which learns of a maintenance event on any
host) says this step is the sync point: a local call, the same step on every
host, which every process must make at every step (its protocol counts
them).

JAX's preemption notifier (started by `jax.distributed.initialize`) catches
SIGTERM in C++. Python reports such a handler as `None` and cannot put it
back once replaced, so the guard leaves a signal with a non-Python handler
alone: that notice then arrives through the sync point instead. Enter the
guard after `jax.distributed.initialize`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from types import FrameType

import jax


class PreemptionGuard:
  """Context manager: installs signal handlers that set `requested`.

  The previous handlers are restored on exit. A second SIGINT raises
  KeyboardInterrupt, so Ctrl-C twice still stops a stuck run; other repeated
  signals only keep the flag set.
  """

  def __init__(self, signals: Sequence[int] = (signal.SIGTERM,), *,
               handle_sigint: bool = False):
    """Args:
      signals: the signals that request a stop.
      handle_sigint: also turn the first Ctrl-C (SIGINT) into a request.
    """
    self._signals = tuple(signals) + (
        (signal.SIGINT,) if handle_sigint and signal.SIGINT not in signals
        else ())
    self._previous: dict[int, object] = {}
    self.requested = False
    self.signal_name: str | None = None  # The first signal received.

  def __enter__(self) -> "PreemptionGuard":
    if threading.current_thread() is not threading.main_thread():
      raise RuntimeError("PreemptionGuard must be entered in the main thread "
                         "(Python delivers signals only there).")
    for sig in self._signals:
      if signal.getsignal(sig) is None:
        continue  # Installed outside Python (JAX's notifier): keep it.
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous.clear()

  def _handle(self, signum: int, frame: FrameType | None) -> None:
    del frame
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt
    if not self.requested:
      self.signal_name = signal.Signals(signum).name
    self.requested = True

  def should_stop(self, step: int, *, agreed: bool = False) -> bool:
    """Whether the loop should checkpoint and stop after `step`.

    One process: the flag. Several: `agreed` (every process's flags reduced
    by the same computation, e.g. a step's "stop" output; the same on all of
    them), or JAX's preemption sync point; call it on every process at
    every step. Never a collective.
    """
    if jax.process_count() == 1:
      return self.requested
    return agreed or _reached_preemption_sync_point(step)


def _reached_preemption_sync_point(step: int) -> bool:
  """JAX's own notice, consistent across hosts; False when its preemption
  service is not running (no `jax.distributed.initialize`, not on TPU)."""
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  try:
    return multihost_utils.reached_preemption_sync_point(step)
  except RuntimeError:
    return False
