"""benchmarks/gpu.sh runs on the lent H200 as it is: its image has jax, flax,
optax, orbax and transformers but no grain, ml_collections,
tensorflow_datasets or array_record, and no registry to install them from.
These checks are the cheap half of `bash benchmarks/gpu.sh --check`."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICE_LACKS = "grain,ml_collections,tensorflow_datasets,array_record,tensorboardX"


def _run_without(tmp_path, code: str):
  script = tmp_path / "probe.py"
  script.write_text(f"import sys; sys.path.insert(0, {REPO!r})\n{code}\n")
  return subprocess.run(
      [sys.executable, "benchmarks/without_modules.py", DEVICE_LACKS, "--",
       str(script)], cwd=REPO, capture_output=True, text=True,
      env={**os.environ, "JAX_PLATFORMS": "cpu"})


def _assert_probe_prints(tmp_path, lines: list[str], last: str):
  """Runs `lines` with the device's missing modules hidden; exit 0, `last` printed last."""
  proc = _run_without(tmp_path, "\n".join(lines))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip().endswith(last)


def test_hidden_modules_really_fail(tmp_path):
  proc = _run_without(tmp_path, "import grain")
  assert proc.returncode != 0
  assert "ModuleNotFoundError" in proc.stderr and "grain" in proc.stderr


def test_hidden_modules_look_absent_to_availability_probes(tmp_path):
  # transformers (through accelerate, which peft brings) asks
  # importlib.util.find_spec("tensorboardX"); a missing package answers None
  # there, and transformers' configs must still import.
  _assert_probe_prints(tmp_path, [
      "import importlib.util",
      "assert importlib.util.find_spec('tensorboardX') is None",
      "assert importlib.util.find_spec('grain') is None",
      "import transformers",
      "print(transformers.LlamaConfig().model_type)"], "llama")


def test_gpu_benchmark_code_needs_nothing_the_device_lacks(tmp_path):
  _assert_probe_prints(tmp_path, [
      "from spectrax.training.step import Trainer, make_optimizer",
      "from spectrax.training import flops, hardware",
      "from spectrax.scoring.scorer import Scorer",
      "from spectrax.models import ModelConfig, init_model",
      "import runpy",
      "for name in ('train_step_gpu', 'attention_gpu', 'scorer', 'harness'):",
      "  runpy.run_path(f'benchmarks/{name}.py', run_name='not_main')",
      "print('ok')"], "ok")


def test_gpu_sh_parses_and_names_every_part():
  proc = subprocess.run(["bash", "-n", "benchmarks/gpu.sh"], cwd=REPO)
  assert proc.returncode == 0
  text = open(os.path.join(REPO, "benchmarks/gpu.sh")).read()
  assert "pip install" not in text  # The device reaches no registry.
  for script in ("train_step_gpu.py", "attention_gpu.py", "scorer.py"):
    assert f"benchmarks/{script}" in text


def test_gpu_sh_check_runs_every_part_with_the_device_s_modules_only():
  """`bash benchmarks/gpu.sh --check`: each part, tiny, on CPU, no downloads."""
  proc = subprocess.run(["bash", "benchmarks/gpu.sh", "--check"], cwd=REPO,
                        capture_output=True, text=True, timeout=900,
                        env={**os.environ, "PYTHON": sys.executable})
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
  assert "failed" not in proc.stdout, proc.stdout[-4000:]
  parts = [line for line in proc.stdout.splitlines() if line.startswith("== ")]
  assert parts == ["== train_step", "== attention", "== scorer"], proc.stdout[-2000:]
