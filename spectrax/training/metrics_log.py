"""Training metrics: a JSONL log, TensorBoard scalars, a progress bar and a step timer.

``MetricsWriter`` appends one JSON object per record to ``DIR/metrics.jsonl``
(flushed per line, so a crash loses at most the line being written) and
writes the numeric fields as TensorBoard scalars to event files in ``DIR``.
Only the primary process writes; the others get no-op objects, so the trainer
calls them unconditionally.

Resume: call ``truncate_after(restored_step)`` before writing; it drops the
JSONL lines of steps the restored checkpoint has not seen, and makes
TensorBoard hide their scalars too (``purge_step``), so no step appears twice.

``DIR`` may be a bucket (``gs://...``, through ``etils.epath``): objects
cannot be appended to, so there the JSONL is kept in memory and uploaded
whole (one atomic object write) at most every ``flush_secs`` and on close,
which is also TensorBoard's own policy; a crash loses at most that much.
TensorBoard writes to ``gs://`` itself (tensorboardX, with the
google-cloud-storage package; without it only the JSONL is written).

Usage::

    writer = MetricsWriter(workdir, is_primary=jax.process_index() == 0)
    writer.truncate_after(start_step)
    timer, bar = StepTimer(), Progress(total_steps, start_step, is_primary)
    for step in range(start_step + 1, total_steps + 1):
      with timer.data_wait():
        batch = next(it)
      state, out = train_step(state, batch)
      timer.lap()
      if step % log_every == 0:
        record = {"loss": float(out["loss"]), **timer.summary()}
        writer.write(step, record)
        bar.update(step, record)
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import time
from typing import Any, Callable, Mapping

from absl import logging
from etils import epath
import numpy as np
import tqdm

from spectrax.checkpoints.run_dir import METRICS_FILE, is_local, write_atomic

_NON_FINITE = ("nan", "inf", "-inf")


def _plain(value: Any) -> Any:
  """A JSON-safe Python value: numpy/jax scalars become int/float, non-finite floats strings."""
  if isinstance(value, (bool, str)) or value is None:
    return value
  if hasattr(value, "shape") and getattr(value, "size", None) == 1:  # 0-d or 1-element arrays
    value = np.asarray(value).reshape(()).item()
  if isinstance(value, numbers.Integral):
    return int(value)
  if isinstance(value, numbers.Real):
    value = float(value)
    # Strict JSON (jq, JS) has no NaN/Infinity tokens; a string keeps the signal.
    return value if math.isfinite(value) else str(value)
  raise TypeError(f"metric value {value!r} of type {type(value).__name__} is not a scalar; "
                  "log a number, a string or a one-element array")


class _Lines:
  """The JSONL file: appended and flushed line by line on a local disk; in a
  bucket, held here and uploaded whole at most every `flush_secs`."""

  def __init__(self, path: str, flush_secs: float):
    self.path, self.flush_secs = path, flush_secs
    self.local = is_local(path)
    self.closed = False
    if self.local:
      self._file = open(path, "a", encoding="utf-8")
    else:
      remote = epath.Path(path)
      self._text = remote.read_text(encoding="utf-8") if remote.exists() else ""
      self._uploaded = time.monotonic()

  def read(self) -> str:
    if not self.local:
      return self._text
    with open(self.path, encoding="utf-8") as f:
      return f.read()

  def append(self, line: str) -> None:
    if self.local:
      self._file.write(line)
      self._file.flush()
      return
    self._text += line
    if time.monotonic() - self._uploaded >= self.flush_secs:
      self._upload()

  def replace(self, text: str) -> None:
    """The whole file, atomically: a crash leaves the old one whole."""
    if self.local:
      self._file.close()
      write_atomic(self.path, text)
      self._file = open(self.path, "a", encoding="utf-8")
    else:
      self._text = text
      self._upload()

  def _upload(self) -> None:
    write_atomic(self.path, self._text)
    self._uploaded = time.monotonic()

  def close(self) -> None:
    if self.closed:
      return
    if self.local:
      self._file.close()
    else:
      self._upload()
    self.closed = True


class MetricsWriter:
  """Appends records to ``DIR/metrics.jsonl`` and TensorBoard event files in ``DIR``.

  Args:
    workdir: the run directory (created on the primary process); a local
      path or a bucket URL, a string or an ``epath.Path``.
    is_primary: False on every process but one: then nothing is written.
    flush_secs: in a bucket, the most seconds between uploads of the JSONL
      (and TensorBoard's flush interval everywhere).
  """

  def __init__(self, workdir: str | os.PathLike, *, is_primary: bool = True,
               flush_secs: float = 30.0):
    self.workdir = os.fspath(workdir)
    self.is_primary = is_primary
    self.path = os.path.join(self.workdir, METRICS_FILE)
    self.flush_secs = flush_secs
    self._file = None
    self._tb = None
    self._tb_off = False
    self._purge_step = None
    if is_primary:
      epath.Path(self.workdir).mkdir(parents=True, exist_ok=True)
      self._file = _Lines(self.path, flush_secs)

  def write(self, step: int, metrics: Mapping[str, Any]) -> None:
    """Logs one record: a JSON line ``{"step", "time", **metrics}`` and numeric scalars.

    Args:
      step: the training step (int).
      metrics: name -> number, string or one-element array; names with
        ``/`` group TensorBoard charts (``train/loss``).
    """
    if not self.is_primary:
      return
    self._check_open()
    step = int(step)
    reserved = {"step", "time"} & set(metrics)
    if reserved:
      raise ValueError(f"metric names {sorted(reserved)} are reserved by MetricsWriter; rename them")
    record = {"step": step, "time": round(time.time(), 3)}
    record.update({str(k): _plain(v) for k, v in metrics.items()})
    self._file.append(json.dumps(record, allow_nan=False) + "\n")
    tb = self._tensorboard()
    if tb is None:
      return
    for name, value in record.items():
      if name in ("step", "time") or isinstance(value, bool) or value is None:
        continue
      if isinstance(value, str):
        if value not in _NON_FINITE:
          continue  # text lives in the JSONL only
        value = float(value)  # TensorBoard plots NaN/inf as such
      tb.add_scalar(name, value, step)
    tb.flush()

  def truncate_after(self, step: int) -> int:
    """Drops logged records of steps > ``step`` (a resumed run restarts after ``step``).

    Lines that do not parse (a line cut by a crash) are dropped too. The
    TensorBoard writer restarts with ``purge_step = step + 1``, which makes
    TensorBoard discard older events at later steps.

    Returns:
      The number of lines dropped (0 when not primary).
    """
    if not self.is_primary:
      return 0
    self._check_open()
    kept, dropped = [], 0
    for line in self._file.read().splitlines(keepends=True):
      try:
        keep = int(json.loads(line)["step"]) <= step
      except (ValueError, KeyError, TypeError):
        keep = False
      if keep:
        kept.append(line if line.endswith("\n") else line + "\n")
      else:
        dropped += 1
    self._file.replace("".join(kept))  # a crash here leaves the old file whole
    if self._tb is not None:
      self._tb.close()
      self._tb = None
    self._purge_step = int(step) + 1
    return dropped

  def close(self) -> None:
    """Flushes and closes the files; further writes raise."""
    if self._file is not None:
      self._file.close()
    if self._tb is not None:
      self._tb.close()
      self._tb = None

  def __enter__(self) -> "MetricsWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def _check_open(self) -> None:
    if self._file is None or self._file.closed:
      raise ValueError(f"MetricsWriter for {self.workdir} is closed; create a new one to write")

  def _tensorboard(self):
    """The TensorBoard writer; None where it cannot write."""
    if self._tb is None and not self._tb_off and not is_local(self.workdir):
      try:
        import google.cloud.storage  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
      except ImportError:
        logging.warning("TensorBoard events are not written to %s: tensorboardX needs "
                        "the google-cloud-storage package for it; metrics.jsonl has "
                        "every record.", self.workdir)
        self._tb_off = True
    if self._tb is None and not self._tb_off:
      # Imported on first use: tensorboardX imports torch when it is installed
      # (~1.5 s), which processes that never write should not pay.
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      # tensorboardX names files by the second and opens them with "wb": a
      # nanosecond suffix keeps a writer reopened within that second (resume)
      # from clobbering the last file, and keeps file order = creation order,
      # which purge_step relies on.
      self._tb = SummaryWriter(self.workdir, purge_step=self._purge_step,
                               flush_secs=self.flush_secs,
                               filename_suffix=f".{time.time_ns()}.{os.getpid()}")
    return self._tb


class Progress:
  """A console progress bar over training steps with ETA; silent when not primary.

  Args:
    total_steps: the last step of the run.
    initial_step: the step the run (re)starts from; the ETA uses only the
      steps done in this process.
    is_primary: False on every process but one.
  """

  def __init__(self, total_steps: int, initial_step: int = 0, is_primary: bool = True):
    self._bar = tqdm.tqdm(total=int(total_steps), initial=int(initial_step), unit="step",
                          disable=not is_primary, dynamic_ncols=True, mininterval=1.0,
                          smoothing=0.1)

  @property
  def step(self) -> int:
    """The last step shown."""
    return int(self._bar.n)

  def update(self, step: int, postfix: Mapping[str, Any] | None = None) -> None:
    """Moves the bar to ``step`` and shows ``postfix`` (floats to 4 significant digits)."""
    if self._bar.disable:
      return
    if postfix:
      self._bar.set_postfix({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in postfix.items()},
                            refresh=False)
    self._bar.update(int(step) - self._bar.n)

  def close(self) -> None:
    self._bar.close()

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


class StepTimer:
  """Splits wall-clock time into waiting for data and everything else.

  Call ``lap()`` once per step and wrap the batch fetch in ``data_wait()``.
  JAX dispatch is asynchronous, so a single step's time is not meaningful;
  over a logging window whose end blocks on a result (e.g. reading the loss)
  the averages are exact. The first window includes compilation: call
  ``summary()`` once after the first step to drop it.

  Args:
    clock: seconds as a float; injectable for tests.
  """

  def __init__(self, clock: Callable[[], float] = time.perf_counter):
    self._clock = clock
    self._last_lap = clock()
    self._window_start = self._last_lap
    self._wait = 0.0
    self._steps = 0

  @contextlib.contextmanager
  def data_wait(self):
    """Times the block as data wait (fetching the next batch)."""
    start = self._clock()
    try:
      yield
    finally:
      self._wait += self._clock() - start

  def lap(self) -> None:
    """Marks the end of one step."""
    self._last_lap = self._clock()
    self._steps += 1

  def summary(self, reset: bool = True) -> dict[str, float]:
    """Averages since the last reset.

    Returns:
      ``step_time_s`` (wall seconds per step, data wait included),
      ``data_wait_s`` (seconds per step spent in ``data_wait``) and
      ``data_wait_fraction`` (their ratio, in [0, 1]); empty before any lap.
    """
    elapsed = self._last_lap - self._window_start
    out = {}
    if self._steps:
      out = {"step_time_s": elapsed / self._steps, "data_wait_s": self._wait / self._steps,
             "data_wait_fraction": self._wait / elapsed if elapsed > 0 else 0.0}
    if reset:
      self._window_start, self._wait, self._steps = self._last_lap, 0.0, 0
    return out
