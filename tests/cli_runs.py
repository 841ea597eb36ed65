"""Runs a command line as users do (`python -m MODULE --flag=...`) and reads
its stderr: the one-line errors and the INFO lines of other packages."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# absl's log line: "I1202 15:27:04.901581 140282347768704 checkpoint_manager.py:701] ..."
_INFO = re.compile(r"^I\d{4} [\d:.]+ +\d+ ([\w.]+):\d+\]", re.M)
_OUR_FILES = {os.path.basename(p) for p in glob.glob(
    os.path.join(REPO, "spectrax", "**", "*.py"), recursive=True)} - {"__init__.py"}


def run_cli(module: str, *flags: str, timeout: float = 900,
            **env: str) -> subprocess.CompletedProcess:
  """`python -m module *flags` in the repository on CPU; text output."""
  return subprocess.run(
      [sys.executable, "-m", module, *flags], cwd=REPO, capture_output=True,
      text=True, timeout=timeout,
      env={**os.environ, "JAX_PLATFORMS": "cpu", **env})


def error_lines(stderr: str) -> list[str]:
  return [line for line in stderr.splitlines() if line.startswith("error:")]


def foreign_info_lines(stderr: str) -> list[str]:
  """INFO lines logged from files that are not spectrax's (orbax, jax, ...)."""
  return [m.group(0) for m in _INFO.finditer(stderr)
          if m.group(1) not in _OUR_FILES]


def assert_one_error_line(proc: subprocess.CompletedProcess, *parts: str) -> str:
  """Exit 2, no traceback, exactly one `error:` line holding every part."""
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  errors = error_lines(proc.stderr)
  assert len(errors) == 1, proc.stderr[-3000:]
  for part in parts:
    assert part in errors[0], errors[0]
  return errors[0]
